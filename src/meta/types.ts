/** Metadata records shared by every MetaStore implementation. */
import type { BlobId } from '../blobs/blob-store.js';
import type { TimeNs } from '../util/time.js';

export const ROOT_INO = 1;

/** st_mode file-type bits (Linux values). */
export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;

export const isDir = (mode: number) => (mode & S_IFMT) === S_IFDIR;
export const isReg = (mode: number) => (mode & S_IFMT) === S_IFREG;
export const isLnk = (mode: number) => (mode & S_IFMT) === S_IFLNK;

export interface Inode {
  ino: number;
  /** Full st_mode: type bits and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  /** Bytes held in blobs (holes excluded), for st_blocks. */
  alloc: number;
  rdev: number;
  atimeNs: TimeNs;
  mtimeNs: TimeNs;
  ctimeNs: TimeNs;
  btimeNs: TimeNs;
  /** Current committed content version (regular files). */
  vid: number | null;
  /** Symlink target. */
  target: string | null;
  /** Last small-write journal record the current version includes. */
  jseq: number;
}

export interface NewInode {
  mode: number;
  uid: number;
  gid: number;
  rdev?: number;
  target?: string | null;
  timeNs: TimeNs;
}

/** One chunk of a file's content: a blob, or a hole (id null) that reads as zeros. */
export interface ChunkRef {
  id: BlobId | null;
  /** Bytes stored in the blob; the chunk's logical length comes from the file size. */
  len: number;
}

export interface FileVersion {
  vid: number;
  ino: number;
  size: number;
  chunks: ChunkRef[];
  createdNs: TimeNs;
  principal: string | null;
  sessionId: string | null;
}

export interface DirEntry {
  name: string;
  inode: Inode;
}

export type AttrPatch = Partial<Pick<Inode, 'mode' | 'uid' | 'gid' | 'size' | 'atimeNs' | 'mtimeNs' | 'ctimeNs'>>;

export interface CommitContent {
  size: number;
  chunks: ChunkRef[];
  mtimeNs: TimeNs;
  ctimeNs: TimeNs;
  principal: string | null;
  sessionId: string | null;
  /** Last small-write journal record this content includes. */
  jseq?: number;
}

export interface RenameResult {
  /** The inode that was at the destination and lost a link, if any. */
  replaced?: Inode;
  moved: Inode;
}

export interface StoreStats {
  inodes: number;
  files: number;
  directories: number;
  logicalBytes: number;
}

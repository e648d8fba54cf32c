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

// ------------------------------------------------- sub-store records

/** One row of a subtree (live, or as a snapshot recorded it). */
export interface TreeEntry {
  /** Path relative to the tree's root, '' for the root itself. */
  relPath: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  alloc: number;
  mtimeNs: TimeNs;
  vid: number | null;
  target: string | null;
}

export interface SnapshotRecord {
  snapshotId: string;
  path: string;
  name: string | null;
  metadata: Record<string, unknown>;
  createdAt: TimeNs;
  createdBy: string | null;
  fileCount: number;
  totalBytes: number;
  kind: 'manual' | 'pre-restore';
}

export interface TreeDiff {
  added: string[];
  modified: string[];
  deleted: string[];
}

export interface RestoreResult {
  /** Paths the restore brought back. */
  created: number;
  /** Paths whose content or attributes it changed. */
  modified: number;
  /** Paths it removed. */
  removed: number;
  /** Inodes left without links (the engine drops them once no handle has them open). */
  unlinked: number[];
  /** Inodes whose content or attributes changed (the engine forgets cached state). */
  touched: number[];
}

export interface WorkspaceRecord {
  path: string;
  metadata: Record<string, unknown>;
  createdBy: string | null;
  createdAt: TimeNs;
}

export interface SessionRecord {
  sessionId: string;
  agentId: string;
  metadata: Record<string, unknown>;
  createdBy: string | null;
  createdAt: TimeNs;
  endedAt: TimeNs | null;
  fileCount: number;
}

export type EventAction = 'create' | 'write' | 'delete' | 'rename';

export interface SessionEvent {
  id: number;
  at: TimeNs;
  sessionId: string;
  action: EventAction;
  ino: number;
  path: string;
  path2: string | null;
  vidBefore: number | null;
  vidAfter: number | null;
}

/** An API key as stored: its hash, never the secret. */
export interface KeyRecord {
  keyId: string;
  keyHash: string;
  subjectType: string;
  subjectId: string;
  isAdmin: boolean;
  createdAt: TimeNs;
  expiresAt: TimeNs | null;
  revokedAt: TimeNs | null;
}

/** A ReBAC grant: subject has relation on object. */
export interface GrantTuple {
  subjectType: string;
  subjectId: string;
  relation: string;
  objectType: string;
  objectId: string;
}

export interface GrantRecord extends GrantTuple {
  createdAt: TimeNs;
}

/** One finding of the structural check. */
export interface TreeProblem {
  kind: 'database' | 'root' | 'dangling-parent' | 'dangling-entry' | 'nlink' | 'dir-links' | 'orphan' | 'missing-version' | 'snapshot-missing-version';
  ino?: number;
  detail: string;
  /** Where the file is (when it still has a name), for the person reading the report. */
  path?: string;
  /** The workspace that holds `path`, if any. */
  workspace?: string;
}

/** Who uses a blob. */
export interface BlobUsers {
  inodes: number[];
  /** Snapshot entries, with the path the file had in its snapshot. */
  snapshots: { snapshot_id: string; path: string }[];
}

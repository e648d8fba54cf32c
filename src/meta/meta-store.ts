/**
 * Operation-level metadata interface. Every call is atomic inside the store
 * (one SQLite transaction now; one PostgreSQL transaction later) and re-checks
 * the conditions it depends on (existence, emptiness), so the engine's earlier
 * checks are never the only guard.
 */
import type { TimeNs } from '../util/time.js';
import type {
  AttrPatch, CommitContent, DirEntry, FileVersion, Inode, NewInode, RenameResult, StoreStats,
} from './types.js';
import type { AccessStore, FsckOps, Registry, TreeOps } from './sub-stores.js';

/** Which old versions garbage collection keeps (current and snapshot content is always kept). */
export interface Retention {
  /** Newest versions kept per file. */
  keepPerInode: number;
  /** Versions (and session history) younger than this are kept. */
  keepAgeNs: bigint;
  nowNs: bigint;
}

export interface ReaddirPage {
  /** Return entries whose name sorts after this one (exclusive). */
  after?: string;
  limit: number;
}

export interface MetaStore {
  /** Whole-subtree operations (snapshot, restore, listing). */
  readonly tree: TreeOps;
  /** Workspaces, sessions and session events. */
  readonly registry: Registry;
  /** API keys and ReBAC grants. */
  readonly access: AccessStore;
  /** Structural checks and repairs (nexus fsck). */
  readonly fsck: FsckOps;

  close(): Promise<void>;

  getInode(ino: number): Promise<Inode | undefined>;
  lookup(parent: number, name: string): Promise<Inode | undefined>;
  readdir(dir: number, page: ReaddirPage): Promise<DirEntry[]>;
  countEntries(dir: number): Promise<number>;
  /** The parent directory of a directory (directories have exactly one). */
  parentOf(dir: number): Promise<number | undefined>;

  pathOf(ino: number): Promise<string | undefined>;
  createNode(parent: number, name: string, init: NewInode): Promise<Inode>;
  link(ino: number, parent: number, name: string, timeNs: TimeNs): Promise<Inode>;
  /** Remove one entry; for `dir` the target must be an empty directory. Returns the unlinked inode. */
  unlink(parent: number, name: string, opts: { dir: boolean }, timeNs: TimeNs): Promise<Inode>;
  rename(srcParent: number, srcName: string, dstParent: number, dstName: string, timeNs: TimeNs): Promise<RenameResult>;
  setAttrs(ino: number, patch: AttrPatch): Promise<Inode>;
  /**
   * Switch a file's content to a new version in one step; returns the version id.
   * `durable`: the change is on disk when the promise resolves (fsync semantics).
   */
  commitContent(ino: number, content: CommitContent, opts?: { durable?: boolean }): Promise<number>;
  /** Make every committed change durable (checkpoint). */
  checkpoint(): Promise<void>;
  getVersion(vid: number): Promise<FileVersion | undefined>;
  /** Forget an inode that has no links and no open handles. */
  dropInode(ino: number): Promise<void>;
  /** Inodes with no links left (to drop after a crash). */
  orphans(): Promise<number[]>;

  getXattr(ino: number, name: string): Promise<Buffer | undefined>;
  setXattr(ino: number, name: string, value: Buffer, mode: 'any' | 'create' | 'replace', timeNs: TimeNs): Promise<void>;
  listXattrs(ino: number): Promise<string[]>;
  /** Whether any inode has an attribute of this name. */
  xattrNameInUse(name: string): Promise<boolean>;
  removeXattr(ino: number, name: string, timeNs: TimeNs): Promise<void>;

  stats(): Promise<StoreStats>;
  /** Delete the versions `retention` does not keep (or, dry, only count them). */
  pruneVersions(opts: Retention & { dryRun: boolean }): Promise<number>;
  /**
   * Every blob id referenced by any kept version (GC roots, fsck). With
   * `retention`: as if the versions it prunes were gone already (a dry run's
   * mark, which must not delete them).
   */
  referencedBlobs(retention?: Retention): Promise<Set<string>>;

  /** Highest small-write journal sequence number any commit included. */
  maxJournalSeq(): Promise<number>;

  /** Highest version id (0 when there is none). */
  maxVersionId(): Promise<number>;
  /** Versions newer than `vid`, oldest first (what a power cut may have cut short). */
  versionsAfter(vid: number): Promise<FileVersion[]>;
  /** Earlier versions of a file, newest first. */
  olderVersionIds(ino: number, before: number): Promise<number[]>;
  /**
   * After a power cut: each damaged version is replaced, wherever a file or a
   * snapshot names it, by its fallback (null: empty content), and deleted.
   */
  rollBackVersions(plan: readonly { vid: number; fallback: number | null }[]): Promise<void>;

  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
}

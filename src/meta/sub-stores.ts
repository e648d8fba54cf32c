/**
 * The parts of a MetaStore beyond the file tree: subtree operations,
 * the workspace/session registry, access records and structural checks.
 * Each method is atomic inside the store. A few are synchronous on purpose
 * (hot paths that cannot wait); a store that cannot answer them at once must
 * keep what they read in memory.
 */
import type { TimeNs } from '../util/time.js';
import type {
  BlobUsers, GrantRecord, GrantTuple, KeyRecord, RestoreResult, SessionEvent, SessionRecord, SnapshotRecord,
  TreeDiff, TreeEntry, TreeProblem, WorkspaceRecord,
} from './types.js';

/** What a new snapshot records; the store counts files and bytes. */
export type NewSnapshot = Omit<SnapshotRecord, 'fileCount' | 'totalBytes'>;

/** Snapshot (copy the tree's rows, never content), restore, and subtree listing. */
export interface TreeOps {
  /** The live subtree under `rootIno`, root included (relPath ''). */
  liveTree(rootIno: number): Promise<TreeEntry[]>;
  createSnapshot(rootIno: number, rec: NewSnapshot): Promise<SnapshotRecord>;
  getSnapshot(id: string): Promise<SnapshotRecord | undefined>;
  /** All snapshots, or those of one path, oldest first. */
  listSnapshots(path?: string): Promise<SnapshotRecord[]>;
  /** NOT_FOUND when there is no such snapshot. */
  deleteSnapshot(id: string): Promise<void>;
  snapshotEntries(id: string): Promise<TreeEntry[]>;
  snapshotEntry(id: string, relPath: string): Promise<TreeEntry | undefined>;
  /** Direct children of `relPath` in a snapshot. */
  snapshotChildren(id: string, relPath: string): Promise<TreeEntry[]>;
  /** Added, modified and deleted paths from `from` to `to` (content, type, target or mode changes count). */
  diff(from: TreeEntry[], to: TreeEntry[]): Promise<TreeDiff>;
  /**
   * Make the live tree under `rootIno` equal to the snapshot, all or nothing,
   * after recording the live tree as the pre-restore snapshot `pre`.
   */
  restore(rootIno: number, snapshotId: string, pre: NewSnapshot, timeNs: TimeNs): Promise<RestoreResult & { pre: SnapshotRecord }>;
}

/** Workspaces, sessions and session events. */
export interface Registry {
  /** ALREADY_EXISTS when the path is a workspace already. */
  createWorkspace(rec: WorkspaceRecord): Promise<WorkspaceRecord>;
  getWorkspace(path: string): Promise<WorkspaceRecord | undefined>;
  listWorkspaces(): Promise<WorkspaceRecord[]>;
  /** NOT_FOUND when the path is not a workspace. */
  deleteWorkspace(path: string): Promise<void>;
  createSession(rec: Omit<SessionRecord, 'endedAt' | 'fileCount'>): Promise<SessionRecord>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  /** All sessions, or one agent's, oldest first. */
  listSessions(agentId?: string): Promise<SessionRecord[]>;
  /** Synchronous: the mount asks on its hot path (cached there). */
  sessionActive(id: string): boolean;
  endSession(id: string, at: TimeNs): Promise<void>;
  /** Synchronous: the engine records events next to its own commits, without yielding. */
  recordEvent(e: Omit<SessionEvent, 'id'>): void;
  /** A session's events, oldest first. */
  sessionEvents(id: string): Promise<SessionEvent[]>;
}

/** API keys (stored hashed) and ReBAC grant tuples. */
export interface AccessStore {
  createKey(k: Omit<KeyRecord, 'revokedAt'>): Promise<void>;
  /** Synchronous: every authenticated request asks. */
  getKey(keyId: string): KeyRecord | undefined;
  listKeys(): Promise<KeyRecord[]>;
  /** NOT_FOUND when there is no such key. */
  revokeKey(keyId: string, at: TimeNs): Promise<void>;
  /** Adding a grant that exists already changes nothing. */
  addGrant(g: GrantTuple, at: TimeNs): Promise<void>;
  /** False when there was no such grant. */
  deleteGrant(g: GrantTuple): Promise<boolean>;
  /** Synchronous: checked on every operation of a restricted caller. */
  grantsOf(subjectType: string, subjectId: string): GrantRecord[];
  listGrants(filter?: { subjectType?: string; subjectId?: string; objectType?: string; objectId?: string }): Promise<GrantRecord[]>;
}

/** Structural checks of the metadata and their repairs (nexus fsck). */
export interface FsckOps {
  /** The database's own check of its storage, before the rows are trusted. */
  checkDatabase(): Promise<TreeProblem[]>;
  /** Dangling entries, wrong link counts, unreachable inodes, missing versions. */
  checkTree(): Promise<TreeProblem[]>;
  /** Inodes whose current content names one of these blobs. */
  inodesUsingBlobs(ids: Set<string>): Promise<number[]>;
  /** For each of these blobs: the inodes whose current content names it, and the snapshot entries that do. */
  blobUsers(ids: Set<string>): Promise<Map<string, BlobUsers>>;
  /** Files whose current content names a version row that is gone. */
  inodesWithMissingVersion(): Promise<number[]>;
  /** Fix link counts; drop dangling entries and version references. */
  repairCounts(): Promise<void>;
  /** The top-most inodes cut off from the root (a detached directory, not each file inside it). */
  orphans(): Promise<number[]>;
  /** Give an inode a name in a lost+found directory (one transaction). */
  linkInto(dirIno: number, ino: number, name: string): Promise<void>;
}

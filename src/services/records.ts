/**
 * The records users see (SDK return values, HTTP JSON, `--json` output): one
 * shape everywhere, snake_case like the wire format and the seed document.
 */
import type { SessionRecord, SnapshotRecord, TreeDiff, WorkspaceRecord } from '../meta/types.js';
import type { Stat } from '../engine/engine.js';
import { S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFIFO, S_IFSOCK } from '../meta/types.js';
import { nsToIso } from '../util/time.js';

export interface Workspace {
  path: string;
  metadata: Record<string, unknown>;
  created_at: string;
  created_by: string | null;
}

export interface Snapshot {
  snapshot_id: string;
  path: string;
  name: string | null;
  metadata: Record<string, unknown>;
  created_at: string;
  created_by: string | null;
  file_count: number;
  total_bytes: number;
  kind: 'manual' | 'pre-restore';
}

export interface Session {
  session_id: string;
  agent_id: string;
  metadata: Record<string, unknown>;
  created_at: string;
  created_by: string | null;
  ended_at: string | null;
  file_count: number;
}

export type FileType = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'other';

export interface FileInfo {
  path: string;
  name: string;
  type: FileType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  ino: number;
  mtime: string;
  ctime: string;
}

export interface Diff {
  added: string[];
  modified: string[];
  deleted: string[];
}

export interface RestoreReport {
  path: string;
  snapshot_id: string;
  /** Restore this to undo the restore. */
  pre_restore_snapshot_id: string;
  created: number;
  modified: number;
  removed: number;
}

export interface SessionChanges {
  created: string[];
  modified: string[];
  deleted: string[];
}

export interface RevertReport {
  session_id: string;
  reverted: string[];
  conflicts: string[];
  forced: boolean;
}

export const toWorkspace = (r: WorkspaceRecord): Workspace => ({
  path: r.path, metadata: r.metadata, created_at: nsToIso(r.createdAt), created_by: r.createdBy,
});

export const toSnapshot = (r: SnapshotRecord): Snapshot => ({
  snapshot_id: r.snapshotId, path: r.path, name: r.name, metadata: r.metadata, created_at: nsToIso(r.createdAt),
  created_by: r.createdBy, file_count: r.fileCount, total_bytes: r.totalBytes, kind: r.kind,
});

export const toSession = (r: SessionRecord): Session => ({
  session_id: r.sessionId, agent_id: r.agentId, metadata: r.metadata, created_at: nsToIso(r.createdAt),
  created_by: r.createdBy, ended_at: r.endedAt === null ? null : nsToIso(r.endedAt), file_count: r.fileCount,
});

export function fileType(mode: number): FileType {
  switch (mode & S_IFMT) {
    case S_IFREG: return 'file';
    case S_IFDIR: return 'directory';
    case S_IFLNK: return 'symlink';
    case S_IFIFO: return 'fifo';
    case S_IFSOCK: return 'socket';
    default: return 'other';
  }
}

export const toFileInfo = (path: string, s: Stat): FileInfo => ({
  path, name: path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1), type: fileType(s.mode), size: s.size,
  mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, nlink: s.nlink, ino: s.ino, mtime: nsToIso(s.mtimeNs), ctime: nsToIso(s.ctimeNs),
});

export const toDiff = (d: TreeDiff, prefix: string): Diff => {
  const abs = (rel: string) => (prefix === '/' ? '/' + rel : `${prefix}/${rel}`);
  return { added: d.added.map(abs), modified: d.modified.map(abs), deleted: d.deleted.map(abs) };
};

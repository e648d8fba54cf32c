/**
 * The operations the SDK, the CLI and the HTTP server share, as one
 * transport-neutral interface with JSON-able arguments and results. Two
 * implementations: LocalApi (services in this process) and HttpApi (a Nexus
 * server over TCP, or a mount daemon over its unix socket).
 */
import type {
  Diff, FileInfo, RestoreReport, RevertReport, Session, SessionChanges, Snapshot, Workspace,
} from '../services/records.js';
import type { ApiKeyInfo, CreatedKey, Grant } from '../services/access.js';
import type { FsckReport } from '../services/fsck.js';
import type { GcOptions, GcReport } from '../services/gc.js';

/** A ReBAC tuple: (subject_type, subject_id, relation, object_type, object_id). */
export interface GrantInput {
  subject_type: string;
  subject_id: string;
  relation: string;
  object_type: string;
  object_id: string;
}

export type GrantFilter = Partial<GrantInput>;

/** Per-call context: the agent session a write belongs to. */
export interface CallContext {
  sessionId?: string | null;
}

export interface Api {
  // files
  write(path: string, data: Uint8Array, opts: { parents?: boolean }, c: CallContext): Promise<FileInfo>;
  read(path: string, c: CallContext): Promise<Buffer>;
  mkdir(path: string, opts: { parents?: boolean }, c: CallContext): Promise<FileInfo>;
  list(path: string, opts: { recursive?: boolean; sessionId?: string }, c: CallContext): Promise<FileInfo[]>;
  stat(path: string, c: CallContext): Promise<FileInfo>;
  exists(path: string, c: CallContext): Promise<boolean>;
  delete(path: string, opts: { recursive?: boolean }, c: CallContext): Promise<void>;
  rename(from: string, to: string, c: CallContext): Promise<void>;

  // workspaces
  workspaceCreate(path: string, metadata: Record<string, unknown>, c: CallContext): Promise<Workspace>;
  workspaceList(c: CallContext): Promise<Workspace[]>;
  workspaceInfo(path: string, c: CallContext): Promise<Workspace>;
  workspaceDelete(path: string, c: CallContext): Promise<void>;

  // snapshots
  snapshotCreate(path: string, opts: { name?: string | null; metadata?: Record<string, unknown> }, c: CallContext): Promise<Snapshot>;
  snapshotList(path: string | undefined, c: CallContext): Promise<Snapshot[]>;
  snapshotGet(snapshotId: string, c: CallContext): Promise<Snapshot>;
  snapshotDelete(snapshotId: string, c: CallContext): Promise<void>;
  snapshotDiff(from: string, to: string | undefined, c: CallContext): Promise<Diff>;
  snapshotRestore(path: string, snapshotId: string, c: CallContext): Promise<RestoreReport>;

  // sessions
  sessionCreate(agentId: string, metadata: Record<string, unknown>, c: CallContext): Promise<Session>;
  sessionGet(sessionId: string, c: CallContext): Promise<Session>;
  sessionList(opts: { agentId?: string }, c: CallContext): Promise<Session[]>;
  sessionEnd(sessionId: string, c: CallContext): Promise<Session>;
  sessionFiles(sessionId: string, c: CallContext): Promise<FileInfo[]>;
  sessionChanges(sessionId: string, c: CallContext): Promise<SessionChanges>;
  sessionRevert(sessionId: string, opts: { force?: boolean }, c: CallContext): Promise<RevertReport>;

  // access: grants need owner on the object (or an admin key); keys need an admin key
  rebacCreate(grant: GrantInput, c: CallContext): Promise<Grant>;
  rebacList(filter: GrantFilter, c: CallContext): Promise<Grant[]>;
  rebacDelete(grant: GrantInput, c: CallContext): Promise<void>;
  keyCreate(opts: { subject: string; admin?: boolean; expiresIn?: string }, c: CallContext): Promise<CreatedKey>;
  keyList(c: CallContext): Promise<ApiKeyInfo[]>;
  keyRevoke(keyId: string, c: CallContext): Promise<void>;

  // maintenance (admin keys, or local callers)
  fsck(opts: { repair?: boolean }, c: CallContext): Promise<FsckReport>;
  gc(opts: GcOptions, c: CallContext): Promise<GcReport>;

  close(): Promise<void>;
}

/**
 * The SDK users hold: `nx.write/read/mkdir/list/...`, `nx.workspace.*`,
 * `nx.session.*`, the same over an embedded data directory or a server.
 * Every failure is a typed error (PermissionError, NotFoundError, ...).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { NexusError, typed } from '../errors.js';
import type {
  Diff, FileInfo, RestoreReport, RevertReport, Session, SessionChanges, Snapshot, Workspace,
} from '../services/records.js';
import type { Api, CallContext } from './api.js';
import type { ApiKeyInfo, CreatedKey, Grant } from '../services/access.js';
import type { FsckReport } from '../services/fsck.js';
import type { GcOptions, GcReport } from '../services/gc.js';

export interface WriteContext {
  /** Tag this operation with an agent session. */
  sessionId?: string;
}

export interface OpOptions {
  context?: WriteContext;
}

/** What `nx.session.context()` hands its callback. */
export interface SessionHandle extends Session {
  id: string;
}

/** Call, and turn any failure into its typed error class. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw typed(e);
  }
}

export class NexusClient {
  readonly workspace: WorkspaceClient;
  readonly session: SessionClient;
  readonly keys: KeyClient;
  readonly admin: AdminClient;
  /** The session of the enclosing nx.session.context(), if any. */
  readonly sessionScope = new AsyncLocalStorage<string>();

  constructor(
    readonly api: Api,
    private readonly defaultSessionId: string | null = null,
  ) {
    this.workspace = new WorkspaceClient(this);
    this.session = new SessionClient(this);
    this.keys = new KeyClient(this);
    this.admin = new AdminClient(this);
  }

  /** The call context: an explicit context wins, then session.context(), then the connection's default. */
  ctx(opts?: OpOptions): CallContext {
    return { sessionId: opts?.context?.sessionId ?? this.sessionScope.getStore() ?? this.defaultSessionId };
  }

  write(path: string, data: string | Uint8Array, opts: OpOptions & { parents?: boolean } = {}): Promise<FileInfo> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    return call(() => this.api.write(path, bytes, { parents: opts.parents }, this.ctx(opts)));
  }

  read(path: string, opts: OpOptions = {}): Promise<Buffer> {
    return call(() => this.api.read(path, this.ctx(opts)));
  }

  async readText(path: string, opts: OpOptions = {}): Promise<string> {
    return (await this.read(path, opts)).toString('utf8');
  }

  mkdir(path: string, opts: OpOptions & { parents?: boolean } = {}): Promise<FileInfo> {
    return call(() => this.api.mkdir(path, { parents: opts.parents }, this.ctx(opts)));
  }

  /** Entries under `path`; `filter.sessionId` keeps only files that session created or wrote. */
  list(path: string, opts: OpOptions & { recursive?: boolean; filter?: { sessionId?: string } } = {}): Promise<FileInfo[]> {
    return call(() => this.api.list(path, { recursive: opts.recursive, sessionId: opts.filter?.sessionId }, this.ctx(opts)));
  }

  stat(path: string, opts: OpOptions = {}): Promise<FileInfo> {
    return call(() => this.api.stat(path, this.ctx(opts)));
  }

  exists(path: string, opts: OpOptions = {}): Promise<boolean> {
    return call(() => this.api.exists(path, this.ctx(opts)));
  }

  delete(path: string, opts: OpOptions & { recursive?: boolean } = {}): Promise<void> {
    return call(() => this.api.delete(path, { recursive: opts.recursive }, this.ctx(opts)));
  }

  rename(from: string, to: string, opts: OpOptions = {}): Promise<void> {
    return call(() => this.api.rename(from, to, this.ctx(opts)));
  }

  /**
   * Grant `relation` (owner, editor or viewer) on an object to a subject:
   * `nx.rebacCreate('user', 'admin@acme-123.com', 'owner', 'file', '/tenants/acme-123')`.
   * A grant on a directory holds for everything under it. Needs owner on the object (or an admin key).
   */
  rebacCreate(subjectType: string, subjectId: string, relation: string, objectType: string, objectId: string): Promise<Grant> {
    return call(() => this.api.rebacCreate(
      { subject_type: subjectType, subject_id: subjectId, relation, object_type: objectType, object_id: objectId }, this.ctx()));
  }

  rebacList(filter: { subjectType?: string; subjectId?: string; objectType?: string; objectId?: string } = {}): Promise<Grant[]> {
    return call(() => this.api.rebacList(
      { subject_type: filter.subjectType, subject_id: filter.subjectId, object_type: filter.objectType, object_id: filter.objectId }, this.ctx()));
  }

  rebacDelete(subjectType: string, subjectId: string, relation: string, objectType: string, objectId: string): Promise<void> {
    return call(() => this.api.rebacDelete(
      { subject_type: subjectType, subject_id: subjectId, relation, object_type: objectType, object_id: objectId }, this.ctx()));
  }

  close(): Promise<void> {
    return call(() => this.api.close());
  }
}

/** API keys (admin only). The secret is in the result of create() and nowhere else. */
export class KeyClient {
  constructor(private readonly nx: NexusClient) {}

  create(opts: { subject: string; admin?: boolean; expiresIn?: string }): Promise<CreatedKey> {
    return call(() => this.nx.api.keyCreate(opts, this.nx.ctx()));
  }

  list(): Promise<ApiKeyInfo[]> {
    return call(() => this.nx.api.keyList(this.nx.ctx()));
  }

  revoke(keyId: string): Promise<void> {
    return call(() => this.nx.api.keyRevoke(keyId, this.nx.ctx()));
  }
}

export class WorkspaceClient {
  constructor(private readonly nx: NexusClient) {}

  create(path: string, opts: OpOptions & { metadata?: Record<string, unknown> } = {}): Promise<Workspace> {
    return call(() => this.nx.api.workspaceCreate(path, opts.metadata ?? {}, this.nx.ctx(opts)));
  }

  list(): Promise<Workspace[]> {
    return call(() => this.nx.api.workspaceList(this.nx.ctx()));
  }

  info(path: string): Promise<Workspace> {
    return call(() => this.nx.api.workspaceInfo(path, this.nx.ctx()));
  }

  /** Deletes the workspace and all its contents; its snapshots are kept. */
  delete(path: string): Promise<void> {
    return call(() => this.nx.api.workspaceDelete(path, this.nx.ctx()));
  }

  /** Snapshot a workspace (or any directory); returns the snapshot id. */
  async snapshot(path: string, opts: OpOptions & { name?: string; metadata?: Record<string, unknown> } = {}): Promise<string> {
    const s = await call(() => this.nx.api.snapshotCreate(path, { name: opts.name ?? null, metadata: opts.metadata ?? {} }, this.nx.ctx(opts)));
    return s.snapshot_id;
  }

  listSnapshots(path?: string): Promise<Snapshot[]> {
    return call(() => this.nx.api.snapshotList(path, this.nx.ctx()));
  }

  getSnapshot(snapshotId: string): Promise<Snapshot> {
    return call(() => this.nx.api.snapshotGet(snapshotId, this.nx.ctx()));
  }

  deleteSnapshot(snapshotId: string): Promise<void> {
    return call(() => this.nx.api.snapshotDelete(snapshotId, this.nx.ctx()));
  }

  /** Changes from a snapshot to another snapshot, or to the live tree. */
  diff(snapshotId: string, toSnapshotId?: string): Promise<Diff> {
    return call(() => this.nx.api.snapshotDiff(snapshotId, toSnapshotId, this.nx.ctx()));
  }

  /** Make `path` equal to the snapshot; the report names the pre-restore snapshot that undoes it. */
  restore(path: string, snapshotId: string): Promise<RestoreReport> {
    return call(() => this.nx.api.snapshotRestore(path, snapshotId, this.nx.ctx()));
  }
}

export class SessionClient {
  constructor(private readonly nx: NexusClient) {}

  create(opts: { agentId: string; metadata?: Record<string, unknown> }): Promise<Session> {
    return call(() => this.nx.api.sessionCreate(opts.agentId, opts.metadata ?? {}, this.nx.ctx()));
  }

  get(sessionId: string): Promise<Session> {
    return call(() => this.nx.api.sessionGet(sessionId, this.nx.ctx()));
  }

  list(opts: { agentId?: string } = {}): Promise<Session[]> {
    return call(() => this.nx.api.sessionList(opts, this.nx.ctx()));
  }

  end(sessionId: string): Promise<Session> {
    return call(() => this.nx.api.sessionEnd(sessionId, this.nx.ctx()));
  }

  /** Files that exist now and that the session created or wrote. */
  files(sessionId: string): Promise<FileInfo[]> {
    return call(() => this.nx.api.sessionFiles(sessionId, this.nx.ctx()));
  }

  /** What the session created, modified and deleted. */
  diff(sessionId: string): Promise<SessionChanges> {
    return call(() => this.nx.api.sessionChanges(sessionId, this.nx.ctx()));
  }

  /** Undo the session's changes; files changed since by others are refused (ConflictError) unless forced. */
  revert(sessionId: string, opts: { force?: boolean } = {}): Promise<RevertReport> {
    return call(() => this.nx.api.sessionRevert(sessionId, opts, this.nx.ctx()));
  }

  /** Run `fn` with every operation inside it tagged with the session. */
  async context<T>(sessionId: string, fn: (session: SessionHandle) => Promise<T>): Promise<T> {
    const s = await this.get(sessionId);
    if (s.ended_at !== null) throw typed(new NexusError('INVALID_ARGUMENT', `Session ${sessionId} has ended`));
    return this.nx.sessionScope.run(sessionId, () => fn({ ...s, id: s.session_id }));
  }
}

/** Maintenance: consistency check and garbage collection (admin keys or local callers). */
export class AdminClient {
  constructor(private readonly nx: NexusClient) {}

  fsck(opts: { repair?: boolean } = {}): Promise<FsckReport> {
    return call(() => this.nx.api.fsck(opts, this.nx.ctx()));
  }

  gc(opts: GcOptions = {}): Promise<GcReport> {
    return call(() => this.nx.api.gc(opts, this.nx.ctx()));
  }
}

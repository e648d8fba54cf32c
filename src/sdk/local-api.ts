/** Api over services in this process (embedded SDK, CLI without a daemon, the server's handlers). */
import type { OpContext } from '../engine/credentials.js';
import type { Services } from '../services/services.js';
import { fsck } from '../services/fsck.js';
import { collectGarbage, type GcOptions } from '../services/gc.js';
import type { Api, CallContext, GrantFilter, GrantInput } from './api.js';
import type { GrantTuple } from '../meta/types.js';

const tuple = (g: GrantInput): GrantTuple => ({
  subjectType: g.subject_type, subjectId: g.subject_id, relation: g.relation, objectType: g.object_type, objectId: g.object_id,
});

export class LocalApi implements Api {
  constructor(
    private readonly services: Services,
    /** Who is calling: identity for permission checks and the principal recorded on writes. */
    private readonly base: OpContext,
    private readonly onClose: () => Promise<void> = async () => {},
  ) {}

  /** The caller's context for one call; a session id must name an active session. */
  private async ctx(c: CallContext): Promise<OpContext> {
    if (!c.sessionId) return this.base;
    await this.services.sessions.requireActive(c.sessionId, this.base);
    return { ...this.base, sessionId: c.sessionId };
  }

  async write(path: string, data: Uint8Array, opts: { parents?: boolean }, c: CallContext) {
    return this.services.files.write(path, data, await this.ctx(c), opts);
  }
  async read(path: string, c: CallContext) {
    return this.services.files.read(path, await this.ctx(c));
  }
  async mkdir(path: string, opts: { parents?: boolean }, c: CallContext) {
    return this.services.files.mkdir(path, await this.ctx(c), opts);
  }
  async list(path: string, opts: { recursive?: boolean; sessionId?: string }, c: CallContext) {
    return this.services.files.list(path, await this.ctx(c), opts);
  }
  async stat(path: string, c: CallContext) {
    return this.services.files.stat(path, await this.ctx(c));
  }
  async exists(path: string, c: CallContext) {
    return this.services.files.exists(path, await this.ctx(c));
  }
  async delete(path: string, opts: { recursive?: boolean }, c: CallContext) {
    return this.services.files.delete(path, await this.ctx(c), opts);
  }
  async rename(from: string, to: string, c: CallContext) {
    return this.services.files.rename(from, to, await this.ctx(c));
  }

  async workspaceCreate(path: string, metadata: Record<string, unknown>, c: CallContext) {
    return this.services.workspaces.create(path, metadata, await this.ctx(c));
  }
  async workspaceList(c: CallContext) {
    return this.services.workspaces.list(await this.ctx(c));
  }
  async workspaceInfo(path: string, c: CallContext) {
    return this.services.workspaces.info(path, await this.ctx(c));
  }
  async workspaceDelete(path: string, c: CallContext) {
    return this.services.workspaces.delete(path, await this.ctx(c));
  }

  async snapshotCreate(path: string, opts: { name?: string | null; metadata?: Record<string, unknown> }, c: CallContext) {
    return this.services.snapshots.create(path, opts, await this.ctx(c));
  }
  async snapshotList(path: string | undefined, c: CallContext) {
    return this.services.snapshots.list(path, await this.ctx(c));
  }
  async snapshotGet(snapshotId: string, c: CallContext) {
    return this.services.snapshots.get(snapshotId, await this.ctx(c));
  }
  async snapshotDelete(snapshotId: string, c: CallContext) {
    return this.services.snapshots.delete(snapshotId, await this.ctx(c));
  }
  async snapshotDiff(from: string, to: string | undefined, c: CallContext) {
    return this.services.snapshots.diff(from, to, await this.ctx(c));
  }
  async snapshotRestore(path: string, snapshotId: string, c: CallContext) {
    return this.services.snapshots.restore(path, snapshotId, await this.ctx(c));
  }

  async sessionCreate(agentId: string, metadata: Record<string, unknown>, c: CallContext) {
    return this.services.sessions.create(agentId, metadata, await this.ctx(c));
  }
  async sessionGet(sessionId: string, c: CallContext) {
    return this.services.sessions.show(sessionId, await this.ctx({ ...c, sessionId: null }));
  }
  async sessionList(opts: { agentId?: string }, c: CallContext) {
    return this.services.sessions.list(opts, await this.ctx({ ...c, sessionId: null }));
  }
  async sessionEnd(sessionId: string, c: CallContext) {
    return this.services.sessions.end(sessionId, await this.ctx({ ...c, sessionId: null }));
  }
  async sessionFiles(sessionId: string, c: CallContext) {
    return this.services.sessions.writtenFiles(sessionId, await this.ctx(c));
  }
  async sessionChanges(sessionId: string, c: CallContext) {
    return this.services.sessions.changes(sessionId, await this.ctx({ ...c, sessionId: null }));
  }
  async sessionRevert(sessionId: string, opts: { force?: boolean }, c: CallContext) {
    return this.services.sessions.revert(sessionId, opts, await this.ctx({ ...c, sessionId: null }));
  }

  async rebacCreate(grant: GrantInput, c: CallContext) {
    return this.services.access.createGrant(tuple(grant), await this.ctx({ ...c, sessionId: null }));
  }
  async rebacList(f: GrantFilter, c: CallContext) {
    return this.services.access.listGrants(
      { subjectType: f.subject_type, subjectId: f.subject_id, objectType: f.object_type, objectId: f.object_id },
      await this.ctx({ ...c, sessionId: null }),
    );
  }
  async rebacDelete(grant: GrantInput, c: CallContext) {
    return this.services.access.deleteGrant(tuple(grant), await this.ctx({ ...c, sessionId: null }));
  }
  async keyCreate(opts: { subject: string; admin?: boolean; expiresIn?: string }, c: CallContext) {
    this.services.access.requireAdmin(await this.ctx({ ...c, sessionId: null }), 'creating API keys');
    return this.services.access.createKey(opts);
  }
  async keyList(c: CallContext) {
    this.services.access.requireAdmin(await this.ctx({ ...c, sessionId: null }), 'listing API keys');
    return this.services.access.listKeys();
  }
  async keyRevoke(keyId: string, c: CallContext) {
    this.services.access.requireAdmin(await this.ctx({ ...c, sessionId: null }), 'revoking API keys');
    return this.services.access.revokeKey(keyId);
  }

  async fsck(opts: { repair?: boolean }, c: CallContext) {
    this.services.access.requireAdmin(await this.ctx({ ...c, sessionId: null }), 'fsck');
    const e = this.services.engine;
    return fsck(this.services.meta, e.blobs, undefined, { repair: opts.repair, engine: e });
  }
  async gc(opts: GcOptions, c: CallContext) {
    this.services.access.requireAdmin(await this.ctx({ ...c, sessionId: null }), 'gc');
    const e = this.services.engine;
    return collectGarbage(e, this.services.meta, e.blobs, opts);
  }

  async close(): Promise<void> {
    await this.onClose();
  }
}

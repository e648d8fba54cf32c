/**
 * Agent sessions: every write made inside one is tagged with it, so a session
 * can list what it created, modified and deleted, and be reverted: its
 * changes undone, refusing (unless forced) files someone else changed since.
 */
import { constants as fsc } from 'node:fs';
import { NexusError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { OpContext } from '../engine/credentials.js';
import { dirname } from '../engine/names.js';
import type { MetaStore } from '../meta/meta-store.js';
import { isDir, type SessionEvent } from '../meta/types.js';
import { nowNs } from '../util/time.js';
import type { FileService } from './files.js';
import { newId, SESSION_ID_RE } from './ids.js';
import { toSession, type FileInfo, type RevertReport, type Session, type SessionChanges } from './records.js';
import { checkMetadata } from './workspaces.js';
import type { AccessService } from './access.js';

/** What one session did to one inode, folded from its events. */
interface InodeHistory {
  ino: number;
  created: boolean;
  /** Content before the session first wrote it (when it existed before). */
  originalVid: number | null | undefined;
  /** Content after the session last wrote it. */
  lastVid: number | null | undefined;
  deletedAt?: { path: string; vid: number | null };
  renames: { from: string; to: string }[];
  lastPath: string;
  dir: boolean;
}

export class SessionService {
  constructor(
    private readonly engine: Engine,
    private readonly meta: MetaStore,
    private readonly files: FileService,
    private readonly access: AccessService,
  ) {}

  /** A restricted caller sees and acts on the sessions it created; admins and local callers on all. */
  private mine(s: Session, ctx: OpContext): boolean {
    return !ctx.access || ctx.access.isAdmin || s.created_by === ctx.principal;
  }

  private async getFor(sessionId: string, ctx: OpContext): Promise<Session> {
    const s = await this.get(sessionId);
    if (!this.mine(s, ctx)) throw new NexusError('PERMISSION_DENIED', `Permission denied: session ${sessionId}`);
    return s;
  }

  async create(agentId: string, metadata: Record<string, unknown> = {}, ctx: OpContext): Promise<Session> {
    if (typeof agentId !== 'string' || agentId.trim() === '' || agentId.length > 255) {
      throw new NexusError('INVALID_ARGUMENT', 'agent_id must be a non-empty string of at most 255 characters');
    }
    checkMetadata(metadata);
    const rec = await this.meta.registry.createSession({ sessionId: newId('sess'), agentId, metadata, createdBy: ctx.principal, createdAt: nowNs() });
    return toSession(rec);
  }

  async get(sessionId: string): Promise<Session> {
    if (typeof sessionId !== 'string' || !SESSION_ID_RE.test(sessionId)) throw new NexusError('INVALID_ARGUMENT', `Not a session id: ${String(sessionId)}`);
    const rec = await this.meta.registry.getSession(sessionId);
    if (!rec) throw new NexusError('NOT_FOUND', `No such session: ${sessionId}`);
    return toSession(rec);
  }

  /** A session that exists, has not ended, and is the caller's: writes may be tagged with it. */
  async requireActive(sessionId: string, ctx: OpContext): Promise<Session> {
    const s = await this.getFor(sessionId, ctx);
    if (s.ended_at !== null) throw new NexusError('INVALID_ARGUMENT', `Session ${sessionId} has ended`);
    return s;
  }

  async end(sessionId: string, ctx: OpContext): Promise<Session> {
    await this.getFor(sessionId, ctx);
    await this.meta.registry.endSession(sessionId, nowNs());
    return this.get(sessionId);
  }

  async list(opts: { agentId?: string }, ctx: OpContext): Promise<Session[]> {
    return (await this.meta.registry.listSessions(opts.agentId)).map(toSession).filter((s) => this.mine(s, ctx));
  }

  async show(sessionId: string, ctx: OpContext): Promise<Session> {
    return this.getFor(sessionId, ctx);
  }

  private async histories(sessionId: string): Promise<Map<number, InodeHistory>> {
    await this.get(sessionId);
    const out = new Map<number, InodeHistory>();
    const events: SessionEvent[] = await this.meta.registry.sessionEvents(sessionId);
    for (const e of events) {
      let h = out.get(e.ino);
      if (!h) {
        h = { ino: e.ino, created: false, originalVid: undefined, lastVid: undefined, renames: [], lastPath: e.path, dir: false };
        out.set(e.ino, h);
      }
      switch (e.action) {
        case 'create':
          h.created = true;
          h.lastPath = e.path;
          break;
        case 'write':
          if (h.originalVid === undefined && !h.created) h.originalVid = e.vidBefore;
          h.lastVid = e.vidAfter;
          h.lastPath = e.path;
          break;
        case 'delete':
          h.deletedAt = { path: e.path, vid: e.vidBefore };
          h.lastPath = e.path;
          break;
        case 'rename':
          h.renames.push({ from: e.path, to: e.path2! });
          h.lastPath = e.path2!;
          break;
      }
    }
    for (const h of out.values()) {
      const node = await this.meta.getInode(h.ino);
      h.dir = node ? isDir(node.mode) : h.lastVid === undefined && h.originalVid === undefined && !h.deletedAt?.vid;
    }
    return out;
  }

  /** Paths the session created, modified and deleted (current paths where the file still exists). */
  async changes(sessionId: string, ctx: OpContext): Promise<SessionChanges> {
    await this.getFor(sessionId, ctx);
    const out: SessionChanges = { created: [], modified: [], deleted: [] };
    for (const h of (await this.histories(sessionId)).values()) {
      const path = (await this.meta.pathOf(h.ino)) ?? h.lastPath;
      if (h.created && !h.deletedAt) out.created.push(path);
      else if (h.deletedAt && !h.created) out.deleted.push(h.deletedAt.path);
      else if (!h.created && (h.lastVid !== undefined || h.renames.length)) out.modified.push(path);
    }
    for (const l of [out.created, out.modified, out.deleted]) l.sort();
    return out;
  }

  /** Files that exist now and that the session created or wrote. */
  async writtenFiles(sessionId: string, ctx: OpContext): Promise<FileInfo[]> {
    await this.getFor(sessionId, ctx);
    const out: FileInfo[] = [];
    for (const h of (await this.histories(sessionId)).values()) {
      if (h.dir || (!h.created && h.lastVid === undefined)) continue;
      const path = await this.meta.pathOf(h.ino);
      if (path) out.push(await this.files.stat(path, ctx));
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : 1));
  }

  /** Do two versions hold the same bytes (null: an empty file)? Compared by chunk ids, no reading. */
  private async sameContent(a: number | null, b: number | null): Promise<boolean> {
    if (a === b) return true;
    const [va, vb] = await Promise.all([a === null ? undefined : this.meta.getVersion(a), b === null ? undefined : this.meta.getVersion(b)]);
    const sizeA = va?.size ?? 0;
    const sizeB = vb?.size ?? 0;
    if (sizeA !== sizeB) return false;
    if (sizeA === 0) return true;
    if (!va || !vb) return false;
    const key = (v: typeof va) => JSON.stringify(v.chunks.map((c) => [c.id, c.id === null ? 0 : c.len]));
    return key(va) === key(vb);
  }

  /** Does `path` hold what a deleted entry held (a directory, or a file with version `vid`'s content)? */
  private async holds(path: string, dir: boolean, vid: number | null | undefined, ctx: OpContext): Promise<boolean> {
    const node = await this.engine.resolve(path, ctx).catch(() => undefined);
    if (!node) return false;
    if (dir) return isDir(node.mode);
    return !isDir(node.mode) && (await this.sameContent(node.vid, vid ?? null));
  }

  async revert(sessionId: string, opts: { force?: boolean }, ctx: OpContext): Promise<RevertReport> {
    await this.getFor(sessionId, ctx);
    const hs = [...(await this.histories(sessionId)).values()];
    const conflicts: string[] = [];
    const plan: { path: string; apply: () => Promise<void> }[] = [];
    const revertCtx: OpContext = { ...ctx, sessionId: null };

    for (const h of hs) {
      const node = await this.meta.getInode(h.ino);
      const alive = node !== undefined && node.nlink > 0;
      const path = alive ? await this.meta.pathOf(h.ino) : undefined;
      const changedSince = alive && !h.dir && h.lastVid !== undefined && node!.vid !== h.lastVid;
      if (h.created) {
        if (!alive || !path) continue; // created and deleted inside the session: nothing left
        if (changedSince) conflicts.push(path);
        plan.push({ path, apply: async () => {
          if (h.dir) await this.files.delete(path, revertCtx, { recursive: false });
          else await this.engine.unlink(path, revertCtx);
        } });
        continue;
      }
      if (h.deletedAt) {
        const target = h.deletedAt.path;
        if (await this.files.exists(target, revertCtx)) {
          // Brought back already (by an earlier revert that was interrupted): nothing to do.
          if (!(await this.holds(target, h.dir, h.deletedAt.vid, revertCtx))) conflicts.push(target);
          continue;
        }
        const vid = h.deletedAt.vid;
        plan.push({ path: target, apply: async () => {
          await this.engine.mkdir(dirname(target), 0o777, revertCtx, { parents: true });
          if (h.dir) {
            await this.engine.mkdir(target, 0o777, revertCtx, { parents: true });
            return;
          }
          const { fh } = await this.engine.create(target, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o666, revertCtx);
          const created = await this.engine.fgetattr(fh);
          await this.engine.release(fh);
          await this.engine.restoreContent(created.ino, vid, revertCtx);
        } });
        continue;
      }
      if (!alive || !path) continue;
      const original = h.originalVid ?? null;
      // Content already back to the original (an interrupted revert got this far): no conflict, no step.
      const alreadyReverted = changedSince && (await this.sameContent(node!.vid, original));
      if (changedSince && !alreadyReverted) conflicts.push(path);
      if (h.lastVid !== undefined && !alreadyReverted) {
        plan.push({ path, apply: () => this.engine.restoreContent(h.ino, original, revertCtx) });
      }
      for (const r of [...h.renames].reverse()) {
        plan.push({ path: r.to, apply: async () => {
          if (!(await this.files.exists(r.from, revertCtx))) await this.engine.rename(r.to, r.from, revertCtx);
        } });
      }
    }
    if (conflicts.length && !opts.force) {
      throw new NexusError('CONFLICT', `Session ${sessionId} cannot be reverted: ${conflicts.length} file(s) changed since by someone else (use --force): ${conflicts.slice(0, 10).join(', ')}`, { conflicts });
    }
    // Every path the revert touches needs editor, checked before anything changes.
    for (const step of plan) this.access.require(ctx, step.path, 'editor');
    // Deepest paths first, so created files go before the directories they are in.
    plan.sort((a, b) => b.path.split('/').length - a.path.split('/').length);
    const reverted: string[] = [];
    for (const step of plan) {
      await step.apply();
      reverted.push(step.path);
    }
    return { session_id: sessionId, reverted: reverted.sort(), conflicts: conflicts.sort(), forced: !!opts.force && conflicts.length > 0 };
  }
}

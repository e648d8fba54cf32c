/**
 * Snapshots of any directory: metadata only (no blob is copied), consistent
 * (pending writes are committed first, the tree is copied in one transaction),
 * restorable (after an automatic pre-restore snapshot, so every restore can
 * be undone) and comparable (diff against another snapshot or the live tree).
 */
import { NexusError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { OpContext } from '../engine/credentials.js';
import { isWithin, normalizePath } from '../engine/names.js';
import type { MetaStore } from '../meta/meta-store.js';
import { isDir } from '../meta/types.js';
import { nowNs } from '../util/time.js';
import type { FileService } from './files.js';
import type { AccessService } from './access.js';
import { newId, SNAPSHOT_ID_RE } from './ids.js';
import { toDiff, toSnapshot, type Diff, type RestoreReport, type Snapshot } from './records.js';
import { checkMetadata } from './workspaces.js';
import { RESERVED_ROOT } from './reserved.js';

export class SnapshotService {
  constructor(
    private readonly engine: Engine,
    private readonly meta: MetaStore,
    private readonly files: FileService,
    private readonly access: AccessService,
  ) {}

  private async dirIno(path: string, ctx: OpContext): Promise<number> {
    const node = await this.engine.resolve(path, ctx, true);
    if (!isDir(node.mode)) throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${path}`);
    return node.ino;
  }

  async create(path: string, opts: { name?: string | null; metadata?: Record<string, unknown> }, ctx: OpContext): Promise<Snapshot> {
    const p = await this.files.guard(path, ctx, 'editor');
    if (isWithin(p, RESERVED_ROOT)) throw new NexusError('INVALID_ARGUMENT', `${RESERVED_ROOT} is not part of any snapshot`);
    const metadata = opts.metadata ?? {};
    checkMetadata(metadata);
    if (opts.name !== undefined && opts.name !== null && (typeof opts.name !== 'string' || opts.name.length > 255)) {
      throw new NexusError('INVALID_ARGUMENT', 'Snapshot names are strings of at most 255 characters');
    }
    const ino = await this.dirIno(p, ctx);
    await this.engine.flushUnder(p);
    const rec = await this.meta.tree.createSnapshot(ino, {
      snapshotId: newId('snap'), path: p, name: opts.name ?? null, metadata, createdAt: nowNs(), createdBy: ctx.principal, kind: 'manual',
    });
    return toSnapshot(rec);
  }

  async get(snapshotId: string, ctx: OpContext): Promise<Snapshot> {
    const rec = await this.record(snapshotId);
    this.access.require(ctx, rec.path, 'viewer');
    return toSnapshot(rec);
  }

  private async record(snapshotId: string) {
    if (typeof snapshotId !== 'string' || !SNAPSHOT_ID_RE.test(snapshotId)) throw new NexusError('INVALID_ARGUMENT', `Not a snapshot id: ${String(snapshotId)}`);
    const rec = await this.meta.tree.getSnapshot(snapshotId);
    if (!rec) throw new NexusError('NOT_FOUND', `No such snapshot: ${snapshotId}`);
    return rec;
  }

  /** Snapshots of `path` (or all), among those the caller may see. */
  async list(path: string | undefined, ctx: OpContext): Promise<Snapshot[]> {
    const all = await this.meta.tree.listSnapshots(path === undefined ? undefined : normalizePath(path));
    return all.filter((s) => this.access.relationOn2(ctx, s.path) !== null).map(toSnapshot);
  }

  async delete(snapshotId: string, ctx: OpContext): Promise<void> {
    const rec = await this.record(snapshotId);
    this.access.require(ctx, rec.path, 'owner');
    await this.meta.tree.deleteSnapshot(snapshotId);
  }

  /** Changes from snapshot `from` to snapshot `to`, or to the live tree when `to` is omitted. */
  async diff(from: string, to: string | undefined, ctx: OpContext): Promise<Diff> {
    const a = await this.record(from);
    this.access.require(ctx, a.path, 'viewer');
    const before = await this.meta.tree.snapshotEntries(a.snapshotId);
    let after;
    if (to !== undefined) {
      const b = await this.record(to);
      this.access.require(ctx, b.path, 'viewer');
      after = await this.meta.tree.snapshotEntries(b.snapshotId);
    } else {
      await this.engine.flushUnder(a.path);
      const live = (await this.files.exists(a.path, ctx)) ? await this.dirIno(a.path, ctx) : undefined;
      after = live === undefined ? [] : await this.meta.tree.liveTree(live);
    }
    return toDiff(await this.meta.tree.diff(before, after), a.path);
  }

  /** Make the live tree at `path` equal to the snapshot; returns the pre-restore snapshot for undo. */
  async restore(path: string, snapshotId: string, ctx: OpContext): Promise<RestoreReport> {
    const p = await this.files.guard(path, ctx, 'editor');
    const snap = await this.record(snapshotId);
    if (snap.path !== p) throw new NexusError('INVALID_ARGUMENT', `Snapshot ${snapshotId} is of ${snap.path}, not ${p}`);
    if (!(await this.files.exists(p, ctx))) await this.files.mkdir(p, ctx, { parents: true });
    const ino = await this.dirIno(p, ctx);
    await this.engine.flushUnder(p, { evenOpenForWriting: true });
    // The pre-restore snapshot and the restore are one transaction.
    const r = await this.meta.tree.restore(ino, snapshotId, {
      snapshotId: newId('snap'), path: p, name: `pre-restore-${snapshotId}`, metadata: { restored_snapshot_id: snapshotId },
      createdAt: nowNs(), createdBy: ctx.principal, kind: 'pre-restore',
    }, nowNs());
    await this.engine.afterRestore(r);
    const pre = toSnapshot(r.pre);
    return { path: p, snapshot_id: snapshotId, pre_restore_snapshot_id: pre.snapshot_id, created: r.created, modified: r.modified, removed: r.removed };
  }
}

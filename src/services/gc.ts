/**
 * Garbage collection: mark and sweep of blobs no kept version references.
 * Roots are every version still in the store: current content, snapshots,
 * session history within the retention age, the newest N versions of each
 * file. Safe while the mount and server are busy: commits hold the engine's
 * commit gate shared, the sweep deletes in short exclusive batches, and any
 * blob a commit referenced since the run began (recorded by the engine for
 * each running collection) is spared.
 */
import type { Engine } from '../engine/engine.js';
import type { BlobStore, BlobId } from '../blobs/blob-store.js';
import type { MetaStore, Retention } from '../meta/meta-store.js';
import { NexusError } from '../errors.js';
import { nowNs } from '../util/time.js';
import { parseDuration } from './access.js';

export interface GcOptions {
  dryRun?: boolean;
  /** Newest versions kept per file (default 10). */
  keepVersions?: number;
  /** Versions (and session history) younger than this are kept (default '7d'). */
  keepAge?: string;
}

export interface GcReport {
  dry_run: boolean;
  pruned_versions: number;
  referenced_blobs: number;
  stored_blobs: number;
  deleted_blobs: number;
  freed_bytes: number;
}

const BATCH = 256;

/**
 * Runs may overlap (two `nexus gc` through one daemon, or one while a full
 * disk reclaims): each has its own record of what commits referenced since
 * its mark, so none waits for another, and a blob one run swept is neither
 * swept nor counted again by the other.
 */
export async function collectGarbage(
  engine: Engine, meta: MetaStore, blobs: BlobStore, opts: GcOptions = {}, onProgress?: (done: number, total: number) => void,
): Promise<GcReport> {
  const dryRun = !!opts.dryRun;
  const keepVersions = opts.keepVersions ?? 10;
  if (!Number.isSafeInteger(keepVersions) || keepVersions < 0) {
    throw new NexusError('INVALID_ARGUMENT', `--keep-versions takes a whole number, 0 or more (got ${String(opts.keepVersions)})`);
  }
  const keepAgeNs = BigInt(parseDuration(opts.keepAge ?? '7d')) * 1_000_000n;
  // Waits for commits in progress, so every later commit is recorded.
  const watch = await engine.commitGate.runExclusive(async () => engine.gcBegin());
  try {
    const retention: Retention = { keepPerInode: keepVersions, keepAgeNs, nowNs: nowNs() };
    const pruned = await meta.pruneVersions({ ...retention, dryRun });
    // A dry run prunes nothing, so its mark leaves out what the real run would have pruned.
    const referenced = await meta.referencedBlobs(dryRun ? retention : undefined);
    const candidates: BlobId[] = [];
    let stored = 0;
    for await (const id of blobs.list()) {
      stored++;
      if (!referenced.has(id)) candidates.push(id);
    }
    let deleted = 0;
    let freed = 0;
    const sweep = async (batch: BlobId[]): Promise<void> => {
      for (const id of batch) {
        if (watch.has(id)) continue;
        const size = await blobs.size(id);
        if (size === undefined) continue; // another run swept it first
        if (!dryRun) {
          await blobs.delete(id);
          engine.forgetBlob(id);
        }
        deleted++;
        freed += size;
      }
    };
    for (let i = 0; i < candidates.length; i += BATCH) {
      const batch = candidates.slice(i, i + BATCH);
      // Deleting is exclusive of commits (a dedup hit must not lose its blob); a dry run only looks.
      if (dryRun) await sweep(batch);
      else await engine.commitGate.runExclusive(() => sweep(batch));
      onProgress?.(Math.min(i + BATCH, candidates.length), candidates.length);
    }
    return { dry_run: dryRun, pruned_versions: pruned, referenced_blobs: referenced.size, stored_blobs: stored, deleted_blobs: deleted, freed_bytes: freed };
  } finally {
    engine.gcEnd(watch);
  }
}

/**
 * The collector a full disk runs after each delete (default retention). Calls
 * coalesce: at most one run at a time, and every call made during a run
 * shares the one next run, which starts after it (so it sees the delete),
 * instead of a full mark and sweep each.
 */
export function coalescedCollector(engine: Engine, meta: MetaStore, blobs: BlobStore): () => Promise<GcReport> {
  let current: Promise<GcReport> | undefined;
  let next: Promise<GcReport> | undefined;
  const start = (): Promise<GcReport> => {
    const run = collectGarbage(engine, meta, blobs).finally(() => {
      if (current === run) current = undefined;
    });
    current = run;
    return run;
  };
  return () => {
    if (!current) return start();
    next ??= current.catch(() => undefined).then(() => {
      next = undefined;
      return start();
    });
    return next;
  };
}

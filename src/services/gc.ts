/**
 * Garbage collection: mark and sweep of blobs no kept version references.
 * Roots are every version still in the store: current content, snapshots,
 * session history within the retention age, the newest N versions of each
 * file. Safe while the mount and server are busy: commits hold the engine's
 * commit gate shared, the sweep deletes in short exclusive batches, and any
 * blob a commit referenced since the mark began is spared.
 */
import type { Engine } from '../engine/engine.js';
import type { BlobStore, BlobId } from '../blobs/blob-store.js';
import type { MetaStore } from '../meta/meta-store.js';
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

/** One collection at a time per engine: a second run waits for the first. */
const running = new WeakMap<Engine, Promise<unknown>>();

export async function collectGarbage(
  engine: Engine, meta: MetaStore, blobs: BlobStore, opts: GcOptions = {}, onProgress?: (done: number, total: number) => void,
): Promise<GcReport> {
  for (let prev = running.get(engine); prev; prev = running.get(engine)) await prev.catch(() => {});
  const run = collectGarbageNow(engine, meta, blobs, opts, onProgress);
  running.set(engine, run);
  try {
    return await run;
  } finally {
    if (running.get(engine) === run) running.delete(engine);
  }
}

async function collectGarbageNow(
  engine: Engine, meta: MetaStore, blobs: BlobStore, opts: GcOptions, onProgress?: (done: number, total: number) => void,
): Promise<GcReport> {
  const dryRun = !!opts.dryRun;
  const keepVersions = opts.keepVersions ?? 10;
  const keepAgeNs = BigInt(parseDuration(opts.keepAge ?? '7d')) * 1_000_000n;
  // Waits for commits in progress, so every later commit is recorded.
  await engine.commitGate.runExclusive(async () => engine.gcBegin());
  try {
    const pruned = await meta.pruneVersions({ keepPerInode: keepVersions, keepAgeNs, nowNs: nowNs(), dryRun });
    const referenced = await meta.referencedBlobs();
    const candidates: BlobId[] = [];
    let stored = 0;
    for await (const id of blobs.list()) {
      stored++;
      if (!referenced.has(id)) candidates.push(id);
    }
    let deleted = 0;
    let freed = 0;
    for (let i = 0; i < candidates.length; i += BATCH) {
      const batch = candidates.slice(i, i + BATCH);
      await engine.commitGate.runExclusive(async () => {
        for (const id of batch) {
          if (engine.gcProtected(id)) continue;
          const size = (await blobs.size(id)) ?? 0;
          if (!dryRun) {
            await blobs.delete(id);
            engine.forgetBlob(id);
          }
          deleted++;
          freed += size;
        }
      });
      onProgress?.(Math.min(i + BATCH, candidates.length), candidates.length);
    }
    return { dry_run: dryRun, pruned_versions: pruned, referenced_blobs: referenced.size, stored_blobs: stored, deleted_blobs: deleted, freed_bytes: freed };
  } finally {
    engine.gcEnd();
  }
}

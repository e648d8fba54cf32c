/**
 * `nexus fsck`: every referenced blob exists and matches its hash; the tree is
 * a tree (no dangling entries, no unreachable inodes, right link counts);
 * snapshots and files name versions that exist. `repair` fixes counts and
 * dangling rows, and moves what cannot be fixed (unreachable inodes, files
 * whose content is damaged) into /lost+found rather than deleting it.
 */
import type { Engine } from '../engine/engine.js';
import { ROOT_CONTEXT } from '../engine/credentials.js';
import type { BlobStore } from '../blobs/blob-store.js';
import type { MetaStore } from '../meta/meta-store.js';
import type { TreeProblem } from '../meta/sqlite-fsck.js';

export interface FsckReport {
  referencedBlobs: number;
  storedBlobs: number;
  missing: string[];
  corrupt: string[];
  /** Stored but referenced by nothing: harmless, reclaimed by gc. */
  unreferenced: number;
  problems: TreeProblem[];
  /** What --repair did. */
  repaired: string[];
  ok: boolean;
}

export const LOST_FOUND = '/lost+found';

export async function fsck(
  meta: MetaStore, blobs: BlobStore, onProgress?: (done: number, total: number) => void,
  opts: { repair?: boolean; engine?: Engine } = {},
): Promise<FsckReport> {
  const check = async () => {
    const referenced = await meta.referencedBlobs();
    const missing: string[] = [];
    const corrupt: string[] = [];
    let done = 0;
    for (const id of referenced) {
      const r = await blobs.verify(id);
      if (r === 'missing') missing.push(id);
      else if (r === 'corrupt') corrupt.push(id);
      onProgress?.(++done, referenced.size);
    }
    let stored = 0;
    let unreferenced = 0;
    for await (const id of blobs.list()) {
      stored++;
      if (!referenced.has(id)) unreferenced++;
    }
    const problems = meta.fsck.checkTree();
    return { referencedBlobs: referenced.size, storedBlobs: stored, missing, corrupt, unreferenced, problems };
  };

  const first = await check();
  const repaired: string[] = [];
  if (opts.repair && (first.missing.length || first.corrupt.length || first.problems.length)) {
    if (!opts.engine) throw new Error('fsck --repair needs the engine');
    const engine = opts.engine;
    // What is cut off from the root, found before counts change (a recount can zero a detached file's nlink).
    const orphans = meta.fsck.orphans();
    meta.fsck.repairCounts();
    repaired.push('link counts recomputed; dangling entries and version references dropped');
    const lostFound = await engine.mkdir(LOST_FOUND, 0o700, ROOT_CONTEXT, { parents: true });
    for (const ino of orphans) {
      if (ino === lostFound.ino) continue;
      meta.fsck.linkInto(lostFound.ino, ino, `#${ino}`);
      repaired.push(`unreachable inode ${ino} -> ${LOST_FOUND}/#${ino}`);
    }
    const damaged = meta.fsck.inodesUsingBlobs(new Set([...first.missing, ...first.corrupt]));
    for (const ino of damaged) {
      const was = (await meta.pathOf(ino)) ?? `inode ${ino}`;
      meta.fsck.linkInto(lostFound.ino, ino, `#${ino}-damaged`);
      repaired.push(`${was} has missing or corrupt content -> ${LOST_FOUND}/#${ino}-damaged`);
    }
    meta.fsck.repairCounts();
  }
  const final = repaired.length ? await check() : first;
  // Damage that was moved aside is still damage in the blobs' sense, but the tree is sound.
  const ok = final.problems.length === 0 && (repaired.length ? true : final.missing.length === 0 && final.corrupt.length === 0);
  return { ...final, repaired, ok };
}

/**
 * Power-cut safety for metadata that reached the disk before its blobs.
 *
 * Blobs are made durable in batches (one syncfs per second) before the engine
 * checkpoints the WAL; but the kernel may write WAL pages back on its own at
 * any moment, so after a power cut the database can name versions whose
 * blobs never reached the disk. The engine records, after every completed
 * blob sync, the highest version id whose blobs were durable at that moment
 * (setting `synced_vid`). At the next start, every version above that mark is
 * verified (each blob exists and matches its hash); a damaged one is rolled
 * back, wherever a file or a snapshot names it, to the newest intact earlier
 * version of the same file (or to empty content). After a clean close or a
 * kill -9 nothing is damaged and this only re-hashes at most the last second
 * of writes.
 */
import type { Logger } from '../util/logger.js';
import type { BlobId, BlobStore } from '../blobs/blob-store.js';
import type { MetaStore } from '../meta/meta-store.js';

export const SYNCED_VID_KEY = 'synced_vid';

export interface UnsyncedCheckResult {
  verifiedVersions: number;
  /** Files whose content was rolled back (their pending journal/staging changes no longer apply). */
  rolledBackInodes: Set<number>;
}

export async function checkUnsyncedVersions(meta: MetaStore, blobs: BlobStore, log: Logger): Promise<UnsyncedCheckResult> {
  const mark = await meta.getSetting(SYNCED_VID_KEY);
  const rolledBackInodes = new Set<number>();
  if (mark === undefined) {
    // A new data directory, or one from before the mark existed: start counting now.
    await meta.setSetting(SYNCED_VID_KEY, String(await meta.maxVersionId()));
    return { verifiedVersions: 0, rolledBackInodes };
  }
  const versions = await meta.versionsAfter(Number(mark));
  if (versions.length === 0) return { verifiedVersions: 0, rolledBackInodes };

  const blobState = new Map<BlobId, 'ok' | 'missing' | 'corrupt'>();
  const damaged = new Set<number>();
  for (const v of versions) {
    for (const c of v.chunks) {
      if (!c.id) continue;
      let state = blobState.get(c.id);
      if (!state) blobState.set(c.id, (state = await blobs.verify(c.id)));
      if (state !== 'ok') damaged.add(v.vid);
    }
  }
  if (damaged.size > 0) {
    const plan: { vid: number; fallback: number | null }[] = [];
    for (const v of versions) {
      if (!damaged.has(v.vid)) continue;
      const older = await meta.olderVersionIds(v.ino, v.vid);
      plan.push({ vid: v.vid, fallback: older.find((o) => !damaged.has(o)) ?? null });
      rolledBackInodes.add(v.ino);
    }
    // Newest first, so a fallback is never a version this plan deletes later.
    await meta.rollBackVersions(plan.reverse());
    log.warn({ damagedVersions: damaged.size, files: rolledBackInodes.size }, 'after an unclean shutdown, versions whose blobs never reached the disk were rolled back');
  }
  // What remains was verified; make it durable before moving the mark.
  await blobs.syncAll();
  await meta.setSetting(SYNCED_VID_KEY, String(await meta.maxVersionId()));
  return { verifiedVersions: versions.length, rolledBackInodes };
}

/** Consistency check of a data directory: every blob a version references exists and matches its hash. */
import type { BlobStore } from '../blobs/blob-store.js';
import type { MetaStore } from '../meta/meta-store.js';

export interface FsckReport {
  referencedBlobs: number;
  storedBlobs: number;
  missing: string[];
  corrupt: string[];
  /** Stored but referenced by nothing: harmless, reclaimed by gc. */
  unreferenced: number;
  ok: boolean;
}

export async function fsck(meta: MetaStore, blobs: BlobStore, onProgress?: (done: number, total: number) => void): Promise<FsckReport> {
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
  return { referencedBlobs: referenced.size, storedBlobs: stored, missing, corrupt, unreferenced, ok: missing.length === 0 && corrupt.length === 0 };
}

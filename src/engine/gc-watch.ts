import type { BlobId } from '../blobs/blob-store.js';

/**
 * What one garbage collection must spare beyond its mark: every blob id a
 * commit referenced since the collection began. Each run has its own (runs
 * may overlap), so one run ending never stops another's record.
 */
export class GcWatch {
  private readonly ids = new Set<BlobId>();

  note(id: BlobId): void {
    this.ids.add(id);
  }

  has(id: BlobId): boolean {
    return this.ids.has(id);
  }
}

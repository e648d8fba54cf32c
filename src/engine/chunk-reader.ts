/**
 * Reads committed chunks. The first read of a blob in this process fetches it
 * whole and checks its hash (a torn or corrupt blob is never served); later
 * reads of that blob are range reads or come from a small LRU of whole chunks.
 */
import type { BlobId, BlobStore } from '../blobs/blob-store.js';

const SMALL_BLOB = 256 * 1024;

export class ChunkReader {
  private readonly cache = new Map<BlobId, Buffer>();
  private cachedBytes = 0;
  private readonly verified = new Set<BlobId>();

  constructor(
    private readonly blobs: BlobStore,
    private readonly cacheLimit = 64 * 1024 * 1024,
  ) {}

  /** A blob this process wrote itself from bytes it hashed: no need to re-check it. */
  markVerified(id: BlobId): void {
    if (this.verified.size > 1_000_000) this.verified.clear();
    this.verified.add(id);
  }

  /** Copy `[offset, offset+length)` of a blob into `out` at `outOffset`; returns bytes copied. */
  async readInto(id: BlobId, offset: number, length: number, out: Buffer, outOffset: number, blobLen?: number): Promise<number> {
    const hit = this.cache.get(id);
    if (hit) {
      this.cache.delete(id);
      this.cache.set(id, hit); // LRU: move to the back
      return hit.copy(out, outOffset, offset, offset + length);
    }
    if (this.verified.has(id)) {
      // Small blobs (whole small files) are kept whole: many readers of many
      // small files would otherwise open, read and close one each time.
      if (blobLen !== undefined && blobLen <= SMALL_BLOB && !(offset === 0 && length >= blobLen)) {
        const whole = await this.blobs.get(id, { offset: 0, length: blobLen });
        this.remember(id, whole);
        return whole.copy(out, outOffset, offset, offset + length);
      }
      if (blobLen !== undefined && blobLen <= SMALL_BLOB) {
        const n = await this.blobs.readInto(id, offset, out, outOffset, length);
        this.remember(id, Buffer.from(out.subarray(outOffset, outOffset + n)));
        return n;
      }
      return this.blobs.readInto(id, offset, out, outOffset, length);
    }
    const whole = await this.blobs.get(id); // verified against its id
    this.markVerified(id);
    this.remember(id, whole);
    return whole.copy(out, outOffset, offset, offset + length);
  }

  async read(id: BlobId, offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    const n = await this.readInto(id, offset, length, out, 0);
    return out.subarray(0, n);
  }

  private remember(id: BlobId, data: Buffer): void {
    if (data.length > this.cacheLimit / 4) return;
    this.cache.set(id, data);
    this.cachedBytes += data.length;
    for (const [k, v] of this.cache) {
      if (this.cachedBytes <= this.cacheLimit) break;
      this.cache.delete(k);
      this.cachedBytes -= v.length;
    }
  }

  forget(id: BlobId): void {
    const v = this.cache.get(id);
    if (v) {
      this.cache.delete(id);
      this.cachedBytes -= v.length;
    }
    this.verified.delete(id);
  }
}

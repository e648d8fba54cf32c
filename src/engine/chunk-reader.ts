/**
 * Reads committed chunks. The first read of a blob in this process fetches it
 * whole and checks its hash (a torn or corrupt blob is never served); later
 * reads of that blob are range reads or come from a small LRU of whole chunks.
 *
 * Sequential reads: a read from the start of a verified chunk fetches the whole
 * chunk (one large read instead of eight 128 KiB ones through the mount) and
 * the caller may prefetch the next chunk meanwhile (readCommitted does), so
 * the disk works while the kernel and the FUSE round trips consume the data.
 */
import type { BlobId, BlobStore } from '../blobs/blob-store.js';

const SMALL_BLOB = 256 * 1024;

export class ChunkReader {
  private readonly cache = new Map<BlobId, Buffer>();
  private cachedBytes = 0;
  private readonly verified = new Set<BlobId>();
  /** Whole-chunk reads on their way (prefetch, or the read that started one). */
  private readonly inflight = new Map<BlobId, Promise<Buffer>>();

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
    const coming = this.inflight.get(id);
    if (coming) return (await coming).copy(out, outOffset, offset, offset + length);
    if (this.verified.has(id)) {
      // The start of a big chunk: most likely a sequential reader, take it whole.
      if (offset === 0 && blobLen !== undefined && blobLen > SMALL_BLOB && length < blobLen && blobLen <= this.cacheLimit / 4) {
        return (await this.fetchWhole(id, blobLen)).copy(out, outOffset, offset, offset + length);
      }
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

  /**
   * A small blob this process just wrote from these bytes: keep them (a reader
   * often follows a writer). Takes `data` as it is: pass a buffer nobody else changes.
   */
  seed(id: BlobId, data: Buffer): void {
    if (data.length > SMALL_BLOB || this.cache.has(id)) return;
    this.markVerified(id);
    this.remember(id, data);
  }

  /** Start reading a verified chunk whole in the background (read-ahead); a later readInto waits for it. */
  prefetch(id: BlobId, blobLen: number): void {
    if (this.cache.has(id) || this.inflight.has(id) || !this.verified.has(id) || blobLen > this.cacheLimit / 4) return;
    this.fetchWhole(id, blobLen).catch(() => {}); // a failure shows again at the real read
  }

  private fetchWhole(id: BlobId, blobLen: number): Promise<Buffer> {
    const p = this.blobs.get(id, { offset: 0, length: blobLen }).then(
      (whole) => {
        if (this.inflight.get(id) === p) {
          this.inflight.delete(id);
          this.remember(id, whole);
        }
        return whole;
      },
      (e: unknown) => {
        if (this.inflight.get(id) === p) this.inflight.delete(id);
        throw e;
      },
    );
    this.inflight.set(id, p);
    return p;
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
    this.inflight.delete(id);
    const v = this.cache.get(id);
    if (v) {
      this.cache.delete(id);
      this.cachedBytes -= v.length;
    }
    this.verified.delete(id);
  }
}

/**
 * Content-addressed, immutable blob storage. A blob's id is the SHA-256 of its
 * bytes (hex). Implementations: LocalBlobStore now, an S3-compatible one later.
 */
export type BlobId = string;

export interface ByteRange {
  offset: number;
  length: number;
}

export interface BlobStore {
  /** Store bytes; identical bytes are stored once. Not yet durable: see sync(). */
  put(data: Uint8Array): Promise<BlobId>;
  /**
   * Store the content of a local file the caller will never modify again,
   * whose SHA-256 is `id`. A local store may hard-link it instead of copying.
   */
  adoptFile(path: string, id: BlobId): Promise<void>;
  /** Whole blob (verified against its id) or a byte range of it (not verified). */
  get(id: BlobId, range?: ByteRange): Promise<Buffer>;
  /** Read a range into the caller's buffer (not verified); returns bytes read. */
  readInto(id: BlobId, offset: number, out: Uint8Array, outOffset: number, length: number): Promise<number>;
  has(id: BlobId): Promise<boolean>;
  size(id: BlobId): Promise<number | undefined>;
  delete(id: BlobId): Promise<void>;
  list(): AsyncIterable<BlobId>;
  /** Make the named blobs durable (data and directory entries) before returning. */
  sync(ids: Iterable<BlobId>): Promise<void>;
  /** Make every blob written so far durable, as cheaply as the medium allows. */
  syncAll(): Promise<void>;
  /** Release cached descriptors and other resources. */
  close(): Promise<void>;
  /** Re-read a blob and check its hash. */
  verify(id: BlobId): Promise<'ok' | 'missing' | 'corrupt'>;
}

export const BLOB_ID_RE = /^[0-9a-f]{64}$/;

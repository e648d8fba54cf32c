/**
 * Uncommitted changes to a small file (at most SMALL_FILE_MAX bytes), held in
 * memory and mirrored record by record into the journal, so creating many
 * small files costs one blob file each and no staging file. A file that grows
 * past the limit is committed and continues as a staged DirtyFile.
 */
import type { BlobId, BlobStore } from '../blobs/blob-store.js';
import type { ChunkRef } from '../meta/types.js';
import type { TimeNs } from '../util/time.js';
import type { OpContext } from './credentials.js';
import type { Journal } from './journal.js';
import { encodeTag, tagKey, tagOf, UNTAGGED_KEY } from './writer-tag.js';

export const SMALL_FILE_MAX = 256 * 1024;

export class MemoryFile {
  private data: Buffer;
  size: number;
  baseVid: number | null;
  mtimeNs: TimeNs;
  ctimeNs: TimeNs;
  modified = false;
  lastWriter: OpContext | null = null;
  /** Sequence number of the last journal record applied. */
  lastSeq = 0;
  /** The writer tag the journal holds for this file's uncommitted records. */
  private journaledWriter = UNTAGGED_KEY;

  constructor(
    readonly ino: number,
    private readonly journal: Journal,
    base: { vid: number | null; content: Buffer; mtimeNs: TimeNs; ctimeNs: TimeNs },
  ) {
    this.data = Buffer.alloc(Math.max(4096, base.content.length));
    base.content.copy(this.data);
    this.size = base.content.length;
    this.baseVid = base.vid;
    this.mtimeNs = base.mtimeNs;
    this.ctimeNs = base.ctimeNs;
  }

  /** Would the file still be small after growing to `end` bytes? */
  static fits(end: number): boolean {
    return end <= SMALL_FILE_MAX;
  }

  get stagedBytes(): number {
    return this.modified ? this.size : 0;
  }

  get memoryBytes(): number {
    return this.data.length;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(offset + length, this.size);
    if (end <= offset) return Buffer.alloc(0);
    return Buffer.from(this.data.subarray(offset, end));
  }

  /** Record who is changing the file, before the change itself is journaled. */
  async setWriter(ctx: OpContext): Promise<void> {
    this.lastWriter = ctx;
    const tag = tagOf(ctx);
    const key = tagKey(tag);
    if (key === this.journaledWriter) return;
    this.lastSeq = this.journal.append(this.ino, 'writer', 0, encodeTag(tag));
    this.journaledWriter = key;
  }

  async readInto(offset: number, length: number, out: Buffer): Promise<number> {
    const end = Math.min(offset + length, this.size);
    return end <= offset ? 0 : this.data.copy(out, 0, offset, end);
  }

  async write(offset: number, bytes: Uint8Array): Promise<number> {
    // Journal first: if it fails (ENOSPC), memory is untouched and the write fails whole.
    this.lastSeq = this.journal.append(this.ino, 'write', offset, bytes);
    this.applyWrite(offset, bytes);
    return bytes.length;
  }

  async truncate(n: number): Promise<void> {
    this.lastSeq = this.journal.append(this.ino, 'truncate', n);
    this.applyTruncate(n);
  }

  /** Replay support: apply without journaling. */
  applyWrite(offset: number, bytes: Uint8Array): void {
    const end = offset + bytes.length;
    this.reserve(end);
    if (offset > this.size) this.data.fill(0, this.size, offset);
    this.data.set(bytes, offset);
    this.size = Math.max(this.size, end);
    this.modified = true;
  }

  applyTruncate(n: number): void {
    this.reserve(n);
    if (n > this.size) this.data.fill(0, this.size, n);
    this.size = n;
    this.modified = true;
  }

  private reserve(n: number): void {
    if (n <= this.data.length) return;
    const grown = Buffer.alloc(Math.min(SMALL_FILE_MAX, Math.max(n, this.data.length * 2)));
    this.data.copy(grown, 0, 0, this.size);
    this.data = grown;
  }

  async buildCommit(blobs: BlobStore): Promise<{ chunks: ChunkRef[]; newIds: BlobId[] }> {
    if (this.size === 0) return { chunks: [], newIds: [] };
    const content = this.data.subarray(0, this.size);
    if (isAllZero(content)) return { chunks: [{ id: null, len: 0 }], newIds: [] };
    const id = await blobs.put(content);
    return { chunks: [{ id, len: this.size }], newIds: [id] };
  }

  async committed(vid: number): Promise<void> {
    this.baseVid = vid;
    this.modified = false;
    // Records after this commit start with their own writer record.
    this.journaledWriter = UNTAGGED_KEY;
  }

  /** The journal records stay until the journal is reset; nothing else to drop. */
  async discardStaging(): Promise<void> {}

  async closeAll(): Promise<void> {}
}

function isAllZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i += 8192) {
    const part = b.subarray(i, i + 8192);
    if (!part.equals(ZERO_PAGE.subarray(0, part.length))) return false;
  }
  return true;
}

const ZERO_PAGE = Buffer.alloc(8192);

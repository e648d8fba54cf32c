/**
 * Uncommitted changes to one regular file.
 *
 * Writes go straight into per-chunk staging files in the data directory
 * (`staging/<ino>.<chunk>`), so an acknowledged write survives a kill -9 of the
 * daemon (it is in the page cache) and no file is ever held whole in memory.
 * A staged chunk starts as a copy of the committed chunk it replaces; at commit
 * it is hashed and hard-linked into the blob store as it is: no second copy.
 *
 * The file's logical content is: staged chunks where present; otherwise the
 * committed chunk, but only below `baseLimit` (the lowest size the file was
 * truncated to since the last commit); zeros everywhere else, up to `size`.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { NexusError } from '../errors.js';
import type { BlobId, BlobStore } from '../blobs/blob-store.js';
import type { ChunkRef } from '../meta/types.js';
import type { ChunkReader } from './chunk-reader.js';
import type { FileHashers } from '../blobs/file-hashers.js';
import type { OpContext } from './credentials.js';
import type { TimeNs } from '../util/time.js';
import { encodeTag, tagKey, tagOf, UNTAGGED_KEY, type WriterTag } from './writer-tag.js';

/** Maximum chunk size (see native-notes/chunking.md for why 1 MiB). */
export const CHUNK_SIZE = 1 << 20;
const MAX_OPEN_STAGING_FDS = 8;

/**
 * Written only when a truncate makes the staged state depend on more than the
 * staged chunks (a lower baseLimit, a size no chunk shows). Without it,
 * re-applying staged chunks to the current version is idempotent, so a crash
 * between a commit and the removal of its staging files loses nothing.
 */
export interface StagingMeta {
  /** Version the staged changes apply to; a mismatch after a crash means they were already committed. */
  baseVid: number | null;
  baseLimit: number;
  size: number;
}

interface Staged {
  path: string;
  len: number;
  /**
   * Hash of the chunk as it is now: started in the background when a write
   * filled the chunk; dropped by any later change to it.
   */
  hashing?: Promise<HashedChunk>;
}

interface HashedChunk {
  /** null: all zeros, stored as a hole. */
  id: BlobId | null;
  len: number;
}

/**
 * Background hashes in flight per file: a writer that keeps filling chunk ends
 * out of order (each fill makes the previous hash stale) cannot queue more.
 */
const MAX_BACKGROUND_HASHES = 8;
/** Staging file links and unlinks in flight at a commit (libuv's pool has 4 threads). */
const FILE_OPS_IN_FLIGHT = 8;

/**
 * Fill `out[outOffset, outOffset+length)` with committed content from `offset`:
 * blob bytes where a chunk has them below `limit`, zeros everywhere else.
 */
export async function readCommitted(
  reader: ChunkReader, chunks: readonly ChunkRef[], limit: number,
  offset: number, length: number, out: Buffer, outOffset: number,
): Promise<void> {
  const end = offset + length;
  let filled = offset; // everything before this is written
  for (let k = Math.floor(offset / CHUNK_SIZE); k * CHUNK_SIZE < Math.min(end, limit); k++) {
    const ref = chunks[k];
    if (!ref?.id) continue;
    const cs = k * CHUNK_SIZE;
    const from = Math.max(offset, cs);
    const to = Math.min(end, limit, cs + ref.len);
    if (from >= to) continue;
    if (from > filled) out.fill(0, outOffset + filled - offset, outOffset + from - offset);
    // Reading a chunk from its start in pieces (the mount reads 128 KiB at a
    // time): read the next one ahead (see ChunkReader). A caller reading whole
    // chunks gets them straight into its buffer: a prefetch would only add an
    // allocation and a copy (1 GiB engine read: 0.34-0.42x native with it).
    const next = chunks[k + 1];
    if (from === cs && to - from < ref.len && next?.id && (k + 1) * CHUNK_SIZE < limit) reader.prefetch(next.id, next.len);
    const n = await reader.readInto(ref.id, from - cs, to - from, out, outOffset + from - offset, ref.len);
    // A blob shorter than its recorded length is damage, not a hole.
    if (n !== to - from) throw new NexusError('CORRUPT', `Blob ${ref.id} is shorter than recorded`, { blob: ref.id });
    filled = to;
  }
  if (filled < end) out.fill(0, outOffset + filled - offset, outOffset + length);
}

export class DirtyFile {
  size: number;
  baseVid: number | null;
  baseChunks: ChunkRef[];
  baseLimit: number;
  mtimeNs: TimeNs;
  ctimeNs: TimeNs;
  /** Something changed since the last commit. */
  modified = false;
  /** Context of the last writer: the commit is tagged with its principal and session. */
  lastWriter: OpContext | null = null;
  private readonly staged = new Map<number, Staged>();
  private readonly fds = new Map<number, FileHandle>();
  /**
   * Staging files created ahead of a sequential writer, under their final
   * names, still empty: creating a file costs 0.1-0.8 ms on the development
   * VM's ext4 and holds the staging directory's lock meanwhile, so it happens
   * in the threadpool while the writer fills the chunk before (an empty chunk
   * file means nothing staged, to recovery as here).
   */
  private readonly ahead = new Map<number, Promise<FileHandle>>();
  private backgroundHashes = 0;
  private metaWritten = false;
  /** The writer tag `<ino>.writer` holds for the staged changes. */
  private writtenWriter = UNTAGGED_KEY;

  constructor(
    readonly ino: number,
    private readonly stagingDir: string,
    private readonly reader: ChunkReader,
    private readonly hashers: FileHashers,
    base: { vid: number | null; chunks: ChunkRef[]; size: number; mtimeNs: TimeNs; ctimeNs: TimeNs },
  ) {
    this.size = base.size;
    this.baseVid = base.vid;
    this.baseChunks = base.chunks;
    this.baseLimit = base.size;
    this.mtimeNs = base.mtimeNs;
    this.ctimeNs = base.ctimeNs;
  }

  /** Rebuild the state a crashed daemon left in the staging directory. */
  static async recover(
    ino: number, stagingDir: string, reader: ChunkReader, hashers: FileHashers, meta: StagingMeta | undefined,
    base: { vid: number | null; chunks: ChunkRef[]; size: number; mtimeNs: TimeNs; ctimeNs: TimeNs },
    chunkFiles: number[], writer: WriterTag | null,
  ): Promise<DirtyFile> {
    const f = new DirtyFile(ino, stagingDir, reader, hashers, base);
    if (writer) f.writtenWriter = tagKey(writer);
    // Without a meta file no truncate happened: the staged chunks apply to the current version.
    if (meta) {
      f.baseLimit = Math.min(meta.baseLimit, base.size);
      f.size = meta.size;
      f.metaWritten = true;
    }
    for (const k of chunkFiles) {
      const path = f.stagingPath(k);
      const len = (await fsp.stat(path)).size;
      f.staged.set(k, { path, len });
      f.size = Math.max(f.size, k * CHUNK_SIZE + len);
    }
    f.modified = true;
    return f;
  }

  stagingPath(k: number): string {
    return join(this.stagingDir, `${this.ino}.${k}`);
  }

  get metaPath(): string {
    return join(this.stagingDir, `${this.ino}.meta`);
  }

  get writerPath(): string {
    return join(this.stagingDir, `${this.ino}.writer`);
  }

  /** Record who is changing the file, before the change itself is staged. */
  async setWriter(ctx: OpContext): Promise<void> {
    this.lastWriter = ctx;
    const tag = tagOf(ctx);
    const key = tagKey(tag);
    if (key === this.writtenWriter) return;
    // Written aside and renamed, like the meta file.
    const tmp = `${this.writerPath}.tmp`;
    await fsp.writeFile(tmp, encodeTag(tag));
    await fsp.rename(tmp, this.writerPath);
    this.writtenWriter = key;
  }

  get stagedBytes(): number {
    let n = 0;
    for (const s of this.staged.values()) n += s.len;
    return n;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(Math.max(0, Math.min(offset + length, this.size) - offset));
    return out.subarray(0, await this.readInto(offset, length, out));
  }

  /** Read into `out` from its start; returns the bytes read. */
  async readInto(offset: number, length: number, out: Buffer): Promise<number> {
    const end = Math.min(offset + length, this.size);
    if (end <= offset) return 0;
    // Committed parts first (readCommitted writes every byte), then staged chunks on top.
    await readCommitted(this.reader, this.baseChunks, this.baseLimit, offset, end - offset, out, 0);
    for (let k = Math.floor(offset / CHUNK_SIZE); k * CHUNK_SIZE < end; k++) {
      const st = this.staged.get(k);
      if (!st) continue;
      const cs = k * CHUNK_SIZE;
      const from = Math.max(offset, cs) - cs;
      const to = Math.min(end - cs, CHUNK_SIZE);
      const dst = cs + from - offset;
      // The staged chunk replaces the committed one entirely: clear what was copied in.
      out.fill(0, dst, dst + (to - from));
      const have = Math.min(to, st.len) - from;
      if (have > 0) {
        const fd = await this.fd(k);
        await fd.read(out, dst, have, from);
      }
    }
    return end - offset;
  }

  async write(offset: number, data: Uint8Array): Promise<number> {
    let done = 0;
    while (done < data.length) {
      const pos = offset + done;
      const k = Math.floor(pos / CHUNK_SIZE);
      const cs = k * CHUNK_SIZE;
      const n = Math.min(data.length - done, cs + CHUNK_SIZE - pos);
      const wasStaged = this.staged.has(k);
      await this.ensureStaged(k, pos - cs, pos - cs + n);
      const fd = await this.fd(k);
      const st = this.staged.get(k)!;
      st.hashing = undefined; // the chunk changes: any earlier hash is stale
      try {
        const { bytesWritten } = await fd.write(data, done, n, pos - cs);
        // A regular file's pwrite stops short only when the disk fills up.
        if (bytesWritten !== n) throw new NexusError('NO_SPACE', `Short write to a staging file (${bytesWritten} of ${n} bytes)`);
      } catch (e) {
        // Nothing of a failed write may show: a chunk it staged goes back to
        // the committed one, bytes it left past the staged length are cut.
        if (!wasStaged) await this.unstage(k).catch(() => {});
        else await fd.truncate(st.len).catch(() => {});
        throw e;
      }
      st.len = Math.max(st.len, pos - cs + n);
      done += n;
      if (pos - cs + n === CHUNK_SIZE && st.len === CHUNK_SIZE && this.backgroundHashes < MAX_BACKGROUND_HASHES) {
        // The chunk is full (a sequential writer is done with it): hash it on
        // another core while the writer goes on with the next one.
        this.backgroundHashes++;
        const job = this.hashStaged(st);
        st.hashing = job;
        job.catch(() => {}).finally(() => this.backgroundHashes--);
      }
    }
    this.size = Math.max(this.size, offset + data.length);
    this.modified = true;
    return done;
  }

  async truncate(n: number): Promise<void> {
    if (n < this.size) {
      const lastKept = n === 0 ? -1 : Math.floor((n - 1) / CHUNK_SIZE);
      for (const k of [...this.staged.keys()]) if (k > lastKept) await this.unstage(k);
      if (n % CHUNK_SIZE !== 0) {
        const cs = lastKept * CHUNK_SIZE;
        const ref = this.baseChunks[lastKept];
        const baseHasMore = cs < this.baseLimit && ref?.id && Math.min(ref.len, this.baseLimit - cs) > n - cs;
        if (this.staged.has(lastKept) || baseHasMore) {
          await this.ensureStaged(lastKept, 0, 0);
          const st = this.staged.get(lastKept)!;
          if (st.len > n - cs) {
            st.hashing = undefined;
            await (await this.fd(lastKept)).truncate(n - cs);
            st.len = n - cs;
          }
        }
      }
      this.baseLimit = Math.min(this.baseLimit, n);
    }
    this.size = n;
    this.modified = true;
    await this.writeMeta();
  }

  /**
   * Turn the staged chunks into blobs and return the new chunk list. The
   * staging files are linked into the blob store as they are.
   */
  async buildCommit(blobs: BlobStore): Promise<{ chunks: ChunkRef[]; newIds: BlobId[] }> {
    const count = Math.ceil(this.size / CHUNK_SIZE);
    // Hash every staged chunk not hashed yet (the workers queue them), reusing background hashes.
    const hashes = new Map<number, HashedChunk>();
    const todo = [...this.staged.entries()].filter(([k]) => k < count);
    // A background hash that failed is tried once more here, where its error reaches the committer.
    const results = await Promise.all(todo.map(([, st]) => st.hashing?.catch(() => this.hashStaged(st)) ?? this.hashStaged(st)));
    todo.forEach(([k], j) => hashes.set(k, results[j]!));
    // Link the staged files into the store, several at a time: each link is a
    // threadpool call, and a 1 GiB file has 1,024 of them.
    await eachLimited(todo, FILE_OPS_IN_FLIGHT, async ([k, st]) => {
      await this.closeFd(k);
      const id = hashes.get(k)!.id;
      if (id !== null) await blobs.adoptFile(st.path, id);
    });
    const chunks: ChunkRef[] = [];
    const newIds: BlobId[] = [];
    for (let k = 0; k < count; k++) {
      const h = hashes.get(k);
      if (h) {
        if (h.id === null) {
          chunks.push({ id: null, len: 0 });
          continue;
        }
        this.reader.markVerified(h.id);
        chunks.push({ id: h.id, len: h.len });
        newIds.push(h.id);
      } else if (k * CHUNK_SIZE < this.baseLimit && this.baseChunks[k]) {
        chunks.push(this.baseChunks[k]!);
      } else {
        chunks.push({ id: null, len: 0 });
      }
    }
    return { chunks, newIds };
  }

  private async hashStaged(st: Staged): Promise<HashedChunk> {
    if (st.len === 0) return { id: null, len: 0 };
    const h = await this.hashers.hash(st.path, st.len);
    // All zeros: a hole, no blob (sparse files take no space).
    if (h.zero || h.len === 0) return { id: null, len: 0 };
    return { id: h.id, len: h.len };
  }

  /** After the metadata switched to `vid`, the staged state becomes the new base. */
  async committed(vid: number, chunks: ChunkRef[]): Promise<void> {
    await this.discardStaging();
    this.baseVid = vid;
    this.baseChunks = chunks;
    this.baseLimit = this.size;
    this.modified = false;
  }

  /** Drop every staged change (the file was deleted, or they are committed). */
  async discardStaging(): Promise<void> {
    await this.dropAhead();
    await eachLimited([...this.staged.keys()], FILE_OPS_IN_FLIGHT, (k) => this.unstage(k));
    if (this.metaWritten) {
      await fsp.unlink(this.metaPath).catch(ignoreMissing);
      this.metaWritten = false;
    }
    if (this.writtenWriter !== UNTAGGED_KEY) {
      await fsp.unlink(this.writerPath).catch(ignoreMissing);
      this.writtenWriter = UNTAGGED_KEY;
    }
  }

  private async ensureStaged(k: number, writeFrom: number, writeTo: number): Promise<void> {
    if (this.staged.has(k)) return;
    const path = this.stagingPath(k);
    const cs = k * CHUNK_SIZE;
    const ref = this.baseChunks[k];
    const keep = cs < this.baseLimit && ref?.id ? Math.min(ref.len, this.baseLimit - cs) : 0;
    // Copy the committed chunk unless this write replaces all of it.
    const init = keep > 0 && !(writeFrom === 0 && writeTo >= keep) ? await this.reader.read(ref!.id!, 0, keep) : undefined;
    const fd = await this.openNewChunk(k);
    this.cacheFd(k, fd);
    // A writer starting a chunk at its start, after the one before: probably sequential.
    if (writeFrom === 0 && (k === 0 || this.staged.has(k - 1))) await this.createAhead(k + 1);
    if (init) await fd.write(init, 0, init.length, 0);
    this.staged.set(k, { path, len: init?.length ?? 0 });
  }

  private async openNewChunk(k: number): Promise<FileHandle> {
    const made = this.ahead.get(k);
    this.ahead.delete(k);
    // A failed early create (a full disk, say) is retried here, where its error reaches the writer.
    const fh = made ? await made.catch(() => undefined) : undefined;
    return fh ?? fsp.open(this.stagingPath(k), 'w+', 0o600);
  }

  /** Called under the file's lock (from a write), as every change to staging files is. */
  private async createAhead(k: number): Promise<void> {
    if (this.staged.has(k) || this.ahead.has(k)) return;
    // One at a time: a writer that jumps about (2 MiB records 10 MiB apart)
    // must not leave a file and a descriptor behind per jump until the commit.
    // Removed before this write returns, so no later write can stage the same name meanwhile.
    await this.dropAhead();
    const made = fsp.open(this.stagingPath(k), 'w+', 0o600);
    made.catch(() => {}); // seen by openNewChunk or dropAhead
    this.ahead.set(k, made);
  }

  /** Remove the files made ahead that no write used (empty: nothing is lost). */
  private async dropAhead(): Promise<void> {
    const made = [...this.ahead.entries()];
    this.ahead.clear();
    await Promise.all(made.map(([k, p]) => this.removeAhead(k, p)));
  }

  private async removeAhead(k: number, made: Promise<FileHandle>): Promise<void> {
    const fh = await made.catch(() => undefined);
    if (!fh) return;
    await fh.close().catch(() => {});
    // Only if no write staged the chunk since (its file has the same name).
    if (!this.staged.has(k)) await fsp.unlink(this.stagingPath(k)).catch(ignoreMissing);
  }

  private async unstage(k: number): Promise<void> {
    await this.closeFd(k);
    const st = this.staged.get(k);
    if (st) await fsp.unlink(st.path).catch(ignoreMissing);
    this.staged.delete(k);
  }

  private async fd(k: number): Promise<FileHandle> {
    const cached = this.fds.get(k);
    if (cached) {
      this.fds.delete(k);
      this.fds.set(k, cached);
      return cached;
    }
    const fd = await fsp.open(this.stagingPath(k), 'r+');
    this.cacheFd(k, fd);
    return fd;
  }

  private cacheFd(k: number, fd: FileHandle): void {
    this.fds.set(k, fd);
    if (this.fds.size > MAX_OPEN_STAGING_FDS) {
      const [oldest, old] = this.fds.entries().next().value as [number, FileHandle];
      this.fds.delete(oldest);
      void old.close().catch(() => {});
    }
  }

  private async closeFd(k: number): Promise<void> {
    const fd = this.fds.get(k);
    if (!fd) return;
    this.fds.delete(k);
    await fd.close();
  }

  async closeAll(): Promise<void> {
    await this.dropAhead();
    for (const k of [...this.fds.keys()]) await this.closeFd(k);
  }

  private async writeMeta(): Promise<void> {
    const meta: StagingMeta = { baseVid: this.baseVid, baseLimit: this.baseLimit, size: this.size };
    // Written aside and renamed: a kill mid-write never leaves a half meta file.
    const tmp = `${this.metaPath}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify(meta));
    await fsp.rename(tmp, this.metaPath);
    this.metaWritten = true;
  }
}

/** Run `fn` over `items`, at most `width` at a time. */
async function eachLimited<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
}

function ignoreMissing(e: NodeJS.ErrnoException): void {
  if (e.code !== 'ENOENT') throw e;
}

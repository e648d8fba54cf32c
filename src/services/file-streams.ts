/**
 * Streamed whole-file transfer for the HTTP server: a file's bytes go into or
 * out of an engine handle in pieces, so neither side holds a whole large file
 * in memory.
 *
 * Semantics match FileService.write/read: a write truncates and rewrites the
 * file in place (same inode, like `cat > file`), and is committed when the
 * handle is released. Like a write through the mount, readers see the file
 * grow while it is being uploaded. A write that fails part way (the client
 * went away, the body was over the limit, the engine refused) is undone: a
 * file it created is removed, an existing file gets its previous committed
 * content back (as a new version). Access is checked as FileService checks
 * it (viewer to read, editor to write). Two streamed writes to the same path are
 * serialized, so one never interleaves its pieces with another's: the file
 * ends up as one of them, whole. (Writers through the mount, or through a
 * different path to the same file, are not held back: POSIX rules there.)
 */
import { constants as fsc } from 'node:fs';
import { Readable } from 'node:stream';
import { NexusError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { OpContext } from '../engine/credentials.js';
import { dirname } from '../engine/names.js';
import type { Services } from './services.js';
import { isDir, isReg } from '../meta/types.js';
import { logger } from '../util/logger.js';
import { KeyedMutex } from '../util/mutex.js';
import { toFileInfo, type FileInfo } from './records.js';
import { refuseReserved } from './reserved.js';

/** Bytes per engine read or write while streaming. */
export const STREAM_CHUNK = 1 << 20;

/** A Readable over an open engine handle: `size` bytes from offset 0, then the handle is released. */
export class EngineReadStream extends Readable {
  private pos = 0;
  private inflight: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly engine: Engine,
    private readonly fh: number,
    readonly size: number,
    private readonly chunk = STREAM_CHUNK,
  ) {
    super({ highWaterMark: chunk });
  }

  override _read(): void {
    if (this.pos >= this.size) {
      this.push(null);
      return;
    }
    const want = Math.min(this.chunk, this.size - this.pos);
    const p = this.engine.read(this.fh, want, this.pos).then(
      (buf) => {
        if (this.destroyed) return;
        if (buf.length === 0) {
          // The file shrank under us: ending here would look like a complete
          // (shorter) file to the receiver, whose Content-Length says otherwise.
          this.destroy(new NexusError('CONFLICT', 'File was truncated while being read'));
          return;
        }
        this.pos += buf.length;
        this.push(buf);
      },
      (e: unknown) => this.destroy(e as Error),
    );
    this.inflight = p;
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.inflight
      .catch(() => {})
      .then(() => this.engine.release(this.fh))
      .then(
        () => cb(err),
        (e: unknown) => cb(err ?? (e as Error)),
      );
  }
}

/**
 * Open a regular file for streaming out. Errors (missing, a directory, no
 * permission) are thrown here, before any byte is sent.
 */
export async function openReadStream(services: Services, path: string, ctx: OpContext, chunk = STREAM_CHUNK): Promise<{ info: FileInfo; stream: EngineReadStream }> {
  const { engine } = services;
  const p = await services.files.guard(path, ctx, 'viewer');
  const fh = await engine.open(p, fsc.O_RDONLY, ctx);
  try {
    const st = await engine.fgetattr(fh);
    if (isDir(st.mode)) throw new NexusError('IS_A_DIRECTORY', `Is a directory: ${p}`);
    return { info: toFileInfo(p, st), stream: new EngineReadStream(engine, fh, st.size, chunk) };
  } catch (e) {
    await engine.release(fh);
    throw e;
  }
}

/** Streamed writes in progress, per engine, keyed by normalized path. */
const uploads = new WeakMap<Engine, KeyedMutex<string>>();

export interface WriteStreamOptions {
  parents?: boolean;
  /** Refuse (PAYLOAD_TOO_LARGE) and undo once more than this many bytes arrive. */
  maxBytes?: number;
  /** Called once the file is open for writing, just before the source is read (HTTP: `100 Continue`). */
  beforeRead?: () => void;
}

/**
 * Write a file from a stream of byte chunks (an HTTP request body). Chunks
 * are gathered into STREAM_CHUNK-sized engine writes; the source is not read
 * further while a write is in progress, so memory stays bounded.
 */
export async function writeFromStream(
  services: Services,
  path: string,
  source: AsyncIterable<Uint8Array>,
  ctx: OpContext,
  opts: WriteStreamOptions = {},
): Promise<FileInfo> {
  const p = await services.files.guard(path, ctx, 'editor');
  refuseReserved(p);
  let locks = uploads.get(services.engine);
  if (!locks) uploads.set(services.engine, (locks = new KeyedMutex<string>()));
  return locks.run(p, () => writeLocked(services, p, source, ctx, opts));
}

async function writeLocked(
  { engine, meta }: Services,
  p: string,
  source: AsyncIterable<Uint8Array>,
  ctx: OpContext,
  opts: WriteStreamOptions,
): Promise<FileInfo> {
  if (opts.parents) await engine.mkdir(dirname(p), 0o777, ctx, { parents: true });

  // What to put back if the upload fails part way.
  let prior: { ino: number; vid: number | null } | undefined;
  try {
    const st = await engine.getattr(p, ctx, true);
    if (isReg(st.mode)) {
      const node = await meta.getInode(st.ino);
      if (node) prior = { ino: node.ino, vid: node.vid };
    }
  } catch (e) {
    if (!(e instanceof NexusError) || e.code !== 'NOT_FOUND') throw e;
  }

  const { fh, stat } = await engine.create(p, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, 0o666, ctx);
  const ino = stat.ino;
  let released = false;
  try {
    opts.beforeRead?.();
    let pos = 0;
    let total = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      await engine.write(fh, buf, pos);
      pos += buf.length;
    };
    for await (const piece of source) {
      total += piece.length;
      if (opts.maxBytes !== undefined && total > opts.maxBytes) {
        throw new NexusError('PAYLOAD_TOO_LARGE', `Request body is larger than the limit of ${opts.maxBytes} bytes`, { limit: opts.maxBytes });
      }
      pending.push(Buffer.from(piece.buffer, piece.byteOffset, piece.length));
      pendingBytes += piece.length;
      if (pendingBytes >= STREAM_CHUNK) await flush();
    }
    await flush();
    const st = await engine.fgetattr(fh);
    released = true;
    await engine.release(fh);
    return toFileInfo(p, st);
  } catch (e) {
    if (!released) {
      await engine.release(fh).catch((re: unknown) => logger('file-streams').error({ err: re, path: p }, 'release after a failed upload failed'));
    }
    await undo(engine, p, ino, prior, ctx).catch((ue: unknown) =>
      logger('file-streams').error({ err: ue, path: p }, 'could not undo a failed upload; the file may hold partial content'),
    );
    throw e;
  }
}

async function undo(engine: Engine, p: string, ino: number, prior: { ino: number; vid: number | null } | undefined, ctx: OpContext): Promise<void> {
  if (prior && prior.ino === ino) {
    await engine.restoreContent(ino, prior.vid, ctx);
    return;
  }
  // We created it: remove it, unless someone has replaced it since.
  try {
    const st = await engine.getattr(p, ctx, false);
    if (st.ino === ino) await engine.unlink(p, ctx);
  } catch (e) {
    if (!(e instanceof NexusError) || e.code !== 'NOT_FOUND') throw e;
  }
}

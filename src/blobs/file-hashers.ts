/**
 * SHA-256 of files, read back and hashed by worker threads.
 *
 * A staged chunk is hashed after its bytes reached the page cache: a worker
 * reads it back (~0.1 ms per MiB into its own reused buffer) and hashes it
 * (~0.63 ms per MiB), on another core than the JavaScript thread, which
 * meanwhile goes on with the writer's next chunk. Hashing on the JavaScript
 * thread made SHA-256 the whole critical path of a sequential write; WebCrypto
 * in libuv's pool needed a copy of each chunk in fresh memory and delayed the
 * pool's pwrites (native-notes/io-costs.md).
 *
 * The workers are plain scripts (`eval`), so the same code runs from `dist/`
 * and from the TypeScript sources under vitest.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { NexusError, fromSystemError } from '../errors.js';
import type { BlobId } from './blob-store.js';

export interface FileHash {
  id: BlobId;
  /** Bytes hashed (the file's length when it was read). */
  len: number;
  /** Every byte hashed is zero. */
  zero: boolean;
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const SIZE = 1 << 20;
const buf = Buffer.allocUnsafe(SIZE);
const zeros = Buffer.alloc(SIZE);
parentPort.on('message', ({ job, path, len }) => {
  let fd;
  try {
    fd = openSync(path, 'r');
    const h = createHash('sha256');
    let off = 0;
    let zero = true;
    while (off < len) {
      const n = readSync(fd, buf, 0, Math.min(SIZE, len - off), off);
      if (n === 0) break;
      const part = buf.subarray(0, n);
      h.update(part);
      if (zero && !part.equals(zeros.subarray(0, n))) zero = false;
      off += n;
    }
    parentPort.postMessage({ job, id: h.digest('hex'), len: off, zero });
  } catch (e) {
    parentPort.postMessage({ job, error: { code: e.code, errno: e.errno, syscall: e.syscall, path: e.path, message: e.message } });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
});
`;

type Reply =
  | { job: number; id: string; len: number; zero: boolean; error?: undefined }
  | { job: number; error: { code?: string; errno?: number; syscall?: string; path?: string; message: string } };

interface Pending {
  resolve(h: FileHash): void;
  reject(e: Error): void;
}

interface Hasher {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** Two hashers use both cores of the development VM; more would only queue. */
const DEFAULT_WORKERS = Math.max(1, Math.min(2, availableParallelism()));

export class FileHashers {
  private readonly hashers: (Hasher | undefined)[];
  private nextJob = 1;
  private closed = false;

  constructor(workers = DEFAULT_WORKERS) {
    this.hashers = new Array<Hasher | undefined>(workers).fill(undefined);
  }

  /** SHA-256 of the first `len` bytes of the file at `path` (fewer if it is shorter). */
  hash(path: string, len: number): Promise<FileHash> {
    if (this.closed) return Promise.reject(new NexusError('INTERNAL', 'File hashers are closed'));
    const h = this.leastBusy();
    const job = this.nextJob++;
    return new Promise<FileHash>((resolve, reject) => {
      // A worker with work keeps the process alive; an idle one does not (see start).
      if (h.pending.size === 0) h.worker.ref();
      h.pending.set(job, { resolve, reject });
      h.worker.postMessage({ job, path, len });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const running = this.hashers.filter((h): h is Hasher => h !== undefined);
    this.hashers.fill(undefined);
    await Promise.all(running.map((h) => h.worker.terminate()));
  }

  /** An idle worker; else a new one in a free slot; else the one with the fewest jobs. */
  private leastBusy(): Hasher {
    const running = this.hashers.filter((h): h is Hasher => h !== undefined);
    const idle = running.find((h) => h.pending.size === 0);
    if (idle) return idle;
    const free = this.hashers.indexOf(undefined);
    if (free >= 0) return (this.hashers[free] = this.start(free));
    return running.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  private start(slot: number): Hasher {
    // No inherited execArgv: under --input-type=module (or a loader) the
    // evaluated source would not be the CommonJS script it is.
    const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [] });
    const h: Hasher = { worker, pending: new Map() };
    worker.on('message', (r: Reply) => {
      const p = h.pending.get(r.job);
      if (!p) return;
      h.pending.delete(r.job);
      if (h.pending.size === 0) worker.unref();
      if (r.error) p.reject(fromSystemError(Object.assign(new Error(r.error.message), r.error)));
      else p.resolve({ id: r.id, len: r.len, zero: r.zero });
    });
    const fail = (e: Error) => {
      if (this.hashers[slot] === h) this.hashers[slot] = undefined;
      for (const p of h.pending.values()) p.reject(new NexusError('INTERNAL', `Hash worker failed: ${e.message}`));
      h.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with ${code}`)));
    // Idle workers must not keep a process alive (an embedded SDK user that
    // never closes, the CLI). Only after the listeners: adding a 'message'
    // listener refs the worker again.
    worker.unref();
    return h;
  }
}

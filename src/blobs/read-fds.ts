/**
 * Read-only descriptors of blob files, cached for range reads (blobs never
 * change, so a cached descriptor never goes stale), and the reads themselves.
 *
 * Range reads are synchronous preads while they are fast: a range read almost
 * always hits the page cache (the blob was written by this process, or read
 * whole to verify its hash first), where a 1 MiB pread takes ~60-100 µs and a
 * libuv threadpool round trip costs as much again (native-notes/benchmarks.md).
 * A read slower than SLOW_MS that made the kernel fetch from storage (the
 * disk, not the page cache) switches to the threadpool for BACKOFF_MS, so a
 * cold store never keeps the event loop blocked for long.
 */
import { openSync, closeSync, readSync, readFileSync, open as openCb, read as readCb } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';

const openP = promisify(openCb);
const readP = promisify(readCb);

const SLOW_MS = 2;
const BACKOFF_MS = 1000;
/** How old the storage-read baseline may get (reading it costs ~20 µs). */
const BASELINE_MS = 1000;

interface Entry {
  /** null while an asynchronous open is in flight. */
  fd: number | null;
  opening: Promise<number> | null;
  /** Asynchronous reads in progress: an evicted entry is closed when the last one ends. */
  users: number;
  evicted: boolean;
}

export class ReadFds {
  private readonly entries = new Map<string, Entry>();
  /** performance.now() before which reads go through the threadpool. */
  private asyncUntil = 0;
  /** This thread's storage reads (bytes) when last looked at, and when that was. */
  private fetchedSeen = 0;
  private fetchedAt = -Infinity;

  constructor(
    private readonly max: number,
    /** false: always read through the threadpool. */
    private readonly syncReads = true,
  ) {}

  /** Read `[offset, offset+length)` of the file at `path` (cached under `key`) into `out`; returns bytes read. */
  async read(key: string, path: string, offset: number, out: Uint8Array, outOffset: number, length: number): Promise<number> {
    if (this.syncReads && performance.now() >= this.asyncUntil) return this.readSync(key, path, offset, out, outOffset, length);
    return this.readAsync(key, path, offset, out, outOffset, length);
  }

  private readSync(key: string, path: string, offset: number, out: Uint8Array, outOffset: number, length: number): number {
    const t0 = performance.now();
    // A fresh baseline now and then, so what a slow read compares against is this thread's recent reads, not startup's.
    if (t0 - this.fetchedAt > BASELINE_MS) this.lookAtFetched(t0);
    let entry = this.touch(key);
    if (entry?.fd === null) {
      // An asynchronous open is in flight: use a descriptor of our own this once.
      const fd = openSync(path, 'r');
      try {
        return preadFully(fd, out, outOffset, length, offset);
      } finally {
        closeSync(fd);
      }
    }
    if (!entry) entry = this.insert(key, { fd: openSync(path, 'r'), opening: null, users: 0, evicted: false });
    const n = preadFully(entry.fd!, out, outOffset, length, offset);
    if (performance.now() - t0 > SLOW_MS) this.slowRead();
    return n;
  }

  private async readAsync(key: string, path: string, offset: number, out: Uint8Array, outOffset: number, length: number): Promise<number> {
    let entry = this.touch(key);
    if (!entry) {
      const opening = openP(path, 'r');
      entry = this.insert(key, { fd: null, opening, users: 0, evicted: false });
      const e = entry;
      opening.then(
        (fd) => {
          e.fd = fd;
          e.opening = null;
          if (e.evicted && e.users === 0) closeQuietly(fd);
        },
        () => {
          if (this.entries.get(key) === e) this.entries.delete(key);
        },
      );
    }
    entry.users++;
    try {
      const fd = entry.fd ?? (await entry.opening!);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await readP(fd, out, outOffset + done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done;
    } finally {
      entry.users--;
      if (entry.evicted && entry.users === 0 && entry.fd !== null) closeQuietly(entry.fd);
    }
  }

  /**
   * A synchronous read was slow. On this shared 2-core VM that is usually the
   * thread being preempted, not the disk; only when this thread really made
   * the kernel fetch from storage since the last look do reads move to the
   * threadpool for a while.
   */
  private slowRead(): void {
    const seen = this.fetchedSeen;
    const now = performance.now();
    if (this.lookAtFetched(now) === undefined || this.fetchedSeen > seen) this.asyncUntil = now + BACKOFF_MS;
  }

  private lookAtFetched(now: number): number | undefined {
    const fetched = storageReadBytes();
    this.fetchedSeen = fetched ?? 0;
    this.fetchedAt = now;
    return fetched;
  }

  /** The cached entry, moved to the most recently used end. */
  private touch(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }

  private insert(key: string, entry: Entry): Entry {
    this.entries.set(key, entry);
    while (this.entries.size > this.max) {
      const [oldKey] = this.entries.keys();
      this.drop(oldKey!);
    }
    return entry;
  }

  /** Forget `key`; its descriptor closes now, or when the reads using it end. */
  drop(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    entry.evicted = true;
    if (entry.users === 0 && entry.fd !== null) closeQuietly(entry.fd);
  }

  get size(): number {
    return this.entries.size;
  }

  close(): void {
    for (const key of [...this.entries.keys()]) this.drop(key);
  }
}

function preadFully(fd: number, out: Uint8Array, outOffset: number, length: number, offset: number): number {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, outOffset + done, length - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** Synchronous: closing a read-only descriptor of a local file costs a few µs, less than a threadpool hop. */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed or never valid: nothing to release.
  }
}

/**
 * Bytes the calling thread has made the kernel fetch from storage
 * (read_bytes of /proc/thread-self/io, counted when block I/O is submitted,
 * read-ahead included); undefined where the kernel does not say.
 */
function storageReadBytes(): number | undefined {
  try {
    const m = /^read_bytes:\s*(\d+)/m.exec(readFileSync('/proc/thread-self/io', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

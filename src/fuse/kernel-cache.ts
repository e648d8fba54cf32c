/**
 * What the kernel may cache for a mount, and dropping it when something
 * changed without going through the kernel (native-notes/fuse-options.md).
 *
 * With attr/entry/negative timeouts above 0 the kernel answers stat, lookups
 * and permission checks from its caches; that is what makes small-file work
 * fast. Changes that come through the kernel keep those caches right by
 * themselves. Everything else (the CLI and the SDK over the daemon's socket,
 * /.nexus/ctl commands such as restore, and a change to a file with several
 * names, which libfuse 2.9 gives one kernel inode per name) must say so before
 * it answers. `changed()` (anything may have changed) makes every cached name
 * be looked up again (FUSE_NOTIFY_INC_EPOCH, which refreshes each inode's
 * attributes on its next path walk) and drops the attributes and pages of the
 * root and of every open file and directory (fstat and reads on descriptors
 * opened before the change walk no path).
 * `changedInodes(inos)` (only these inodes' attributes changed: link counts,
 * or content through another name) drops the attributes of exactly the kernel
 * inodes that show them: the patched binding tracks which node ids the kernel
 * holds for which inode. Bumping the epoch for those would make every later
 * path walk look each component up again (git's link+unlink per object).
 *
 * Pages: an open may keep the file's cached pages (`keepCache`) only while
 * nothing changed behind the kernel since the pages were last known good,
 * i.e. no `changed()` since the last open of that inode, and the inode has a
 * single name (another name is another kernel inode with its own pages).
 */
import { release } from 'node:os';
import type Fuse from 'fuse-native';
import { logger } from '../util/logger.js';

const log = logger('fuse');

/** Seconds the kernel keeps attributes, names and negative names: bounds what no invalidation reaches (see notes). */
export const CACHE_TIMEOUT_S = 1;
const MAX_TRACKED = 1_000_000;

type InvalidateResult = { epoch: number; inodeErrors: number; complete: boolean };

/** FUSE_NOTIFY_INC_EPOCH arrived in Linux 6.16. */
export function kernelHasEpochs(rel = release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > 6 || (maj === 6 && min >= 16);
}

export class KernelCache {
  private fuse: Fuse | undefined;
  /** Bumped by every change made behind the kernel's back. */
  private generation = 0;
  /** Inode -> the generation its cached pages were last made right at (an open without keepCache drops them). */
  private readonly pagesAt = new Map<number, number>();
  /** Inodes seen with more than one name: each name is its own kernel inode. */
  private readonly aliased = new Set<number>();
  private pending: Promise<void> | undefined;
  private again = false;

  /** `enabled`: the mount caches (timeouts above 0); otherwise every call here is a no-op. */
  constructor(private enabled: boolean) {}

  /** The mount runs without caching after all (the kernel refused the probe). */
  disable(): void {
    this.enabled = false;
  }

  attach(fuse: Fuse): void {
    this.fuse = fuse;
  }

  /** Ask the kernel once; false when it has no epochs (the mount must then run without caching). */
  async probe(): Promise<boolean> {
    const r = await this.invalidate();
    if (r.epoch !== 0) log.warn({ epoch: r.epoch }, 'FUSE_NOTIFY_INC_EPOCH refused');
    return r.epoch === 0;
  }

  /**
   * Something changed behind the kernel's back: resolves once the kernel has
   * been told. Concurrent calls share one notification, plus one more for
   * calls that arrive while it is on its way. It drops pages, so it may wait
   * for in-flight reads and writes to be answered: never await it in the
   * handler of a request that holds pages (only from outside the kernel, or
   * from a write to a control file, which is direct_io and holds none).
   */
  async changed(): Promise<void> {
    if (!this.enabled || !this.fuse) return;
    this.generation++;
    if (this.pending) {
      this.again = true;
      const first = this.pending;
      await first.catch(() => {});
      if (this.pending && this.pending !== first) return this.pending;
    }
    this.again = false;
    const p = this.invalidate().then((r) => {
      if (r.epoch !== 0 || r.inodeErrors) log.error({ epoch: r.epoch, inodeErrors: r.inodeErrors }, 'kernel cache invalidation failed');
    });
    this.pending = p;
    try {
      await p;
    } finally {
      if (this.pending === p) this.pending = undefined;
    }
    if (this.again) await this.changed();
  }

  /**
   * Only these inodes' attributes changed (not names, not content behind the
   * kernel): drop them in every kernel inode that shows them. If the binding's
   * node id table may be incomplete: the epoch and the attributes of the root
   * and of every open file instead.
   *
   * Called by request handlers before they answer, so it never touches pages:
   * dropping a page waits for the page lock, which an in-flight READ or WRITE
   * (maybe the very request being answered) holds until it is answered, and
   * for the same reason it does not wait for a `changed()` in progress.
   * Pages of a file's other names need no dropping: an inode with several
   * names never keeps its pages at an open (`keepPages`).
   */
  async changedInodes(inos: number[]): Promise<void> {
    if (!this.enabled || !this.fuse || inos.length === 0) return;
    const r = await this.notify({ inos });
    if (r.inodeErrors) log.error({ inodeErrors: r.inodeErrors }, 'kernel inode invalidation failed');
    if (r.complete && !r.inodeErrors) return;
    const all = await this.notify({ epoch: true, nodeids: [1], open: true, pages: false });
    if (all.epoch !== 0 || all.inodeErrors) log.error({ epoch: all.epoch, inodeErrors: all.inodeErrors }, 'kernel cache invalidation failed');
  }

  /**
   * The epoch (names, and attributes at the next path walk), the root's
   * attributes, and the attributes and pages of every open file and directory
   * (read through descriptors, no path walk refreshes them).
   */
  private invalidate(): Promise<InvalidateResult> {
    return this.notify({ epoch: true, nodeids: [1], open: true, pages: true });
  }

  private notify(opts: Parameters<Fuse['invalidate']>[0]): Promise<InvalidateResult> {
    const fuse = this.fuse!;
    return new Promise((res, rej) => fuse.invalidate(opts, (err, r) => (err ? rej(err) : res(r))));
  }

  /** Note an inode's link count from a stat handed to the kernel. */
  noteLinks(ino: number, nlink: number, isDir: boolean): void {
    if (!this.enabled || isDir || nlink <= 1 || this.aliased.has(ino)) return;
    if (this.aliased.size >= MAX_TRACKED) this.aliased.clear();
    this.aliased.add(ino);
    // Its pages may already be cached under the other name.
    this.pagesAt.delete(ino);
  }

  isAliased(ino: number | undefined): boolean {
    return ino !== undefined && this.aliased.has(ino);
  }

  /**
   * At an open: may the kernel keep this file's cached pages? Records that
   * after this open they are right as of now (an open without keepCache drops them).
   */
  keepPages(ino: number | undefined): boolean {
    if (!this.enabled || ino === undefined) return false;
    const keep = this.pagesAt.get(ino) === this.generation && !this.aliased.has(ino);
    if (this.pagesAt.size >= MAX_TRACKED) this.pagesAt.clear();
    this.pagesAt.set(ino, this.generation);
    return keep;
  }
}

/**
 * FUSE operations -> engine calls. Thin on purpose: each op resolves the
 * caller, calls the engine (or the /.nexus control files), and replies
 * through one function that maps errors to negative errno values and logs.
 */
import { constants as osc } from 'node:os';
import { constants as fsc } from 'node:fs';
import Fuse from 'fuse-native';
import { NexusError, fromSystemError } from '../errors.js';
import type { Stat, TimeSpec } from '../engine/engine.js';
import type { Services } from '../services/services.js';
import type { OpContext } from '../engine/credentials.js';
import { logger } from '../util/logger.js';
import { callerContext } from './caller.js';
import { CONTROL_ROOT, ControlFiles, type ControlCaller } from './control-files.js';
import type { SessionResolver } from './session-resolver.js';
import type { AccessIdentity } from '../engine/credentials.js';
import type { Relation } from '../services/access.js';
import type { KernelCache } from './kernel-cache.js';
import { isDir } from '../meta/types.js';

type Cb = (...args: any[]) => void;
const log = logger('fuse');
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
/** The attribute the kernel reads before each write(2), to clear it (file capabilities). */
const CAPABILITY_XATTR = 'security.capability';
const READDIR_PAGE = 256;

/** The one place errors become errno values. Unknown errors are bugs: logged loudly, EIO. */
export function toErrno(e: unknown, op: string, path: string): number {
  // Errors of the data directory itself (a full disk) have their own errno.
  if (!(e instanceof NexusError)) {
    const mapped = fromSystemError(e);
    if (mapped.code !== 'INTERNAL') e = mapped;
  }
  if (e instanceof NexusError) {
    if (e.code === 'INTERNAL' || e.code === 'CORRUPT') log.error({ err: e, op, path }, 'operation failed');
    else log.debug({ op, path, code: e.code }, 'operation refused');
    return -e.errnoNumber;
  }
  log.error({ err: e, op, path }, 'BUG: unmapped error in FUSE operation');
  return -osc.errno.EIO;
}

function toFuseStat(s: Stat) {
  return {
    mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, dev: 0, nlink: s.nlink, ino: s.ino, rdev: s.rdev,
    blksize: s.blksize, blocks: s.blocks, atimeNs: s.atimeNs, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs,
  };
}

/** NEXUS_FUSE_PROFILE=1: count and time every op in the daemon; printed to the log at exit. */
class OpProfile {
  private readonly stats = new Map<string, { n: number; ns: bigint }>();
  constructor() {
    // logger() at exit, not the module's `log`: that one was made before the
    // daemon configured its (synchronous) destination and may not flush at exit.
    process.on('exit', () => logger('fuse').warn({ ops: Object.fromEntries([...this.stats].map(([k, v]) => [k, { n: v.n, avgUs: Number(v.ns / BigInt(v.n) / 1000n) }])) }, 'fuse op profile'));
  }
  wrap(op: string, cb: Cb): Cb {
    const t0 = process.hrtime.bigint();
    return (...args: unknown[]) => {
      const s = this.stats.get(op) ?? { n: 0, ns: 0n };
      s.n++;
      s.ns += process.hrtime.bigint() - t0;
      this.stats.set(op, s);
      cb(...args);
    };
  }
}
const profile = process.env.NEXUS_FUSE_PROFILE ? new OpProfile() : undefined;

/**
 * readdir offsets: libfuse hands back the offset of the last entry it kept;
 * an offset names "continue after this name" in this directory, so listings
 * stay right while entries are added or removed. Cookies expire.
 */
class DirCursors {
  private readonly byOffset = new Map<number, { path: string; after: string; at: number }>();
  private next = 3; // 1 and 2 are '.' and '..'

  offsetFor(path: string, after: string): number {
    const off = this.next++;
    this.byOffset.set(off, { path, after, at: Date.now() });
    if (this.byOffset.size > 200_000) {
      const cutoff = Date.now() - 60_000;
      for (const [k, v] of this.byOffset) if (v.at < cutoff) this.byOffset.delete(k);
    }
    return off;
  }

  afterName(path: string, offset: number): string | undefined {
    const c = this.byOffset.get(offset);
    if (!c || c.path !== path) throw new NexusError('INVALID_ARGUMENT', 'Stale directory offset');
    return c.after;
  }
}

export function buildOps(services: Services, control: ControlFiles, sessions: SessionResolver, cache: KernelCache, identity?: AccessIdentity): Record<string, Cb> {
  const engine = services.engine;
  /** Every stat handed to the kernel: files with several names are noted (see KernelCache). */
  const fstat = (s: Stat) => {
    cache.noteLinks(s.ino, s.nlink, isDir(s.mode));
    return toFuseStat(s);
  };
  /** After a change to a file with several names: the kernel's inodes of its other names are stale. */
  const aliasedChange = async (ino: number | undefined, nlink?: number): Promise<void> => {
    if (ino !== undefined && (cache.isAliased(ino) || (nlink !== undefined && nlink > 1))) await cache.changedInodes([ino]);
  };
  const cursors = new DirCursors();
  /**
   * Who is calling, and which agent session their writes belong to.
   * Fuse.context() is only valid before a handler's first await.
   */
  /** A mount with --api-key acts as that key's subject: its grants limit every operation. */
  const asPrincipal = (o: OpContext): OpContext => {
    if (identity) {
      o.access = identity;
      o.principal = `${identity.subjectType}:${identity.subjectId}`;
    }
    return o;
  };
  const caller = (): ControlCaller => {
    const c = Fuse.context();
    return { ctx: asPrincipal(callerContext(c)), tid: c.pid };
  };
  const ctx = (): OpContext => caller().ctx;
  /** For operations that change the tree: the caller, tagged with its agent session (a /proc walk). */
  const writer = (): OpContext => {
    const c = Fuse.context();
    const w = asPrincipal(callerContext(c));
    w.sessionId = sessions.resolve(c.pid);
    return w;
  };
  /**
   * The grant check (EACCES without one). The kernel resolved symlinks and
   * `..` before the path reached us, so the path is where the data really is.
   */
  const need = (path: string, relation: Relation, o: OpContext): OpContext => {
    if (identity) services.access.require(o, path, relation);
    return o;
  };
  /** Listings show what the principal may see (grants, and the directories leading to them). */
  const visible = (path: string, o: OpContext): boolean => !identity || services.access.canSee(o, path);
  const isControl = ControlFiles.owns;
  const ownsHandle = ControlFiles.ownsHandle;

  /**
   * Call fuse-native's callback; if it throws (a reply it cannot encode),
   * answer EIO instead: a bad reply must never become an unhandled rejection
   * that kills the daemon.
   */
  function answer(op: string, path: string, cb: Cb, args: unknown[]): void {
    try {
      cb(...args);
    } catch (e) {
      log.error({ err: e, op, path }, 'BUG: reply could not be sent');
      try {
        cb(-osc.errno.EIO);
      } catch {
        // nothing more to do: libfuse times the request out
      }
    }
  }

  /** Run an op and reply `cb(0, ...values)` or `cb(-errno)`. */
  function reply<T extends unknown[]>(op: string, path: string, cb: Cb, fn: () => Promise<T> | T): void {
    if (profile) cb = profile.wrap(op, cb);
    let p: Promise<T>;
    try {
      p = Promise.resolve(fn());
    } catch (e) {
      answer(op, path, cb, [toErrno(e, op, path)]);
      return;
    }
    p.then((vals) => answer(op, path, cb, [0, ...vals]), (e) => answer(op, path, cb, [toErrno(e, op, path)]));
  }

  /** read/write reply with a byte count (or a negative errno) as the first argument. */
  function replyCount(op: string, path: string, cb: Cb, fn: () => Promise<number>): void {
    if (profile) cb = profile.wrap(op, cb);
    fn().then((n) => answer(op, path, cb, [n]), (e) => answer(op, path, cb, [toErrno(e, op, path)]));
  }

  const times = (t: bigint | null | undefined): TimeSpec => (t === null || t === undefined ? 'omit' : t);

  return withNullPaths({
    init: (cb) => cb(0),

    getattr: (path, cb) =>
      reply('getattr', path, cb, async () => {
        if (isControl(path)) return [fstat(await control.getattr(path, caller()))];
        const c = ctx();
        if (!visible(path, c)) need(path, 'viewer', c);
        return [fstat(await engine.getattr(path, c))];
      }),

    fgetattr: (path, fd, cb) =>
      reply('fgetattr', path, cb, async () => [fstat(ownsHandle(fd) || isControl(path) ? await control.getattr(path, caller()) : await engine.fgetattr(fd))]),

    access: (path, mode, cb) =>
      reply('access', path, cb, async () => {
        if (isControl(path)) {
          await control.getattr(path, caller());
          return [];
        }
        const c = ctx();
        if (!visible(path, c)) need(path, 'viewer', c);
        if (mode & 2) need(path, 'editor', c);
        await engine.access(path, mode, c);
        return [];
      }),

    statfs: (path, cb) =>
      reply('statfs', path, cb, async () => {
        const s = await engine.statfs();
        return [{ ...s, favail: s.ffree, fsid: 0, flag: 0 }];
      }),

    // Pages of at most READDIR_PAGE entries: a directory of 100,000 names is
    // never built into one reply (libfuse keeps what fits and asks again).
    readdirPaged: (path, offset, _fh, cb) =>
      reply('readdir', path, cb, async () => {
        if (isControl(path)) {
          if (offset > 0) return [[], [], []];
          const { names, stats } = await control.readdir(path, caller());
          return [names, stats.map(fstat), names.map((_, i) => i + 1)];
        }
        // Fuse.context() is only valid before the first await: take the caller now.
        const who = caller();
        const c = who.ctx;
        if (!visible(path, c)) need(path, 'viewer', c);
        const names: string[] = [];
        const stats: ReturnType<typeof toFuseStat>[] = [];
        const offsets: number[] = [];
        let after: string | undefined;
        if (offset === 0) {
          const self = fstat(await engine.getattr(path, c, true));
          names.push('.', '..');
          stats.push(self, self);
          offsets.push(1, 2);
          if (path === '/') {
            names.push('.nexus');
            stats.push(fstat(await control.getattr(CONTROL_ROOT, who)));
            offsets.push(cursors.offsetFor(path, ''));
          }
        } else if (offset > 2) {
          after = cursors.afterName(path, offset) || undefined;
        }
        const page = await engine.readdir(path, c, { after, limit: READDIR_PAGE });
        for (const e of page) {
          if (identity && !visible(`${path === '/' ? '' : path}/${e.name}`, c)) continue;
          names.push(e.name);
          stats.push(fstat(e.stat));
          offsets.push(cursors.offsetFor(path, e.name));
        }
        return [names, stats, offsets];
      }),

    open: (path, flags, cb) =>
      reply('open', path, cb, async () => {
        if (isControl(path)) {
          const o = await control.open(path, flags, caller());
          return [o.fh, { directIo: o.directIo }];
        }
        const writing = (flags & 3) !== 0 || (flags & fsc.O_TRUNC) !== 0;
        const fh = await engine.open(path, flags, need(path, writing ? 'editor' : 'viewer', writing ? writer() : ctx()));
        // Keep the file's cached pages when nothing changed behind the kernel since they were read.
        return cache.keepPages(engine.inoOfHandle(fh)) ? [fh, { keepCache: true }] : [fh];
      }),

    // The patched binding passes the open flags to create (stock passes none).
    create: (path, mode, flags, cb) => {
      reply('create', path, cb, async () => {
        if (isControl(path)) {
          // `echo cmd > /.nexus/ctl` may reach create when the kernel has no entry cached.
          const o = await control.open(path, flags, caller());
          return [o.fh, { directIo: o.directIo }];
        }
        const r = await engine.create(path, (typeof flags === 'number' ? flags : fsc.O_RDWR) | fsc.O_CREAT, mode, need(path, 'editor', writer()));
        // The stat saves libfuse's fgetattr round trip after create (patched fuse-native).
        return [r.fh, cache.keepPages(r.stat.ino) ? { keepCache: true } : undefined, fstat(r.stat)];
      });
    },

    read: (path, fd, buf: Buffer, len, pos, cb) =>
      replyCount('read', path, cb, async () => {
        if (!ownsHandle(fd)) return engine.readInto(fd, buf, Math.min(len, buf.length), pos); // straight into libfuse's buffer
        const data = await control.read(fd, len, pos);
        data.copy(buf, 0, 0, Math.min(len, data.length));
        return Math.min(len, data.length);
      }),

    write: (path, fd, buf: Buffer, len, pos, cb) =>
      replyCount('write', path, cb, async () => {
        // buf points into libfuse memory: the engine copies what it keeps.
        if (ownsHandle(fd)) {
          // A command (restore, revert, ...) may change any path: drop the kernel's caches.
          const n = await control.write(fd, Buffer.from(buf.subarray(0, len)), caller());
          await cache.changed();
          return n;
        }
        const n = await engine.write(fd, buf.subarray(0, len), pos);
        await aliasedChange(engine.inoOfHandle(fd));
        return n;
      }),

    // FLUSH is the synchronous part of close(2) (RELEASE arrives after close
    // returned): the file's last writer commits here, so a file is committed
    // when close returns, even if the same process reopens it with O_TRUNC
    // before the RELEASE is handled. Costs one round trip per close.
    flush: (path, fd, cb) =>
      reply('flush', path, cb, async () => {
        if (!ownsHandle(fd)) await engine.flush(fd);
        return [];
      }),

    fsync: (path, _datasync, fd, cb) =>
      reply('fsync', path, cb, async () => {
        if (!ownsHandle(fd)) await engine.fsync(fd);
        return [];
      }),

    fsyncdir: (_path, _datasync, _fd, cb) => cb(0),

    release: (path, fd, cb) =>
      reply('release', path, cb, async () => {
        if (ownsHandle(fd)) control.release(fd);
        else await engine.release(fd);
        return [];
      }),

    opendir: (path, _flags, cb) =>
      reply('opendir', path, cb, async () => {
        if (isControl(path)) await control.readdir(path, caller());
        else {
          const c = ctx();
          if (!visible(path, c)) need(path, 'viewer', c);
          await engine.readdir(path, c, { limit: 0 });
        }
        return [0];
      }),

    releasedir: (_path, _fd, cb) => cb(0),

    truncate: (path, size, cb) =>
      reply('truncate', path, cb, async () => {
        if (isControl(path)) control.truncate(path);
        else {
          const st = await engine.truncate(path, size, need(path, 'editor', writer()));
          await aliasedChange(st.ino, st.nlink);
          return [fstat(st)];
        }
        return [];
      }),

    ftruncate: (path, fd, size, cb) =>
      reply('ftruncate', path, cb, async () => {
        if (ownsHandle(fd) || isControl(path)) control.truncate(path);
        else {
          const st = await engine.ftruncate(fd, size);
          await aliasedChange(st.ino, st.nlink);
          return [fstat(st)];
        }
        return [];
      }),

    utimens: (path, atime, mtime, cb) =>
      reply('utimens', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        const c = need(path, 'editor', ctx());
        let a = times(atime);
        let m = times(mtime);
        // The patched binding resolves UTIME_NOW to a timestamp, so "touch to
        // now" (allowed to anyone with write access) arrives looking like
        // explicit times (owner only). With default_permissions the kernel has
        // already refused explicit times from anyone but the owner or root, so
        // a request from another user can only be a UTIME_NOW: say so.
        if (c.cred.uid !== 0 && (a !== 'omit' || m !== 'omit')) {
          const st = await engine.getattr(path, c);
          if (st.uid !== c.cred.uid) {
            if (a !== 'omit') a = 'now';
            if (m !== 'omit') m = 'now';
          }
        }
        const st = await engine.utimens(path, a, m, c);
        await aliasedChange(st.ino, st.nlink);
        return [fstat(st)];
      }),

    chmod: (path, mode, cb) =>
      reply('chmod', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        const st = await engine.chmod(path, mode, need(path, 'editor', ctx()));
        await aliasedChange(st.ino, st.nlink);
        return [fstat(st)];
      }),

    chown: (path, uid, gid, cb) =>
      reply('chown', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        // libfuse passes (uid_t)-1 for "unchanged" as an unsigned 32-bit value.
        const st = await engine.chown(path, uid === 0xffffffff ? -1 : uid, gid === 0xffffffff ? -1 : gid, need(path, 'editor', ctx()));
        await aliasedChange(st.ino, st.nlink);
        return [fstat(st)];
      }),

    mknod: (path, mode, dev, cb) =>
      reply('mknod', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        return [fstat(await engine.mknod(path, mode, dev, need(path, 'editor', writer())))];
      }),

    mkdir: (path, mode, cb) =>
      reply('mkdir', path, cb, async () => {
        if (path === CONTROL_ROOT) throw new NexusError('ALREADY_EXISTS', `${path} is reserved`);
        if (isControl(path)) control.refuse(path);
        return [fstat(await engine.mkdir(path, mode, need(path, 'editor', writer())))];
      }),

    unlink: (path, cb) =>
      reply('unlink', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        const r = await engine.unlink(path, need(path, 'editor', writer()));
        // Names left: the kernel's inodes of those names still show the old link count.
        if (r.nlinkLeft > 0) await cache.changedInodes([r.ino]);
        return [];
      }),

    rmdir: (path, cb) =>
      reply('rmdir', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        await engine.rmdir(path, need(path, 'editor', writer()));
        return [];
      }),

    rename: (src, dest, cb) =>
      reply('rename', src, cb, async () => {
        if (isControl(src) || isControl(dest)) control.refuse(isControl(src) ? src : dest);
        const r = await engine.rename(src, dest, need(dest, 'editor', need(src, 'editor', writer())));
        if (r.replaced && r.replaced.nlinkLeft > 0) await cache.changedInodes([r.replaced.ino]);
        return [];
      }),

    link: (src, dest, cb) =>
      reply('link', dest, cb, async () => {
        if (isControl(src) || isControl(dest)) control.refuse(dest);
        const st = await engine.link(src, dest, need(dest, 'editor', need(src, 'editor', writer())));
        // libfuse 2.9 gives the new name its own node id, so the kernel's inode
        // of every other name (the one linked from included) has a stale link count.
        await cache.changedInodes([st.ino]);
        return [fstat(st)];
      }),

    // fuse-native passes (target, linkPath).
    symlink: (target, path, cb) =>
      reply('symlink', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        return [fstat(await engine.symlink(target, path, need(path, 'editor', writer())))];
      }),

    readlink: (path, cb) =>
      reply('readlink', path, cb, async () => [isControl(path) ? await control.readlink(path, caller()) : await engine.readlink(path, need(path, 'viewer', ctx()))]),

    setxattr: (path, name, value: Buffer, _position, flags, cb) =>
      reply('setxattr', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        const mode = flags & XATTR_CREATE ? 'create' : flags & XATTR_REPLACE ? 'replace' : 'any';
        await engine.setxattr(path, name, Buffer.from(value), mode, need(path, 'editor', ctx()));
        return [];
      }),

    getxattr: (path, name, _position, cb) =>
      reply('getxattr', path, cb, async () => {
        if (isControl(path)) throw new NexusError('NO_ATTRIBUTE');
        const c = need(path, 'viewer', ctx());
        // The kernel asks for security.capability before every write(2) (FUSE
        // does not set SB_NOSEC): while no file has one, answer without a path
        // walk (4 KiB creates 613-640 -> 736-738 files/s; native-notes/fuse-options.md).
        // The kernel checked the path's permissions before asking.
        if (name === CAPABILITY_XATTR && !(await engine.xattrNameInUse(name))) throw new NexusError('NO_ATTRIBUTE', `No such attribute: ${name}`);
        return [await engine.getxattr(path, name, c)];
      }),

    listxattr: (path, cb) =>
      reply('listxattr', path, cb, async () => [isControl(path) ? [] : await engine.listxattr(path, need(path, 'viewer', ctx()))]),

    removexattr: (path, name, cb) =>
      reply('removexattr', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        await engine.removexattr(path, name, need(path, 'editor', ctx()));
        return [];
      }),
  });
}

/**
 * A file deleted while it is open (hard_remove) has no name left: libfuse then
 * passes a null path to the operations on its handle. They work by handle; give
 * them '' so path-based checks and logs stay simple.
 */
function withNullPaths(ops: Record<string, Cb>): Record<string, Cb> {
  for (const name of ['fgetattr', 'read', 'write', 'flush', 'fsync', 'release', 'ftruncate']) {
    const op = ops[name]!;
    ops[name] = (path: string | null, ...rest: unknown[]) => op(path ?? '', ...rest);
  }
  return ops;
}

/**
 * FUSE operations -> engine calls. Thin on purpose: each op resolves the
 * caller, calls the engine (or the /.nexus control files), and replies
 * through one function that maps errors to negative errno values and logs.
 */
import { constants as osc } from 'node:os';
import { constants as fsc } from 'node:fs';
import Fuse from 'fuse-native';
import { NexusError } from '../errors.js';
import type { Engine, Stat, TimeSpec } from '../engine/engine.js';
import type { OpContext } from '../engine/credentials.js';
import { logger } from '../util/logger.js';
import { callerContext } from './caller.js';
import { ControlFiles } from './control-files.js';

type Cb = (...args: any[]) => void;
const log = logger('fuse');
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
const READDIR_PAGE = 1024;

/** The one place errors become errno values. Unknown errors are bugs: logged loudly, EIO. */
export function toErrno(e: unknown, op: string, path: string): number {
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
    process.on('exit', () => log.warn({ ops: Object.fromEntries([...this.stats].map(([k, v]) => [k, { n: v.n, avgUs: Number(v.ns / BigInt(v.n) / 1000n) }])) }, 'fuse op profile'));
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

export function buildOps(engine: Engine, control: ControlFiles): Record<string, Cb> {
  const ctx = (): OpContext => callerContext(Fuse.context());
  const isControl = ControlFiles.owns;

  /** Run an op and reply `cb(0, ...values)` or `cb(-errno)`. */
  function reply<T extends unknown[]>(op: string, path: string, cb: Cb, fn: () => Promise<T> | T): void {
    if (profile) cb = profile.wrap(op, cb);
    let p: Promise<T>;
    try {
      p = Promise.resolve(fn());
    } catch (e) {
      cb(toErrno(e, op, path));
      return;
    }
    p.then((vals) => cb(0, ...vals), (e) => cb(toErrno(e, op, path)));
  }

  /** read/write reply with a byte count (or a negative errno) as the first argument. */
  function replyCount(op: string, path: string, cb: Cb, fn: () => Promise<number>): void {
    if (profile) cb = profile.wrap(op, cb);
    fn().then((n) => cb(n), (e) => cb(toErrno(e, op, path)));
  }

  const times = (t: bigint | null | undefined): TimeSpec => (t === null || t === undefined ? 'omit' : t);

  return {
    init: (cb) => cb(0),

    getattr: (path, cb) =>
      reply('getattr', path, cb, async () => [toFuseStat(isControl(path) ? control.getattr(path) : await engine.getattr(path, ctx()))]),

    fgetattr: (path, fd, cb) =>
      reply('fgetattr', path, cb, async () => [toFuseStat(ControlFiles.ownsHandle(fd) ? control.getattr(path) : await engine.fgetattr(fd))]),

    access: (path, mode, cb) =>
      reply('access', path, cb, async () => {
        if (isControl(path)) {
          if (mode & 2) control.refuse(path);
          return [];
        }
        await engine.access(path, mode, ctx());
        return [];
      }),

    statfs: (path, cb) =>
      reply('statfs', path, cb, async () => {
        const s = await engine.statfs();
        return [{ ...s, favail: s.ffree, fsid: 0, flag: 0 }];
      }),

    readdir: (path, cb) =>
      reply('readdir', path, cb, async () => {
        if (isControl(path)) {
          const names = control.readdir(path);
          return [['.', '..', ...names], [control.getattr(path), control.getattr(path), ...names.map((n) => control.getattr(`${path}/${n}`))].map(toFuseStat)];
        }
        const c = ctx();
        const self = await engine.getattr(path, c, true);
        const names = ['.', '..'];
        const stats = [toFuseStat(self), toFuseStat(self)];
        if (path === '/') {
          names.push('.nexus');
          stats.push(toFuseStat(control.getattr('/.nexus')));
        }
        for (let after: string | undefined; ; ) {
          const page = await engine.readdir(path, c, { after, limit: READDIR_PAGE });
          for (const e of page) {
            names.push(e.name);
            stats.push(toFuseStat(e.stat));
          }
          if (page.length < READDIR_PAGE) break;
          after = page[page.length - 1]!.name;
        }
        return [names, stats];
      }),

    open: (path, flags, cb) =>
      reply('open', path, cb, async () => [isControl(path) ? control.openFile(path, flags) : await engine.open(path, flags, ctx())]),

    // The patched binding passes the open flags to create (stock passes none).
    create: (path, mode, flagsOrCb, maybeCb) => {
      const cb: Cb = typeof flagsOrCb === 'function' ? flagsOrCb : maybeCb;
      const flags = typeof flagsOrCb === 'number' ? flagsOrCb : fsc.O_RDWR | fsc.O_CREAT;
      reply('create', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        return [(await engine.create(path, flags | fsc.O_CREAT, mode, ctx())).fh];
      });
    },

    read: (path, fd, buf: Buffer, len, pos, cb) =>
      replyCount('read', path, cb, async () => {
        const data = ControlFiles.ownsHandle(fd) ? control.read(fd, len, pos) : await engine.read(fd, len, pos);
        data.copy(buf, 0, 0, Math.min(len, data.length));
        return Math.min(len, data.length);
      }),

    write: (path, fd, buf: Buffer, len, pos, cb) =>
      replyCount('write', path, cb, async () => {
        if (ControlFiles.ownsHandle(fd)) control.refuse(path);
        // buf points into libfuse memory: the engine copies what it keeps.
        return engine.write(fd, buf.subarray(0, len), pos);
      }),

    flush: (path, fd, cb) =>
      reply('flush', path, cb, async () => {
        if (!ControlFiles.ownsHandle(fd)) await engine.flush(fd);
        return [];
      }),

    fsync: (path, _datasync, fd, cb) =>
      reply('fsync', path, cb, async () => {
        if (!ControlFiles.ownsHandle(fd)) await engine.fsync(fd);
        return [];
      }),

    fsyncdir: (_path, _datasync, _fd, cb) => cb(0),

    release: (path, fd, cb) =>
      reply('release', path, cb, async () => {
        if (ControlFiles.ownsHandle(fd)) control.release(fd);
        else await engine.release(fd);
        return [];
      }),

    opendir: (path, _flags, cb) =>
      reply('opendir', path, cb, async () => {
        if (!isControl(path)) await engine.readdir(path, ctx(), { limit: 0 });
        return [0];
      }),

    releasedir: (_path, _fd, cb) => cb(0),

    truncate: (path, size, cb) =>
      reply('truncate', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        await engine.truncate(path, size, ctx());
        return [];
      }),

    ftruncate: (path, fd, size, cb) =>
      reply('ftruncate', path, cb, async () => {
        if (ControlFiles.ownsHandle(fd)) control.refuse(path);
        await engine.ftruncate(fd, size);
        return [];
      }),

    utimens: (path, atime, mtime, cb) =>
      reply('utimens', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        const c = ctx();
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
        await engine.utimens(path, a, m, c);
        return [];
      }),

    chmod: (path, mode, cb) =>
      reply('chmod', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        await engine.chmod(path, mode, ctx());
        return [];
      }),

    chown: (path, uid, gid, cb) =>
      reply('chown', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        // libfuse passes (uid_t)-1 for "unchanged" as an unsigned 32-bit value.
        await engine.chown(path, uid === 0xffffffff ? -1 : uid, gid === 0xffffffff ? -1 : gid, ctx());
        return [];
      }),

    mknod: (path, mode, dev, cb) =>
      reply('mknod', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        await engine.mknod(path, mode, dev, ctx());
        return [];
      }),

    mkdir: (path, mode, cb) =>
      reply('mkdir', path, cb, async () => {
        if (isControl(path)) throw new NexusError('ALREADY_EXISTS', `${path} is reserved`);
        await engine.mkdir(path, mode, ctx());
        return [];
      }),

    unlink: (path, cb) =>
      reply('unlink', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        await engine.unlink(path, ctx());
        return [];
      }),

    rmdir: (path, cb) =>
      reply('rmdir', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        await engine.rmdir(path, ctx());
        return [];
      }),

    rename: (src, dest, cb) =>
      reply('rename', src, cb, async () => {
        if (isControl(src) || isControl(dest)) control.refuse(isControl(src) ? src : dest);
        await engine.rename(src, dest, ctx());
        return [];
      }),

    link: (src, dest, cb) =>
      reply('link', dest, cb, async () => {
        if (isControl(src) || isControl(dest)) control.refuse(dest);
        await engine.link(src, dest, ctx());
        return [];
      }),

    // fuse-native passes (target, linkPath).
    symlink: (target, path, cb) =>
      reply('symlink', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        await engine.symlink(target, path, ctx());
        return [];
      }),

    readlink: (path, cb) =>
      reply('readlink', path, cb, async () => {
        if (isControl(path)) throw new NexusError('INVALID_ARGUMENT', 'Not a symbolic link');
        return [await engine.readlink(path, ctx())];
      }),

    setxattr: (path, name, value: Buffer, _position, flags, cb) =>
      reply('setxattr', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        const mode = flags & XATTR_CREATE ? 'create' : flags & XATTR_REPLACE ? 'replace' : 'any';
        await engine.setxattr(path, name, Buffer.from(value), mode, ctx());
        return [];
      }),

    getxattr: (path, name, _position, cb) =>
      reply('getxattr', path, cb, async () => {
        if (isControl(path)) throw new NexusError('NO_ATTRIBUTE');
        return [await engine.getxattr(path, name, ctx())];
      }),

    listxattr: (path, cb) =>
      reply('listxattr', path, cb, async () => [isControl(path) ? [] : await engine.listxattr(path, ctx())]),

    removexattr: (path, name, cb) =>
      reply('removexattr', path, cb, async () => {
        if (isControl(path)) control.refuse(path);
        await engine.removexattr(path, name, ctx());
        return [];
      }),
  };
}

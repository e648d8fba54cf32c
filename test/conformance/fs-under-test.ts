/**
 * The small file-system interface the conformance suite is written against,
 * and its adapters:
 *
 * - `nativeFs`: node:fs on a fresh temporary directory. The reference.
 * - `engineFs`: the Nexus Engine in process, on a fresh data directory.
 * - (next) a FUSE mount: `nodeFs(mountPoint, ...)`, i.e. the native adapter
 *   with another root; nothing else changes.
 *
 * Paths are absolute *inside* the file system under test ('/a/b'); an adapter
 * maps them onto its root. The empty path is passed on as it is (the empty
 * pathname, ENOENT in POSIX). Every failure is normalized to an `FsError`
 * whose `.code` is an errno name ('ENOENT'), so tests compare errnos only.
 */
import { constants as C, promises as fsp } from 'node:fs';
import * as fsCb from 'node:fs';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openDataDir, type OpenedDataDir } from '../../src/engine/data-dir.js';
import { contextFor, ROOT_CONTEXT, type Cred, type OpContext } from '../../src/engine/credentials.js';
import type { Engine, Stat as EngineStat } from '../../src/engine/engine.js';
import { NexusError } from '../../src/errors.js';

/** open(2) flags (Linux values). */
export const O = {
  RDONLY: C.O_RDONLY,
  WRONLY: C.O_WRONLY,
  RDWR: C.O_RDWR,
  CREAT: C.O_CREAT,
  EXCL: C.O_EXCL,
  TRUNC: C.O_TRUNC,
  APPEND: C.O_APPEND,
} as const;

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFIFO = 0o010000;

export type FileType = 'file' | 'dir' | 'symlink' | 'fifo' | 'other';

export interface FsStat {
  ino: number;
  /** Full st_mode (type and permission bits). */
  mode: number;
  type: FileType;
  /** mode & 0o7777 */
  perm: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** An errno-normalized failure: `.code` is the errno name. */
export class FsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(`${code}: ${message}`);
    this.name = 'FsError';
  }
}

export interface FsCaps {
  /** Timestamps set by utimes() read back rounded down to this many ns. */
  timeGranularityNs: bigint;
  /** mkfifo() is available. */
  fifo: boolean;
}

export interface FsUnderTest {
  readonly name: string;
  readonly caps: FsCaps;

  mkdir(path: string, mode?: number, opts?: { recursive?: boolean }): Promise<void>;
  writeFile(path: string, data: Uint8Array | string, opts?: { mode?: number }): Promise<void>;
  readFile(path: string): Promise<Buffer>;
  /** open(2): returns a descriptor number meaningful to this adapter only. */
  open(path: string, flags: number, mode?: number): Promise<number>;
  /** pread: up to `len` bytes at `pos` (short only at end of file). */
  read(fd: number, len: number, pos: number): Promise<Buffer>;
  /** pwrite: all of `data` at `pos` (O_APPEND descriptors write at the end whatever pos says). */
  write(fd: number, data: Uint8Array | string, pos: number): Promise<number>;
  fsync(fd: number): Promise<void>;
  close(fd: number): Promise<void>;
  fstat(fd: number): Promise<FsStat>;
  ftruncate(fd: number, len: number): Promise<void>;

  stat(path: string): Promise<FsStat>;
  lstat(path: string): Promise<FsStat>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  link(existing: string, newPath: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  truncate(path: string, len: number): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  /** chown(2): follows a symlink in the last component. */
  chown(path: string, uid: number, gid: number): Promise<void>;
  /** utimensat(2) with explicit times in ns, following symlinks. */
  utimes(path: string, atimeNs: bigint, mtimeNs: bigint): Promise<void>;
  /** Entry names without '.' and '..', sorted by code unit. */
  readdir(path: string): Promise<string[]>;
  /** Optional (caps.fifo). */
  mkfifo(path: string, mode: number): Promise<void>;

  /** Close leftover descriptors and delete everything the adapter made. */
  dispose(): Promise<void>;
}

export interface FsAdapter {
  name: string;
  create(): Promise<FsUnderTest>;
}

// ------------------------------------------------------------------ helpers

export function fileType(mode: number): FileType {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return 'file';
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'symlink';
    case S_IFIFO:
      return 'fifo';
    default:
      return 'other';
  }
}

const toBuf = (d: Uint8Array | string): Buffer => (typeof d === 'string' ? Buffer.from(d) : Buffer.from(d.buffer, d.byteOffset, d.byteLength));

/** Run `fn` and turn whatever it throws into an FsError with an errno code. */
async function norm<T>(what: string, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw normalizeError(e, what);
  }
}

export function normalizeError(e: unknown, what = ''): unknown {
  if (e instanceof FsError) return e;
  if (e instanceof NexusError) return new FsError(e.errno, `${what}: ${e.code}: ${e.message}`, e);
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return new FsError(code, `${what}: ${(e as Error).message}`, e);
  // Node refuses a NUL in a path before any system call: the reference's EINVAL.
  if (code === 'ERR_INVALID_ARG_VALUE' && /null bytes/i.test(String((e as Error).message))) {
    return new FsError('EINVAL', `${what}: ${(e as Error).message}`, e);
  }
  return e; // not an errno: let the test see the real thing
}

// ------------------------------------------------------------------ node:fs (native, and later FUSE)

const p = {
  open: promisify(fsCb.open),
  // fs.read/fs.write promisify to { bytesRead | bytesWritten, buffer }.
  read: promisify(fsCb.read) as (fd: number, b: Buffer, off: number, len: number, pos: number) => Promise<{ bytesRead: number }>,
  write: promisify(fsCb.write) as (fd: number, b: Buffer, off: number, len: number, pos: number) => Promise<{ bytesWritten: number }>,
  fsync: promisify(fsCb.fsync),
  close: promisify(fsCb.close),
  fstat: promisify(fsCb.fstat) as (fd: number, o: { bigint: true }) => Promise<fsCb.BigIntStats>,
  ftruncate: promisify(fsCb.ftruncate),
};

function fromBigStats(s: fsCb.BigIntStats): FsStat {
  const mode = Number(s.mode);
  return {
    ino: Number(s.ino),
    mode,
    type: fileType(mode),
    perm: mode & 0o7777,
    nlink: Number(s.nlink),
    uid: Number(s.uid),
    gid: Number(s.gid),
    size: Number(s.size),
    atimeNs: s.atimeNs,
    mtimeNs: s.mtimeNs,
    ctimeNs: s.ctimeNs,
  };
}

/** ns -> seconds as a double, exact when the fraction is a short binary fraction (libuv splits it back). */
function nsToSeconds(ns: bigint): number {
  return Number(ns / 1_000_000_000n) + Number(ns % 1_000_000_000n) / 1e9;
}

export interface NodeFsOptions {
  name: string;
  caps?: Partial<FsCaps>;
  /** Runs after open descriptors are closed (remove the temp dir, unmount...). */
  cleanup?: () => Promise<void>;
}

/** node:fs rooted at `root` (a directory, or a mount point). */
export function nodeFs(root: string, opts: NodeFsOptions): FsUnderTest {
  const at = (path: string) => (path === '' ? '' : root + path);
  const fds = new Set<number>();
  return {
    name: opts.name,
    // libuv rounds utimes() to the microsecond (uv__fs_to_timespec).
    caps: { timeGranularityNs: 1000n, fifo: true, ...opts.caps },
    mkdir: (path, mode = 0o777, o = {}) => norm(`mkdir ${path}`, async () => void (await fsp.mkdir(at(path), { mode, recursive: !!o.recursive }))),
    writeFile: (path, data, o = {}) => norm(`writeFile ${path}`, () => fsp.writeFile(at(path), toBuf(data), { mode: o.mode ?? 0o666 })),
    readFile: (path) => norm(`readFile ${path}`, () => fsp.readFile(at(path))),
    open: (path, flags, mode = 0o666) =>
      norm(`open ${path}`, async () => {
        const fd = await p.open(at(path), flags, mode);
        fds.add(fd);
        return fd;
      }),
    read: (fd, len, pos) =>
      norm(`read ${fd}`, async () => {
        const buf = Buffer.alloc(len);
        let got = 0;
        while (got < len) {
          const n = (await p.read(fd, buf, got, len - got, pos + got)).bytesRead;
          if (n === 0) break;
          got += n;
        }
        return buf.subarray(0, got);
      }),
    write: (fd, data, pos) =>
      norm(`write ${fd}`, async () => {
        const buf = toBuf(data);
        let done = 0;
        while (done < buf.length) done += (await p.write(fd, buf, done, buf.length - done, pos + done)).bytesWritten;
        return done;
      }),
    fsync: (fd) => norm(`fsync ${fd}`, () => p.fsync(fd)),
    close: (fd) =>
      norm(`close ${fd}`, async () => {
        await p.close(fd);
        fds.delete(fd);
      }),
    fstat: (fd) => norm(`fstat ${fd}`, async () => fromBigStats(await p.fstat(fd, { bigint: true }))),
    ftruncate: (fd, len) => norm(`ftruncate ${fd}`, () => p.ftruncate(fd, len)),
    stat: (path) => norm(`stat ${path}`, async () => fromBigStats(await fsp.stat(at(path), { bigint: true }))),
    lstat: (path) => norm(`lstat ${path}`, async () => fromBigStats(await fsp.lstat(at(path), { bigint: true }))),
    rename: (from, to) => norm(`rename ${from} ${to}`, () => fsp.rename(at(from), at(to))),
    unlink: (path) => norm(`unlink ${path}`, () => fsp.unlink(at(path))),
    rmdir: (path) => norm(`rmdir ${path}`, () => fsp.rmdir(at(path))),
    link: (existing, newPath) => norm(`link ${existing} ${newPath}`, () => fsp.link(at(existing), at(newPath))),
    // The target is stored verbatim: it is not a path of the adapter.
    symlink: (target, path) => norm(`symlink ${path}`, () => fsp.symlink(target, at(path))),
    readlink: (path) => norm(`readlink ${path}`, () => fsp.readlink(at(path))),
    truncate: (path, len) => norm(`truncate ${path}`, () => fsp.truncate(at(path), len)),
    chmod: (path, mode) => norm(`chmod ${path}`, () => fsp.chmod(at(path), mode)),
    chown: (path, uid, gid) => norm(`chown ${path}`, () => fsp.chown(at(path), uid, gid)),
    utimes: (path, a, m) => norm(`utimes ${path}`, () => fsp.utimes(at(path), nsToSeconds(a), nsToSeconds(m))),
    readdir: (path) => norm(`readdir ${path}`, async () => (await fsp.readdir(at(path))).sort()),
    mkfifo: (path, mode) =>
      norm(`mkfifo ${path}`, async () => {
        try {
          await promisify(execFile)('mkfifo', ['-m', mode.toString(8), at(path)]);
        } catch (e) {
          throw new FsError('EIO', `mkfifo failed: ${(e as Error).message}`, e);
        }
      }),
    async dispose() {
      for (const fd of fds) await p.close(fd).catch(() => {});
      fds.clear();
      await opts.cleanup?.();
    },
  };
}

/** The reference: node:fs on a fresh temporary directory. */
export async function nativeFs(): Promise<FsUnderTest> {
  const root = await mkdtemp(join(tmpdir(), 'nx-native-'));
  return nodeFs(root, { name: 'native', cleanup: () => rm(root, { recursive: true, force: true }) });
}

// ------------------------------------------------------------------ engine

function fromEngineStat(s: EngineStat): FsStat {
  return {
    ino: s.ino,
    mode: s.mode,
    type: fileType(s.mode),
    perm: s.mode & 0o7777,
    nlink: s.nlink,
    uid: s.uid,
    gid: s.gid,
    size: s.size,
    atimeNs: s.atimeNs,
    mtimeNs: s.mtimeNs,
    ctimeNs: s.ctimeNs,
  };
}

export interface EngineFsView extends FsUnderTest {
  readonly engine: Engine;
  readonly ctx: OpContext;
}

/**
 * An FsUnderTest view of an existing engine acting as `ctx`. Each view has
 * its own descriptor table; dispose() releases the view's handles only.
 */
export function engineView(engine: Engine, ctx: OpContext, name = 'engine', cleanup?: () => Promise<void>): EngineFsView {
  const fds = new Set<number>();
  const e = engine;
  return {
    name,
    engine,
    ctx,
    caps: { timeGranularityNs: 1n, fifo: true },
    mkdir: (path, mode = 0o777, o = {}) => norm(`mkdir ${path}`, async () => void (await e.mkdir(path, mode, ctx, { parents: !!o.recursive }))),
    writeFile: (path, data, o = {}) => norm(`writeFile ${path}`, async () => void (await e.writeFile(path, toBuf(data), ctx, { mode: o.mode ?? 0o666 }))),
    readFile: (path) => norm(`readFile ${path}`, () => e.readFile(path, ctx)),
    open: (path, flags, mode = 0o666) =>
      norm(`open ${path}`, async () => {
        const fh = flags & O.CREAT ? (await e.create(path, flags, mode, ctx)).fh : await e.open(path, flags, ctx);
        fds.add(fh);
        return fh;
      }),
    read: (fd, len, pos) => norm(`read ${fd}`, () => e.read(fd, len, pos)),
    write: (fd, data, pos) => norm(`write ${fd}`, () => e.write(fd, toBuf(data), pos)),
    fsync: (fd) => norm(`fsync ${fd}`, () => e.fsync(fd)),
    close: (fd) =>
      norm(`close ${fd}`, async () => {
        await e.release(fd);
        fds.delete(fd);
      }),
    fstat: (fd) => norm(`fstat ${fd}`, async () => fromEngineStat(await e.fgetattr(fd))),
    ftruncate: (fd, len) => norm(`ftruncate ${fd}`, async () => void (await e.ftruncate(fd, len))),
    stat: (path) => norm(`stat ${path}`, async () => fromEngineStat(await e.getattr(path, ctx, true))),
    lstat: (path) => norm(`lstat ${path}`, async () => fromEngineStat(await e.getattr(path, ctx, false))),
    rename: (from, to) => norm(`rename ${from} ${to}`, () => e.rename(from, to, ctx)),
    unlink: (path) => norm(`unlink ${path}`, () => e.unlink(path, ctx)),
    rmdir: (path) => norm(`rmdir ${path}`, () => e.rmdir(path, ctx)),
    link: (existing, newPath) => norm(`link ${existing} ${newPath}`, async () => void (await e.link(existing, newPath, ctx))),
    symlink: (target, path) => norm(`symlink ${path}`, async () => void (await e.symlink(target, path, ctx))),
    readlink: (path) => norm(`readlink ${path}`, () => e.readlink(path, ctx)),
    truncate: (path, len) => norm(`truncate ${path}`, async () => void (await e.truncate(path, len, ctx))),
    chmod: (path, mode) => norm(`chmod ${path}`, async () => void (await e.chmod(path, mode, ctx))),
    chown: (path, uid, gid) => norm(`chown ${path}`, async () => void (await e.chown(path, uid, gid, ctx, true))),
    utimes: (path, a, m) => norm(`utimes ${path}`, async () => void (await e.utimens(path, a, m, ctx, true))),
    readdir: (path) =>
      norm(`readdir ${path}`, async () => {
        const names: string[] = [];
        const limit = 1000;
        let after: string | undefined;
        for (;;) {
          const page = await e.readdir(path, ctx, { after, limit });
          names.push(...page.map((x) => x.name));
          if (page.length < limit) break;
          after = page[page.length - 1]!.name;
        }
        return names.sort();
      }),
    mkfifo: (path, mode) => norm(`mkfifo ${path}`, async () => void (await e.mknod(path, S_IFIFO | (mode & 0o7777), 0, ctx))),
    async dispose() {
      for (const fd of fds) await e.release(fd).catch(() => {});
      fds.clear();
      await cleanup?.();
    },
  };
}

export interface EngineFs extends EngineFsView {
  readonly dataDir: string;
  readonly opened: OpenedDataDir;
}

/** The engine on a fresh data directory, acting as root (or `cred`). */
export async function engineFs(opts: { cred?: Cred; umask?: number } = {}): Promise<EngineFs> {
  const dataDir = await mkdtemp(join(tmpdir(), 'nx-engine-'));
  const opened = await openDataDir(dataDir);
  const ctx = opts.cred ? contextFor(opts.cred, { umask: opts.umask ?? 0o022 }) : opts.umask !== undefined ? contextFor(ROOT_CONTEXT.cred, { umask: opts.umask }) : ROOT_CONTEXT;
  const view = engineView(opened.engine, ctx, 'engine', async () => {
    try {
      await opened.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
  return Object.assign(view, { dataDir, opened });
}

/** Process umask the native reference runs with; the engine adapter uses the same. */
export function processUmask(): number {
  const u = process.umask(0o022);
  process.umask(u);
  return u;
}

export const ADAPTERS: FsAdapter[] = [
  { name: 'native', create: nativeFs },
  { name: 'engine', create: () => engineFs({ umask: processUmask() }) },
];

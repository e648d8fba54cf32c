// Types for fuse-native@2.2.6 with the Nexus patch (patches/fuse-native+2.2.6.patch,
// nexus_patch_version 4). native-notes/fuse-native.md describes every behaviour
// and what was measured; scripts/fuse-smoke.mjs checks it.
//
//   import Fuse from 'fuse-native';
//   import type { FuseOperations, FuseOpenOptions } from 'fuse-native';
declare module 'fuse-native' {
  /**
   * Every callback's first argument: 0 for success, or a negative errno
   * (Fuse.ENOENT is -2). read and write answer a byte count instead.
   * Patched (version 4): null or undefined (cb(), cb(null, ...)) count as 0;
   * any other non-number (a string, an Error) answers EIO with a process
   * warning (stock threw from process.nextTick and the daemon died).
   */
  type Errno = number | null | undefined;

  /**
   * The path of an op on an open file or directory. With `nullPathOk` it is
   * null once the name is gone (unlinked under `hardRemove`, renamed over,
   * or its directory removed): serve the op by its handle. Without
   * nullPathOk, such a flush still arrives with null, release and
   * releasedir with "-", and the other ops fail with ENOENT in libfuse.
   */
  type OpenPath = string | null;

  /** What getattr/fgetattr answer, and the stats of readdir/readdirPaged entries. Missing fields are 0. */
  interface FuseStat {
    mode?: number;
    uid?: number;
    gid?: number;
    /** 64-bit: a number (exact up to 2^53) or a BigInt. */
    size?: number | bigint;
    dev?: number;
    /** Defaults to 1. */
    nlink?: number;
    /** 64-bit (stock: 32-bit). Shows in stat and readdir d_ino with `useIno`. */
    ino?: number | bigint;
    rdev?: number;
    blksize?: number;
    /** 64-bit, in 512-byte units. */
    blocks?: number | bigint;
    /** Nanoseconds since the epoch (negative is fine); wins over atime/mtime/ctime. */
    atimeNs?: bigint;
    mtimeNs?: bigint;
    ctimeNs?: bigint;
    /** A Date or milliseconds (a fractional ms keeps its sub-ms part); "now" when missing and no *Ns. */
    atime?: Date | number;
    mtime?: Date | number;
    ctime?: Date | number;
  }

  /** What statfs answers. The six counts are 64-bit (a number exact up to 2^53, or a BigInt). */
  interface FuseStatfs {
    bsize?: number;
    frsize?: number;
    blocks?: number | bigint;
    bfree?: number | bigint;
    bavail?: number | bigint;
    files?: number | bigint;
    ffree?: number | bigint;
    /** Not part of the FUSE protocol: the kernel reports ffree for it. */
    favail?: number | bigint;
    fsid?: number;
    flag?: number;
    namemax?: number;
  }

  /**
   * Per-open flags, the optional third value of an open, create or opendir
   * answer: cb(0, fh, { directIo: true }). Each key given sets the matching
   * fuse_file_info bit for this open file before libfuse replies; a key left
   * out (or undefined) leaves it as libfuse prepared it, and mount-wide
   * options (autoCache, kernelCache, extraOptions: ['direct_io']) are added on
   * top by libfuse for open and create. An unknown key is ignored with a
   * process warning (once per key). Ignored on an error answer.
   *
   * For opendir the object is accepted but has no effect: libfuse 2.9's
   * high-level opendir replies to the kernel with its own fuse_file_info
   * (measured: a nonSeekable directory still seeks).
   */
  interface FuseOpenOptions {
    /**
     * fi->direct_io: reads and writes bypass the page cache and go to the
     * handler with the caller's size and offset, whatever size getattr
     * reported. For generated files (getattr size 0): cat and fs.readFile read
     * until a read answers 0. A short read is only a short read(2), not EOF.
     */
    directIo?: boolean;
    /** fi->keep_cache: do not drop this file's cached pages on open (libfuse's autoCache sets it by itself while mtime and size are unchanged). */
    keepCache?: boolean;
    /** fi->nonseekable: lseek and pread/pwrite on the descriptor fail with ESPIPE; read/write still advance the position. */
    nonSeekable?: boolean;
  }

  type DoneCb = (err?: Errno) => void;
  /**
   * Patched (version 6): ops that libfuse 2.9 follows with a getattr of the
   * same path (setattr's chmod/chown/truncate/ftruncate/utimens, mknod, mkdir,
   * symlink, link) may answer the resulting stat: that getattr is then served
   * from it in the native thread, without a second trip to JS.
   */
  type StatDoneCb = (err?: Errno, stat?: FuseStat) => void;
  type OpenCb = (err: Errno, fh?: number, options?: FuseOpenOptions, stat?: FuseStat) => void;

  /**
   * The filesystem's handlers; implement the ones you need (an op left out
   * answers EPERM or ENOSYS, as libfuse decides). Paths are absolute within
   * the mount. File handles (`fh`) are uint32, and 0 means "no handle".
   *
   * Patched (version 4): each op is answered once (a second callback, or a
   * late one after the timeout, is ignored). A handler that throws, a
   * promise it returns that rejects, a callback whose answer cannot be
   * packed (e.g. a stat with a string mtime, readlink answering a number)
   * answers EIO and emits a process warning naming the op and the path;
   * the daemon keeps running.
   */
  interface FuseOperations {
    init?(cb: DoneCb): void;
    error?(cb: DoneCb): void;
    access?(path: string, mode: number, cb: DoneCb): void;
    statfs?(path: string, cb: (err: Errno, statfs?: FuseStatfs) => void): void;
    getattr?(path: string, cb: (err: Errno, stat?: FuseStat) => void): void;
    /**
     * Patched: stock called getattr(path) here. path null: see OpenPath.
     * Called for GETATTR requests that carry the handle (lseek SEEK_END, reads
     * past the cached size, libfuse's reply to ftruncate), not for fstat(2).
     */
    fgetattr?(path: OpenPath, fh: number, cb: (err: Errno, stat?: FuseStat) => void): void;
    flush?(path: OpenPath, fh: number, cb: DoneCb): void;
    /** Note the order: (path, datasync, fh), not (path, fh, datasync). */
    fsync?(path: OpenPath, datasync: number, fh: number, cb: DoneCb): void;
    fsyncdir?(path: OpenPath, datasync: number, fh: number, cb: DoneCb): void;
    /**
     * Stock readdir: the whole directory in one answer. Not called when
     * readdirPaged exists. Add '.' and '..' yourself; pass stats for d_type and
     * (with useIno) d_ino.
     */
    readdir?(path: OpenPath, cb: (err: Errno, names?: string[], stats?: FuseStat[]) => void): void;
    /**
     * Patched: one page of a directory. offset is 0 for the first page (and
     * after rewinddir), else one of the nextOffsets handed out; fh is what
     * opendir returned (0 without opendir). Answer names, their stats (or
     * null: d_type unknown) and nextOffsets[i], the offset to continue after
     * entry i (an integer in 1..2^53-1). An empty page, cb(0), ends the
     * directory. A malformed page answers EIO with a process warning.
     */
    readdirPaged?(
      path: OpenPath,
      offset: number,
      fh: number,
      cb: (err: Errno, names?: string[], stats?: FuseStat[] | null, nextOffsets?: Array<number | bigint>) => void,
    ): void;
    truncate?(path: string, size: number, cb: StatDoneCb): void;
    /** path null: see OpenPath (libfuse passes null only for a setattr that changes the size alone). */
    ftruncate?(path: OpenPath, fh: number, size: number, cb: StatDoneCb): void;
    /** Patched: BigInt nanoseconds since the epoch, or null for "leave unchanged" (UTIME_OMIT). UTIME_NOW arrives resolved. */
    utimens?(path: string, atime: bigint | null, mtime: bigint | null, cb: StatDoneCb): void;
    readlink?(path: string, cb: (err: Errno, linkname?: string) => void): void;
    /** uid/gid are uint32: 0xffffffff means "unchanged". */
    chown?(path: string, uid: number, gid: number, cb: StatDoneCb): void;
    chmod?(path: string, mode: number, cb: StatDoneCb): void;
    mknod?(path: string, mode: number, dev: number, cb: StatDoneCb): void;
    /** value points into libfuse memory: copy what you keep. */
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: DoneCb): void;
    /**
     * Answer cb(0, null) for "no such attribute" (ENODATA). Always answer the
     * whole value: the binding answers a size query (buffer size 0) with its
     * length, and ERANGE when it is longer than the caller's buffer (patched
     * in version 4; stock failed with EIO).
     */
    getxattr?(path: string, name: string, position: number, cb: (err: Errno, value?: Buffer | null) => void): void;
    /**
     * Answer all names: the binding answers a size query with the exact size
     * (plus 128 on macOS), and ERANGE when the caller's buffer is too small
     * (patched in version 4; stock threw a RangeError that killed the daemon).
     */
    listxattr?(path: string, cb: (err: Errno, names?: string[]) => void): void;
    removexattr?(path: string, name: string, cb: DoneCb): void;
    /** flags = fi->flags (O_TRUNC is not among them: it arrives as truncate(path, 0) after open). cb(0, fh, options?): see FuseOpenOptions. */
    open?(path: string, flags: number, cb: OpenCb): void;
    /** flags: always 0 (stock bug: fuse-native hands opendir the fh, which is 0 then). Options are accepted but libfuse 2.9 drops them. */
    opendir?(path: string, flags: number, cb: OpenCb): void;
    /**
     * read into buf (it points into libfuse memory and is detached after cb),
     * answer cb(bytesRead). Returning fewer bytes than len: without directIo
     * the kernel takes it as end of file; with directIo it is a short read and
     * only 0 ends the file.
     */
    read?(path: OpenPath, fh: number, buf: Buffer, len: number, offset: number, cb: (bytesRead: number) => void): void;
    /** buf points into libfuse memory and is detached after cb: copy what you keep. Answer cb(len) for a whole write. */
    write?(path: OpenPath, fh: number, buf: Buffer, len: number, offset: number, cb: (bytesWritten: number) => void): void;
    release?(path: OpenPath, fh: number, cb: DoneCb): void;
    releasedir?(path: OpenPath, fh: number, cb: DoneCb): void;
    /**
     * Patched: declared with four parameters (create.length === 4) it is
     * called create(path, mode, flags, cb) with flags = fi->flags; any other
     * arity (a default value or a rest parameter counts as fewer) gets the
     * stock create(path, mode, cb). mode has the umask applied already.
     * cb(0, fh, options?): see FuseOpenOptions.
     */
    create?: ((path: string, mode: number, flags: number, cb: OpenCb) => void) | ((path: string, mode: number, cb: OpenCb) => void);
    unlink?(path: string, cb: DoneCb): void;
    rename?(src: string, dest: string, cb: DoneCb): void;
    link?(src: string, dest: string, cb: StatDoneCb): void;
    /** Called (target, linkPath). */
    symlink?(target: string, path: string, cb: StatDoneCb): void;
    mkdir?(path: string, mode: number, cb: StatDoneCb): void;
    rmdir?(path: string, cb: DoneCb): void;
  }

  type OpName = Exclude<keyof FuseOperations, 'readdirPaged'>;

  interface FuseOptions {
    // Mount options (libfuse -o). Every valued option is passed unless it is
    // undefined, null or false (so 0 reaches libfuse); commas and backslashes
    // in values are escaped. The whole option string must stay under 1024 bytes.
    debug?: boolean;
    allowOther?: boolean;
    allowRoot?: boolean;
    autoUnmount?: boolean;
    defaultPermissions?: boolean;
    blkdev?: boolean;
    blksize?: number;
    maxRead?: number;
    fd?: number;
    userId?: number;
    fsname?: string;
    subtype?: string;
    kernelCache?: boolean;
    autoCache?: boolean;
    /** A number is written in octal (0o022 becomes umask=0022). */
    umask?: number | string;
    uid?: number;
    gid?: number;
    entryTimeout?: number;
    negativeTimeout?: number;
    attrTimeout?: number;
    acAttrTimeout?: number;
    noforget?: boolean;
    remember?: number;
    modules?: string;
    /** use_ino: st_ino and readdir d_ino are the filesystem's. */
    useIno?: boolean;
    /**
     * hard_remove (patched, version 4): unlinking (or renaming over) a file
     * that is still open removes it for real instead of renaming it to
     * .fuse_hidden* (which shows in listings and makes rmdir fail with
     * ENOTEMPTY). Its name is then gone: set nullPathOk too, or read, write,
     * fsync etc. on the open descriptor fail with ENOENT. fstat(2) on it
     * fails with ENOENT either way (libfuse 2.9 has no path for the GETATTR
     * the kernel sends without a handle).
     */
    hardRemove?: boolean;
    /** big_writes; default true. */
    bigWrites?: boolean;
    /** max_write; default 131072 with bigWrites; up to 1048576 with the Nexus patch (version 13) on kernels with FUSE_MAX_PAGES. */
    maxWrite?: number;
    /** Raw -o options ('name' or 'name=value'), appended as given (escape commas yourself), e.g. ['direct_io'] for every file. */
    extraOptions?: string[];
    /** macOS only. */
    displayFolder?: boolean;
    name?: string;
    // Not mount options.
    /** flag_utime_omit_ok; default true. false: libfuse drops a setattr that sets only one of atime/mtime. */
    utimeOmit?: boolean;
    /**
     * flag_nullpath_ok (patched, version 4): read, write, flush, fsync,
     * release, fgetattr, ftruncate, readdir/readdirPaged, releasedir and
     * fsyncdir of an open file or directory whose name is gone reach the
     * handler with path null (see OpenPath) instead of failing with ENOENT
     * (measured: read, write, fgetattr, ftruncate, fsync, flush, release,
     * releasedir).
     * Handlers must then serve them by fh. Default false.
     */
    nullPathOk?: boolean;
    /**
     * Milliseconds before an unanswered op fails with ETIMEDOUT (default
     * 15000); false disables it. Per op: { default: 15000, readlink: 500,
     * fsync: false } (readdirPaged uses the key readdir).
     */
    timeout?: number | false | ({ default?: number } & { [op in OpName]?: number | false });
    /** Unmount a stale mount (ENOTCONN) at the mount point first. */
    force?: boolean;
    /** Create the mount point if it is missing. */
    mkdir?: boolean;
  }

  /** The caller of the op being dispatched. */
  interface FuseContext {
    uid: number;
    gid: number;
    /** The calling thread's id (map it to the process through /proc/<tid>/status Tgid). */
    pid: number;
    /** Non-zero only for create/mkdir/mknod, when the kernel sends it. */
    umask: number;
  }

  class Fuse {
    constructor(mnt: string, ops: FuseOperations, opts?: FuseOptions);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    /**
     * Nexus patch (version 5): drop what the kernel caches, from libuv's
     * threadpool. `epoch`: every cached name (positive or negative) is looked
     * up again before its next use (FUSE_NOTIFY_INC_EPOCH, kernel 6.16+);
     * `nodeids`: inodes whose attributes (with `pages`, also cached pages) are
     * dropped, 1 being the root (the only node id the high-level API exposes).
     * Version 8: `open`: also every inode with an open file or directory.
     * Version 7: `inos` (st_ino values, with useIno): every node id the kernel
     * holds for each, i.e. one kernel inode per name of a hard-linked file.
     * The result's `epoch` is 0 or the negative errno the kernel answered
     * (-22, EINVAL: a kernel without epochs); `complete` is false when the
     * binding's node id table may miss some (then bump the epoch instead).
     * Errors only when not mounted.
     */
    invalidate(
      opts: { epoch?: boolean; nodeids?: number[]; inos?: number[]; open?: boolean; pages?: boolean },
      cb: (err: Error | null, result: { epoch: number; inodeErrors: number; complete: boolean }) => void,
    ): void;
    /** errno('ENOENT') === Fuse.ENOENT; -1 for an unknown name. */
    errno(code: string): number;
    /**
     * The caller of the op being dispatched: valid synchronously inside a
     * handler (before its first await or callback), a fresh object per op.
     * Outside a handler it returns null, which this type does not say, to
     * keep call sites inside handlers simple.
     */
    static context(): FuseContext;
    /** fusermount -uz (lazy). */
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    static isConfigured(cb: (err: Error | null, yes: boolean) => void): void;
    static configure(cb: (err: Error | null) => void): void;
    static unconfigure(cb: (err: Error | null) => void): void;
    static beforeMount(cb: (err: Error | null) => void): void;
    static beforeUnmount(cb: (err: Error | null) => void): void;
    /** 4: hardRemove, nullPathOk, xattr ERANGE, handler exceptions answer EIO (3: per-open flags; 2: paged readdir, create flags, 64-bit statfs; 1: caller context, big_writes, ns times, 64-bit ino). */
    static readonly NEXUS_PATCH_VERSION: number;
    // Negative errno values (Linux), for callbacks.
    static readonly EPERM: number;
    static readonly ENOENT: number;
    static readonly ESRCH: number;
    static readonly EINTR: number;
    static readonly EIO: number;
    static readonly ENXIO: number;
    static readonly E2BIG: number;
    static readonly EBADF: number;
    static readonly EAGAIN: number;
    static readonly ENOMEM: number;
    static readonly EACCES: number;
    static readonly EBUSY: number;
    static readonly EEXIST: number;
    static readonly EXDEV: number;
    static readonly ENODEV: number;
    static readonly ENOTDIR: number;
    static readonly EISDIR: number;
    static readonly EINVAL: number;
    static readonly ENFILE: number;
    static readonly EMFILE: number;
    static readonly ETXTBSY: number;
    static readonly EFBIG: number;
    static readonly ENOSPC: number;
    static readonly ESPIPE: number;
    static readonly EROFS: number;
    static readonly EMLINK: number;
    static readonly EPIPE: number;
    static readonly ERANGE: number;
    static readonly EDEADLK: number;
    static readonly ENAMETOOLONG: number;
    static readonly ENOLCK: number;
    static readonly ENOSYS: number;
    static readonly ENOTEMPTY: number;
    static readonly ELOOP: number;
    static readonly EWOULDBLOCK: number;
    static readonly ENODATA: number;
    static readonly EOVERFLOW: number;
    static readonly EOPNOTSUPP: number;
    static readonly ENOTCONN: number;
    static readonly ETIMEDOUT: number;
    static readonly ESTALE: number;
    static readonly EDQUOT: number;
  }
  namespace Fuse {
    export {
      Errno, OpenPath, FuseStat, FuseStatfs, FuseOpenOptions, DoneCb, OpenCb, FuseOperations, FuseOptions, FuseContext,
    };
  }
  export = Fuse;
}

/**
 * POSIX semantics over the two stores: path resolution, permissions, the
 * open-file table, dirty files and commits. Nothing here knows about FUSE,
 * HTTP or the CLI; callers pass an OpContext saying who is asking.
 */
import { constants as fsc, promises as fsp, existsSync, unlinkSync } from 'node:fs';
import { NexusError, fromSystemError } from '../errors.js';
import type { BlobId, BlobStore } from '../blobs/blob-store.js';
import type { MetaStore } from '../meta/meta-store.js';
import {
  ROOT_INO, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, S_ISGID, S_ISUID,
  isDir, isLnk, isReg, type ChunkRef, type DirEntry, type EventAction, type Inode, type RestoreResult,
} from '../meta/types.js';
import { nowNs, type TimeNs } from '../util/time.js';
import { KeyedMutex, RwGate } from '../util/mutex.js';
import { logger } from '../util/logger.js';
import { FileHashers } from '../blobs/file-hashers.js';
import { ChunkReader } from './chunk-reader.js';
import { GcWatch } from './gc-watch.js';
import { DirtyFile, readCommitted, type StagingMeta } from './dirty-file.js';
import { MemoryFile } from './memory-file.js';
import { Journal, type JournalRecord } from './journal.js';
import { decodeTag, recoveredContext, type WriterTag } from './writer-tag.js';
import { checkUnsyncedVersions, SYNCED_VID_KEY } from './unsynced-check.js';
import { checkName, dirname, normalizePath, parsePath, splitPath, PATH_MAX } from './names.js';
import type { OpContext } from './credentials.js';
import { inGroup } from './credentials.js';
import {
  R_OK, W_OK, X_OK, chmodResult, dropPrivilegeBits, mayAccess, requireAccess, requireMayDelete, requireOwner,
} from './permissions.js';

export interface Stat {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blocks: number;
  blksize: number;
  atimeNs: TimeNs;
  mtimeNs: TimeNs;
  ctimeNs: TimeNs;
  btimeNs: TimeNs;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namemax: number;
}

export type TimeSpec = TimeNs | 'now' | 'omit';

export interface ReaddirEntry {
  name: string;
  stat: Stat;
}

interface Handle {
  ino: number;
  readable: boolean;
  writable: boolean;
  append: boolean;
  ctx: OpContext;
}

/** Linux's O_ACCMODE (node does not export it). */
const O_ACCMODE = 3;
const MAX_SYMLINKS = 40;
/** Small files held in memory at once (each at most SMALL_FILE_MAX); more go to staging files. */
const MAX_MEMORY_FILES = 256;
const JOURNAL_COMPACT_BYTES = 8 * 1024 * 1024;

/** Operations that name a new or removed entry: they differ in the errno for `.`/`..` as the name. */
type NamingOp = 'mkdir' | 'rmdir' | 'unlink' | 'create' | 'link' | 'rename';

function dotError(op: NamingOp, last: string, path: string): NexusError {
  switch (op) {
    case 'mkdir':
    case 'link':
      return new NexusError('ALREADY_EXISTS', `Already exists: ${path}`);
    case 'unlink':
    case 'create':
      return new NexusError('IS_A_DIRECTORY', `Is a directory: ${path}`);
    case 'rmdir':
      return last === '..' || last === '/' ? new NexusError('NOT_EMPTY', `Directory not empty: ${path}`) : new NexusError('INVALID_ARGUMENT', `Cannot remove '.': ${path}`);
    case 'rename':
      return new NexusError('BUSY', `Cannot rename '${last}': ${path}`);
  }
}

/** Uncommitted changes of one file: in memory (small) or in staging files. */
type Pending = DirtyFile | MemoryFile;
const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 65536;
const SYNC_INTERVAL_MS = 1000;
const RESERVE_BYTES = 4 * 1024 * 1024;

export interface EngineOptions {
  stagingDir: string;
  /**
   * A file of RESERVE_BYTES kept in the data directory and deleted the moment
   * the disk is full, so metadata commits (an rm that frees space) still go
   * through; it comes back once space does.
   */
  reservePath?: string;
  /** Where statfs reads free space from (the data directory). */
  statfsPath: string;
}

export class Engine {
  private readonly reader: ChunkReader;
  /** Worker threads that hash staged chunks on other cores. */
  private readonly hashers = new FileHashers();
  private readonly handles = new Map<number, Handle>();
  private nextFh = 1;
  private readonly openCount = new Map<number, number>();
  /** Open handles that may write, per inode (release and snapshots ask on every call). */
  private readonly writerCount = new Map<number, number>();
  private readonly dirty = new Map<number, Pending>();
  private journal!: Journal;
  private readonly locks = new KeyedMutex<number>();
  /** Commits hold it shared; garbage collection's sweep holds it exclusive (see collectGarbage). */
  readonly commitGate = new RwGate();
  /** One per running GC: every blob id a commit referenced since it started (its mark is older). */
  private readonly gcWatches = new Set<GcWatch>();
  /** Chunk lists of recent versions: versions never change, so this never goes stale. */
  private readonly versionCache = new Map<number, ChunkRef[]>();
  private readonly log = logger('engine');
  /** Blobs written by commits not yet made durable by the syncer. */
  private unsynced = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private closed = false;

  constructor(
    readonly meta: MetaStore,
    readonly blobs: BlobStore,
    private readonly opts: EngineOptions,
  ) {
    this.reader = new ChunkReader(blobs);
    this.syncTimer = setInterval(() => {
      void this.ensureReserve().catch(() => {});
      void this.syncNow().catch((e) => this.log.error({ err: e }, 'background sync failed'));
    }, SYNC_INTERVAL_MS);
    this.syncTimer.unref();
  }

  // ---------------------------------------------------------------- lifecycle

  /** Commit what a crashed daemon left staged and drop inodes nobody links to. */
  async recover(): Promise<{ recoveredFiles: number; droppedOrphans: number }> {
    // First undo what a power cut may have left half-durable: pending changes
    // of a file whose content was rolled back no longer apply to it.
    const { rolledBackInodes: rolledBack } = await checkUnsyncedVersions(this.meta, this.blobs, this.log);
    this.syncedMark = Number((await this.meta.getSetting(SYNCED_VID_KEY)) ?? 0);
    const { journal, records } = await Journal.open(`${this.opts.stagingDir}/journal`, (await this.meta.maxJournalSeq()) + 1);
    this.journal = journal;
    let recoveredFiles = await this.replayJournal(records.filter((r) => !rolledBack.has(r.ino)));
    const byIno = new Map<number, { meta?: StagingMeta; writer?: WriterTag | null; chunks: number[] }>();
    for (const name of await fsp.readdir(this.opts.stagingDir)) {
      const m = /^(\d+)\.(meta|writer|\d+)$/.exec(name);
      if (name === 'journal') continue;
      if (!m) {
        await fsp.rm(`${this.opts.stagingDir}/${name}`, { force: true });
        continue;
      }
      const ino = Number(m[1]);
      const e = byIno.get(ino) ?? { chunks: [] };
      if (m[2] === 'meta') {
        try {
          e.meta = JSON.parse(await fsp.readFile(`${this.opts.stagingDir}/${name}`, 'utf8')) as StagingMeta;
        } catch (err) {
          // Unreadable (written by a version without atomic meta writes): the
          // staged chunks alone still apply to the current version.
          this.log.error({ err, file: name }, 'unreadable staging meta file ignored');
        }
      }
      else if (m[2] === 'writer') e.writer = decodeTag(await fsp.readFile(`${this.opts.stagingDir}/${name}`));
      // An empty chunk file holds no acknowledged byte: made ahead of a writer, or a crash came before its first write.
      else if ((await fsp.stat(`${this.opts.stagingDir}/${name}`)).size === 0) await fsp.rm(`${this.opts.stagingDir}/${name}`, { force: true });
      else e.chunks.push(Number(m[2]));
      byIno.set(ino, e);
    }
    for (const [ino, e] of byIno) {
      const node = await this.meta.getInode(ino);
      const nothingStaged = e.meta === undefined && e.chunks.length === 0;
      const stale = !node || !isReg(node.mode) || nothingStaged || rolledBack.has(ino) || (e.meta !== undefined && e.meta.baseVid !== node.vid);
      if (stale) {
        // Already committed (the version moved on), the file is gone, or only a writer tag was left.
        for (const k of e.chunks) await fsp.rm(`${this.opts.stagingDir}/${ino}.${k}`, { force: true });
        for (const suffix of ['meta', 'writer']) await fsp.rm(`${this.opts.stagingDir}/${ino}.${suffix}`, { force: true });
        continue;
      }
      const base = await this.baseOf(node);
      const df = await DirtyFile.recover(ino, this.opts.stagingDir, this.reader, this.hashers, e.meta, base, e.chunks, e.writer ?? null);
      if (e.writer) df.lastWriter = recoveredContext(e.writer);
      df.mtimeNs = df.ctimeNs = nowNs();
      this.dirty.set(ino, df);
      await this.commitLocked(ino, { durable: true });
      this.dirty.delete(ino);
      recoveredFiles++;
    }
    await this.ensureReserve().catch(() => {});
    const orphans = await this.meta.orphans();
    for (const ino of orphans) await this.meta.dropInode(ino);
    if (recoveredFiles || orphans.length) this.log.warn({ recoveredFiles, droppedOrphans: orphans.length }, 'recovered after an unclean shutdown');
    return { recoveredFiles, droppedOrphans: orphans.length };
  }

  /** Commit small-file writes that were journaled but not committed when the last daemon died. */
  private async replayJournal(records: JournalRecord[]): Promise<number> {
    const byIno = new Map<number, JournalRecord[]>();
    for (const r of records) {
      const list = byIno.get(r.ino) ?? [];
      if (r.kind === 'drop') byIno.set(r.ino, list.filter((x) => x.seq > r.offset));
      else byIno.set(r.ino, [...list, r]);
    }
    let n = 0;
    for (const [ino, recs] of byIno) {
      const node = await this.meta.getInode(ino);
      if (!node || !isReg(node.mode) || node.nlink === 0) continue;
      const todo = recs.filter((r) => r.seq > node.jseq);
      if (todo.length === 0) continue;
      const mf = new MemoryFile(ino, this.journal, await this.memoryBaseOf(node));
      for (const r of todo) {
        if (r.kind === 'write') mf.applyWrite(r.offset, r.data);
        else if (r.kind === 'truncate') mf.applyTruncate(r.offset);
        else if (r.kind === 'writer') {
          const tag = decodeTag(r.data);
          mf.lastWriter = tag ? recoveredContext(tag) : null;
        }
        mf.lastSeq = r.seq;
      }
      mf.mtimeNs = mf.ctimeNs = nowNs();
      this.dirty.set(ino, mf);
      await this.commitLocked(ino, { durable: true });
      this.dirty.delete(ino);
      n++;
    }
    this.journal.compact(0);
    return n;
  }

  /** Commit every dirty file and make everything durable. */
  async flushAll(): Promise<void> {
    for (const ino of [...this.dirty.keys()]) await this.locks.run(ino, () => this.commitLocked(ino, { durable: false }));
    await this.syncNow();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all(this.reclaiming);
    let flushed = true;
    try {
      await this.flushAll();
    } catch (e) {
      // Typically a full disk. Nothing is lost: pending writes stay in the
      // journal and staging files, and the next start commits them.
      flushed = false;
      this.log.error({ err: e }, 'could not commit pending writes at close: they stay staged for the next start');
    }
    this.closed = true;
    clearInterval(this.syncTimer);
    for (const df of this.dirty.values()) await df.closeAll().catch(() => {});
    await this.hashers.close();
    if (this.journal) {
      if (!flushed) {
        try {
          this.journal.sync();
        } catch (e) {
          this.log.error({ err: e }, 'journal sync at close failed');
        }
      }
      this.journal.closeAndRemove();
    }
    await this.blobs.close();
    await this.meta.close();
  }

  /** Set by whoever composes the engine with garbage collection (services). */
  private reclaimer: (() => Promise<unknown>) | undefined;
  /** The disk filled up since the last reclaim. */
  private full = false;

  /**
   * Deleting a file frees no space by itself (its blobs stay until garbage
   * collection). After the disk filled up, a delete runs the collector, so
   * space really comes back.
   */
  setReclaimer(fn: () => Promise<unknown>): void {
    this.reclaimer = fn;
  }

  /** Note a full disk (any ENOSPC), then rethrow. */
  private noteFull(e: unknown): never {
    if (fromSystemError(e).code === 'NO_SPACE') this.full = true;
    throw e;
  }

  /** Files were dropped since the collector last ran: an ENOSPC may be cured by collecting. */
  private freedSinceReclaim = false;
  /** Collections in flight (close waits for them). */
  private readonly reclaiming = new Set<Promise<void>>();

  /**
   * While the disk is full, every delete collects garbage (in the background,
   * runs coalesced: an `rm -rf` does not wait for it) until there is room again.
   */
  private reclaimIfFull(): void {
    if (!this.full || !this.reclaimer) return;
    void this.reclaim()
      .then(() => fsp.statfs(this.opts.statfsPath))
      .then((s) => {
        if (s.bavail * s.bsize >= Math.max(RESERVE_BYTES * 2, (s.blocks * s.bsize) / 10)) this.full = false;
      })
      .catch(() => {});
  }

  /** Run the collector (the reclaimer coalesces overlapping calls into one run). */
  private reclaim(): Promise<void> {
    const run = (async () => {
      this.freedSinceReclaim = false;
      try {
        // Pruning version rows needs room in SQLite's WAL: on a full disk, the reserve gives it.
        if (this.reclaimer) await this.freeingSpace(this.reclaimer);
      } catch (e) {
        this.log.warn({ err: e }, 'reclaiming space failed');
      }
      // Put the reserve back at once if the collection made room, before writers take it.
      await this.ensureReserve().catch(() => {});
    })();
    this.reclaiming.add(run);
    void run.finally(() => this.reclaiming.delete(run));
    return run;
  }

  /**
   * A write that hit ENOSPC after files were deleted: their blobs may only be
   * waiting for the collector. Collect, then try once more. `fn` must be safe
   * to repeat (a write of the same bytes at the same offset is).
   */
  private async retryAfterReclaim<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (fromSystemError(e).code !== 'NO_SPACE') throw e;
      this.full = true;
      if (!this.freedSinceReclaim || !this.reclaimer) throw e;
      await this.reclaim();
      return fn().catch((e2) => this.noteFull(e2));
    }
  }

  /**
   * Operations that free space must work on a full disk: on ENOSPC/SQLITE_FULL
   * give back the reserve and try once more.
   */
  private async freeingSpace<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (fromSystemError(e).code !== 'NO_SPACE') throw e;
      this.releaseReserve();
      return fn();
    }
  }

  /**
   * The disk is full and an operation that frees space needs room to commit:
   * give back the reserve (only then: writers would eat it otherwise).
   */
  releaseReserve(): void {
    if (!this.opts.reservePath) return;
    try {
      unlinkSync(this.opts.reservePath);
      this.log.warn('data directory is full: released the space reserve');
    } catch {
      // already gone
    }
  }

  /** Keep the reserve file in place while there is room for it (and some). */
  private async ensureReserve(): Promise<void> {
    const path = this.opts.reservePath;
    if (!path || existsSync(path)) return;
    const s = await fsp.statfs(this.opts.statfsPath);
    if (s.bavail * s.bsize < RESERVE_BYTES * 2) return;
    await fsp.writeFile(path, Buffer.alloc(RESERVE_BYTES)).catch(() => fsp.rm(path, { force: true }));
  }

  /** Make blobs durable, then let the metadata that names them reach the disk. */
  async syncNow(): Promise<void> {
    while (this.syncing) await this.syncing;
    if (this.closed) return;
    if (!this.unsynced) {
      // Every blob written so far is durable (no sync in flight, none pending):
      // versions committed since (dedup, truncates) need no check after a power cut.
      const upTo = await this.meta.maxVersionId();
      if (upTo > this.syncedMark) await this.markSynced(upTo).catch(() => {});
      return;
    }
    this.unsynced = false;
    this.syncing = (async () => {
      try {
        const upTo = await this.meta.maxVersionId();
        await this.blobs.syncAll();
        await this.markSynced(upTo);
        await this.meta.checkpoint();
      } catch (e) {
        // A full disk: try again next time, once space is back.
        if (fromSystemError(e).code !== 'NO_SPACE') throw e;
        this.unsynced = true;
        this.log.warn('data directory is full: checkpoint postponed');
      }
    })();
    try {
      await this.syncing;
    } finally {
      this.syncing = undefined;
    }
  }

  /** Highest version whose blobs are known durable (see unsynced-check.ts). */
  private syncedMark = 0;

  private async markSynced(vid: number): Promise<void> {
    await this.meta.setSetting(SYNCED_VID_KEY, String(vid));
    this.syncedMark = vid;
  }

  // ---------------------------------------------------------------- resolution

  /** Resolve a path to its inode. `follow`: follow a symlink in the last component. */
  async resolve(path: string, ctx: OpContext, follow = false): Promise<Inode> {
    const p = parsePath(path);
    // A trailing slash names a directory: follow a final symlink, refuse anything else.
    const node = await this.walk(ROOT_INO, p.parts, ctx, follow || p.mustBeDir, { links: 0 });
    if (p.mustBeDir && !isDir(node.mode)) throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${path}`);
    return node;
  }

  private async walk(start: number, parts: string[], ctx: OpContext, follow: boolean, budget: { links: number }): Promise<Inode> {
    let cur = await this.mustInode(start);
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (!isDir(cur.mode)) throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${part}`);
      requireAccess(cur, ctx.cred, X_OK, part);
      let next: Inode | undefined;
      if (part === '..') next = await this.mustInode((await this.meta.parentOf(cur.ino)) ?? ROOT_INO);
      else next = await this.meta.lookup(cur.ino, part);
      if (!next) throw new NexusError('NOT_FOUND', `No such file or directory: /${parts.slice(0, i + 1).join('/')}`);
      const last = i === parts.length - 1;
      if (isLnk(next.mode) && (!last || follow)) {
        if (++budget.links > MAX_SYMLINKS) throw new NexusError('SYMLINK_LOOP');
        const target = next.target ?? '';
        const from = target.startsWith('/') ? ROOT_INO : cur.ino;
        next = await this.walk(from, splitPath('/' + target), ctx, true, budget);
      }
      cur = next;
    }
    return cur;
  }

  /**
   * The canonical path of an existing file: every symlink followed, every `..`
   * taken physically. Access checks use it, so a link can never carry a
   * caller outside the subtree it was granted.
   */
  async realpath(path: string, ctx: OpContext): Promise<string> {
    let todo = splitPath(path);
    // One pass: the inodes along the canonical path, so each step is one lookup.
    const out: string[] = [];
    const inodes: Inode[] = [await this.mustInode(ROOT_INO)];
    let links = 0;
    while (todo.length) {
      const part = todo.shift()!;
      if (part === '..') {
        if (out.length) {
          out.pop();
          inodes.pop();
        }
        continue;
      }
      const dir = inodes[inodes.length - 1]!;
      if (!isDir(dir.mode)) throw new NexusError('NOT_A_DIRECTORY', `Not a directory: /${out.join('/')}`);
      requireAccess(dir, ctx.cred, X_OK, part);
      const node = await this.meta.lookup(dir.ino, part);
      if (!node) throw new NexusError('NOT_FOUND', `No such file or directory: /${[...out, part].join('/')}`);
      if (isLnk(node.mode)) {
        if (++links > MAX_SYMLINKS) throw new NexusError('SYMLINK_LOOP');
        const target = node.target ?? '';
        if (target.startsWith('/')) {
          out.length = 0;
          inodes.length = 1;
        }
        todo = [...splitPath('/' + target), ...todo];
        continue;
      }
      out.push(part);
      inodes.push(node);
    }
    return '/' + out.join('/');
  }

  /**
   * Resolve the directory that holds the last component, and check that
   * component as a name. `.` or `..` as the last component gets the errno
   * Linux gives for the operation (`op`).
   */
  private async resolveParent(path: string, ctx: OpContext, op: NamingOp): Promise<{ parent: Inode; name: string; mustBeDir: boolean }> {
    const p = parsePath(path);
    if (p.last === '.' || p.last === '..') {
      // Make ENOENT/ENOTDIR on the way win, as the kernel's walk does.
      await this.walk(ROOT_INO, p.parts, ctx, true, { links: 0 });
      throw dotError(op, p.last, path);
    }
    const parts = [...p.parts];
    const name = parts.pop();
    if (name === undefined) throw dotError(op, '/', path);
    checkName(name);
    const parent = await this.walk(ROOT_INO, parts, ctx, true, { links: 0 });
    if (!isDir(parent.mode)) throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${path}`);
    return { parent, name, mustBeDir: p.mustBeDir };
  }

  private async mustInode(ino: number): Promise<Inode> {
    const n = await this.meta.getInode(ino);
    if (!n) throw new NexusError('NOT_FOUND', `No such inode: ${ino}`);
    return n;
  }

  // ---------------------------------------------------------------- attributes

  private statOf(node: Inode): Stat {
    const df = this.dirty.get(node.ino);
    const size = df ? df.size : node.size;
    const alloc = df ? Math.min(size, node.alloc + df.stagedBytes) : node.alloc;
    return {
      ino: node.ino,
      mode: node.mode,
      nlink: node.nlink,
      uid: node.uid,
      gid: node.gid,
      rdev: node.rdev,
      size,
      blocks: Math.ceil(alloc / 4096) * 8,
      blksize: 4096,
      atimeNs: node.atimeNs,
      mtimeNs: df ? df.mtimeNs : node.mtimeNs,
      ctimeNs: df && df.ctimeNs > node.ctimeNs ? df.ctimeNs : node.ctimeNs,
      btimeNs: node.btimeNs,
    };
  }

  async getattr(path: string, ctx: OpContext, follow = false): Promise<Stat> {
    return this.statOf(await this.resolve(path, ctx, follow));
  }

  async fgetattr(fh: number): Promise<Stat> {
    return this.statOf(await this.mustInode(this.handle(fh).ino));
  }

  async access(path: string, mask: number, ctx: OpContext): Promise<void> {
    const node = await this.resolve(path, ctx, true);
    requireAccess(node, ctx.cred, mask & 7, path);
  }

  async chmod(path: string, mode: number, ctx: OpContext): Promise<Stat> {
    const node = await this.resolve(path, ctx, true);
    requireOwner(node, ctx.cred, path);
    return this.statOf(await this.meta.setAttrs(node.ino, { mode: chmodResult(node, mode, ctx.cred), ctimeNs: nowNs() }));
  }

  /** uid/gid of -1 leave that id unchanged, as chown(2). */
  async chown(path: string, uid: number, gid: number, ctx: OpContext, follow = false): Promise<Stat> {
    const node = await this.resolve(path, ctx, follow);
    const newUid = uid === -1 ? node.uid : uid;
    const newGid = gid === -1 ? node.gid : gid;
    if (ctx.cred.uid !== 0) {
      if (ctx.cred.uid !== node.uid || newUid !== node.uid || !(newGid === node.gid || inGroup(ctx.cred, newGid))) {
        throw new NexusError('NOT_PERMITTED', `Operation not permitted: chown ${path}`);
      }
    }
    let mode = node.mode;
    if (isReg(node.mode) && (uid !== -1 || gid !== -1)) mode = dropPrivilegeBits(mode);
    return this.statOf(await this.meta.setAttrs(node.ino, { uid: newUid, gid: newGid, mode, ctimeNs: nowNs() }));
  }

  async utimens(path: string, atime: TimeSpec, mtime: TimeSpec, ctx: OpContext, follow = false): Promise<Stat> {
    const node = await this.resolve(path, ctx, follow);
    const explicit = (t: TimeSpec) => typeof t === 'bigint';
    if (explicit(atime) || explicit(mtime)) requireOwner(node, ctx.cred, path);
    else if (ctx.cred.uid !== 0 && ctx.cred.uid !== node.uid) requireAccess(node, ctx.cred, W_OK, path);
    const now = nowNs();
    const pick = (t: TimeSpec): TimeNs | undefined => (t === 'omit' ? undefined : t === 'now' ? now : t);
    const mt = pick(mtime);
    const df = this.dirty.get(node.ino);
    if (df && mt !== undefined) df.mtimeNs = mt;
    return this.statOf(await this.meta.setAttrs(node.ino, { atimeNs: pick(atime), mtimeNs: mt, ctimeNs: now }));
  }

  async truncate(path: string, size: number, ctx: OpContext): Promise<Stat> {
    const node = await this.resolve(path, ctx, true);
    if (isDir(node.mode)) throw new NexusError('IS_A_DIRECTORY', `Is a directory: ${path}`);
    if (!isReg(node.mode)) throw new NexusError('INVALID_ARGUMENT', `Not a regular file: ${path}`);
    requireAccess(node, ctx.cred, W_OK, path);
    return this.truncateIno(node.ino, size, ctx);
  }

  async ftruncate(fh: number, size: number): Promise<Stat> {
    const h = this.handle(fh);
    if (!h.writable) throw new NexusError('INVALID_ARGUMENT', 'File not open for writing');
    return this.truncateIno(h.ino, size, h.ctx);
  }

  private async truncateIno(ino: number, size: number, ctx: OpContext): Promise<Stat> {
    if (!Number.isSafeInteger(size) || size < 0) throw new NexusError('INVALID_ARGUMENT', `Invalid size: ${size}`);
    await this.locks.run(ino, async () => {
      let df = await this.dirtyFile(ino);
      if (df instanceof MemoryFile && !MemoryFile.fits(size)) df = await this.promote(ino);
      await df.setWriter(ctx).catch((e) => this.noteFull(e));
      await df.truncate(size);
      df.mtimeNs = df.ctimeNs = nowNs();
      if (!this.openCount.get(ino)) await this.commitLocked(ino, { durable: false });
    });
    return this.statOf(await this.mustInode(ino));
  }

  // ---------------------------------------------------------------- namespace

  private newMode(parent: Inode, mode: number, type: number, ctx: OpContext): { mode: number; gid: number } {
    let perm = mode & 0o7777 & ~ctx.umask;
    let gid = ctx.cred.gid;
    if (parent.mode & S_ISGID) {
      gid = parent.gid;
      if (type === S_IFDIR) perm |= S_ISGID;
    }
    if (type !== S_IFDIR && (perm & S_ISGID) && ctx.cred.uid !== 0 && !inGroup(ctx.cred, gid)) perm &= ~S_ISGID;
    return { mode: type | perm, gid };
  }

  private async createIn(path: string, type: number, mode: number, ctx: OpContext, extra: { rdev?: number; target?: string } = {}): Promise<Inode> {
    const op: NamingOp = type === S_IFDIR ? 'mkdir' : type === S_IFREG && extra.target === undefined ? 'create' : 'link';
    const { parent, name, mustBeDir } = await this.resolveParent(path, ctx, op);
    if (mustBeDir && type !== S_IFDIR) {
      const existing = await this.meta.lookup(parent.ino, name);
      if (op === 'create' && (!existing || isDir(existing.mode))) throw new NexusError('IS_A_DIRECTORY', `Is a directory: ${path}`);
      if (existing) throw new NexusError(isDir(existing.mode) ? 'ALREADY_EXISTS' : 'NOT_A_DIRECTORY', `${path}`);
      throw new NexusError('NOT_FOUND', `No such file or directory: ${path}`);
    }
    requireAccess(parent, ctx.cred, W_OK | X_OK, path);
    const m = this.newMode(parent, mode, type, ctx);
    const node = await this.meta.createNode(parent.ino, name, {
      mode: m.mode, uid: ctx.cred.uid, gid: m.gid, rdev: extra.rdev ?? 0, target: extra.target ?? null, timeNs: nowNs(),
    });
    this.record(ctx, 'create', node.ino, path);
    return node;
  }

  /** Session bookkeeping: what an agent session created, wrote, deleted or renamed. */
  private record(ctx: OpContext | null, action: EventAction, ino: number, path: string, extra: { path2?: string; vidBefore?: number | null; vidAfter?: number | null } = {}): void {
    if (!ctx?.sessionId) return;
    this.meta.registry.recordEvent({
      at: nowNs(), sessionId: ctx.sessionId, action, ino, path: normalizePath(path),
      path2: extra.path2 ? normalizePath(extra.path2) : null, vidBefore: extra.vidBefore ?? null, vidAfter: extra.vidAfter ?? null,
    });
  }

  async mkdir(path: string, mode: number, ctx: OpContext, opts: { parents?: boolean } = {}): Promise<Stat> {
    if (opts.parents) {
      const parts = splitPath(path).filter((p) => p !== '..');
      let cur = '';
      let last: Inode | undefined;
      for (const [i, p] of parts.entries()) {
        cur += '/' + p;
        try {
          last = await this.resolve(cur, ctx, true);
          if (!isDir(last.mode)) {
            throw new NexusError(i === parts.length - 1 ? 'ALREADY_EXISTS' : 'NOT_A_DIRECTORY', `${i === parts.length - 1 ? 'Already exists' : 'Not a directory'}: ${cur}`);
          }
        } catch (e) {
          if (!(e instanceof NexusError) || e.code !== 'NOT_FOUND') throw e;
          try {
            last = await this.createIn(cur, S_IFDIR, mode, ctx);
          } catch (e2) {
            // Someone else made it between our lookup and create: fine with parents.
            if (!(e2 instanceof NexusError) || e2.code !== 'ALREADY_EXISTS') throw e2;
            last = await this.resolve(cur, ctx, true);
          }
        }
      }
      return this.statOf(last ?? (await this.mustInode(ROOT_INO)));
    }
    if (splitPath(path).length === 0) throw new NexusError('ALREADY_EXISTS', 'Already exists: /');
    return this.statOf(await this.createIn(path, S_IFDIR, mode, ctx));
  }

  async mknod(path: string, mode: number, rdev: number, ctx: OpContext): Promise<Stat> {
    const type = mode & S_IFMT || S_IFREG;
    if (![S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK].includes(type)) throw new NexusError('INVALID_ARGUMENT', 'Unsupported node type');
    if ((type === S_IFCHR || type === S_IFBLK) && ctx.cred.uid !== 0) throw new NexusError('NOT_PERMITTED', 'Only root may create device nodes');
    return this.statOf(await this.createIn(path, type, mode, ctx, { rdev }));
  }

  async symlink(target: string, path: string, ctx: OpContext): Promise<Stat> {
    if (target.length === 0) throw new NexusError('NOT_FOUND', 'Empty symlink target');
    if (Buffer.byteLength(target) >= PATH_MAX || target.includes('\0')) throw new NexusError('NAME_TOO_LONG', 'Symlink target too long');
    return this.statOf(await this.createIn(path, S_IFLNK, 0o777, { ...ctx, umask: 0 }, { target }));
  }

  async readlink(path: string, ctx: OpContext): Promise<string> {
    const node = await this.resolve(path, ctx, false);
    if (!isLnk(node.mode)) throw new NexusError('INVALID_ARGUMENT', `Not a symbolic link: ${path}`);
    return node.target ?? '';
  }

  async link(existing: string, newPath: string, ctx: OpContext): Promise<Stat> {
    const node = await this.resolve(existing, ctx, false);
    if (isDir(node.mode)) throw new NexusError('NOT_PERMITTED', `Hard links to directories are not allowed: ${existing}`);
    const { parent, name, mustBeDir } = await this.resolveParent(newPath, ctx, 'link');
    if (mustBeDir) throw new NexusError((await this.meta.lookup(parent.ino, name)) ? 'ALREADY_EXISTS' : 'NOT_FOUND', newPath);
    requireAccess(parent, ctx.cred, W_OK | X_OK, newPath);
    return this.statOf(await this.meta.link(node.ino, parent.ino, name, nowNs()));
  }

  /** Returns the file's inode and how many names it has left (a mount drops other names' cached attributes when some remain). */
  async unlink(path: string, ctx: OpContext): Promise<{ ino: number; nlinkLeft: number }> {
    const { parent, name, mustBeDir } = await this.resolveParent(path, ctx, 'unlink');
    const victim = await this.meta.lookup(parent.ino, name);
    if (!victim) throw new NexusError('NOT_FOUND', `No such file or directory: ${path}`);
    if (isDir(victim.mode)) throw new NexusError('IS_A_DIRECTORY', `Is a directory: ${path}`);
    if (mustBeDir) throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${path}`);
    requireMayDelete(parent, victim, ctx.cred, path);
    const after = await this.freeingSpace(() => this.meta.unlink(parent.ino, name, { dir: false }, nowNs()));
    this.record(ctx, 'delete', victim.ino, path, { vidBefore: victim.vid });
    await this.maybeDrop(after);
    this.reclaimIfFull();
    return { ino: after.ino, nlinkLeft: after.nlink };
  }

  async rmdir(path: string, ctx: OpContext): Promise<void> {
    if (splitPath(path).length === 0) throw new NexusError('BUSY', 'Cannot remove the root directory');
    const { parent, name } = await this.resolveParent(path, ctx, 'rmdir');
    const victim = await this.meta.lookup(parent.ino, name);
    if (!victim) throw new NexusError('NOT_FOUND', `No such file or directory: ${path}`);
    if (!isDir(victim.mode)) throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${path}`);
    requireMayDelete(parent, victim, ctx.cred, path);
    const after = await this.freeingSpace(() => this.meta.unlink(parent.ino, name, { dir: true }, nowNs()));
    this.record(ctx, 'delete', victim.ino, path);
    await this.maybeDrop(after);
  }

  /** Returns the file replaced at `to`, if any, and how many names it has left. */
  async rename(from: string, to: string, ctx: OpContext): Promise<{ replaced: { ino: number; nlinkLeft: number } | null }> {
    const src = await this.resolveParent(from, ctx, 'rename');
    const dst = await this.resolveParent(to, ctx, 'rename');
    const moving = await this.meta.lookup(src.parent.ino, src.name);
    if (!moving) throw new NexusError('NOT_FOUND', `No such file or directory: ${from}`);
    if ((src.mustBeDir || dst.mustBeDir) && !isDir(moving.mode)) throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${src.mustBeDir ? from : to}`);
    requireMayDelete(src.parent, moving, ctx.cred, from);
    requireAccess(dst.parent, ctx.cred, W_OK | X_OK, to);
    const existing = await this.meta.lookup(dst.parent.ino, dst.name);
    if (existing && existing.ino !== moving.ino) requireMayDelete(dst.parent, existing, ctx.cred, to);
    // Moving a directory to a new parent rewrites its '..': needs write on it.
    if (isDir(moving.mode) && src.parent.ino !== dst.parent.ino) requireAccess(moving, ctx.cred, W_OK, from);
    const result = await this.freeingSpace(() => this.meta.rename(src.parent.ino, src.name, dst.parent.ino, dst.name, nowNs()));
    if (result.replaced) this.record(ctx, 'delete', result.replaced.ino, to, { vidBefore: result.replaced.vid });
    this.record(ctx, 'rename', moving.ino, from, { path2: to });
    if (result.replaced) {
      await this.maybeDrop(result.replaced);
      this.reclaimIfFull();
    }
    return { replaced: result.replaced ? { ino: result.replaced.ino, nlinkLeft: result.replaced.nlink } : null };
  }

  /** Forget an inode with no links once nobody has it open. */
  private async maybeDrop(node: Inode): Promise<void> {
    if (node.nlink > 0 || this.openCount.get(node.ino)) return;
    await this.locks.run(node.ino, async () => {
      const df = this.dirty.get(node.ino);
      if (df) {
        await df.closeAll();
        await df.discardStaging();
        this.dirty.delete(node.ino);
      }
      this.journal.settled(node.ino, Infinity);
      await this.freeingSpace(() => this.meta.dropInode(node.ino));
      this.freedSinceReclaim = true;
    });
  }

  async readdir(path: string, ctx: OpContext, page: { after?: string; limit?: number } = {}): Promise<ReaddirEntry[]> {
    const dir = await this.resolve(path, ctx, true);
    if (!isDir(dir.mode)) throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${path}`);
    requireAccess(dir, ctx.cred, R_OK, path);
    const entries: DirEntry[] = await this.meta.readdir(dir.ino, { after: page.after, limit: page.limit ?? 1000 });
    return entries.map((e) => ({ name: e.name, stat: this.statOf(e.inode) }));
  }

  async statfs(): Promise<StatFs> {
    const s = await fsp.statfs(this.opts.statfsPath);
    const stats = await this.meta.stats();
    return {
      bsize: 4096,
      frsize: 4096,
      blocks: Math.floor((s.blocks * s.bsize) / 4096),
      bfree: Math.floor((s.bfree * s.bsize) / 4096),
      bavail: Math.floor((s.bavail * s.bsize) / 4096),
      files: stats.inodes + s.ffree,
      ffree: s.ffree,
      namemax: 255,
    };
  }

  // ---------------------------------------------------------------- xattrs

  private checkXattrName(name: string, ctx: OpContext, node: Inode): void {
    if (name.length === 0 || Buffer.byteLength(name) > XATTR_NAME_MAX) throw new NexusError('RANGE', 'Bad attribute name length');
    const ns = name.slice(0, name.indexOf('.') + 1);
    if (!['user.', 'trusted.', 'security.'].includes(ns)) throw new NexusError('NOT_SUPPORTED', `Unsupported attribute namespace: ${name}`);
    if (ns === 'trusted.' && ctx.cred.uid !== 0) throw new NexusError('NOT_PERMITTED', 'trusted.* attributes need root');
    if (ns === 'user.' && !isReg(node.mode) && !isDir(node.mode)) throw new NexusError('NOT_PERMITTED', 'user.* attributes only on files and directories');
  }

  async setxattr(path: string, name: string, value: Buffer, mode: 'any' | 'create' | 'replace', ctx: OpContext): Promise<void> {
    const node = await this.resolve(path, ctx, false);
    this.checkXattrName(name, ctx, node);
    if (value.length > XATTR_SIZE_MAX) throw new NexusError('VALUE_TOO_BIG', 'Attribute value over 64 KiB');
    if (name.startsWith('user.')) requireAccess(node, ctx.cred, W_OK, path);
    await this.meta.setXattr(node.ino, name, Buffer.from(value), mode, nowNs());
  }

  async getxattr(path: string, name: string, ctx: OpContext): Promise<Buffer> {
    const node = await this.resolve(path, ctx, false);
    this.checkXattrName(name, ctx, node);
    if (name.startsWith('user.')) requireAccess(node, ctx.cred, R_OK, path);
    const v = await this.meta.getXattr(node.ino, name);
    if (!v) throw new NexusError('NO_ATTRIBUTE', `No such attribute: ${name}`);
    return v;
  }

  /** Whether any file has an extended attribute of this name (no path, no permission check: callers decide what it may skip). */
  async xattrNameInUse(name: string): Promise<boolean> {
    return this.meta.xattrNameInUse(name);
  }

  async listxattr(path: string, ctx: OpContext): Promise<string[]> {
    const node = await this.resolve(path, ctx, false);
    const names = await this.meta.listXattrs(node.ino);
    return ctx.cred.uid === 0 ? names : names.filter((n) => !n.startsWith('trusted.'));
  }

  async removexattr(path: string, name: string, ctx: OpContext): Promise<void> {
    const node = await this.resolve(path, ctx, false);
    this.checkXattrName(name, ctx, node);
    if (name.startsWith('user.')) requireAccess(node, ctx.cred, W_OK, path);
    await this.meta.removeXattr(node.ino, name, nowNs());
  }

  // ---------------------------------------------------------------- files

  /** open(2) of an existing file. Returns a handle number. */
  async open(path: string, flags: number, ctx: OpContext): Promise<number> {
    const node = await this.resolve(path, ctx, true);
    return this.openInode(node, flags, ctx, path);
  }

  /** open(2) with O_CREAT: creates the file if needed (O_EXCL: must not exist). */
  async create(path: string, flags: number, mode: number, ctx: OpContext, linkDepth = 0): Promise<{ fh: number; stat: Stat }> {
    let node: Inode;
    try {
      node = await this.createIn(path, S_IFREG, mode, ctx);
      const fh = this.addHandle(node.ino, flags, ctx);
      return { fh, stat: this.statOf(node) };
    } catch (e) {
      if (!(e instanceof NexusError) || e.code !== 'ALREADY_EXISTS' || flags & fsc.O_EXCL) throw e;
    }
    // open(O_CREAT) through a symlink creates its target if that is missing.
    const entry = await this.resolve(path, ctx, false);
    if (isLnk(entry.mode)) {
      if (linkDepth >= MAX_SYMLINKS) throw new NexusError('SYMLINK_LOOP');
      const target = entry.target ?? '';
      const targetPath = target.startsWith('/') ? target : `${dirname(path)}/${target}`;
      return this.create(targetPath, flags, mode, ctx, linkDepth + 1);
    }
    node = entry;
    const fh = await this.openInode(node, flags & ~fsc.O_CREAT, ctx, path);
    return { fh, stat: this.statOf(await this.mustInode(node.ino)) };
  }

  private async openInode(node: Inode, flags: number, ctx: OpContext, path: string): Promise<number> {
    const acc = flags & O_ACCMODE;
    if (isDir(node.mode)) {
      if (acc !== fsc.O_RDONLY) throw new NexusError('IS_A_DIRECTORY', `Is a directory: ${path}`);
    } else if (!isReg(node.mode)) {
      throw new NexusError('NOT_SUPPORTED', `Cannot open this kind of file through Nexus: ${path}`);
    }
    const mask = (acc === fsc.O_RDONLY ? R_OK : acc === fsc.O_WRONLY ? W_OK : R_OK | W_OK) | (flags & fsc.O_TRUNC ? W_OK : 0);
    requireAccess(node, ctx.cred, mask, path);
    const fh = this.addHandle(node.ino, flags, ctx);
    if (flags & fsc.O_TRUNC && acc !== fsc.O_RDONLY) {
      try {
        if (node.size === 0 && !this.dirty.has(node.ino)) {
          const now = nowNs();
          await this.meta.setAttrs(node.ino, { mtimeNs: now, ctimeNs: now });
        } else await this.truncateIno(node.ino, 0, ctx);
      } catch (e) {
        await this.release(fh);
        throw e;
      }
    }
    return fh;
  }

  private addHandle(ino: number, flags: number, ctx: OpContext): number {
    const acc = flags & O_ACCMODE;
    const fh = this.nextFh++;
    this.handles.set(fh, {
      ino,
      readable: acc !== fsc.O_WRONLY,
      writable: acc !== fsc.O_RDONLY,
      append: (flags & fsc.O_APPEND) !== 0,
      ctx,
    });
    this.openCount.set(ino, (this.openCount.get(ino) ?? 0) + 1);
    if (acc !== fsc.O_RDONLY) this.writerCount.set(ino, (this.writerCount.get(ino) ?? 0) + 1);
    return fh;
  }

  /** The inode an open handle is for (undefined: no such handle). */
  inoOfHandle(fh: number): number | undefined {
    return this.handles.get(fh)?.ino;
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw new NexusError('BAD_HANDLE', `Bad file handle: ${fh}`);
    return h;
  }

  async read(fh: number, length: number, position: number): Promise<Buffer> {
    const h = this.readableHandle(fh, length, position);
    const df = this.dirty.get(h.ino);
    if (df) return this.locks.run(h.ino, () => df.read(position, length));
    const node = await this.mustInode(h.ino);
    const end = Math.min(node.size, position + length);
    if (end <= position) return Buffer.alloc(0);
    const out = Buffer.allocUnsafe(end - position);
    await readCommitted(this.reader, await this.chunksOf(node.vid), node.size, position, end - position, out, 0);
    return out;
  }

  /**
   * read() into the caller's buffer (from its start); returns the bytes read.
   * Committed data goes straight from the blob into `out`: no allocation and
   * no copy per read (FUSE hands us its buffer; a streaming reader reuses one).
   */
  async readInto(fh: number, out: Buffer, length: number, position: number): Promise<number> {
    const h = this.readableHandle(fh, length, position);
    if (length > out.length) throw new NexusError('INVALID_ARGUMENT', 'Read longer than its buffer');
    const df = this.dirty.get(h.ino);
    if (df) return this.locks.run(h.ino, () => df.readInto(position, length, out));
    const node = await this.mustInode(h.ino);
    const end = Math.min(node.size, position + length);
    if (end <= position) return 0;
    await readCommitted(this.reader, await this.chunksOf(node.vid), node.size, position, end - position, out, 0);
    return end - position;
  }

  private readableHandle(fh: number, length: number, position: number): Handle {
    const h = this.handle(fh);
    if (!h.readable) throw new NexusError('BAD_HANDLE', 'File not open for reading');
    if (position < 0 || length < 0) throw new NexusError('INVALID_ARGUMENT', 'Negative offset or length');
    return h;
  }

  private async chunksOf(vid: number | null): Promise<ChunkRef[]> {
    if (vid === null) return [];
    let chunks = this.versionCache.get(vid);
    if (!chunks) {
      const version = await this.meta.getVersion(vid);
      if (!version) throw new NexusError('CORRUPT', `Missing version ${vid}`);
      chunks = version.chunks;
      this.versionCache.set(vid, chunks);
      if (this.versionCache.size > 256) this.versionCache.delete(this.versionCache.keys().next().value!);
    }
    return chunks;
  }

  async write(fh: number, data: Uint8Array, position: number): Promise<number> {
    const h = this.handle(fh);
    if (!h.writable) throw new NexusError('BAD_HANDLE', 'File not open for writing');
    if (position < 0) throw new NexusError('INVALID_ARGUMENT', 'Negative offset');
    if (data.length === 0) return 0;
    return this.locks.run(h.ino, async () => {
      let df = await this.dirtyFile(h.ino);
      // O_APPEND writes land at the end as this process sees it now, whatever
      // offset the caller (or the kernel's cached size) suggested.
      const at = h.append ? df.size : position;
      if (!Number.isSafeInteger(at + data.length)) throw new NexusError('FILE_TOO_BIG');
      if (df instanceof MemoryFile && !MemoryFile.fits(at + data.length)) df = await this.promote(h.ino);
      await this.retryAfterReclaim(() => df.setWriter(h.ctx));
      const n = await this.retryAfterReclaim(() => df.write(at, data));
      df.mtimeNs = df.ctimeNs = nowNs();
      if (h.ctx.cred.uid !== 0) await this.clearPrivilegeBitsOnWrite(h.ino);
      return n;
    });
  }

  private async clearPrivilegeBitsOnWrite(ino: number): Promise<void> {
    const node = await this.mustInode(ino);
    const mode = dropPrivilegeBits(node.mode);
    if (mode !== node.mode) await this.meta.setAttrs(ino, { mode });
  }

  /**
   * close(2) of a descriptor (FLUSH is synchronous; RELEASE comes later, after
   * close has returned). The file's only writer closing commits here, so a
   * close that returned is committed: if it waited for RELEASE, the writer's
   * next open(O_TRUNC) of the same file could arrive first, its handle then
   * counted as a writer, and that release would not commit at all (a snapshot
   * taken after the close returned captured the version before it).
   */
  async flush(fh: number): Promise<void> {
    const h = this.handle(fh);
    if (!h.writable || this.writersOf(h.ino) !== 1 || !this.dirty.get(h.ino)?.modified) return;
    const node = await this.meta.getInode(h.ino);
    if (!node || node.nlink === 0) return;
    await this.locks.run(h.ino, async () => {
      if (this.handles.has(fh) && this.writersOf(h.ino) === 1) await this.commitLocked(h.ino, { durable: false });
    });
  }

  async fsync(fh: number): Promise<void> {
    const h = this.handle(fh);
    await this.locks.run(h.ino, () => this.commitLocked(h.ino, { durable: true }));
  }

  async release(fh: number): Promise<void> {
    const h = this.handle(fh);
    this.handles.delete(fh);
    const left = (this.openCount.get(h.ino) ?? 1) - 1;
    if (left > 0) this.openCount.set(h.ino, left);
    else this.openCount.delete(h.ino);
    if (h.writable) {
      const w = (this.writerCount.get(h.ino) ?? 1) - 1;
      if (w > 0) this.writerCount.set(h.ino, w);
      else this.writerCount.delete(h.ino);
    }
    const node = await this.meta.getInode(h.ino);
    if (!node || node.nlink === 0) {
      if (left === 0 && node) await this.maybeDrop(node);
      return;
    }
    await this.locks.run(h.ino, async () => {
      // Commit when the last writer closes (or the last handle): committing while
      // another handle is mid-rewrite would publish (and snapshot) a half-written file.
      if ((h.writable && this.writersOf(h.ino) === 0) || left === 0) await this.commitLocked(h.ino, { durable: false });
      const df = this.dirty.get(h.ino);
      if (df && left === 0 && !df.modified) {
        await df.closeAll();
        this.dirty.delete(h.ino);
      }
    });
  }

  private async baseOf(node: Inode) {
    return { vid: node.vid, chunks: await this.chunksOf(node.vid), size: node.size, mtimeNs: node.mtimeNs, ctimeNs: node.ctimeNs };
  }

  private async memoryBaseOf(node: Inode) {
    const content = Buffer.allocUnsafe(node.size);
    await readCommitted(this.reader, await this.chunksOf(node.vid), node.size, 0, node.size, content, 0);
    return { vid: node.vid, content, mtimeNs: node.mtimeNs, ctimeNs: node.ctimeNs };
  }

  /**
   * The pending state of a file, created from its committed version on first
   * change: in memory while the file is small, else in staging files. Call
   * under the inode lock.
   */
  private async dirtyFile(ino: number, opts: { staged?: boolean } = {}): Promise<Pending> {
    const existing = this.dirty.get(ino);
    if (existing) return existing;
    const node = await this.mustInode(ino);
    if (!isReg(node.mode)) throw new NexusError('INVALID_ARGUMENT', 'Not a regular file');
    let memoryFiles = 0;
    for (const d of this.dirty.values()) if (d instanceof MemoryFile) memoryFiles++;
    const df: Pending =
      !opts.staged && MemoryFile.fits(node.size) && memoryFiles < MAX_MEMORY_FILES
        ? new MemoryFile(ino, this.journal, await this.memoryBaseOf(node))
        : new DirtyFile(ino, this.opts.stagingDir, this.reader, this.hashers, await this.baseOf(node));
    this.dirty.set(ino, df);
    return df;
  }

  /**
   * A small file outgrew memory: move its pending content into staging files
   * (no commit: a snapshot must never see this halfway state), then void its
   * journal records. Call under the inode lock.
   */
  private async promote(ino: number): Promise<DirtyFile> {
    const mf = this.dirty.get(ino) as MemoryFile;
    const content = await mf.read(0, mf.size);
    const df = new DirtyFile(ino, this.opts.stagingDir, this.reader, this.hashers, await this.baseOf(await this.mustInode(ino)));
    if (mf.lastWriter) await df.setWriter(mf.lastWriter);
    await df.truncate(0);
    if (content.length) await df.write(0, content);
    df.mtimeNs = mf.mtimeNs;
    df.ctimeNs = mf.ctimeNs;
    this.journal.settled(ino, this.journal.append(ino, 'drop', mf.lastSeq));
    this.dirty.set(ino, df);
    return df;
  }

  /** Commit a file's staged changes as a new version. Call under the inode lock. */
  private async commitLocked(ino: number, opts: { durable: boolean }): Promise<void> {
    const df = this.dirty.get(ino);
    if (!df || !df.modified) {
      // A writer record whose write then failed: nothing to commit, nothing left to replay.
      if (df instanceof MemoryFile) this.journal.settled(ino, df.lastSeq);
      if (opts.durable) await this.makeCurrentDurable(ino);
      return;
    }
    // Shared with other commits, exclusive of a GC sweep: a blob this commit
    // finds already stored (dedup) cannot vanish before the metadata names it.
    await this.commitGate.runShared(() => this.commitContentLocked(ino, df, opts)).catch((e) => this.noteFull(e));
  }

  private async commitContentLocked(ino: number, df: Pending, opts: { durable: boolean }): Promise<void> {
    const { chunks, newIds } = await df.buildCommit(this.blobs);
    this.noteReferenced(chunks);
    if (opts.durable) await this.blobs.sync(newIds);
    else if (newIds.length) this.unsynced = true;
    for (const id of newIds) this.reader.markVerified(id);
    // A small file's bytes are at hand: the next read of it need not go to disk
    // (MemoryFile.read returns a copy of its own, which the reader keeps).
    if (df instanceof MemoryFile && chunks.length === 1 && chunks[0]!.id) this.reader.seed(chunks[0]!.id, await df.read(0, df.size));
    const writer = df.lastWriter;
    const jseq = df instanceof MemoryFile ? df.lastSeq : undefined;
    const vid = await this.meta.commitContent(
      ino,
      { size: df.size, chunks, mtimeNs: df.mtimeNs, ctimeNs: df.ctimeNs, principal: writer?.principal ?? null, sessionId: writer?.sessionId ?? null, jseq },
      { durable: opts.durable },
    );
    if (writer?.sessionId) this.record(writer, 'write', ino, (await this.meta.pathOf(ino)) ?? `<inode ${ino}>`, { vidBefore: df.baseVid, vidAfter: vid });
    await df.committed(vid, chunks);
    if (jseq !== undefined) {
      this.journal.settled(ino, jseq);
      this.journal.compact(JOURNAL_COMPACT_BYTES);
    }
    if (!this.openCount.get(ino)) {
      await df.closeAll();
      this.dirty.delete(ino);
    }
  }

  /** fsync of a clean file: its blobs and metadata may still be only in the page cache. */
  private async makeCurrentDurable(ino: number): Promise<void> {
    const node = await this.meta.getInode(ino);
    const version = node?.vid ? await this.meta.getVersion(node.vid) : undefined;
    if (version) await this.blobs.sync(version.chunks.map((c) => c.id).filter((id): id is BlobId => id !== null));
    await this.meta.checkpoint();
  }

  // ---------------------------------------------------------------- convenience (SDK, tests)

  async writeFile(path: string, data: Uint8Array, ctx: OpContext, opts: { mode?: number } = {}): Promise<Stat> {
    const { fh } = await this.create(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, opts.mode ?? 0o666, ctx);
    let ino: number;
    try {
      ino = this.handle(fh).ino;
      if (data.length) await this.write(fh, data, 0);
    } finally {
      await this.release(fh);
    }
    return this.statOf(await this.mustInode(ino));
  }

  async readFile(path: string, ctx: OpContext): Promise<Buffer> {
    const fh = await this.open(path, fsc.O_RDONLY, ctx);
    try {
      const st = await this.fgetattr(fh);
      if (isDir(st.mode)) throw new NexusError('IS_A_DIRECTORY', `Is a directory: ${path}`);
      return await this.read(fh, st.size, 0);
    } finally {
      await this.release(fh);
    }
  }

  /**
   * Give a file the content of an earlier version (session revert), as a new
   * version. Pending writes are committed first, so nothing is lost unseen.
   */
  async restoreContent(ino: number, vid: number | null, ctx: OpContext): Promise<void> {
    await this.locks.run(ino, async () => {
      await this.commitLocked(ino, { durable: false });
      const df = this.dirty.get(ino);
      if (df) {
        await df.closeAll();
        this.dirty.delete(ino);
      }
      // Under the commit gate and recorded like any commit: the old version
      // may be one a running GC has just pruned and is about to sweep.
      await this.commitGate.runShared(async () => {
        const version = vid === null ? undefined : await this.meta.getVersion(vid);
        if (vid !== null && !version) throw new NexusError('NOT_FOUND', `No such version: ${vid}`);
        this.noteReferenced(version?.chunks ?? []);
        const now = nowNs();
        await this.meta.commitContent(ino, {
          size: version?.size ?? 0, chunks: version?.chunks ?? [], mtimeNs: now, ctimeNs: now, principal: ctx.principal, sessionId: ctx.sessionId,
        });
      });
    });
  }

  /** Read committed content of a given version (snapshot browsing). */
  async readVersion(vid: number | null, size: number, position: number, length: number): Promise<Buffer> {
    const end = Math.min(size, position + length);
    if (end <= position) return Buffer.alloc(0);
    const out = Buffer.allocUnsafe(end - position);
    await readCommitted(this.reader, await this.chunksOf(vid), size, position, end - position, out, 0);
    return out;
  }

  /**
   * Before a snapshot or restore: commit pending writes of files nobody has
   * open for writing any more (there are none in steady state: the last close
   * commits). A file still open for writing is captured as of its last commit
   * (close or fsync), so a snapshot never holds a half-rewritten file.
   * A restore commits those too (`evenOpenForWriting`): its pre-restore
   * snapshot must hold them, and a commit arriving after the restore (a
   * close whose release was still on its way) must not undo it.
   */
  async flushUnder(_path: string, opts: { evenOpenForWriting?: boolean } = {}): Promise<void> {
    for (const ino of [...this.dirty.keys()]) {
      if (!opts.evenOpenForWriting && this.writersOf(ino) > 0) continue;
      await this.locks.run(ino, () => this.commitLocked(ino, { durable: false }));
    }
  }

  private writersOf(ino: number): number {
    return this.writerCount.get(ino) ?? 0;
  }

  /** A restore rewrote inodes behind the engine's back: forget cached state, drop what lost its last link. */
  async afterRestore(r: RestoreResult): Promise<void> {
    for (const ino of r.touched) {
      const df = this.dirty.get(ino);
      if (df && !df.modified) {
        await df.closeAll();
        this.dirty.delete(ino);
      }
    }
    for (const ino of r.unlinked) {
      const node = await this.meta.getInode(ino);
      if (node) await this.maybeDrop(node);
    }
  }

  /**
   * Garbage collection support: start recording, for one run, the blobs that
   * commits reference (call under commitGate.runExclusive, before the mark).
   */
  gcBegin(): GcWatch {
    const w = new GcWatch();
    this.gcWatches.add(w);
    return w;
  }

  gcEnd(w: GcWatch): void {
    this.gcWatches.delete(w);
  }

  /** A commit names these chunks: every running GC must spare them (call under commitGate shared). */
  private noteReferenced(chunks: readonly ChunkRef[]): void {
    for (const w of this.gcWatches) for (const c of chunks) if (c.id) w.note(c.id);
  }

  /** Forget cached state of a blob GC deleted. */
  forgetBlob(id: BlobId): void {
    this.reader.forget(id);
  }

  /** Diagnostic counters. */
  status(): { openHandles: number; dirtyFiles: number } {
    return { openHandles: this.handles.size, dirtyFiles: this.dirty.size };
  }
}

export { S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFSOCK, S_ISUID, S_ISGID, mayAccess };

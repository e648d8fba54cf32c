/**
 * MetaStore on SQLite (better-sqlite3, WAL). Every public method is one
 * transaction. Integers are read as BigInt (times are nanoseconds and exceed
 * 2^53) and narrowed to numbers where they fit.
 */
import Database from 'better-sqlite3';
import { NexusError, corruptDatabase, isSqliteCorruption } from '../errors.js';
import type { TimeNs } from '../util/time.js';
import type { MetaStore, ReaddirPage, Retention } from './meta-store.js';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';
import { SqliteTreeOps } from './sqlite-tree-ops.js';
import { SqliteRegistry } from './sqlite-registry.js';
import { SqliteAccessStore } from './sqlite-access.js';
import { SqliteFsckOps } from './sqlite-fsck.js';
import {
  ROOT_INO, S_IFDIR, isDir,
  type AttrPatch, type ChunkRef, type CommitContent, type DirEntry, type FileVersion, type Inode,
  type NewInode, type RenameResult, type StoreStats,
} from './types.js';
import { inTransaction } from './sqlite-tx.js';

type Row = Record<string, bigint | string | Buffer | null>;

const INODE_COLS = 'ino, mode, uid, gid, nlink, size, alloc, rdev, atime, mtime, ctime, btime, vid, target, jseq';

export interface SqliteMetaOptions {
  /** Owner of the root directory when the store is created. */
  rootUid: number;
  rootGid: number;
  rootMode?: number;
}

export class SqliteMetaStore implements MetaStore {
  private readonly db: Database.Database;
  private readonly stmts: ReturnType<SqliteMetaStore['prepare']>;

  /** Whole-subtree operations: snapshots, restore, listing. */
  readonly tree: SqliteTreeOps;
  /** Workspaces, sessions, session events. */
  readonly registry: SqliteRegistry;
  /** API keys and grants. */
  readonly access: SqliteAccessStore;
  /** Structural checks and repairs. */
  readonly fsck: SqliteFsckOps;

  private constructor(db: Database.Database) {
    this.db = db;
    this.stmts = this.prepare();
    this.tree = new SqliteTreeOps(db);
    this.registry = new SqliteRegistry(db);
    this.access = new SqliteAccessStore(db);
    this.fsck = new SqliteFsckOps(db);
  }

  static open(path: string, opts: SqliteMetaOptions): SqliteMetaStore {
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      db.pragma('journal_mode = WAL');
      // NORMAL: a commit survives a process kill (it is in the WAL, in the page
      // cache); fsync() asks for FULL on its own commit.
      db.pragma('synchronous = NORMAL');
      // The engine checkpoints itself, after the blobs the WAL names are synced.
      db.pragma('wal_autocheckpoint = 0');
      db.pragma('foreign_keys = OFF');
      db.pragma('busy_timeout = 5000');
      db.defaultSafeIntegers(true);
      migrate(db);
      const store = new SqliteMetaStore(db);
      // The first read of a table: a damaged page often shows here, not before.
      store.ensureRoot(opts);
      return store;
    } catch (e) {
      if (db?.open) db.close();
      if (isSqliteCorruption(e)) throw corruptDatabase(e, path);
      throw e;
    }
  }

  private prepare() {
    const db = this.db;
    return {
      getInode: db.prepare(`SELECT ${INODE_COLS} FROM inodes WHERE ino = ?`),
      lookup: db.prepare(
        `SELECT ${INODE_COLS.split(', ').map((c) => 'i.' + c).join(', ')} FROM dentries d JOIN inodes i ON i.ino = d.ino WHERE d.parent = ? AND d.name = ?`,
      ),
      lookupIno: db.prepare('SELECT ino FROM dentries WHERE parent = ? AND name = ?'),
      readdirFirst: db.prepare(
        `SELECT d.name AS name, ${INODE_COLS.split(', ').map((c) => 'i.' + c).join(', ')} FROM dentries d JOIN inodes i ON i.ino = d.ino WHERE d.parent = ? ORDER BY d.name LIMIT ?`,
      ),
      readdirAfter: db.prepare(
        `SELECT d.name AS name, ${INODE_COLS.split(', ').map((c) => 'i.' + c).join(', ')} FROM dentries d JOIN inodes i ON i.ino = d.ino WHERE d.parent = ? AND d.name > ? ORDER BY d.name LIMIT ?`,
      ),
      countEntries: db.prepare('SELECT count(*) AS n FROM dentries WHERE parent = ?'),
      hasEntries: db.prepare('SELECT 1 FROM dentries WHERE parent = ? LIMIT 1'),
      parentOf: db.prepare('SELECT parent FROM dentries WHERE ino = ? LIMIT 1'),
      lookupName: db.prepare('SELECT 1 FROM dentries WHERE ino = ? LIMIT 1'),
      nameOf: db.prepare('SELECT parent, name FROM dentries WHERE ino = ? ORDER BY parent, name LIMIT 1'),
      insertInode: db.prepare(
        'INSERT INTO inodes (mode, uid, gid, nlink, size, rdev, atime, mtime, ctime, btime, vid, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)',
      ),
      insertRoot: db.prepare(
        'INSERT INTO inodes (ino, mode, uid, gid, nlink, size, rdev, atime, mtime, ctime, btime) VALUES (?, ?, ?, ?, 2, 0, 0, ?, ?, ?, ?)',
      ),
      insertDentry: db.prepare('INSERT INTO dentries (parent, name, ino) VALUES (?, ?, ?)'),
      deleteDentry: db.prepare('DELETE FROM dentries WHERE parent = ? AND name = ?'),
      addNlink: db.prepare('UPDATE inodes SET nlink = nlink + ?, ctime = ? WHERE ino = ?'),
      touchDir: db.prepare('UPDATE inodes SET mtime = ?, ctime = ? WHERE ino = ?'),
      addDirNlinkTouch: db.prepare('UPDATE inodes SET nlink = nlink + ?, mtime = ?, ctime = ? WHERE ino = ?'),
      setCtime: db.prepare('UPDATE inodes SET ctime = ? WHERE ino = ?'),
      zeroNlink: db.prepare('UPDATE inodes SET nlink = 0, ctime = ? WHERE ino = ?'),
      insertVersion: db.prepare(
        'INSERT INTO versions (ino, size, chunks, created, principal, session_id, prev_vid) VALUES (?, ?, ?, ?, ?, ?, (SELECT vid FROM inodes WHERE ino = ?))',
      ),
      setContent: db.prepare('UPDATE inodes SET size = ?, alloc = ?, vid = ?, mtime = ?, ctime = ?, jseq = max(jseq, ?) WHERE ino = ?'),
      maxJseq: db.prepare('SELECT coalesce(max(jseq), 0) AS m FROM inodes'),
      getVersion: db.prepare('SELECT vid, ino, size, chunks, created, principal, session_id FROM versions WHERE vid = ?'),
      deleteInode: db.prepare('DELETE FROM inodes WHERE ino = ?'),
      deleteXattrsOf: db.prepare('DELETE FROM xattrs WHERE ino = ?'),
      // nlink 0 and no name left: a file deleted while open. (nlink 0 with a name is damage for fsck.)
      orphans: db.prepare('SELECT ino FROM inodes i WHERE nlink = 0 AND NOT EXISTS (SELECT 1 FROM dentries d WHERE d.ino = i.ino)'),
      getXattr: db.prepare('SELECT value FROM xattrs WHERE ino = ? AND name = ?'),
      upsertXattr: db.prepare('INSERT INTO xattrs (ino, name, value) VALUES (?, ?, ?) ON CONFLICT (ino, name) DO UPDATE SET value = excluded.value'),
      listXattrs: db.prepare('SELECT name FROM xattrs WHERE ino = ? ORDER BY name'),
      xattrNameInUse: db.prepare('SELECT 1 FROM xattrs WHERE name = ? LIMIT 1'),
      removeXattr: db.prepare('DELETE FROM xattrs WHERE ino = ? AND name = ?'),
      stats: db.prepare(
        `SELECT count(*) AS inodes,
                sum(CASE WHEN (mode & 61440) = 32768 THEN 1 ELSE 0 END) AS files,
                sum(CASE WHEN (mode & 61440) = 16384 THEN 1 ELSE 0 END) AS dirs,
                coalesce(sum(CASE WHEN (mode & 61440) = 32768 THEN size ELSE 0 END), 0) AS bytes
         FROM inodes WHERE nlink > 0`,
      ),
      allChunks: db.prepare('SELECT chunks FROM versions'),
      getSetting: db.prepare('SELECT value FROM settings WHERE key = ?'),
      setSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  private ensureRoot(opts: SqliteMetaOptions): void {
    if (this.stmts.getInode.get(ROOT_INO)) return;
    const t = BigInt(Date.now()) * 1_000_000n;
    this.stmts.insertRoot.run(ROOT_INO, S_IFDIR | (opts.rootMode ?? 0o755), opts.rootUid, opts.rootGid, t, t, t, t);
  }

  /** The raw handle, for services in this package that own their own tables. */
  get database(): Database.Database {
    return this.db;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async getInode(ino: number): Promise<Inode | undefined> {
    const row = this.stmts.getInode.get(ino) as Row | undefined;
    return row && toInode(row);
  }

  async lookup(parent: number, name: string): Promise<Inode | undefined> {
    const row = this.stmts.lookup.get(parent, name) as Row | undefined;
    return row && toInode(row);
  }

  async readdir(dir: number, page: ReaddirPage): Promise<DirEntry[]> {
    const rows = (
      page.after === undefined ? this.stmts.readdirFirst.all(dir, page.limit) : this.stmts.readdirAfter.all(dir, page.after, page.limit)
    ) as Row[];
    return rows.map((r) => ({ name: r.name as string, inode: toInode(r) }));
  }

  async countEntries(dir: number): Promise<number> {
    return Number((this.stmts.countEntries.get(dir) as Row).n);
  }

  async parentOf(dir: number): Promise<number | undefined> {
    if (dir === ROOT_INO) return ROOT_INO;
    const row = this.stmts.parentOf.get(dir) as Row | undefined;
    return row ? Number(row.parent) : undefined;
  }

  /** One path of an inode (the first link, by name order), or undefined if it has none. */
  async pathOf(ino: number): Promise<string | undefined> {
    const parts: string[] = [];
    let cur = ino;
    for (let depth = 0; cur !== ROOT_INO; depth++) {
      if (depth > 4096) throw new NexusError('CORRUPT', 'Directory tree too deep or cyclic');
      const row = this.stmts.nameOf.get(cur) as Row | undefined;
      if (!row) return undefined;
      parts.unshift(row.name as string);
      cur = Number(row.parent);
    }
    return '/' + parts.join('/');
  }

  async createNode(parent: number, name: string, init: NewInode): Promise<Inode> {
    return inTransaction(this.db, () => {
      this.requireDir(parent);
      if (this.stmts.lookupIno.get(parent, name)) throw new NexusError('ALREADY_EXISTS', `Already exists: ${name}`);
      const dir = isDir(init.mode);
      const t = init.timeNs;
      const info = this.stmts.insertInode.run(init.mode, init.uid, init.gid, dir ? 2 : 1, init.target ? Buffer.byteLength(init.target) : 0, init.rdev ?? 0, t, t, t, t, init.target ?? null);
      const ino = Number(info.lastInsertRowid);
      this.stmts.insertDentry.run(parent, name, ino);
      this.stmts.addDirNlinkTouch.run(dir ? 1 : 0, t, t, parent);
      return this.mustGet(ino);
    });
  }

  async link(ino: number, parent: number, name: string, timeNs: TimeNs): Promise<Inode> {
    return inTransaction(this.db, () => {
      this.requireDir(parent);
      const target = this.mustGet(ino);
      if (isDir(target.mode)) throw new NexusError('NOT_PERMITTED', 'Hard links to directories are not allowed');
      if (target.nlink === 0) throw new NexusError('NOT_FOUND', 'File was deleted');
      if (this.stmts.lookupIno.get(parent, name)) throw new NexusError('ALREADY_EXISTS', `Already exists: ${name}`);
      this.stmts.insertDentry.run(parent, name, ino);
      this.stmts.addNlink.run(1, timeNs, ino);
      this.stmts.touchDir.run(timeNs, timeNs, parent);
      return this.mustGet(ino);
    });
  }

  async unlink(parent: number, name: string, opts: { dir: boolean }, timeNs: TimeNs): Promise<Inode> {
    return inTransaction(this.db, () => {
      const row = this.stmts.lookupIno.get(parent, name) as Row | undefined;
      if (!row) throw new NexusError('NOT_FOUND', `No such file or directory: ${name}`);
      const ino = Number(row.ino);
      const node = this.mustGet(ino);
      if (opts.dir) {
        if (!isDir(node.mode)) throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${name}`);
        if (this.stmts.hasEntries.get(ino)) throw new NexusError('NOT_EMPTY', `Directory not empty: ${name}`);
      } else if (isDir(node.mode)) {
        throw new NexusError('IS_A_DIRECTORY', `Is a directory: ${name}`);
      }
      this.stmts.deleteDentry.run(parent, name);
      if (opts.dir) {
        this.stmts.zeroNlink.run(timeNs, ino);
        this.stmts.addDirNlinkTouch.run(-1, timeNs, timeNs, parent);
      } else {
        this.stmts.addNlink.run(-1, timeNs, ino);
        this.stmts.touchDir.run(timeNs, timeNs, parent);
      }
      return this.mustGet(ino);
    });
  }

  async rename(srcParent: number, srcName: string, dstParent: number, dstName: string, timeNs: TimeNs): Promise<RenameResult> {
    return inTransaction(this.db, (): RenameResult => {
      this.requireDir(dstParent);
      const srcRow = this.stmts.lookupIno.get(srcParent, srcName) as Row | undefined;
      if (!srcRow) throw new NexusError('NOT_FOUND', `No such file or directory: ${srcName}`);
      const src = this.mustGet(Number(srcRow.ino));
      const srcIsDir = isDir(src.mode);
      if (srcIsDir && this.isAncestorSync(src.ino, dstParent)) {
        throw new NexusError('INVALID_ARGUMENT', 'Cannot move a directory into itself');
      }
      const dstRow = this.stmts.lookupIno.get(dstParent, dstName) as Row | undefined;
      let replaced: Inode | undefined;
      if (dstRow) {
        const dst = this.mustGet(Number(dstRow.ino));
        // POSIX: renaming a link onto another link of the same file does nothing.
        if (dst.ino === src.ino) return { moved: src };
        if (srcIsDir && !isDir(dst.mode)) throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${dstName}`);
        if (!srcIsDir && isDir(dst.mode)) throw new NexusError('IS_A_DIRECTORY', `Is a directory: ${dstName}`);
        if (isDir(dst.mode)) {
          if (this.stmts.hasEntries.get(dst.ino)) throw new NexusError('NOT_EMPTY', `Directory not empty: ${dstName}`);
          this.stmts.zeroNlink.run(timeNs, dst.ino);
          this.stmts.addNlink.run(-1, timeNs, dstParent);
        } else {
          this.stmts.addNlink.run(-1, timeNs, dst.ino);
        }
        this.stmts.deleteDentry.run(dstParent, dstName);
        replaced = this.mustGet(dst.ino);
      }
      this.stmts.deleteDentry.run(srcParent, srcName);
      this.stmts.insertDentry.run(dstParent, dstName, src.ino);
      if (srcIsDir && srcParent !== dstParent) {
        this.stmts.addNlink.run(-1, timeNs, srcParent);
        this.stmts.addNlink.run(1, timeNs, dstParent);
      }
      this.stmts.touchDir.run(timeNs, timeNs, srcParent);
      if (dstParent !== srcParent) this.stmts.touchDir.run(timeNs, timeNs, dstParent);
      this.stmts.setCtime.run(timeNs, src.ino);
      return { moved: this.mustGet(src.ino), ...(replaced ? { replaced } : {}) };
    });
  }

  async setAttrs(ino: number, patch: AttrPatch): Promise<Inode> {
    const cols: string[] = [];
    const vals: (number | bigint)[] = [];
    const map: Record<keyof AttrPatch, string> = {
      mode: 'mode', uid: 'uid', gid: 'gid', size: 'size', atimeNs: 'atime', mtimeNs: 'mtime', ctimeNs: 'ctime',
    };
    for (const [k, col] of Object.entries(map) as [keyof AttrPatch, string][]) {
      const v = patch[k];
      if (v !== undefined) {
        cols.push(`${col} = ?`);
        vals.push(v);
      }
    }
    return inTransaction(this.db, () => {
      const node = this.mustGet(ino);
      if (cols.length === 0) return node;
      this.setAttrsStmt(cols).run(...vals, ino);
      return this.mustGet(ino);
    });
  }

  async commitContent(ino: number, c: CommitContent, opts: { durable?: boolean } = {}): Promise<number> {
    if (opts.durable) this.db.pragma('synchronous = FULL');
    try {
      return this.commitContentTx(ino, c);
    } finally {
      if (opts.durable) this.db.pragma('synchronous = NORMAL');
    }
  }

  private commitContentTx(ino: number, c: CommitContent): number {
    return inTransaction(this.db, () => {
      this.mustGet(ino);
      const info = this.stmts.insertVersion.run(ino, c.size, packChunks(c.chunks), c.mtimeNs, c.principal, c.sessionId, ino);
      const vid = Number(info.lastInsertRowid);
      this.stmts.setContent.run(c.size, c.chunks.reduce((n, ch) => n + (ch.id ? ch.len : 0), 0), vid, c.mtimeNs, c.ctimeNs, c.jseq ?? 0, ino);
      return vid;
    });
  }

  async checkpoint(): Promise<void> {
    // synchronous=NORMAL fsyncs the WAL before a checkpoint copies it back.
    this.db.pragma('wal_checkpoint(PASSIVE)');
  }

  async getVersion(vid: number): Promise<FileVersion | undefined> {
    const r = this.stmts.getVersion.get(vid) as Row | undefined;
    if (!r) return undefined;
    return {
      vid: Number(r.vid),
      ino: Number(r.ino),
      size: Number(r.size),
      chunks: unpackChunks(r.chunks as Buffer),
      createdNs: r.created as bigint,
      principal: r.principal as string | null,
      sessionId: r.session_id as string | null,
    };
  }

  async dropInode(ino: number): Promise<void> {
    inTransaction(this.db, () => {
      const node = this.stmts.getInode.get(ino) as Row | undefined;
      // A name left with nlink 0 is damage for fsck to report, not a file to forget.
      if (!node || Number(node.nlink) > 0 || this.stmts.lookupName.get(ino)) return;
      this.stmts.deleteInode.run(ino);
      this.stmts.deleteXattrsOf.run(ino);
    });
  }

  async orphans(): Promise<number[]> {
    return (this.stmts.orphans.all() as Row[]).map((r) => Number(r.ino));
  }

  async getXattr(ino: number, name: string): Promise<Buffer | undefined> {
    const r = this.stmts.getXattr.get(ino, name) as Row | undefined;
    return r ? (r.value as Buffer) : undefined;
  }

  async setXattr(ino: number, name: string, value: Buffer, mode: 'any' | 'create' | 'replace', timeNs: TimeNs): Promise<void> {
    inTransaction(this.db, () => {
      const has = this.stmts.getXattr.get(ino, name) !== undefined;
      if (mode === 'create' && has) throw new NexusError('ALREADY_EXISTS', `Attribute exists: ${name}`);
      if (mode === 'replace' && !has) throw new NexusError('NO_ATTRIBUTE', `No such attribute: ${name}`);
      this.stmts.upsertXattr.run(ino, name, value);
      this.stmts.setCtime.run(timeNs, ino);
    });
  }

  async listXattrs(ino: number): Promise<string[]> {
    return (this.stmts.listXattrs.all(ino) as Row[]).map((r) => r.name as string);
  }

  async xattrNameInUse(name: string): Promise<boolean> {
    return this.stmts.xattrNameInUse.get(name) !== undefined;
  }

  async removeXattr(ino: number, name: string, timeNs: TimeNs): Promise<void> {
    inTransaction(this.db, () => {
      if (this.stmts.removeXattr.run(ino, name).changes === 0) throw new NexusError('NO_ATTRIBUTE', `No such attribute: ${name}`);
      this.stmts.setCtime.run(timeNs, ino);
    });
  }

  async stats(): Promise<StoreStats> {
    const r = this.stmts.stats.get() as Row;
    return { inodes: Number(r.inodes), files: Number(r.files ?? 0n), directories: Number(r.dirs ?? 0n), logicalBytes: Number(r.bytes) };
  }

  /**
   * Drop content versions nothing needs: never a file's current content, one
   * in a snapshot, or one a session event younger than `keepAgeNs` names
   * (revert needs it); of the rest, those of deleted files, and those older
   * than `keepAgeNs` beyond the newest `keepPerInode` of their file.
   * Returns how many went (or would go, dryRun).
   */
  async pruneVersions(opts: Retention & { dryRun: boolean }): Promise<number> {
    const { where, params } = prunable(opts);
    if (opts.dryRun) return Number((this.db.prepare(`SELECT count(*) AS n FROM versions WHERE ${where}`).get(params) as Row).n);
    return this.db.prepare(`DELETE FROM versions WHERE ${where}`).run(params).changes;
  }

  async referencedBlobs(retention?: Retention): Promise<Set<string>> {
    const ids = new Set<string>();
    let rows: Iterable<Row>;
    if (retention) {
      const { where, params } = prunable(retention);
      rows = this.db.prepare(`SELECT chunks FROM versions WHERE NOT (${where})`).iterate(params) as Iterable<Row>;
    } else {
      rows = this.stmts.allChunks.iterate() as Iterable<Row>;
    }
    for (const r of rows) {
      for (const c of unpackChunks(r.chunks as Buffer)) if (c.id) ids.add(c.id);
    }
    return ids;
  }

  async maxJournalSeq(): Promise<number> {
    return Number((this.stmts.maxJseq.get() as Row).m);
  }

  async getSetting(key: string): Promise<string | undefined> {
    const r = this.stmts.getSetting.get(key) as Row | undefined;
    return r ? (r.value as string) : undefined;
  }

  async setSetting(key: string, value: string): Promise<void> {
    this.stmts.setSetting.run(key, value);
  }

  async maxVersionId(): Promise<number> {
    return Number((this.db.prepare('SELECT coalesce(max(vid), 0) AS m FROM versions').get() as Row).m);
  }

  async versionsAfter(vid: number): Promise<FileVersion[]> {
    const rows = this.db.prepare('SELECT vid, ino, size, chunks, created, principal, session_id FROM versions WHERE vid > ? ORDER BY vid').all(vid) as Row[];
    return rows.map((r) => ({
      vid: Number(r.vid), ino: Number(r.ino), size: Number(r.size), chunks: unpackChunks(r.chunks as Buffer),
      createdNs: r.created as bigint, principal: r.principal as string | null, sessionId: r.session_id as string | null,
    }));
  }

  async olderVersionIds(ino: number, before: number): Promise<number[]> {
    return (this.db.prepare('SELECT vid FROM versions WHERE ino = ? AND vid < ? ORDER BY vid DESC').all(ino, before) as Row[]).map((r) => Number(r.vid));
  }

  async rollBackVersions(plan: readonly { vid: number; fallback: number | null }[]): Promise<void> {
    const get = this.stmts.getVersion;
    const setInode = this.db.prepare('UPDATE inodes SET size = ?, alloc = ?, vid = ? WHERE vid = ?');
    const setEntries = this.db.prepare('UPDATE snapshot_entries SET size = ?, alloc = ?, vid = ? WHERE vid = ?');
    const del = this.db.prepare('DELETE FROM versions WHERE vid = ?');
    inTransaction(this.db, () => {
      for (const { vid, fallback } of plan) {
        const fb = fallback === null ? undefined : (get.get(fallback) as Row | undefined);
        const chunks = fb ? unpackChunks(fb.chunks as Buffer) : [];
        const size = fb ? Number(fb.size) : 0;
        const alloc = chunks.reduce((n, ch) => n + (ch.id ? ch.len : 0), 0);
        const to = fb ? fallback : null;
        setInode.run(size, alloc, to, vid);
        setEntries.run(size, alloc, to, vid);
        del.run(vid);
      }
    });
  }

  /** One prepared UPDATE per set of columns (preparing costs more than running it). */
  private readonly setAttrsStmts = new Map<string, Database.Statement>();

  private setAttrsStmt(cols: string[]): Database.Statement {
    const sql = `UPDATE inodes SET ${cols.join(', ')} WHERE ino = ?`;
    let st = this.setAttrsStmts.get(sql);
    if (!st) this.setAttrsStmts.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  private mustGet(ino: number): Inode {
    const row = this.stmts.getInode.get(ino) as Row | undefined;
    if (!row) throw new NexusError('NOT_FOUND', `No such inode: ${ino}`);
    return toInode(row);
  }

  private requireDir(ino: number): void {
    const node = this.mustGet(ino);
    if (!isDir(node.mode)) throw new NexusError('NOT_A_DIRECTORY', 'Not a directory');
    if (node.nlink === 0) throw new NexusError('NOT_FOUND', 'Directory was removed');
  }

  /** Is `ancestor` equal to `ino` or above it in the tree? */
  private isAncestorSync(ancestor: number, ino: number): boolean {
    let cur = ino;
    for (let depth = 0; depth < 4096; depth++) {
      if (cur === ancestor) return true;
      if (cur === ROOT_INO) return false;
      const row = this.stmts.parentOf.get(cur) as Row | undefined;
      if (!row) return false;
      cur = Number(row.parent);
    }
    throw new NexusError('CORRUPT', 'Directory tree too deep or cyclic');
  }
}

/**
 * The versions `r` prunes, as a WHERE clause over `versions`: old enough and
 * beyond the newest N of a file, or the file is gone altogether (no one can
 * reach those versions but a snapshot or a session); never current content,
 * snapshot content or a version recent session history names. No column it
 * reads is NULL, so NOT (clause) is exactly the kept versions.
 */
function prunable(r: Retention): { where: string; params: { cutoff: bigint; keep: number } } {
  const where = `
      (ino NOT IN (SELECT ino FROM inodes)
       OR (created < @cutoff AND vid NOT IN (SELECT v2.vid FROM versions v2 WHERE v2.ino = versions.ino ORDER BY v2.vid DESC LIMIT @keep)))
      AND vid NOT IN (SELECT vid FROM inodes WHERE vid IS NOT NULL)
      AND vid NOT IN (SELECT vid FROM snapshot_entries WHERE vid IS NOT NULL)
      AND vid NOT IN (SELECT vid_before FROM events WHERE at >= @cutoff AND vid_before IS NOT NULL)
      AND vid NOT IN (SELECT vid_after FROM events WHERE at >= @cutoff AND vid_after IS NOT NULL)`;
  return { where, params: { cutoff: r.nowNs - r.keepAgeNs, keep: r.keepPerInode } };
}

function migrate(db: Database.Database): void {
  const current = Number(db.pragma('user_version', { simple: true }));
  if (current > SCHEMA_VERSION) {
    throw new NexusError('SCHEMA_TOO_NEW', `Data directory has schema version ${current}; this Nexus understands up to ${SCHEMA_VERSION}. Upgrade Nexus.`);
  }
  for (let v = current; v < SCHEMA_VERSION; v++) {
    inTransaction(db, () => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    });
  }
}

function toInode(r: Row): Inode {
  return {
    ino: Number(r.ino),
    mode: Number(r.mode),
    uid: Number(r.uid),
    gid: Number(r.gid),
    nlink: Number(r.nlink),
    size: Number(r.size),
    alloc: Number(r.alloc),
    rdev: Number(r.rdev),
    atimeNs: r.atime as bigint,
    mtimeNs: r.mtime as bigint,
    ctimeNs: r.ctime as bigint,
    btimeNs: r.btime as bigint,
    vid: r.vid === null ? null : Number(r.vid),
    target: r.target as string | null,
    jseq: Number(r.jseq),
  };
}

const ENTRY = 36;
const ZERO_ID = Buffer.alloc(32);

export function packChunks(chunks: ChunkRef[]): Buffer {
  const buf = Buffer.alloc(chunks.length * ENTRY);
  chunks.forEach((c, i) => {
    if (c.id) buf.write(c.id, i * ENTRY, 32, 'hex');
    buf.writeUInt32LE(c.len, i * ENTRY + 32);
  });
  return buf;
}

export function unpackChunks(buf: Buffer): ChunkRef[] {
  const out: ChunkRef[] = [];
  for (let off = 0; off < buf.length; off += ENTRY) {
    const idBytes = buf.subarray(off, off + 32);
    const len = buf.readUInt32LE(off + 32);
    out.push({ id: idBytes.equals(ZERO_ID) ? null : idBytes.toString('hex'), len });
  }
  return out;
}

/**
 * Whole-subtree metadata operations on SQLite: snapshot (copy the tree's rows,
 * never a byte of content), restore (make the live rows equal to a snapshot),
 * and listing a subtree. Each is one transaction, so a snapshot is a
 * consistent point in time and a restore is all or nothing.
 */
import type Database from 'better-sqlite3';
import { NexusError } from '../errors.js';
import type { TimeNs } from '../util/time.js';
import { S_IFMT, isDir } from './types.js';

type Row = Record<string, bigint | string | Buffer | null>;

export interface TreeEntry {
  /** Path relative to the tree's root, '' for the root itself. */
  relPath: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  alloc: number;
  mtimeNs: TimeNs;
  vid: number | null;
  target: string | null;
}

export interface SnapshotRecord {
  snapshotId: string;
  path: string;
  name: string | null;
  metadata: Record<string, unknown>;
  createdAt: TimeNs;
  createdBy: string | null;
  fileCount: number;
  totalBytes: number;
  kind: 'manual' | 'pre-restore';
}

export interface TreeDiff {
  added: string[];
  modified: string[];
  deleted: string[];
}

export interface RestoreResult {
  created: number;
  updated: number;
  removed: number;
  /** Inodes left without links (the engine drops them once no handle has them open). */
  unlinked: number[];
  /** Inodes whose content or attributes changed (the engine forgets cached state). */
  touched: number[];
}

const TREE_CTE = `
  WITH RECURSIVE tree(ino, rel_path) AS (
    SELECT ?, ''
    UNION ALL
    SELECT d.ino, CASE WHEN tree.rel_path = '' THEN d.name ELSE tree.rel_path || '/' || d.name END
    FROM dentries d JOIN tree ON d.parent = tree.ino
  )`;

export class TreeOps {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      liveTree: db.prepare(`${TREE_CTE}
        SELECT tree.rel_path AS rel_path, i.ino, i.mode, i.uid, i.gid, i.size, i.alloc, i.mtime, i.vid, i.target
        FROM tree JOIN inodes i ON i.ino = tree.ino`),
      snapshotInsert: db.prepare(`${TREE_CTE}
        INSERT INTO snapshot_entries (snapshot_id, rel_path, mode, uid, gid, size, alloc, mtime, vid, target, src_ino)
        SELECT ?, tree.rel_path, i.mode, i.uid, i.gid, i.size, i.alloc, i.mtime, i.vid, i.target, i.ino
        FROM tree JOIN inodes i ON i.ino = tree.ino`),
      snapshotCounts: db.prepare(
        `SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM snapshot_entries
         WHERE snapshot_id = ? AND (mode & 61440) = 32768`),
      insertSnapshot: db.prepare(
        `INSERT INTO snapshots (snapshot_id, path, name, metadata, created_by, created_at, file_count, total_bytes, kind)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      getSnapshot: db.prepare('SELECT * FROM snapshots WHERE snapshot_id = ?'),
      listSnapshots: db.prepare('SELECT * FROM snapshots ORDER BY created_at, snapshot_id'),
      listSnapshotsFor: db.prepare('SELECT * FROM snapshots WHERE path = ? ORDER BY created_at, snapshot_id'),
      deleteSnapshot: db.prepare('DELETE FROM snapshots WHERE snapshot_id = ?'),
      deleteEntries: db.prepare('DELETE FROM snapshot_entries WHERE snapshot_id = ?'),
      entries: db.prepare(
        'SELECT rel_path, src_ino AS ino, mode, uid, gid, size, alloc, mtime, vid, target FROM snapshot_entries WHERE snapshot_id = ?'),
      entry: db.prepare(
        'SELECT rel_path, src_ino AS ino, mode, uid, gid, size, alloc, mtime, vid, target FROM snapshot_entries WHERE snapshot_id = ? AND rel_path = ?'),
      children: db.prepare(
        `SELECT rel_path, src_ino AS ino, mode, uid, gid, size, alloc, mtime, vid, target FROM snapshot_entries
         WHERE snapshot_id = ? AND rel_path > ? AND rel_path < ? AND instr(substr(rel_path, ?), '/') = 0 ORDER BY rel_path`),
      chunksOf: db.prepare('SELECT chunks FROM versions WHERE vid = ?'),
      // restore
      lookupIno: db.prepare('SELECT ino FROM dentries WHERE parent = ? AND name = ?'),
      deleteDentry: db.prepare('DELETE FROM dentries WHERE parent = ? AND name = ?'),
      insertDentry: db.prepare('INSERT INTO dentries (parent, name, ino) VALUES (?, ?, ?)'),
      addNlink: db.prepare('UPDATE inodes SET nlink = nlink + ?, ctime = ? WHERE ino = ?'),
      zeroNlink: db.prepare('UPDATE inodes SET nlink = 0, ctime = ? WHERE ino = ?'),
      touchDir: db.prepare('UPDATE inodes SET mtime = ?, ctime = ? WHERE ino = ?'),
      insertInode: db.prepare(
        `INSERT INTO inodes (mode, uid, gid, nlink, size, alloc, rdev, atime, mtime, ctime, btime, vid, target)
         VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)`),
      updateInode: db.prepare(
        'UPDATE inodes SET mode = ?, uid = ?, gid = ?, size = ?, alloc = ?, mtime = ?, ctime = ?, vid = ?, target = ? WHERE ino = ?'),
    };
  }

  async liveTree(rootIno: number): Promise<TreeEntry[]> {
    return this.liveTreeSync(rootIno);
  }

  private liveTreeSync(rootIno: number): TreeEntry[] {
    return (this.stmts.liveTree.all(rootIno) as Row[]).map(toEntry);
  }

  private entriesSync(id: string): TreeEntry[] {
    return (this.stmts.entries.all(id) as Row[]).map(toEntry);
  }

  async createSnapshot(rootIno: number, rec: Omit<SnapshotRecord, 'fileCount' | 'totalBytes'>): Promise<SnapshotRecord> {
    return this.db.transaction(() => {
      this.stmts.snapshotInsert.run(rootIno, rec.snapshotId);
      const c = this.stmts.snapshotCounts.get(rec.snapshotId) as Row;
      const full: SnapshotRecord = { ...rec, fileCount: Number(c.files), totalBytes: Number(c.bytes) };
      this.stmts.insertSnapshot.run(
        rec.snapshotId, rec.path, rec.name, JSON.stringify(rec.metadata), rec.createdBy, rec.createdAt,
        full.fileCount, full.totalBytes, rec.kind,
      );
      return full;
    })();
  }

  async getSnapshot(id: string): Promise<SnapshotRecord | undefined> {
    const r = this.stmts.getSnapshot.get(id) as Row | undefined;
    return r && toSnapshot(r);
  }

  async listSnapshots(path?: string): Promise<SnapshotRecord[]> {
    const rows = (path === undefined ? this.stmts.listSnapshots.all() : this.stmts.listSnapshotsFor.all(path)) as Row[];
    return rows.map(toSnapshot);
  }

  async deleteSnapshot(id: string): Promise<void> {
    this.db.transaction(() => {
      if (this.stmts.deleteSnapshot.run(id).changes === 0) throw new NexusError('NOT_FOUND', `No such snapshot: ${id}`);
      this.stmts.deleteEntries.run(id);
    })();
  }

  async snapshotEntries(id: string): Promise<TreeEntry[]> {
    return this.entriesSync(id);
  }

  async snapshotEntry(id: string, relPath: string): Promise<TreeEntry | undefined> {
    const r = this.stmts.entry.get(id, relPath) as Row | undefined;
    return r && toEntry(r);
  }

  /** Direct children of `relPath` in a snapshot. */
  async snapshotChildren(id: string, relPath: string): Promise<TreeEntry[]> {
    const prefix = relPath === '' ? '' : relPath + '/';
    return (this.stmts.children.all(id, prefix, prefix + '\uffff', prefix.length + 1) as Row[])
      .map(toEntry)
      .filter((e) => e.relPath !== '');
  }

  /** Added, modified and deleted paths from `from` to `to` (content, type, target or mode changes count). */
  async diff(from: TreeEntry[], to: TreeEntry[]): Promise<TreeDiff> {
    const a = new Map(from.filter((e) => e.relPath !== '').map((e) => [e.relPath, e]));
    const b = new Map(to.filter((e) => e.relPath !== '').map((e) => [e.relPath, e]));
    const out: TreeDiff = { added: [], modified: [], deleted: [] };
    for (const [p, eb] of b) {
      const ea = a.get(p);
      if (!ea) out.added.push(p);
      else if (!this.same(ea, eb)) out.modified.push(p);
    }
    for (const p of a.keys()) if (!b.has(p)) out.deleted.push(p);
    for (const list of [out.added, out.modified, out.deleted]) list.sort();
    return out;
  }

  private same(a: TreeEntry, b: TreeEntry): boolean {
    if (a.mode !== b.mode || a.target !== b.target || a.size !== b.size) return false;
    if (a.vid === b.vid || isDir(a.mode)) return true;
    return this.chunks(a.vid).equals(this.chunks(b.vid));
  }

  private chunks(vid: number | null): Buffer {
    if (vid === null) return Buffer.alloc(0);
    return ((this.stmts.chunksOf.get(vid) as Row | undefined)?.chunks as Buffer | undefined) ?? Buffer.alloc(0);
  }

  /**
   * Make the live tree under rootIno equal to the snapshot, in one transaction.
   * Live inodes are kept where the path and type match (open handles then see
   * the restored content); others are created or unlinked.
   */
  async restore(rootIno: number, snapshotId: string, timeNs: TimeNs): Promise<RestoreResult> {
    return this.db.transaction((): RestoreResult => {
      const snap = this.entriesSync(snapshotId);
      const live = this.liveTreeSync(rootIno);
      const want = new Map(snap.map((e) => [e.relPath, e]));
      const have = new Map(live.map((e) => [e.relPath, e]));
      const result: RestoreResult = { created: 0, updated: 0, removed: 0, unlinked: [], touched: [] };
      const inoOf = new Map<string, number>([['', rootIno]]);
      const parentOf = (rel: string) => rel.slice(0, Math.max(0, rel.lastIndexOf('/')));
      const nameOf = (rel: string) => rel.slice(rel.lastIndexOf('/') + 1);

      // 1. Remove what the snapshot does not have, or has with another type,
      //    deepest first. A file whose content differs is replaced by a new
      //    inode, like an editor's save: a handle still open on the old one
      //    keeps reading the old content whole, never a mix.
      const replaced = (e: TreeEntry, w: TreeEntry | undefined) =>
        !w || (w.mode & S_IFMT) !== (e.mode & S_IFMT) || (!isDir(e.mode) && (w.vid !== e.vid || w.target !== e.target || w.size !== e.size));
      const doomed = live
        .filter((e) => e.relPath !== '' && replaced(e, want.get(e.relPath)))
        .sort((x, y) => depth(y.relPath) - depth(x.relPath));
      for (const e of doomed) {
        const parentIno = have.get(parentOf(e.relPath))!.ino;
        this.stmts.deleteDentry.run(parentIno, nameOf(e.relPath));
        if (isDir(e.mode)) {
          this.stmts.zeroNlink.run(timeNs, e.ino);
          this.stmts.addNlink.run(-1, timeNs, parentIno);
        } else {
          this.stmts.addNlink.run(-1, timeNs, e.ino);
        }
        this.stmts.touchDir.run(timeNs, timeNs, parentIno);
        result.unlinked.push(e.ino);
        have.delete(e.relPath);
        result.removed++;
      }

      // 2. Create or update, parents first. Hard links in the snapshot (one
      //    source inode under several paths) become links to one new inode.
      const newInoForSrc = new Map<number, number>();
      for (const e of [...snap].sort((x, y) => depth(x.relPath) - depth(y.relPath) || (x.relPath < y.relPath ? -1 : 1))) {
        const cur = have.get(e.relPath);
        if (cur) {
          if (cur.mode !== e.mode || cur.uid !== e.uid || cur.gid !== e.gid || cur.vid !== e.vid || cur.target !== e.target || cur.size !== e.size || cur.mtimeNs !== e.mtimeNs) {
            this.stmts.updateInode.run(e.mode, e.uid, e.gid, isDir(e.mode) ? cur.size : e.size, e.alloc, e.mtimeNs, timeNs, e.vid, e.target, cur.ino);
            result.touched.push(cur.ino);
            result.updated++;
          }
          inoOf.set(e.relPath, cur.ino);
          continue;
        }
        const parentIno = inoOf.get(parentOf(e.relPath));
        if (parentIno === undefined) throw new NexusError('CORRUPT', `Snapshot ${snapshotId} has ${e.relPath} without its parent`);
        let ino = isDir(e.mode) ? undefined : newInoForSrc.get(e.ino);
        if (ino === undefined) {
          const info = this.stmts.insertInode.run(
            e.mode, e.uid, e.gid, isDir(e.mode) ? 2 : 1, e.size, e.alloc, e.mtimeNs, e.mtimeNs, timeNs, timeNs, e.vid, e.target,
          );
          ino = Number(info.lastInsertRowid);
          if (!isDir(e.mode)) newInoForSrc.set(e.ino, ino);
        } else {
          this.stmts.addNlink.run(1, timeNs, ino);
        }
        this.stmts.insertDentry.run(parentIno, nameOf(e.relPath), ino);
        if (isDir(e.mode)) this.stmts.addNlink.run(1, timeNs, parentIno);
        this.stmts.touchDir.run(timeNs, timeNs, parentIno);
        inoOf.set(e.relPath, ino);
        result.created++;
      }
      return result;
    })();
  }
}

function depth(rel: string): number {
  return rel === '' ? 0 : rel.split('/').length;
}

function toEntry(r: Row): TreeEntry {
  return {
    relPath: r.rel_path as string,
    ino: Number(r.ino),
    mode: Number(r.mode),
    uid: Number(r.uid),
    gid: Number(r.gid),
    size: Number(r.size),
    alloc: Number(r.alloc),
    mtimeNs: r.mtime as bigint,
    vid: r.vid === null ? null : Number(r.vid),
    target: r.target as string | null,
  };
}

function toSnapshot(r: Row): SnapshotRecord {
  return {
    snapshotId: r.snapshot_id as string,
    path: r.path as string,
    name: r.name as string | null,
    metadata: JSON.parse(r.metadata as string) as Record<string, unknown>,
    createdAt: r.created_at as bigint,
    createdBy: r.created_by as string | null,
    fileCount: Number(r.file_count),
    totalBytes: Number(r.total_bytes),
    kind: r.kind as SnapshotRecord['kind'],
  };
}


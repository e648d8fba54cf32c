/**
 * Whole-subtree metadata operations on SQLite: snapshot (copy the tree's rows,
 * never a byte of content), restore (make the live rows equal to a snapshot),
 * and listing a subtree. Each is one transaction, so a snapshot is a
 * consistent point in time and a restore is all or nothing.
 */
import type Database from 'better-sqlite3';
import { NexusError } from '../errors.js';
import type { TimeNs } from '../util/time.js';
import { isDir, type RestoreResult, type SnapshotRecord, type TreeDiff, type TreeEntry } from './types.js';
import type { NewSnapshot, TreeOps } from './sub-stores.js';
import { inTransaction } from './sqlite-tx.js';

type Row = Record<string, bigint | string | Buffer | null>;

const TREE_CTE = `
  WITH RECURSIVE tree(ino, rel_path) AS (
    SELECT ?, ''
    UNION ALL
    SELECT d.ino, CASE WHEN tree.rel_path = '' THEN d.name ELSE tree.rel_path || '/' || d.name END
    FROM dentries d JOIN tree ON d.parent = tree.ino
  )`;

export class SqliteTreeOps implements TreeOps {
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
      // restore: rows of the live tree (the pre-restore snapshot, first ?) that must go
      restoreDoomed: db.prepare(
        `SELECT l.rel_path, l.src_ino AS ino, l.mode, l.uid, l.gid, l.size, l.alloc, l.mtime, l.vid, l.target
         FROM snapshot_entries l LEFT JOIN snapshot_entries s ON s.snapshot_id = @target AND s.rel_path = l.rel_path
         WHERE l.snapshot_id = @pre AND l.rel_path <> '' AND (
           s.rel_path IS NULL OR (s.mode & 61440) <> (l.mode & 61440)
           OR ((l.mode & 61440) <> 16384 AND (s.vid IS NOT l.vid OR s.target IS NOT l.target OR s.size <> l.size)))`),
      // ... and rows of the target snapshot (first ?) that are missing or differ in the live tree (second ?)
      restoreChanges: db.prepare(
        `SELECT s.rel_path, s.src_ino AS ino, s.mode, s.uid, s.gid, s.size, s.alloc, s.mtime, s.vid, s.target, l.src_ino AS live_ino
         FROM snapshot_entries s LEFT JOIN snapshot_entries l ON l.snapshot_id = @pre AND l.rel_path = s.rel_path
         WHERE s.snapshot_id = @target AND (
           l.rel_path IS NULL OR s.mode <> l.mode OR s.uid <> l.uid OR s.gid <> l.gid OR s.vid IS NOT l.vid
           OR s.target IS NOT l.target OR s.size <> l.size OR s.mtime <> l.mtime)`),
      lookupIno: db.prepare('SELECT ino FROM dentries WHERE parent = ? AND name = ?'),
      inodeState: db.prepare('SELECT mode, nlink, vid FROM inodes WHERE ino = ?'),
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

  async createSnapshot(rootIno: number, rec: NewSnapshot): Promise<SnapshotRecord> {
    return this.createSnapshotSync(rootIno, rec);
  }

  private createSnapshotSync(rootIno: number, rec: NewSnapshot): SnapshotRecord {
    return inTransaction(this.db, () => {
      this.stmts.snapshotInsert.run(rootIno, rec.snapshotId);
      const c = this.stmts.snapshotCounts.get(rec.snapshotId) as Row;
      const full: SnapshotRecord = { ...rec, fileCount: Number(c.files), totalBytes: Number(c.bytes) };
      this.stmts.insertSnapshot.run(
        rec.snapshotId, rec.path, rec.name, JSON.stringify(rec.metadata), rec.createdBy, rec.createdAt,
        full.fileCount, full.totalBytes, rec.kind,
      );
      return full;
    });
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
    inTransaction(this.db, () => {
      if (this.stmts.deleteSnapshot.run(id).changes === 0) throw new NexusError('NOT_FOUND', `No such snapshot: ${id}`);
      this.stmts.deleteEntries.run(id);
    });
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
   * Make the live tree under rootIno equal to the snapshot, in one
   * transaction that first records the live tree as the pre-restore snapshot
   * `pre` (so the restore can be undone, and nothing can slip in between).
   * The comparison runs in SQL over the two snapshots' rows; only what
   * differs comes into JavaScript. Live inodes are kept where path, type and
   * content match; a file whose content differs gets a new inode, like an
   * editor's save, so a handle still open on the old one keeps reading the old
   * content whole, never a mix.
   */
  async restore(rootIno: number, snapshotId: string, pre: NewSnapshot, timeNs: TimeNs): Promise<RestoreResult & { pre: SnapshotRecord }> {
    return inTransaction(this.db, () => {
      const preRec = this.createSnapshotSync(rootIno, pre);
      const result: RestoreResult = { created: 0, modified: 0, removed: 0, unlinked: [], touched: [] };
      const parentOf = (rel: string) => rel.slice(0, Math.max(0, rel.lastIndexOf('/')));
      const nameOf = (rel: string) => rel.slice(rel.lastIndexOf('/') + 1);
      const liveIno = (rel: string): number | undefined => {
        if (rel === '') return rootIno;
        const r = this.stmts.entry.get(pre.snapshotId, rel) as Row | undefined;
        return r ? Number(r.ino) : undefined;
      };

      // 1. Remove what the snapshot does not have, has with another type, or
      //    (files) has with other content: deepest first.
      const doomed = (this.stmts.restoreDoomed.all({ pre: pre.snapshotId, target: snapshotId }) as Row[]).map(toEntry)
        .map((e) => ({ e, depth: depth(e.relPath) }))
        .sort((x, y) => y.depth - x.depth);
      const removedPaths = new Set<string>();
      for (const { e } of doomed) {
        const parentIno = liveIno(parentOf(e.relPath))!;
        this.stmts.deleteDentry.run(parentIno, nameOf(e.relPath));
        if (isDir(e.mode)) {
          this.stmts.zeroNlink.run(timeNs, e.ino);
          this.stmts.addNlink.run(-1, timeNs, parentIno);
        } else {
          this.stmts.addNlink.run(-1, timeNs, e.ino);
        }
        this.stmts.touchDir.run(timeNs, timeNs, parentIno);
        result.unlinked.push(e.ino);
        removedPaths.add(e.relPath);
      }

      // 2. Create what is missing (parents first) and update attributes. Hard
      //    links in the snapshot (one source inode under several paths) become
      //    links to one new inode.
      const changes = (this.stmts.restoreChanges.all({ pre: pre.snapshotId, target: snapshotId }) as Row[])
        .map((r) => ({ e: toEntry(r), live: r.live_ino === null ? undefined : Number(r.live_ino), depth: depth(r.rel_path as string) }))
        .filter((c) => c.e.relPath !== '' || c.live !== undefined)
        .sort((x, y) => x.depth - y.depth || (x.e.relPath < y.e.relPath ? -1 : 1));
      const created = new Map<string, number>();
      const newInoForSrc = new Map<number, number>();
      for (const { e, live } of changes) {
        if (live !== undefined && !removedPaths.has(e.relPath)) {
          this.stmts.updateInode.run(e.mode, e.uid, e.gid, e.size, e.alloc, e.mtimeNs, timeNs, e.vid, e.target, live);
          result.touched.push(live);
          // A directory whose only change is its times is not news to a user.
          if (!isDir(e.mode)) result.modified++;
          continue;
        }
        const parentRel = parentOf(e.relPath);
        const parentIno = created.get(parentRel) ?? liveIno(parentRel);
        if (parentIno === undefined) throw new NexusError('CORRUPT', `Snapshot ${snapshotId} has ${e.relPath} without its parent`);
        let ino = isDir(e.mode) ? undefined : newInoForSrc.get(e.ino);
        if (ino === undefined && !isDir(e.mode)) {
          // A hard link whose group survived in the live tree (same inode, same
          // content): link to it, so the names share one inode again.
          const live = this.stmts.inodeState.get(e.ino) as Row | undefined;
          if (live && Number(live.nlink) > 0 && Number(live.mode) === e.mode && (live.vid === null ? null : Number(live.vid)) === e.vid) {
            this.stmts.addNlink.run(1, timeNs, e.ino);
            this.stmts.insertDentry.run(parentIno, nameOf(e.relPath), e.ino);
            this.stmts.touchDir.run(timeNs, timeNs, parentIno);
            newInoForSrc.set(e.ino, e.ino);
            created.set(e.relPath, e.ino);
            if (removedPaths.delete(e.relPath)) result.modified++;
            else result.created++;
            continue;
          }
        }
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
        created.set(e.relPath, ino);
        // Replaced (removed above, made again here) counts as modified.
        if (removedPaths.delete(e.relPath)) result.modified++;
        else result.created++;
      }
      result.removed = removedPaths.size;
      return { ...result, pre: preRec };
    });
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


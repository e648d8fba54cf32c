/** Structural checks of the metadata (and their repairs), for `nexus fsck`. */
import type Database from 'better-sqlite3';
import { ROOT_INO } from './types.js';
import { unpackChunks } from './sqlite-meta-store.js';

type Row = Record<string, bigint | string | Buffer | null>;

export interface TreeProblem {
  kind: 'root' | 'dangling-parent' | 'dangling-entry' | 'nlink' | 'dir-links' | 'orphan' | 'missing-version' | 'snapshot-missing-version';
  ino?: number;
  detail: string;
}

const TREE = `WITH RECURSIVE reach(ino) AS (SELECT ${ROOT_INO} UNION SELECT d.ino FROM dentries d JOIN reach ON d.parent = reach.ino)`;

export class FsckOps {
  constructor(private readonly db: Database.Database) {}

  checkTree(): TreeProblem[] {
    const out: TreeProblem[] = [];
    const q = (sql: string) => this.db.prepare(sql).all() as Row[];
    const root = this.db.prepare('SELECT mode FROM inodes WHERE ino = ?').get(ROOT_INO) as Row | undefined;
    if (!root || (Number(root.mode) & 0o170000) !== 0o040000) out.push({ kind: 'root', ino: ROOT_INO, detail: 'the root directory is missing or not a directory' });
    for (const r of q(`SELECT d.parent, d.name, d.ino FROM dentries d LEFT JOIN inodes p ON p.ino = d.parent
                       WHERE p.ino IS NULL OR (p.mode & 61440) <> 16384`)) {
      out.push({ kind: 'dangling-parent', ino: Number(r.ino), detail: `entry '${r.name}' is in ${r.parent}, which is not a directory` });
    }
    for (const r of q('SELECT d.parent, d.name, d.ino FROM dentries d LEFT JOIN inodes i ON i.ino = d.ino WHERE i.ino IS NULL')) {
      out.push({ kind: 'dangling-entry', ino: Number(r.ino), detail: `entry '${r.name}' in ${r.parent} names missing inode ${r.ino}` });
    }
    for (const r of q(`SELECT i.ino, i.nlink, (SELECT count(*) FROM dentries d WHERE d.ino = i.ino) AS links
                       FROM inodes i WHERE (i.mode & 61440) <> 16384 AND i.nlink > 0 AND i.nlink <> links`)) {
      out.push({ kind: 'nlink', ino: Number(r.ino), detail: `file has nlink ${r.nlink} but ${r.links} entries` });
    }
    for (const r of q(`SELECT i.ino, i.nlink, 2 + (SELECT count(*) FROM dentries d JOIN inodes c ON c.ino = d.ino
                         WHERE d.parent = i.ino AND (c.mode & 61440) = 16384) AS want
                       FROM inodes i WHERE (i.mode & 61440) = 16384 AND i.nlink > 0 AND i.nlink <> want`)) {
      out.push({ kind: 'nlink', ino: Number(r.ino), detail: `directory has nlink ${r.nlink}, expected ${r.want}` });
    }
    for (const r of q(`SELECT d.ino, count(*) AS n FROM dentries d JOIN inodes i ON i.ino = d.ino
                       WHERE (i.mode & 61440) = 16384 GROUP BY d.ino HAVING n > 1`)) {
      out.push({ kind: 'dir-links', ino: Number(r.ino), detail: `directory has ${r.n} names` });
    }
    for (const r of q(`${TREE} SELECT i.ino FROM inodes i WHERE i.nlink > 0 AND i.ino NOT IN (SELECT ino FROM reach)`)) {
      out.push({ kind: 'orphan', ino: Number(r.ino), detail: `inode ${r.ino} is not reachable from the root` });
    }
    for (const r of q('SELECT i.ino, i.vid FROM inodes i LEFT JOIN versions v ON v.vid = i.vid WHERE i.vid IS NOT NULL AND v.vid IS NULL')) {
      out.push({ kind: 'missing-version', ino: Number(r.ino), detail: `inode ${r.ino} names missing version ${r.vid}` });
    }
    for (const r of q(`SELECT DISTINCT e.snapshot_id, e.vid FROM snapshot_entries e LEFT JOIN versions v ON v.vid = e.vid
                       WHERE e.vid IS NOT NULL AND v.vid IS NULL`)) {
      out.push({ kind: 'snapshot-missing-version', detail: `snapshot ${r.snapshot_id} names missing version ${r.vid}` });
    }
    return out;
  }

  /** Inodes whose current content names one of these blobs. */
  inodesUsingBlobs(ids: Set<string>): number[] {
    const out: number[] = [];
    for (const r of this.db.prepare('SELECT i.ino, v.chunks FROM inodes i JOIN versions v ON v.vid = i.vid').iterate() as Iterable<Row>) {
      if (unpackChunks(r.chunks as Buffer).some((c) => c.id && ids.has(c.id))) out.push(Number(r.ino));
    }
    return out;
  }

  /** Fix counts and dangling rows; returns inodes that must go to lost+found. */
  repairCounts(): void {
    this.db.transaction(() => {
      this.db.exec(`DELETE FROM dentries WHERE ino NOT IN (SELECT ino FROM inodes)`);
      this.db.exec(`DELETE FROM dentries WHERE parent NOT IN (SELECT ino FROM inodes WHERE (mode & 61440) = 16384)`);
      this.db.exec(`UPDATE inodes SET nlink = (SELECT count(*) FROM dentries d WHERE d.ino = inodes.ino)
                    WHERE (mode & 61440) <> 16384 AND nlink > 0`);
      this.db.exec(`UPDATE inodes SET nlink = 2 + (SELECT count(*) FROM dentries d JOIN inodes c ON c.ino = d.ino
                      WHERE d.parent = inodes.ino AND (c.mode & 61440) = 16384)
                    WHERE (mode & 61440) = 16384 AND nlink > 0`);
      this.db.exec(`UPDATE inodes SET vid = NULL, size = 0, alloc = 0 WHERE vid IS NOT NULL AND vid NOT IN (SELECT vid FROM versions)`);
    })();
  }

  /**
   * The top-most inodes cut off from the root (a detached directory, not each
   * file inside it, so what moves to lost+found keeps its inner names).
   */
  orphans(): number[] {
    return (this.db.prepare(`${TREE},
      lost(ino) AS (SELECT i.ino FROM inodes i WHERE i.ino NOT IN (SELECT ino FROM reach)
                    AND (i.nlink > 0 OR EXISTS (SELECT 1 FROM dentries d WHERE d.ino = i.ino)))
      SELECT ino FROM lost WHERE NOT EXISTS (SELECT 1 FROM dentries d WHERE d.ino = lost.ino AND d.parent IN (SELECT ino FROM lost))`).all() as Row[])
      .map((r) => Number(r.ino));
  }

  /** Give an inode a name in a lost+found directory (one transaction). */
  linkInto(dirIno: number, ino: number, name: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM dentries WHERE ino = ?').run(ino);
      this.db.prepare('INSERT INTO dentries (parent, name, ino) VALUES (?, ?, ?)').run(dirIno, name, ino);
      const node = this.db.prepare('SELECT mode FROM inodes WHERE ino = ?').get(ino) as Row;
      const dir = (Number(node.mode) & 0o170000) === 0o040000;
      this.db.prepare('UPDATE inodes SET nlink = ? WHERE ino = ?').run(dir ? 2 : 1, ino);
    })();
  }
}

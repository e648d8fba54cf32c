/** Structural checks of the metadata (and their repairs), for `nexus fsck`. */
import Database from 'better-sqlite3';
import { ROOT_INO, type BlobUsers, type TreeProblem } from './types.js';
import type { FsckOps } from './sub-stores.js';
import { unpackChunks } from './sqlite-meta-store.js';
import { inTransaction } from './sqlite-tx.js';

type Row = Record<string, bigint | string | Buffer | null>;

/** An inode that is part of the tree (has links, or still a name whatever its count says). */
const LIVE = (t: string) => `(${t}.nlink > 0 OR EXISTS (SELECT 1 FROM dentries ld WHERE ld.ino = ${t}.ino))`;

const TREE = `WITH RECURSIVE reach(ino) AS (SELECT ${ROOT_INO} UNION SELECT d.ino FROM dentries d JOIN reach ON d.parent = reach.ino)`;

const joinPath = (root: string, rel: string) => (rel === '' ? root : root === '/' ? `/${rel}` : `${root}/${rel}`);

export class SqliteFsckOps implements FsckOps {
  constructor(private readonly db: Database.Database) {}

  /** SQLite's own check of meta.db (pages, indexes), before the rows are trusted. */
  async checkDatabase(): Promise<TreeProblem[]> {
    return integrityMessages(this.db).map((m) => ({ kind: 'database' as const, detail: `meta.db: ${m}` }));
  }

  async checkTree(): Promise<TreeProblem[]> {
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
    // nlink 0 with no name is a file deleted while open; nlink 0 with a name is damage.
    for (const r of q(`SELECT i.ino, i.nlink, (SELECT count(*) FROM dentries d WHERE d.ino = i.ino) AS links
                       FROM inodes i WHERE (i.mode & 61440) <> 16384 AND ${LIVE('i')} AND i.nlink <> links`)) {
      out.push({ kind: 'nlink', ino: Number(r.ino), detail: `file has nlink ${r.nlink} but ${r.links} entries` });
    }
    for (const r of q(`SELECT i.ino, i.nlink, 2 + (SELECT count(*) FROM dentries d JOIN inodes c ON c.ino = d.ino
                         WHERE d.parent = i.ino AND (c.mode & 61440) = 16384) AS want
                       FROM inodes i WHERE (i.mode & 61440) = 16384 AND (${LIVE('i')} OR i.ino = ${ROOT_INO}) AND i.nlink <> want`)) {
      out.push({ kind: 'nlink', ino: Number(r.ino), detail: `directory has nlink ${r.nlink}, expected ${r.want}` });
    }
    for (const r of q(`SELECT d.ino, count(*) AS n FROM dentries d JOIN inodes i ON i.ino = d.ino
                       WHERE (i.mode & 61440) = 16384 GROUP BY d.ino HAVING n > 1`)) {
      out.push({ kind: 'dir-links', ino: Number(r.ino), detail: `directory has ${r.n} names` });
    }
    for (const r of q(`${TREE} SELECT i.ino FROM inodes i WHERE ${LIVE('i')} AND i.ino NOT IN (SELECT ino FROM reach)`)) {
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
  async inodesUsingBlobs(ids: Set<string>): Promise<number[]> {
    return [...new Set([...(await this.blobUsers(ids)).values()].flatMap((u) => u.inodes))];
  }

  /** For each of these blobs: the inodes whose current content names it, and the snapshot entries that do. */
  async blobUsers(ids: Set<string>): Promise<Map<string, BlobUsers>> {
    const out = new Map<string, BlobUsers>([...ids].map((id) => [id, { inodes: [], snapshots: [] }]));
    const hits = (chunks: Buffer) => new Set(unpackChunks(chunks).flatMap((c) => (c.id && ids.has(c.id) ? [c.id] : [])));
    for (const r of this.db.prepare('SELECT i.ino, v.chunks FROM inodes i JOIN versions v ON v.vid = i.vid').iterate() as Iterable<Row>) {
      for (const id of hits(r.chunks as Buffer)) out.get(id)!.inodes.push(Number(r.ino));
    }
    for (const r of this.db.prepare(`SELECT e.snapshot_id, s.path, e.rel_path, v.chunks FROM snapshot_entries e
                                     JOIN versions v ON v.vid = e.vid JOIN snapshots s ON s.snapshot_id = e.snapshot_id`).iterate() as Iterable<Row>) {
      const path = joinPath(r.path as string, r.rel_path as string);
      for (const id of hits(r.chunks as Buffer)) out.get(id)!.snapshots.push({ snapshot_id: r.snapshot_id as string, path });
    }
    return out;
  }

  /** Files whose current content names a version row that is gone. */
  async inodesWithMissingVersion(): Promise<number[]> {
    return (this.db.prepare('SELECT i.ino FROM inodes i LEFT JOIN versions v ON v.vid = i.vid WHERE i.vid IS NOT NULL AND v.vid IS NULL').all() as Row[])
      .map((r) => Number(r.ino));
  }

  /** Fix link counts; drop dangling entries and version references. */
  async repairCounts(): Promise<void> {
    inTransaction(this.db, () => {
      this.db.exec(`DELETE FROM dentries WHERE ino NOT IN (SELECT ino FROM inodes)`);
      this.db.exec(`DELETE FROM dentries WHERE parent NOT IN (SELECT ino FROM inodes WHERE (mode & 61440) = 16384)`);
      this.db.exec(`UPDATE inodes SET nlink = (SELECT count(*) FROM dentries d WHERE d.ino = inodes.ino)
                    WHERE (mode & 61440) <> 16384 AND ${LIVE('inodes')}`);
      this.db.exec(`UPDATE inodes SET nlink = 2 + (SELECT count(*) FROM dentries d JOIN inodes c ON c.ino = d.ino
                      WHERE d.parent = inodes.ino AND (c.mode & 61440) = 16384)
                    WHERE (mode & 61440) = 16384 AND (${LIVE('inodes')} OR ino = ${ROOT_INO})`);
      this.db.exec(`UPDATE inodes SET vid = NULL, size = 0, alloc = 0 WHERE vid IS NOT NULL AND vid NOT IN (SELECT vid FROM versions)`);
    });
  }

  /**
   * The top-most inodes cut off from the root (a detached directory, not each
   * file inside it, so what moves to lost+found keeps its inner names).
   */
  async orphans(): Promise<number[]> {
    return (this.db.prepare(`${TREE},
      lost(ino) AS (SELECT i.ino FROM inodes i WHERE i.ino NOT IN (SELECT ino FROM reach)
                    AND (i.nlink > 0 OR EXISTS (SELECT 1 FROM dentries d WHERE d.ino = i.ino)))
      SELECT ino FROM lost WHERE NOT EXISTS (SELECT 1 FROM dentries d WHERE d.ino = lost.ino AND d.parent IN (SELECT ino FROM lost))`).all() as Row[])
      .map((r) => Number(r.ino));
  }

  /** Give an inode a name in a lost+found directory (one transaction). */
  async linkInto(dirIno: number, ino: number, name: string): Promise<void> {
    inTransaction(this.db, () => {
      this.db.prepare('DELETE FROM dentries WHERE ino = ?').run(ino);
      this.db.prepare('INSERT INTO dentries (parent, name, ino) VALUES (?, ?, ?)').run(dirIno, name, ino);
      const node = this.db.prepare('SELECT mode FROM inodes WHERE ino = ?').get(ino) as Row;
      const dir = (Number(node.mode) & 0o170000) === 0o040000;
      this.db.prepare('UPDATE inodes SET nlink = ? WHERE ino = ?').run(dir ? 2 : 1, ino);
    });
  }
}

/** What quick_check says is wrong (nothing when sound); its last rows may come with an error. */
function integrityMessages(db: Database.Database, max = 20): string[] {
  const out: string[] = [];
  try {
    for (const r of db.prepare(`PRAGMA quick_check(${max})`).raw().iterate() as Iterable<unknown[]>) {
      for (const line of String(r[0]).split('\n')) if (line !== 'ok' && !line.startsWith('*** in database')) out.push(line);
    }
  } catch (e) {
    // SQLite ends a check of a damaged file with SQLITE_CORRUPT after the rows that say why.
    if (out.length === 0) out.push((e as Error).message);
  }
  return out;
}

/**
 * One line saying what is wrong with a meta.db that Nexus cannot open: not a
 * database at all, or which tables hold damaged pages. Reads only (opened
 * read-only); `fallback` is SQLite's message when the check finds nothing.
 */
export function explainDamagedDatabase(path: string, fallback: string): string {
  const cannot = 'Nexus cannot use it and --repair cannot rebuild it: restore meta.db from a backup';
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (e) {
    return `Metadata database ${path} cannot be opened (${(e as Error).message})`;
  }
  try {
    let tables: Map<number, string>;
    try {
      tables = new Map((db.prepare('SELECT rootpage, name FROM sqlite_master').raw().all() as [number | bigint, string][]).map(([p, n]) => [Number(p), n]));
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'SQLITE_NOTADB') return `Metadata database ${path} is corrupt: it is not a SQLite database (its first page, with the header and the schema, is damaged), so none of its metadata can be read; ${cannot}`;
      return `Metadata database ${path} is corrupt: its schema cannot be read (${(e as Error).message}); ${cannot}`;
    }
    const problems = integrityMessages(db, 10);
    if (problems.length === 0) return `Metadata database ${path} is corrupt (${fallback}), though SQLite's quick check finds nothing now; ${cannot}`;
    // "Tree 3 page 3: ..." names a table by its root page.
    const damaged = new Set<string>();
    for (const m of problems) {
      const tree = /^Tree (\d+)/.exec(m);
      const name = tree && tables.get(Number(tree[1]));
      if (name) damaged.add(name);
    }
    const where = damaged.size ? ` in table${damaged.size > 1 ? 's' : ''} ${[...damaged].join(', ')}` : '';
    return `Metadata database ${path} is corrupt: SQLite finds damaged pages${where} (${problems.slice(0, 4).join('; ')}${problems.length > 4 ? '; ...' : ''}); ${cannot}`;
  } finally {
    db.close();
  }
}

/**
 * A data directory: meta.db (SQLite), blobs/, staging/, and a lock file that
 * says which process owns it. One process at a time: a second one gets LOCKED.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { NexusError, corruptDatabase, isSqliteCorruption } from '../errors.js';
import { LocalBlobStore } from '../blobs/local-blob-store.js';
import { SqliteMetaStore } from '../meta/sqlite-meta-store.js';
import { explainDamagedDatabase } from '../meta/sqlite-fsck.js';
import { Engine } from './engine.js';
import { processStartTime } from '../util/proc.js';

export { processStartTime };

export function defaultDataDir(): string {
  return process.env.NEXUS_DATA_DIR || join(homedir(), '.nexus', 'data');
}

interface LockInfo {
  pid: number;
  start: string;
  role: string;
}

export async function readLock(dataDir: string): Promise<LockInfo | undefined> {
  try {
    const info = JSON.parse(await fsp.readFile(join(dataDir, 'nexus.lock'), 'utf8')) as LockInfo;
    return processStartTime(info.pid) === info.start ? info : undefined;
  } catch {
    return undefined;
  }
}

async function acquireLock(dataDir: string, role: string): Promise<() => Promise<void>> {
  const path = join(dataDir, 'nexus.lock');
  const mine: LockInfo = { pid: process.pid, start: processStartTime(process.pid) ?? '?', role };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      // Whole or absent: written aside, then linked into place (link fails if
      // the lock exists), so nobody ever reads a half-written lock as stale.
      const tmp = `${path}.${process.pid}.tmp`;
      await fsp.writeFile(tmp, JSON.stringify(mine));
      try {
        await fsp.link(tmp, path);
      } finally {
        await fsp.rm(tmp, { force: true });
      }
      return async () => {
        const cur = await fsp.readFile(path, 'utf8').catch(() => '');
        if (cur === JSON.stringify(mine)) await fsp.rm(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = await readLock(dataDir);
      if (owner) {
        throw new NexusError('LOCKED', `Data directory ${dataDir} is in use by ${owner.role} (pid ${owner.pid})`, { pid: owner.pid });
      }
      await fsp.rm(path, { force: true }); // stale: its owner died
    }
  }
  throw new NexusError('LOCKED', `Could not lock data directory ${dataDir}`);
}

/** One line on a meta.db too damaged to open (SQLite corruption), for `nexus fsck` to print. */
export function explainUnreadableMetadata(dbPath: string, sqliteMessage: string): string {
  return explainDamagedDatabase(dbPath, sqliteMessage);
}

export interface OpenedDataDir {
  dataDir: string;
  engine: Engine;
  meta: SqliteMetaStore;
  blobs: LocalBlobStore;
  close(): Promise<void>;
}

export async function openDataDir(dataDir: string, opts: { role?: string } = {}): Promise<OpenedDataDir> {
  await fsp.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const unlock = await acquireLock(dataDir, opts.role ?? 'nexus');
  let meta: SqliteMetaStore | undefined;
  try {
    const stagingDir = join(dataDir, 'staging');
    await fsp.mkdir(stagingDir, { recursive: true });
    const blobs = await LocalBlobStore.open(join(dataDir, 'blobs'));
    meta = SqliteMetaStore.open(join(dataDir, 'meta.db'), {
      rootUid: process.getuid?.() ?? 0,
      rootGid: process.getgid?.() ?? 0,
    });
    const engine = new Engine(meta, blobs, { stagingDir, statfsPath: dataDir, reservePath: join(dataDir, 'reserve') });
    await engine.recover();
    return {
      dataDir, engine, meta, blobs,
      async close() {
        try {
          await engine.close();
        } finally {
          await unlock();
        }
      },
    };
  } catch (e) {
    await meta?.close().catch(() => {});
    await unlock();
    // Recovery reads tables open() did not touch: their damage is meta.db's too.
    if (isSqliteCorruption(e)) throw corruptDatabase(e, join(dataDir, 'meta.db'));
    throw e;
  }
}

/**
 * The data directory as a whole: schema versioning, the ownership lock,
 * clean close (nothing left staged, no descriptor leaked), orphan cleanup.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { constants as C, promises as fsp } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openDataDir, readLock } from '../../src/engine/data-dir.js';
import { ROOT_CONTEXT } from '../../src/engine/credentials.js';
import { SCHEMA_VERSION } from '../../src/meta/schema.js';
import { NexusError } from '../../src/errors.js';
import { pattern } from '../conformance/harness.js';
import { newFds, openFds, removeDir, tempDir } from '../helpers/data-dir.js';

const ctx = ROOT_CONTEXT;
let dataDir: string;

beforeEach(async () => {
  dataDir = await tempDir('nx-store-');
});

afterEach(async () => {
  await removeDir(dataDir);
});

async function expectCode(p: Promise<unknown>, code: string): Promise<NexusError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}, but it succeeded`).toBeDefined();
  expect(err, String(err)).toBeInstanceOf(NexusError);
  expect((err as NexusError).code, String(err)).toBe(code);
  return err as NexusError;
}

function setUserVersion(v: number): void {
  const db = new Database(join(dataDir, 'meta.db'));
  try {
    db.pragma(`user_version = ${v}`);
  } finally {
    db.close();
  }
}

describe('schema', () => {
  it('a new data directory is at the current schema version, in WAL mode', async () => {
    const d = await openDataDir(dataDir);
    await d.close();
    const db = new Database(join(dataDir, 'meta.db'), { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  it('a data directory written by a newer Nexus is refused with SCHEMA_TOO_NEW, and stays unlocked and untouched', async () => {
    const d = await openDataDir(dataDir);
    await d.engine.writeFile('/keep', Buffer.from('kept'), ctx);
    await d.close();
    setUserVersion(999);
    await expectCode(openDataDir(dataDir), 'SCHEMA_TOO_NEW');
    // The failed open released its lock and did not migrate anything.
    expect(await readLock(dataDir)).toBeUndefined();
    const db = new Database(join(dataDir, 'meta.db'), { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(999);
    db.close();
    setUserVersion(SCHEMA_VERSION);
    const again = await openDataDir(dataDir);
    expect((await again.engine.readFile('/keep', ctx)).toString()).toBe('kept');
    await again.close();
  });

  it('a version-1 data directory is migrated on open: the attribute-name index is made, files and attributes are kept', async () => {
    const d = await openDataDir(dataDir);
    await d.engine.writeFile('/f', Buffer.from('kept'), ctx);
    await d.engine.setxattr('/f', 'user.tag', Buffer.from('v'), 'any', ctx);
    await d.close();
    const db = new Database(join(dataDir, 'meta.db'));
    db.exec('DROP INDEX xattrs_name');
    db.pragma('user_version = 1');
    db.close();
    const again = await openDataDir(dataDir);
    expect((await again.engine.readFile('/f', ctx)).toString()).toBe('kept');
    expect((await again.engine.getxattr('/f', 'user.tag', ctx)).toString()).toBe('v');
    expect(await again.engine.xattrNameInUse('user.tag')).toBe(true);
    await again.close();
    const check = new Database(join(dataDir, 'meta.db'), { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(check.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'xattrs_name'").get()).toBeDefined();
    check.close();
  });

  it('knows which attribute names are in use, as attributes come and go', async () => {
    const d = await openDataDir(dataDir);
    const e = d.engine;
    await e.writeFile('/a', Buffer.from('a'), ctx);
    await e.writeFile('/b', Buffer.from('b'), ctx);
    expect(await e.xattrNameInUse('security.capability')).toBe(false);
    await e.setxattr('/a', 'security.capability', Buffer.alloc(20, 1), 'any', ctx);
    await e.setxattr('/b', 'security.capability', Buffer.alloc(20, 2), 'any', ctx);
    expect(await e.xattrNameInUse('security.capability')).toBe(true);
    expect(await e.xattrNameInUse('user.other')).toBe(false);
    await e.removexattr('/a', 'security.capability', ctx);
    expect(await e.xattrNameInUse('security.capability')).toBe(true);
    await e.unlink('/b', ctx);
    expect(await e.xattrNameInUse('security.capability')).toBe(false);
    await d.close();
  });

  it('a meta.db that is not a database is CORRUPT, not a crash', async () => {
    await fsp.writeFile(join(dataDir, 'meta.db'), pattern(8192, 3));
    await expectCode(openDataDir(dataDir), 'CORRUPT');
    expect(await readLock(dataDir)).toBeUndefined();
  });
});

describe('lock', () => {
  it('a second open of a data directory in use is LOCKED; after close it opens', async () => {
    const d = await openDataDir(dataDir);
    await expectCode(openDataDir(dataDir), 'LOCKED');
    // The refused open must not have disturbed the owner.
    await d.engine.writeFile('/still-mine', Buffer.from('yes'), ctx);
    expect((await readLock(dataDir))?.pid).toBe(process.pid);
    await d.close();
    expect(await readLock(dataDir)).toBeUndefined();
    const d2 = await openDataDir(dataDir);
    expect((await d2.engine.readFile('/still-mine', ctx)).toString()).toBe('yes');
    await d2.close();
  });

  it('a lock left by a dead process is taken over', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(dead.stdout);
    expect(deadPid).toBeGreaterThan(0);
    await fsp.writeFile(join(dataDir, 'nexus.lock'), JSON.stringify({ pid: deadPid, start: '12345', role: 'ghost' }));
    const d = await openDataDir(dataDir);
    expect((await readLock(dataDir))?.pid).toBe(process.pid);
    await d.close();
  });

  it('a lock naming a live pid with another start time (pid reuse) is stale', async () => {
    await fsp.writeFile(join(dataDir, 'nexus.lock'), JSON.stringify({ pid: process.pid, start: 'not-my-start', role: 'ghost' }));
    const d = await openDataDir(dataDir);
    await d.close();
  });
});

describe('clean close', () => {
  it('leaves nothing staged and no descriptor open', async () => {
    const before = await openFds();
    const d = await openDataDir(dataDir);
    const e = d.engine;
    await e.writeFile('/a', pattern(2 * 1024 * 1024 + 5, 1), ctx);
    await e.readFile('/a', ctx);
    const { fh } = await e.create('/b', C.O_RDWR | C.O_CREAT, 0o644, ctx);
    await e.write(fh, pattern(300_000, 2), 0);
    const r = await e.open('/a', C.O_RDWR, ctx);
    await e.write(r, Buffer.from('x'), 1_500_000);
    await e.read(r, 100_000, 1_000_000);
    // Close the data directory with both descriptors still open.
    await d.close();
    expect(await fsp.readdir(join(dataDir, 'staging'))).toEqual([]);
    expect(await newFds(before), 'descriptors left open by open + work + close').toEqual([]);
    const d2 = await openDataDir(dataDir);
    expect((await d2.engine.readFile('/b', ctx)).equals(pattern(300_000, 2))).toBe(true);
    const a = pattern(2 * 1024 * 1024 + 5, 1);
    a[1_500_000] = 'x'.charCodeAt(0);
    expect((await d2.engine.readFile('/a', ctx)).equals(a)).toBe(true);
    await d2.close();
  });

  it('drops a file unlinked while open once it is closed, and leaves no orphan inode', async () => {
    const d = await openDataDir(dataDir);
    const e = d.engine;
    await e.writeFile('/gone', pattern(100_000, 4), ctx);
    const fh = await e.open('/gone', C.O_RDWR, ctx);
    await e.write(fh, Buffer.from('more'), 100_000);
    await e.unlink('/gone', ctx);
    const ino = (await e.fgetattr(fh)).ino;
    expect(await d.meta.getInode(ino)).toBeDefined();
    await e.release(fh);
    expect(await d.meta.getInode(ino)).toBeUndefined();
    expect(await d.meta.orphans()).toEqual([]);
    await d.close();
    expect(await fsp.readdir(join(dataDir, 'staging'))).toEqual([]);
  });

  it('an inode unlinked while open when the process died is dropped on the next open', async () => {
    const d = await openDataDir(dataDir);
    await d.engine.writeFile('/gone', pattern(1000, 5), ctx);
    const fh = await d.engine.open('/gone', C.O_RDONLY, ctx);
    await d.engine.unlink('/gone', ctx);
    const ino = (await d.engine.fgetattr(fh)).ino;
    await d.close(); // the handle is still open: the inode stays behind, like after a crash
    const d2 = await openDataDir(dataDir);
    expect(await d2.meta.getInode(ino)).toBeUndefined();
    expect(await d2.meta.orphans()).toEqual([]);
    await d2.close();
  });

  it('close is idempotent and the engine refuses work after it', async () => {
    const d = await openDataDir(dataDir);
    await d.close();
    await d.close();
    await expect(d.engine.writeFile('/x', Buffer.from('x'), ctx)).rejects.toBeDefined();
  });
});

/**
 * A data directory Nexus must not open: written by a newer Nexus (PRAGMA
 * user_version = 999), or with a corrupt meta.db (its first pages
 * overwritten). `nexus status` and `nexus mount` refuse with a clear one-line
 * message and a non-zero exit, touch nothing, leave nothing mounted; `nexus
 * fsck` explains what is wrong (and does not send the user back to itself).
 */
import { isKnownBug } from '../helpers/known-bugs.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { openDataDir } from '../../src/engine/data-dir.js';
import { ROOT_CONTEXT } from '../../src/engine/credentials.js';
import { ensureBuilt } from '../helpers/build.js';
import { removeDir, tempDir } from '../helpers/data-dir.js';
import { expectNoMountsLeft, fuseAvailable, isMounted, lazyUnmount, nexus, trackMountpoint } from '../helpers/mount.js';
import { sha256 } from '../crash/crash-lib.js';

async function store(): Promise<string> {
  const dir = await tempDir('nx-refuse-');
  const d = await openDataDir(dir);
  try {
    await d.engine.mkdir('/docs', 0o755, ROOT_CONTEXT);
    for (let i = 0; i < 50; i++) await d.engine.writeFile(`/docs/f${i}`, Buffer.alloc(2000 + i, i), ROOT_CONTEXT);
  } finally {
    await d.close();
  }
  return dir;
}

function overwrite(file: string, offset: number, length: number): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(length, 0x5a), 0, length, offset);
  closeSync(fd);
}

interface Damage {
  name: string;
  apply(dir: string): void;
  /** What the one-line refusal must say. */
  says: RegExp[];
}

const DAMAGE: Damage[] = [
  {
    name: 'a newer schema (user_version 999)',
    apply: (dir) => {
      const db = new Database(join(dir, 'meta.db'));
      db.pragma('user_version = 999');
      db.close();
    },
    says: [/schema version 999/, /upgrade/i],
  },
  {
    name: 'a corrupt meta.db (first page overwritten, header included)',
    apply: (dir) => overwrite(join(dir, 'meta.db'), 0, 4096),
    says: [/meta\.db/, /corrupt/i],
  },
  {
    name: 'a corrupt meta.db (pages 2 and 3 overwritten, header intact)',
    apply: (dir) => overwrite(join(dir, 'meta.db'), 4096, 8192),
    says: [/meta\.db/, /corrupt/i],
  },
];

/** One line on stderr, nothing on stdout, the expected words, non-zero exit. */
function expectOneLineRefusal(r: { code: number; stdout: string; stderr: string }, says: RegExp[], what: string): void {
  expect(r.code, `${what}: exit code (stderr: ${r.stderr})`).not.toBe(0);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{"level"'));
  expect(lines, `${what}: stderr is one line`).toHaveLength(1);
  for (const re of says) expect(lines[0], what).toMatch(re);
  expect(lines[0], `${what}: no internal error`).not.toMatch(/Internal error|at .*\.js:\d+/);
}

describe('data directories Nexus must refuse', () => {
  const dirs: string[] = [];
  beforeAll(() => ensureBuilt());
  afterEach(async () => {
    for (const d of dirs.splice(0)) await removeDir(d);
  });
  afterAll(() => {
    if (fuseAvailable) expectNoMountsLeft();
  });

  for (const dmg of DAMAGE) {
    it.skipIf(isKnownBug(`${dmg.name}: nexus status refuses in one line and changes nothing`))(`${dmg.name}: nexus status refuses in one line and changes nothing`, async () => {
      const dir = await store();
      dirs.push(dir);
      dmg.apply(dir);
      const before = sha256(readFileSync(join(dir, 'meta.db')));
      expectOneLineRefusal(nexus(['status', '--data-dir', dir]), dmg.says, 'nexus status');
      expectOneLineRefusal(nexus(['status', '--json', '--data-dir', dir]), dmg.says, 'nexus status --json');
      expect(sha256(readFileSync(join(dir, 'meta.db'))), 'meta.db untouched').toBe(before);
    });

    it.skipIf(!fuseAvailable || isKnownBug(`${dmg.name}: nexus mount refuses in one line and nothing is mounted`))(`${dmg.name}: nexus mount refuses in one line and nothing is mounted`, async () => {
      const dir = await store();
      dirs.push(dir);
      dmg.apply(dir);
      const mnt = join(dir, 'mnt');
      mkdirSync(mnt);
      trackMountpoint(mnt);
      try {
        const before = sha256(readFileSync(join(dir, 'meta.db')));
        expectOneLineRefusal(nexus(['mount', mnt, '--data-dir', dir], { timeoutMs: 60_000 }), dmg.says, 'nexus mount');
        expect(isMounted(mnt)).toBe(false);
        expect(sha256(readFileSync(join(dir, 'meta.db'))), 'meta.db untouched').toBe(before);
      } finally {
        if (isMounted(mnt)) lazyUnmount(mnt);
      }
    });

    it.skipIf(isKnownBug(`${dmg.name}: nexus fsck explains what is wrong (without sending the user to nexus fsck)`))(`${dmg.name}: nexus fsck explains what is wrong (without sending the user to nexus fsck)`, async () => {
      const dir = await store();
      dirs.push(dir);
      dmg.apply(dir);
      const r = nexus(['fsck', '--data-dir', dir]);
      expectOneLineRefusal(r, dmg.says, 'nexus fsck');
      expect(r.stderr, 'fsck must not tell the user to run fsck').not.toMatch(/run 'nexus fsck'/);
      // Damage found is exit 3 (README); a store fsck cannot read at all is damage too, unless it is only too new.
      if (/corrupt/.test(dmg.name)) expect(r.code, 'exit code for a corrupt store').toBe(3);
    });
  }
});

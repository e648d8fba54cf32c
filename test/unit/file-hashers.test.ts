/**
 * FileHashers: SHA-256 of staged chunks, read back and hashed by worker threads.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FileHashers } from '../../src/blobs/file-hashers.js';
import { NexusError } from '../../src/errors.js';
import { pattern } from '../conformance/harness.js';
import { removeDir, tempDir } from '../helpers/data-dir.js';
import { buildForChildren } from '../server/server-process.js';
import { REPO } from '../helpers/build.js';

const MB = 1 << 20;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
let dir: string;
let hashers: FileHashers;

beforeEach(async () => {
  dir = await tempDir('nx-hashers-');
  hashers = new FileHashers(2);
});

afterEach(async () => {
  await hashers.close();
  await removeDir(dir);
});

describe('FileHashers', () => {
  it('hashes many files at once across its workers, each under the hash of its own bytes', async () => {
    const files = Array.from({ length: 12 }, (_, i) => {
      const data = pattern(MB - i * 1000, i);
      const path = join(dir, `c${i}`);
      writeFileSync(path, data);
      return { path, data };
    });
    const got = await Promise.all(files.map((f) => hashers.hash(f.path, f.data.length)));
    expect(got).toEqual(files.map((f) => ({ id: sha(f.data), len: f.data.length, zero: false })));
  });

  it('hashes only the first len bytes, and says how many it found when the file is shorter', async () => {
    const data = pattern(300_000, 3);
    writeFileSync(join(dir, 'f'), data);
    expect(await hashers.hash(join(dir, 'f'), 1000)).toEqual({ id: sha(data.subarray(0, 1000)), len: 1000, zero: false });
    expect(await hashers.hash(join(dir, 'f'), MB)).toEqual({ id: sha(data), len: data.length, zero: false });
  });

  it('tells a chunk of zeros from one with a single byte set', async () => {
    const zeros = Buffer.alloc(MB);
    writeFileSync(join(dir, 'z'), zeros);
    const one = Buffer.alloc(MB);
    one[MB - 1] = 1;
    writeFileSync(join(dir, 'o'), one);
    expect(await hashers.hash(join(dir, 'z'), MB)).toEqual({ id: sha(zeros), len: MB, zero: true });
    expect(await hashers.hash(join(dir, 'o'), MB)).toEqual({ id: sha(one), len: MB, zero: false });
  });

  it('rejects a missing file with a typed error (its own staging file gone: internal) and keeps working', async () => {
    const err = await hashers.hash(join(dir, 'missing'), 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NexusError);
    expect(err).toMatchObject({ code: 'INTERNAL', message: expect.stringContaining('ENOENT') });
    writeFileSync(join(dir, 'after'), 'still here');
    expect((await hashers.hash(join(dir, 'after'), 100)).id).toBe(sha(Buffer.from('still here')));
  });

  it('idle workers do not keep a process alive: a process that hashed and never closed the pool exits', () => {
    buildForChildren();
    writeFileSync(join(dir, 'f'), 'hello');
    const script = `const { FileHashers } = await import(${JSON.stringify(join(REPO, 'dist/src/blobs/file-hashers.js'))});
const h = new FileHashers(2);
console.log((await h.hash(${JSON.stringify(join(dir, 'f'))}, 5)).id);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
    expect(r.error, 'the child did not exit within 10 s').toBeUndefined();
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(sha(Buffer.from('hello')));
  });

  it('refuses work once closed', async () => {
    await hashers.close();
    await expect(hashers.hash(join(dir, 'x'), 1)).rejects.toBeInstanceOf(NexusError);
  });
});

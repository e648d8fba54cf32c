/**
 * The fast read and write paths: Engine.readInto (straight into the caller's
 * buffer), blob range reads (synchronous or through the threadpool), chunk
 * hashes computed by worker threads while the writer goes on, and staging
 * files made ahead of a sequential writer.
 */
import { describe, expect, it, vi } from 'vitest';
import { constants as C, promises as fsp, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { OpenedDataDir } from '../../src/engine/data-dir.js';
import { ROOT_CONTEXT } from '../../src/engine/credentials.js';
import { CHUNK_SIZE } from '../../src/engine/dirty-file.js';
import { ReadFds } from '../../src/blobs/read-fds.js';
import { NexusError } from '../../src/errors.js';
import { pattern } from '../conformance/harness.js';
import { chunksOf, dataDirPerTest, newFds, openFds } from '../helpers/data-dir.js';

const ctx = ROOT_CONTEXT;
const MB = CHUNK_SIZE;
const dataDir = dataDirPerTest('nx-io-');
let d: OpenedDataDir;

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Blob ids of the file's committed chunks, and every blob re-checked against its hash. */
async function committedChunks(o: OpenedDataDir, path: string): Promise<(string | null)[]> {
  const ids = (await chunksOf(o, path)).map((c) => c.id);
  for (const id of ids) if (id) expect(await o.blobs.verify(id), `blob ${id}`).toBe('ok');
  return ids;
}

/** The file holds `data`, stored as one blob per 1 MiB chunk under the hash of that chunk's bytes. */
async function expectStoredByChunk(o: OpenedDataDir, path: string, data: Buffer): Promise<void> {
  const want = Array.from({ length: Math.ceil(data.length / MB) }, (_, k) => sha(data.subarray(k * MB, (k + 1) * MB)));
  expect(await committedChunks(o, path)).toEqual(want);
  expect((await o.engine.readFile(path, ctx)).equals(data)).toBe(true);
}

describe('Engine.readInto', () => {
  it('reads committed, staged and in-memory content into the caller buffer, short at the end of the file', async () => {
    d = await dataDir.open();
    const e = d.engine;
    const big = pattern(3 * MB + 777, 1);
    await e.writeFile('/big', big, ctx);
    await e.writeFile('/small', pattern(5000, 2), ctx);
    const buf = Buffer.alloc(2 * MB, 0xee);

    const r = await e.open('/big', C.O_RDONLY, ctx);
    expect(await e.readInto(r, buf, MB, MB - 10)).toBe(MB);
    expect(buf.subarray(0, MB).equals(big.subarray(MB - 10, 2 * MB - 10))).toBe(true);
    expect(await e.readInto(r, buf, 2 * MB, 3 * MB)).toBe(777);
    expect(buf.subarray(0, 777).equals(big.subarray(3 * MB))).toBe(true);
    expect(await e.readInto(r, buf, 100, big.length + 5)).toBe(0);

    // Staged (uncommitted) changes over committed chunks.
    const w = await e.open('/big', C.O_RDWR, ctx);
    await e.write(w, Buffer.from('hello'), MB + 3);
    expect(await e.readInto(r, buf, 20, MB)).toBe(20);
    const want = Buffer.from(big.subarray(MB, MB + 20));
    want.write('hello', 3);
    expect(buf.subarray(0, 20).equals(want)).toBe(true);

    // A small file pending in memory.
    const s = await e.open('/small', C.O_RDWR, ctx);
    await e.write(s, Buffer.from('XY'), 4999);
    expect(await e.readInto(s, buf, 10_000, 4990)).toBe(11);
    expect(buf.subarray(9, 11).toString()).toBe('XY');

    expect(await e.readInto(r, buf, 0, 0)).toBe(0);
    await expect(e.readInto(r, Buffer.alloc(10), 11, 0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(e.readInto(r, buf, 10, -1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const wo = await e.open('/small', C.O_WRONLY, ctx);
    await expect(e.readInto(wo, buf, 10, 0)).rejects.toMatchObject({ code: 'BAD_HANDLE' });
    for (const fh of [r, w, s, wo]) await e.release(fh);
  });

  it('a blob removed behind the engine reads as CORRUPT, never as data', async () => {
    d = await dataDir.open();
    await d.engine.writeFile('/f', pattern(2 * MB, 3), ctx);
    const [, second] = await committedChunks(d, '/f');
    await fsp.rm(d.blobs.pathOf(second!));
    const fh = await d.engine.open('/f', C.O_RDONLY, ctx);
    await expect(d.engine.readInto(fh, Buffer.alloc(MB), MB, MB)).rejects.toMatchObject({ code: 'CORRUPT' });
    await d.engine.release(fh);
  });
});

describe('chunk hashes computed in the background', () => {
  it('sequential appends in pieces of any size store each chunk under the hash of its bytes', async () => {
    d = await dataDir.open();
    const e = d.engine;
    const data = pattern(3 * MB + 12345, 4);
    const { fh } = await e.create('/seq', C.O_WRONLY | C.O_CREAT, 0o644, ctx);
    // Pieces that straddle chunk boundaries.
    for (let pos = 0, step = 1; pos < data.length; step = (step * 7 + 3) % 300_000 + 1) {
      const n = Math.min(step, data.length - pos);
      await e.write(fh, data.subarray(pos, pos + n), pos);
      pos += n;
    }
    await e.release(fh);
    await expectStoredByChunk(d, '/seq', data);
  });

  it('an overwrite, a gap or a truncate in a chunk being appended to is hashed from what was written', async () => {
    d = await dataDir.open();
    const e = d.engine;
    const data = pattern(4 * MB, 5);
    const { fh } = await e.create('/mixed', C.O_RDWR | C.O_CREAT, 0o644, ctx);
    // Chunk 0: appends, then an overwrite before it fills, then more appends.
    await e.write(fh, data.subarray(0, 600_000), 0);
    data.write('overwritten', 1000);
    await e.write(fh, data.subarray(1000, 1011), 1000);
    await e.write(fh, data.subarray(600_000, MB), 600_000);
    // Chunk 1: filled by appends, then changed after its hash was known.
    await e.write(fh, data.subarray(MB, 2 * MB), MB);
    data.write('changed', MB + 5);
    await e.write(fh, data.subarray(MB + 5, MB + 12), MB + 5);
    // Chunk 2: a write past a gap (zeros below it), then appends to the end.
    data.fill(0, 2 * MB, 2 * MB + 100);
    await e.write(fh, data.subarray(2 * MB + 100, 2 * MB + 200), 2 * MB + 100);
    await e.write(fh, data.subarray(2 * MB + 200, 3 * MB), 2 * MB + 200);
    // Chunk 3: appended, truncated inside, then appended again.
    await e.write(fh, data.subarray(3 * MB, 3 * MB + 500_000), 3 * MB);
    await e.truncate('/mixed', 3 * MB + 1000, ctx);
    await e.write(fh, data.subarray(3 * MB + 1000, 4 * MB), 3 * MB + 1000);
    await e.release(fh);
    await expectStoredByChunk(d, '/mixed', data);
  });

  it('a chunk of zeros written sequentially is a hole, not a blob', async () => {
    d = await dataDir.open();
    const data = Buffer.concat([pattern(MB, 6), Buffer.alloc(MB), pattern(10, 7)]);
    await d.engine.writeFile('/holey', data, ctx);
    const ids = await committedChunks(d, '/holey');
    expect(ids[1]).toBeNull();
    expect((await d.engine.readFile('/holey', ctx)).equals(data)).toBe(true);
  });
});

describe('staging files made ahead of a sequential writer', () => {
  /** What is staged besides the small-write journal, which stays open. */
  const stagingFiles = async () => (await fsp.readdir(join(dataDir.path, 'staging'))).filter((n) => n !== 'journal').sort();

  it('leave nothing behind after a clean close: no staging file, no descriptor', async () => {
    const before = await openFds();
    d = await dataDir.open();
    for (let i = 0; i < 3; i++) await d.engine.writeFile(`/f${i}`, pattern(2 * MB + i, i), ctx);
    await dataDir.close();
    expect(await fsp.readdir(join(dataDir.path, 'staging'))).toEqual([]);
    expect(await newFds(before), 'descriptors left open').toEqual([]);
  });

  it('an empty chunk file left by a crash is removed at the next open and never becomes data', async () => {
    d = await dataDir.open();
    await d.engine.writeFile('/f', pattern(MB + 5, 8), ctx);
    const { ino } = await d.engine.getattr('/f', ctx);
    await dataDir.close();
    // As a kill -9 leaves them: made ahead of a writer that never reached them,
    // one inside the file (it must not zero chunk 1) and one past its end (it must not grow it).
    for (const k of [1, 3]) writeFileSync(join(dataDir.path, 'staging', `${ino}.${k}`), '');
    d = await dataDir.open();
    expect(await stagingFiles()).toEqual([]);
    expect((await d.engine.getattr('/f', ctx)).size).toBe(MB + 5);
    expect((await d.engine.readFile('/f', ctx)).equals(pattern(MB + 5, 8))).toBe(true);
  });

  it('a writer that stops early or jumps back leaves no unused file behind', async () => {
    d = await dataDir.open();
    const { fh, stat: { ino } } = await d.engine.create('/g', C.O_WRONLY | C.O_CREAT, 0o644, ctx);
    await d.engine.write(fh, pattern(MB, 1), 0); // chunk 1's file is made ahead here
    await d.engine.write(fh, pattern(100, 2), 10); // back into chunk 0
    expect(await stagingFiles()).toEqual(expect.arrayContaining([`${ino}.0`, `${ino}.1`]));
    await d.engine.release(fh);
    expect(await stagingFiles()).toEqual([]);
    const want = pattern(MB, 1);
    pattern(100, 2).copy(want, 10);
    expect((await d.engine.readFile('/g', ctx)).equals(want)).toBe(true);
  });
});

describe('failed writes and jumping writers', () => {
  /** Make the next `times` writes to any FileHandle fail with ENOSPC, as a full disk does. */
  async function failNextWrites(times: number) {
    const probe = await fsp.open(join(dataDir.path, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { write: (...a: unknown[]) => Promise<unknown> };
    await probe.close();
    const real = proto.write;
    let left = times;
    return vi.spyOn(proto, 'write').mockImplementation(function (this: unknown, ...a: unknown[]) {
      if (left-- > 0) return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 }));
      return real.apply(this, a);
    });
  }

  it('a write that fails on a full disk leaves the committed chunk it was replacing as it was', async () => {
    d = await dataDir.open();
    const e = d.engine;
    const before = pattern(2 * MB + 300, 4);
    await e.writeFile('/f', before, ctx);
    const { fh } = await e.create('/f', C.O_WRONLY, 0o644, ctx);
    const spy = await failNextWrites(4);
    try {
      // A whole-chunk overwrite stages chunk 1 without copying it: the failed write must not leave it empty.
      await expect(e.write(fh, pattern(MB, 9), MB)).rejects.toThrow(/ENOSPC|No space/);
    } finally {
      spy.mockRestore();
    }
    expect((await e.readFile('/f', ctx)).equals(before)).toBe(true);
    await e.release(fh);
    expect((await e.readFile('/f', ctx)).equals(before)).toBe(true);
  });

  it('a writer jumping about keeps at most one staging file made ahead', async () => {
    d = await dataDir.open();
    const e = d.engine;
    const { fh } = await e.create('/j', C.O_WRONLY | C.O_CREAT, 0o644, ctx);
    // 2 MiB records 10 MiB apart: each would leave chunk k+2 made ahead and unused.
    for (let r = 0; r < 6; r++) await e.write(fh, pattern(2 * MB, r), r * 10 * MB);
    const empty: string[] = [];
    for (const n of await fsp.readdir(join(dataDir.path, 'staging'))) {
      if (/^\d+\.\d+$/.test(n) && (await fsp.stat(join(dataDir.path, 'staging', n))).size === 0) empty.push(n);
    }
    expect(empty.length).toBeLessThanOrEqual(1);
    await e.release(fh);
    const all = await e.readFile('/j', ctx);
    for (let r = 0; r < 6; r++) expect(all.subarray(r * 10 * MB, r * 10 * MB + 2 * MB).equals(pattern(2 * MB, r))).toBe(true);
  });
});

describe('ReadFds', () => {
  it('reads ranges synchronously or through the threadpool, with at most `max` descriptors cached', async () => {
    const files: string[] = [];
    for (let i = 0; i < 5; i++) {
      files.push(join(dataDir.path, `b${i}`));
      writeFileSync(files[i]!, pattern(100_000, i));
    }
    for (const sync of [true, false]) {
      const before = await openFds();
      const fds = new ReadFds(2, sync);
      const out = Buffer.alloc(1000);
      // Concurrent reads of more files than the cache holds: evictions must not close a descriptor in use.
      const got = await Promise.all(
        files.flatMap((f, i) => [0, 50_000, 99_500].map(async (off) => {
          const b = Buffer.alloc(1000);
          const n = await fds.read(f, f, off, b, 0, 1000);
          return b.subarray(0, n).equals(pattern(100_000, i).subarray(off, off + 1000));
        })),
      );
      expect(got.every(Boolean)).toBe(true);
      expect(fds.size).toBeLessThanOrEqual(2);
      expect(await fds.read(files[0]!, files[0]!, 10, out, 500, 20)).toBe(20);
      expect(out.subarray(500, 520).equals(pattern(100_000, 0).subarray(10, 30))).toBe(true);
      await expect(fds.read('missing', join(dataDir.path, 'missing'), 0, out, 0, 10)).rejects.toMatchObject({ code: 'ENOENT' });
      fds.close();
      await new Promise((r) => setTimeout(r, 50));
      expect(await newFds(before), `descriptors left open (sync ${sync})`).toEqual([]);
    }
  });

  it('a read of a missing blob through the store is CORRUPT', async () => {
    d = await dataDir.open();
    const err = await d.blobs.readInto('0'.repeat(64), 0, Buffer.alloc(10), 0, 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NexusError);
    expect((err as NexusError).code).toBe('CORRUPT');
  });
});

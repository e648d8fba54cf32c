/**
 * Robustness: 2,000 descriptors opened at once on many files by a client
 * process (a node child with a large libuv pool, so hundreds of FUSE requests
 * are in flight together), read, written, closed. Every open and read
 * succeeds or fails cleanly (EMFILE from the client's own ulimit is fine), the
 * daemon stays responsive with bounded memory and descriptors, and no handle
 * outlives its close: files unlinked after the storm leave no inode behind
 * (an engine handle still counted open would keep its unlinked inode).
 */
import { describe, it, expect } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fuseAvailable, mountPerTest } from '../helpers/mount.js';
import { bugLines, daemonFdCount, daemonRssKb, expectCanaries, expectFsckConsistent, expectServing, run, shOk, withMetaDb, writeCanaries } from '../helpers/robust-util.js';

const STORM = `
import { promises as fsp, constants as C } from 'node:fs';
import { createHash } from 'node:crypto';
const [dir, nFiles, nOpens, nWriters] = process.argv.slice(2).map((x, i) => (i === 0 ? x : Number(x)));
const sha = (b) => createHash('sha256').update(b).digest('hex');
const expect = (i) => { const b = Buffer.alloc(4096 + (i % 7) * 1000, i % 251); b.write('file ' + i); return b; };
const counts = { opened: 0, EMFILE: 0, openErrors: {}, readOk: 0, readBad: 0, readErrors: {}, wrote: 0, writeErrors: {}, closeErrors: {} };
const bump = (m, k) => (m[k] = (m[k] ?? 0) + 1);
const t0 = Date.now();
// Open everything at once.
const handles = await Promise.all(Array.from({ length: nOpens }, async (_, j) => {
  const writer = j < nWriters;
  const path = writer ? dir + '/w' + j : dir + '/r' + (j % nFiles);
  try {
    const fh = await fsp.open(path, writer ? C.O_RDWR | C.O_CREAT : C.O_RDONLY, 0o644);
    counts.opened++;
    return { fh, j, writer };
  } catch (e) {
    if (e.code === 'EMFILE' || e.code === 'ENFILE') counts.EMFILE++;
    else bump(counts.openErrors, e.code ?? e.message);
    return null;
  }
}));
const tOpen = Date.now() - t0;
// All open at the same time now: read (and write) through every one.
await Promise.all(handles.filter(Boolean).map(async ({ fh, j, writer }) => {
  try {
    if (writer) {
      await fh.write(Buffer.from('writer ' + j + ' '.repeat(1000)), 0, 1007, 0);
      counts.wrote++;
    } else {
      const want = expect(j % nFiles);
      const { bytesRead, buffer } = await fh.read(Buffer.alloc(want.length + 10), 0, want.length + 10, 0);
      if (bytesRead === want.length && sha(buffer.subarray(0, bytesRead)) === sha(want)) counts.readOk++;
      else counts.readBad++;
    }
  } catch (e) {
    bump(writer ? counts.writeErrors : counts.readErrors, e.code ?? e.message);
  }
}));
await Promise.all(handles.filter(Boolean).map(async ({ fh }) => {
  try { await fh.close(); } catch (e) { bump(counts.closeErrors, e.code ?? e.message); }
}));
counts.ms = Date.now() - t0;
counts.openMs = tOpen;
console.log(JSON.stringify(counts));
`;

interface StormCounts {
  opened: number; EMFILE: number; openErrors: Record<string, number>; readOk: number; readBad: number;
  readErrors: Record<string, number>; wrote: number; writeErrors: Record<string, number>; closeErrors: Record<string, number>; ms: number; openMs: number;
}

async function storm(script: string, dir: string, nFiles: number, nOpens: number, nWriters: number, ulimit: number): Promise<StormCounts> {
  const r = await run('/bin/bash', ['-c', `ulimit -n ${ulimit}; exec "${process.execPath}" "${script}" "$@"`, 'storm', dir, String(nFiles), String(nOpens), String(nWriters)], {
    timeoutMs: 180_000, env: { UV_THREADPOOL_SIZE: '128' },
  });
  if (r.code !== 0) throw new Error(`storm failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as StormCounts;
}

describe.skipIf(!fuseAvailable)('robustness: 2,000 concurrent opens', () => {
  const t = mountPerTest();

  it('2,000 descriptors at once on 200 files: all succeed (or EMFILE under a small ulimit), the daemon stays bounded and forgets every handle', async () => {
    const mp = t.m.mountpoint;
    const pid = t.m.child.pid!;
    const script = join(t.m.base, 'storm.mjs');
    writeFileSync(script, STORM);
    await shOk(mp, 'mkdir storm');
    const canaries = await writeCanaries(mp, [5000, 400_000, 1_500_000]);
    // 200 files with known content (same formula as the storm's expect()).
    await shOk(mp, `cd storm && "${process.execPath}" -e '
      const fs = require("fs");
      for (let i = 0; i < 200; i++) { const b = Buffer.alloc(4096 + (i % 7) * 1000, i % 251); b.write("file " + i); fs.writeFileSync("r" + i, b); }'`);
    const rss0 = daemonRssKb(pid);
    const fds0 = daemonFdCount(pid);

    // 1. Generous ulimit: everything must succeed.
    const a = await storm(script, `${mp}/storm`, 200, 2000, 200, 8192);
    console.log('storm (ulimit 8192):', JSON.stringify(a));
    expect(a.opened).toBe(2000);
    expect(a.openErrors).toEqual({});
    expect(a.readOk).toBe(1800);
    expect(a.readBad).toBe(0);
    expect(a.readErrors).toEqual({});
    expect(a.wrote).toBe(200);
    expect(a.writeErrors).toEqual({});
    expect(a.closeErrors).toEqual({});

    // 2. A client ulimit below 2,000: EMFILE for the rest, and nothing else goes wrong.
    const b = await storm(script, `${mp}/storm`, 200, 2000, 100, 1024);
    console.log('storm (ulimit 1024):', JSON.stringify(b));
    expect(b.EMFILE).toBeGreaterThan(0);
    expect(b.opened + b.EMFILE).toBe(2000);
    expect(b.openErrors).toEqual({});
    expect(b.readBad).toBe(0);
    expect(b.readErrors).toEqual({});
    expect(b.writeErrors).toEqual({});
    expect(b.closeErrors).toEqual({});

    // 3. Three more storms back to back: memory and descriptors stay bounded.
    for (let i = 0; i < 3; i++) await storm(script, `${mp}/storm`, 200, 2000, 200, 8192);
    const rss1 = daemonRssKb(pid);
    const fds1 = daemonFdCount(pid);
    console.log(`daemon RSS ${Math.round(rss0 / 1024)} MiB -> ${Math.round(rss1 / 1024)} MiB; descriptors ${fds0} -> ${fds1}`);
    expect(rss1 - rss0, 'daemon RSS growth (KiB) over five storms').toBeLessThan(200 * 1024);
    // The blob store keeps up to 64 blob descriptors cached for range reads (MAX_CACHED_FDS); nothing else may stay open.
    expect(fds1 - fds0, 'daemon descriptors left open').toBeLessThan(64 + 16);

    // Responsive: a stat of the mount and a listing come back quickly.
    const t0 = Date.now();
    expect((await shOk(mp, 'ls storm | wc -l')).trim()).toBe('400');
    expect(Date.now() - t0).toBeLessThan(5000);
    // The writers' content is there.
    expect((await shOk(mp, 'head -c 10 storm/w7; echo; head -c 11 storm/w199')).replace(/\s+$/, '')).toBe('writer 7  \nwriter 199');

    // 4. Every handle was released: unlink everything the storms touched; with
    //    the daemon stopped, no unlinked inode may remain (a handle still
    //    counted open keeps its inode from being dropped).
    await shOk(mp, 'rm -r storm');
    await expectCanaries(mp, canaries);
    await expectServing(t.m, 'after the storms');
    await expectFsckConsistent(t.m.dataDir);
    expect(await bugLines(t.m), 'daemon log').toEqual([]);
    await t.m.stop();
    const left = withMetaDb(t.m.dataDir, (db) => db.prepare('SELECT count(*) AS n FROM inodes WHERE nlink = 0').get() as { n: number });
    expect(left.n, 'unlinked inodes still held by handles that were never released').toBe(0);
  }, 300_000);
});

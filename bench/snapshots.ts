/**
 * bench/snapshots: snapshot and restore of a workspace of N files of 4 KiB,
 * beside `cp -a` and `git add -A && git commit` of the same tree on a native
 * directory, in the same run. Not a test: prints figures.
 *   npm run bench:snapshots                      (10,000 and 100,000 files)
 *   NEXUS_BENCH_SIZES=2000 npm run bench:snapshots (quick)
 */
import { execSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openServices } from '../src/services/services.js';
import { ROOT_CONTEXT } from '../src/engine/credentials.js';

const SIZES = (process.env.NEXUS_BENCH_SIZES ?? '10000,100000').split(',').map(Number);
const FILES_PER_DIR = 100;

const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

function duBytes(dir: string): number {
  let n = 0;
  for (const sub of readdirSync(dir)) {
    const p = join(dir, sub);
    const st = statSync(p);
    n += st.isDirectory() ? duBytes(p) : st.size;
  }
  return n;
}

async function one(n: number): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'nexus-benchsnap-'));
  try {
    const native = join(base, 'native', 'ws');
    mkdirSync(native, { recursive: true });
    const contents = Array.from({ length: n }, () => randomBytes(4096));
    for (let i = 0; i < n; i++) {
      const d = join(native, `d${Math.floor(i / FILES_PER_DIR)}`);
      if (i % FILES_PER_DIR === 0) mkdirSync(d);
      writeFileSync(join(d, `f${i}`), contents[i]!);
    }
    let t0 = process.hrtime.bigint();
    execSync(`cp -a ${native} ${join(base, 'native', 'copy')}`);
    const cp = seconds(t0);
    t0 = process.hrtime.bigint();
    execSync('git init -q . && git add -A && git -c user.email=b@e -c user.name=bench commit -qm bench', { cwd: native });
    const git = seconds(t0);

    const d = await openServices(join(base, 'data'), { role: 'bench' });
    const s = d.services;
    const ctx = ROOT_CONTEXT;
    await s.workspaces.create('/ws', {}, ctx);
    t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      if (i % FILES_PER_DIR === 0) await s.files.mkdir(`/ws/d${Math.floor(i / FILES_PER_DIR)}`, ctx);
      await s.files.write(`/ws/d${Math.floor(i / FILES_PER_DIR)}/f${i}`, contents[i]!, ctx);
    }
    const populate = seconds(t0);
    await d.engine.syncNow();
    const blobDir = join(base, 'data', 'blobs');
    const blobBytesBefore = duBytes(blobDir);

    t0 = process.hrtime.bigint();
    const snap = await s.snapshots.create('/ws', { name: 'bench' }, ctx);
    const snapTime = seconds(t0);
    const blobBytesAfter = duBytes(blobDir);

    // Modify 1% of the files, then restore.
    const changed = Math.max(1, Math.floor(n / 100));
    for (let i = 0; i < changed; i++) {
      const k = Math.floor((i * n) / changed);
      await s.files.write(`/ws/d${Math.floor(k / FILES_PER_DIR)}/f${k}`, randomBytes(4096), ctx);
    }
    t0 = process.hrtime.bigint();
    const r = await s.snapshots.restore('/ws', snap.snapshot_id, ctx);
    const restoreTime = seconds(t0);
    const check = await s.files.read(`/ws/d0/f0`, ctx);
    if (!check.equals(contents[0]!)) throw new Error('restore did not bring back the content');
    await d.close();

    console.log(`\n${n} files of 4 KiB (${changed} modified before the restore)`);
    console.log(`  populate through the engine   ${populate.toFixed(2)} s`);
    console.log(`  snapshot                      ${(snapTime * 1000).toFixed(0)} ms   (${(cp / snapTime).toFixed(0)}x faster than cp -a, ${(git / snapTime).toFixed(0)}x faster than git add+commit)`);
    console.log(`  restore (incl. pre-restore snapshot)  ${(restoreTime * 1000).toFixed(0)} ms   (${r.created} created, ${r.removed} removed; ${(cp / restoreTime).toFixed(0)}x faster than cp -a)`);
    console.log(`  bytes written to the blob store by the snapshot: ${blobBytesAfter - blobBytesBefore}`);
    console.log(`  cp -a ${(cp * 1000).toFixed(0)} ms, git add -A && git commit ${(git * 1000).toFixed(0)} ms`);
    const ok = snapTime < 1 && restoreTime < 1 && cp / snapTime >= 10 && cp / restoreTime >= 10 && blobBytesAfter === blobBytesBefore;
    if (n === 10_000) console.log(`  target (10,000 files: snapshot and restore < 1 s and >= 10x cp -a, no blob written): ${ok ? 'ok' : 'MISSED'}`);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

for (const n of SIZES) await one(n);

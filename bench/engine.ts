/**
 * bench/engine: the engine (in process, no FUSE) against node:fs on a native
 * temporary directory, same workloads, same run. Not a test: prints figures.
 *   npm run bench:engine            (1 GiB sequential, 10,000 small files)
 *   NEXUS_BENCH_MB=256 npm run bench:engine   (smaller run)
 */
import { mkdtempSync, rmSync, promises as fsp, constants as fsc } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openDataDir } from '../src/engine/data-dir.js';
import { ROOT_CONTEXT } from '../src/engine/credentials.js';

const MB = 1024 * 1024;
const SEQ_MB = Number(process.env.NEXUS_BENCH_MB ?? 1024);
const SMALL_FILES = Number(process.env.NEXUS_BENCH_FILES ?? 10_000);
const BS = MB;

interface Fs {
  name: string;
  seqWrite(path: string, blocks: Buffer[]): Promise<void>;
  seqRead(path: string, total: number): Promise<number>;
  writeSmall(path: string, data: Buffer): Promise<void>;
  stat(path: string): Promise<number>;
  unlink(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  close(): Promise<void>;
}

async function nativeFs(root: string): Promise<Fs> {
  const p = (x: string) => join(root, x);
  return {
    name: 'native',
    async seqWrite(path, blocks) {
      const fh = await fsp.open(p(path), 'w');
      let pos = 0;
      for (const b of blocks) pos += (await fh.write(b, 0, b.length, pos)).bytesWritten;
      await fh.close();
    },
    async seqRead(path, total) {
      const fh = await fsp.open(p(path), 'r');
      const buf = Buffer.allocUnsafe(BS);
      let pos = 0;
      while (pos < total) {
        const { bytesRead } = await fh.read(buf, 0, BS, pos);
        if (!bytesRead) break;
        pos += bytesRead;
      }
      await fh.close();
      return pos;
    },
    writeSmall: (path, data) => fsp.writeFile(p(path), data),
    stat: async (path) => (await fsp.stat(p(path))).size,
    unlink: (path) => fsp.unlink(p(path)),
    mkdir: async (path) => void (await fsp.mkdir(p(path))),
    close: async () => {},
  };
}

async function engineFs(dataDir: string): Promise<Fs> {
  const d = await openDataDir(dataDir, { role: 'bench' });
  const e = d.engine;
  const ctx = ROOT_CONTEXT;
  return {
    name: 'engine',
    async seqWrite(path, blocks) {
      const { fh } = await e.create('/' + path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, 0o644, ctx);
      let pos = 0;
      for (const b of blocks) pos += await e.write(fh, b, pos);
      await e.release(fh);
    },
    async seqRead(path, total) {
      const fh = await e.open('/' + path, fsc.O_RDONLY, ctx);
      let pos = 0;
      while (pos < total) {
        const b = await e.read(fh, BS, pos);
        if (!b.length) break;
        pos += b.length;
      }
      await e.release(fh);
      return pos;
    },
    writeSmall: async (path, data) => void (await e.writeFile('/' + path, data, ctx)),
    stat: async (path) => (await e.getattr('/' + path, ctx)).size,
    unlink: async (path) => void (await e.unlink('/' + path, ctx)),
    mkdir: async (path) => void (await e.mkdir('/' + path, 0o755, ctx)),
    close: () => d.close(),
  };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function run(fs: Fs): Promise<Record<string, number>> {
  // Distinct random blocks: nothing dedups, as with real data.
  const blocks = Array.from({ length: SEQ_MB }, () => randomBytes(BS));
  const out: Record<string, number> = {};
  out['seq write MB/s'] = SEQ_MB / (await timed(() => fs.seqWrite('big', blocks)));
  out['seq read MB/s'] = SEQ_MB / (await timed(async () => {
    const n = await fs.seqRead('big', SEQ_MB * MB);
    if (n !== SEQ_MB * MB) throw new Error(`${fs.name}: read ${n} bytes`);
  }));
  await fs.unlink('big');
  await fs.mkdir('small');
  const small = Array.from({ length: SMALL_FILES }, () => randomBytes(4096));
  out['create 4KiB files/s'] = SMALL_FILES / (await timed(async () => {
    for (let i = 0; i < SMALL_FILES; i++) await fs.writeSmall(`small/f${i}`, small[i]!);
  }));
  out['stat files/s'] = SMALL_FILES / (await timed(async () => {
    for (let i = 0; i < SMALL_FILES; i++) if ((await fs.stat(`small/f${i}`)) !== 4096) throw new Error('bad size');
  }));
  out['delete files/s'] = SMALL_FILES / (await timed(async () => {
    for (let i = 0; i < SMALL_FILES; i++) await fs.unlink(`small/f${i}`);
  }));
  return out;
}

async function main(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'nexus-bench-'));
  const nativeRoot = join(base, 'native');
  await fsp.mkdir(nativeRoot);
  try {
    console.log(`bench/engine: ${SEQ_MB} MiB sequential (1 MiB blocks), ${SMALL_FILES} files of 4 KiB; ${base}`);
    const native = await nativeFs(nativeRoot);
    const n = await run(native);
    const engine = await engineFs(join(base, 'data'));
    const e = await run(engine);
    await engine.close();
    const targets: Record<string, number> = { 'seq write MB/s': 0.5, 'seq read MB/s': 0.7, 'create 4KiB files/s': 0.3 };
    console.log(`${'workload'.padEnd(22)}${'native'.padStart(12)}${'engine'.padStart(12)}${'ratio'.padStart(9)}  target`);
    for (const k of Object.keys(n)) {
      const ratio = e[k]! / n[k]!;
      const t = targets[k];
      const verdict = t === undefined ? '' : `>= ${t}x ${ratio >= t ? 'ok' : 'MISSED'}`;
      console.log(`${k.padEnd(22)}${n[k]!.toFixed(0).padStart(12)}${e[k]!.toFixed(0).padStart(12)}${(ratio.toFixed(2) + 'x').padStart(9)}  ${verdict}`);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

await main();

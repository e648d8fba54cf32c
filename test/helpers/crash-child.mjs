#!/usr/bin/env node
// Child process of test/unit/crash.test.ts: works on a data directory through
// the compiled engine (dist/, from `npm run build`) until it is killed.
//
//   node test/helpers/crash-child.mjs <dataDir> <round> <seed>
//
// It creates files under /r<round>/ forever, one at a time, each written in
// pieces (some past 1 MiB chunk boundaries, some with holes and overwrites),
// and after finishing one prints a line naming its final content:
//   fsynced <path> <sha256>   fsync returned; the handle stays open
//   closed  <path> <sha256>   the handle was released (committed, not fsynced)
//   written <path> <sha256>   neither: the data is only staged, the handle stays open
// A file is never touched again after its line is printed. stdout is a pipe,
// which Node writes synchronously on Linux: a line seen by the parent was
// written after the operation it reports returned.
import { createHash } from 'node:crypto';
import { constants as C } from 'node:fs';

const [dataDir, round, seedArg] = process.argv.slice(2);
if (!dataDir || !round) {
  process.stderr.write('usage: crash-child.mjs <dataDir> <round> [seed]\n');
  process.exit(2);
}

const dist = new URL('../../dist/src/', import.meta.url);
const { openDataDir } = await import(new URL('engine/data-dir.js', dist).href);
const { ROOT_CONTEXT } = await import(new URL('engine/credentials.js', dist).href);
const { CHUNK_SIZE } = await import(new URL('engine/dirty-file.js', dist).href);

let s = Number(seedArg ?? 1) >>> 0 || 1;
const rand = () => {
  s ^= s << 13;
  s >>>= 0;
  s ^= s >>> 17;
  s ^= s << 5;
  s >>>= 0;
  return s / 4294967296;
};
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));
const bytes = (n) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(0, 255);
  return b;
};
const sha = (b) => createHash('sha256').update(b).digest('hex');
const say = (line) => process.stdout.write(line + '\n');

const ctx = ROOT_CONTEXT;
const d = await openDataDir(dataDir, { role: 'crash-child' });
const e = d.engine;
const dir = `/r${round}`;
await e.mkdir(dir, 0o755, ctx);
say(`ready ${process.pid}`);

const kinds = ['fsynced', 'closed', 'written'];
const open = [];
for (let i = 0; ; i++) {
  const kind = kinds[i % 3];
  const path = `${dir}/${kind}-${i}`;
  const size = rand() < 0.3 ? int(CHUNK_SIZE - 5000, 2 * CHUNK_SIZE + 5000) : int(0, 64 * 1024);
  const content = Buffer.alloc(size); // holes stay zero
  const { fh } = await e.create(path, C.O_RDWR | C.O_CREAT | C.O_EXCL, 0o644, ctx);
  // Write in pieces of random length, in random order, some leaving holes.
  let off = 0;
  const pieces = [];
  while (off < size) {
    const len = Math.min(size - off, int(1, 300_000));
    if (rand() > 0.1) pieces.push([off, len]);
    off += len;
  }
  pieces.sort(() => rand() - 0.5);
  if (size > 0 && !pieces.some(([o, l]) => o + l === size)) pieces.push([size - 1, 1]);
  for (const [o, l] of pieces) {
    const data = bytes(l);
    data.copy(content, o);
    await e.write(fh, data, o);
  }
  // An overwrite in the middle now and then.
  if (size > 10 && rand() < 0.3) {
    const o = int(0, size - 10);
    const data = bytes(10);
    data.copy(content, o);
    await e.write(fh, data, o);
  }
  const digest = sha(content);
  if (kind === 'fsynced') {
    await e.fsync(fh);
    open.push(fh);
  } else if (kind === 'closed') {
    await e.release(fh);
  } else {
    open.push(fh);
  }
  say(`${kind} ${path} ${digest} ${size}`);
  if (open.length > 200) await e.release(open.shift()); // bound the handle table
}

/**
 * kill -9 in the middle of work. A child process (test/helpers/crash-child.mjs,
 * on the compiled engine) writes files and reports each one it finished:
 * fsynced, closed (committed without fsync) or only written (staged, handle
 * still open). It is killed with SIGKILL while writing the next one; the data
 * directory is then reopened in this process:
 * - it opens (the dead owner's lock is stale) and every file in it reads back
 *   (nothing CORRUPT, nothing half-committed);
 * - every reported file has exactly the reported content: fsync made it
 *   durable, and a kill (unlike a power cut) loses no page cache, so staged
 *   and committed-but-unsynced data is recovered too;
 * - every referenced blob exists and nothing stays staged after a clean close.
 * Three rounds on the same data directory, so recovery itself is recovered from.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { openDataDir, readLock, type OpenedDataDir } from '../../src/engine/data-dir.js';
import { ROOT_CONTEXT } from '../../src/engine/credentials.js';
import { ensureBuilt, REPO } from '../helpers/build.js';
import { removeDir, tempDir } from '../helpers/data-dir.js';

const CHILD = join(REPO, 'test', 'helpers', 'crash-child.mjs');
const ROUNDS = 3;
const PER_KIND = 4;

interface Reported {
  kind: string;
  sha: string;
  size: number;
  round: number;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Run the child until it reported PER_KIND files of each kind (plus a little more), then SIGKILL it. */
async function runAndKill(dataDir: string, round: number, seed: number, extraMs: number): Promise<{ lines: Reported[]; paths: string[]; stderr: string }> {
  const child = spawn(process.execPath, [CHILD, dataDir, String(round), String(seed)], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NEXUS_LOG_LEVEL: 'warn' },
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const lines: Reported[] = [];
  const paths: string[] = [];
  const counts: Record<string, number> = { fsynced: 0, closed: 0, written: 0 };
  let killed = false;
  const timer = setTimeout(() => {
    if (!killed) child.kill('SIGKILL');
  }, 30_000);
  const rl = createInterface({ input: child.stdout });
  const done = new Promise<void>((resolve) => {
    rl.on('line', (line) => {
      if (killed) return; // anything printed after the kill decision is ignored
      const [kind, path, digest, size] = line.split(' ');
      if (kind === 'ready') return;
      if (!kind || !path || !digest || !(kind in counts)) return;
      counts[kind]!++;
      lines.push({ kind, sha: digest, size: Number(size), round });
      paths.push(path);
      if (Object.values(counts).every((n) => n >= PER_KIND)) {
        killed = true;
        // Let it get into the next file (writes, maybe a commit) before the kill.
        setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, extraMs);
      }
    });
    rl.on('close', () => resolve());
  });
  await done;
  const { signal, code } = await exited; // reaped: its lock is now stale
  clearTimeout(timer);
  if (signal !== 'SIGKILL' || !killed) {
    throw new Error(`child did not run to the kill (exit code ${code}, signal ${signal}; reported ${JSON.stringify(counts)})\n${stderr}`);
  }
  return { lines, paths, stderr };
}

async function walkFiles(d: OpenedDataDir, dir = '/'): Promise<string[]> {
  const out: string[] = [];
  for (const e of await d.engine.readdir(dir, ROOT_CONTEXT)) {
    const p = `${dir === '/' ? '' : dir}/${e.name}`;
    if ((e.stat.mode & 0o170000) === 0o040000) out.push(...(await walkFiles(d, p)));
    else out.push(p);
  }
  return out;
}

interface RoundResult {
  round: number;
  /** Problems with reported files, by kind. */
  wrong: Record<string, string[]>;
  /** Problems with the store as a whole. */
  store: string[];
  checked: Record<string, number>;
}

describe('crash (SIGKILL) recovery', () => {
  const results: RoundResult[] = [];
  let fatal: Error | undefined;

  beforeAll(async () => {
    ensureBuilt();
    const dataDir = await tempDir('nx-crash-');
    const expected = new Map<string, Reported>();
    const knownBad = new Set<string>(); // reported once, in the round it first went wrong
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        const { lines, paths, stderr } = await runAndKill(dataDir, round, 1000 + round, [0, 7, 40][round - 1]!);
        paths.forEach((p, i) => expected.set(p, lines[i]!));
        const r: RoundResult = { round, wrong: { fsynced: [], closed: [], written: [] }, store: [], checked: { fsynced: 0, closed: 0, written: 0 } };
        results.push(r);
        if (await readLock(dataDir)) r.store.push('the dead child still looks like the owner');

        let d: OpenedDataDir;
        try {
          d = await openDataDir(dataDir);
        } catch (e) {
          r.store.push(`reopen failed: ${(e as Error).message}\nchild stderr:\n${stderr}`);
          return;
        }
        try {
          // Every file in the tree reads back, including the one being written at the kill.
          for (const p of await walkFiles(d)) {
            await d.engine.readFile(p, ROOT_CONTEXT).catch((e: Error) => r.store.push(`${p} unreadable: ${e.message}`));
          }
          // Reported files have exactly their reported content, from every round so far.
          for (const [p, want] of expected) {
            r.checked[want.kind]!++;
            if (knownBad.has(p)) continue;
            let got: Buffer;
            try {
              got = await d.engine.readFile(p, ROOT_CONTEXT);
            } catch (e) {
              r.wrong[want.kind]!.push(`${p}: ${(e as Error).message}`);
              knownBad.add(p);
              continue;
            }
            if (sha(got) !== want.sha) {
              r.wrong[want.kind]!.push(`${p}: ${got.length} bytes, want ${want.size} bytes of other content`);
              knownBad.add(p);
            }
          }
          for (const id of await d.meta.referencedBlobs()) if (!(await d.blobs.has(id))) r.store.push(`referenced blob ${id} missing`);
          const orphans = await d.meta.orphans();
          if (orphans.length) r.store.push(`orphan inodes after open: ${orphans.join(', ')}`);
        } finally {
          await d.close();
        }
        const left = await readdir(join(dataDir, 'staging'));
        if (left.length) r.store.push(`staging not empty after recovery and a clean close: ${left.join(', ')}`);
      }
    } catch (e) {
      fatal = e as Error;
    } finally {
      await removeDir(dataDir);
    }
  }, 120_000);

  const problems = (pick: (r: RoundResult) => string[]) => results.flatMap((r) => pick(r).map((x) => `round ${r.round}: ${x}`));

  it('the child ran to the kill in every round and the store reopened each time', () => {
    if (fatal) throw fatal;
    expect(results.length).toBe(ROUNDS);
    expect(problems((r) => r.store.filter((x) => x.startsWith('reopen failed') || x.startsWith('the dead child')))).toEqual([]);
  });

  it('every file reads back, every referenced blob exists, no orphan, nothing left staged after recovery', () => {
    expect(results.length).toBeGreaterThan(0);
    expect(problems((r) => r.store)).toEqual([]);
  });

  it('fsynced files have exactly their fsynced content', () => {
    expect(results.at(-1)?.checked.fsynced ?? 0).toBeGreaterThanOrEqual(PER_KIND);
    expect(problems((r) => r.wrong.fsynced!)).toEqual([]);
  });

  it('closed (committed, not fsynced) files have exactly their content', () => {
    expect(results.at(-1)?.checked.closed ?? 0).toBeGreaterThanOrEqual(PER_KIND);
    expect(problems((r) => r.wrong.closed!)).toEqual([]);
  });

  it('written but neither fsynced nor closed files are recovered from staging with exactly their content', () => {
    expect(results.at(-1)?.checked.written ?? 0).toBeGreaterThanOrEqual(PER_KIND);
    expect(problems((r) => r.wrong.written!)).toEqual([]);
  });
});

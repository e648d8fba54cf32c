/**
 * Shared checks for the robustness tests (test/robustness): files whose
 * content must survive, "the daemon still serves", daemon memory and
 * descriptors, fsck through the CLI, and a read-only look at the metadata
 * database once the daemon is stopped.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { spawn } from 'node:child_process';
import { PYTHON, type ShResult, type TestMount } from './mount.js';

/**
 * Child processes run asynchronously here, never with spawnSync: while the
 * test process sits in spawnSync its event loop cannot drain the daemon's
 * stdout/stderr pipes, so the daemon's (synchronous) logging would block once
 * 64 KiB are pending, and the daemon would stop serving the very client the
 * test waits for. Also, output() is only complete after the loop has run.
 */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<ShResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? '/', env: { ...process.env, LC_ALL: 'C', TZ: 'UTC', ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), stdout, stderr });
    });
    // A child that exits before reading its input closes the pipe: EPIPE here is
    // not an error of the test (its exit code and output say what happened).
    child.stdin.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') reject(e);
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** bash -c script with cwd `dir`. */
export const sh = (dir: string, script: string, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) => run('/bin/bash', ['-c', script], { ...opts, cwd: dir });

export async function shOk(dir: string, script: string, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<string> {
  const r = await sh(dir, 'set -e\n' + script, opts);
  if (r.code !== 0) throw new Error(`script failed (${r.code}) in ${dir}:\n${script}\n--- stderr:\n${r.stderr}\n--- stdout:\n${r.stdout}`);
  return r.stdout;
}

/** python3 -c code dir ...args, cwd dir. */
export const py = (dir: string, code: string, opts: { args?: string[]; timeoutMs?: number } = {}) => run(PYTHON, ['-c', code, dir, ...(opts.args ?? [])], { cwd: dir, timeoutMs: opts.timeoutMs });

/** `nexus ...` as a user runs it. */
export const nexus = (args: string[], opts: { timeoutMs?: number } = {}) =>
  run(process.execPath, [join(import.meta.dirname, '../../bin/nexus'), ...args], { env: { NEXUS_LOG_LEVEL: 'warn' }, timeoutMs: opts.timeoutMs ?? 60_000 });

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/**
 * Write files of the given sizes under `dir` (a path inside the mount, from a
 * child process) with fsync; returns name -> sha256 of the content.
 */
export async function writeCanaries(dir: string, sizes: number[], prefix = 'canary'): Promise<Map<string, string>> {
  const expected = new Map<string, string>();
  const specs = sizes.map((size, i) => {
    const name = `${prefix}-${i}-${size}`;
    const seed = randomBytes(8).toString('hex');
    return { name, size, seed };
  });
  const r = await py(dir, `
import os, sys, json, hashlib
specs = json.loads(sys.argv[2])
out = {}
for s in specs:
    block = hashlib.sha256(s['seed'].encode()).digest() * 2048  # 64 KiB
    data = (block * (s['size'] // len(block) + 1))[:s['size']]
    # vary every 64 KiB block so chunks do not all dedupe
    data = bytearray(data)
    for o in range(0, len(data), 65536): data[o:o+8] = o.to_bytes(8, 'little')
    data = bytes(data)[:s['size']]
    fd = os.open(s['name'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    mv = memoryview(data)
    while mv: mv = mv[os.write(fd, mv):]
    os.fsync(fd); os.close(fd)
    out[s['name']] = hashlib.sha256(data).hexdigest()
print(json.dumps(out))
`, { args: [JSON.stringify(specs)] });
  if (r.code !== 0) throw new Error(`writing canaries failed: ${r.stderr}`);
  for (const [k, v] of Object.entries(JSON.parse(r.stdout) as Record<string, string>)) expected.set(k, v);
  return expected;
}

/** Every canary reads back whole with its content (read by a child process). */
export async function expectCanaries(dir: string, expected: Map<string, string>): Promise<void> {
  const r = await py(dir, `
import os, sys, json, hashlib
out = {}
for n in json.loads(sys.argv[2]):
    try:
        with open(n, 'rb') as f: out[n] = hashlib.sha256(f.read()).hexdigest()
    except OSError as e:
        out[n] = 'error ' + str(e)
print(json.dumps(out))
`, { args: [JSON.stringify([...expected.keys()])] });
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toEqual(Object.fromEntries(expected));
}

/** The daemon is alive and serving: a new file written now (fsync) reads back whole from another process. */
export async function expectServing(m: TestMount, label = 'after'): Promise<void> {
  expect(m.child.exitCode, `daemon exited ${label}: ${m.output().slice(-2000)}`).toBeNull();
  expect(m.child.signalCode, `daemon killed ${label}`).toBeNull();
  const name = `serving-check-${label.replace(/\W+/g, '-')}`;
  const w = await py(m.mountpoint, `
import os, sys, hashlib
data = os.urandom(700_000)
with open(sys.argv[2], 'wb') as f:
    f.write(data); f.flush(); os.fsync(f.fileno())
print(hashlib.sha256(data).hexdigest())
`, { args: [name], timeoutMs: 30_000 });
  expect(w.stderr, `serving check ${label}: write`).toBe('');
  const r = await py(m.mountpoint, `
import sys, hashlib
with open(sys.argv[2], 'rb') as f: print(hashlib.sha256(f.read()).hexdigest())
`, { args: [name], timeoutMs: 30_000 });
  expect(r.stderr, `serving check ${label}: read`).toBe('');
  expect(r.stdout.trim(), `serving check ${label}`).toBe(w.stdout.trim());
}

export function daemonRssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

export function daemonFdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export interface FsckResult {
  code: number;
  report?: { ok: boolean; problems: unknown[]; missing: string[]; corrupt: string[]; referencedBlobs: number; storedBlobs: number; unreferenced: number };
  stderr: string;
}

/** `nexus fsck --json` on a data directory (through the daemon's socket while it is mounted). */
export async function runFsck(dataDir: string): Promise<FsckResult> {
  const r = await nexus(['fsck', '--data-dir', dataDir, '--json'], { timeoutMs: 120_000 });
  let report: FsckResult['report'];
  try {
    report = JSON.parse(r.stdout);
  } catch {
    report = undefined;
  }
  return { code: r.code, report, stderr: r.stderr };
}

export async function expectFsckConsistent(dataDir: string): Promise<FsckResult> {
  const f = await runFsck(dataDir);
  expect(f.report, `fsck output unreadable (exit ${f.code}): ${f.stderr}`).toBeDefined();
  expect(f.report!.problems, 'fsck problems').toEqual([]);
  expect(f.report!.missing, 'fsck missing blobs').toEqual([]);
  expect(f.report!.corrupt, 'fsck corrupt blobs').toEqual([]);
  expect(f.report!.ok).toBe(true);
  expect(f.code).toBe(0);
  return f;
}

/** Read-only queries on a stopped daemon's metadata database. */
export function withMetaDb<T>(dataDir: string, fn: (db: Database.Database) => T): T {
  const file = join(dataDir, 'meta.db');
  if (!existsSync(file)) throw new Error(`no ${file}`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/**
 * What the daemon's output reports as bugs (unmapped errors, uncaught
 * exceptions), once its pipes are drained: one line per distinct kind, with a
 * count ("BUG: unmapped error in FUSE operation op=release SQLITE_FULL at
 * SqliteMetaStore.commitContentTx x3").
 */
export async function bugLines(m: TestMount): Promise<string[]> {
  await new Promise((r) => setTimeout(r, 200));
  const kinds = new Map<string, number>();
  for (const line of m.output().split('\n')) {
    if (!/BUG|uncaught|unhandled|FATAL|Segmentation|Abort|^\w*Error: /i.test(line)) continue;
    let key = line.slice(0, 300);
    try {
      const j = JSON.parse(line) as { msg?: string; op?: string; err?: { code?: string; message?: string; stack?: string } };
      const frame = /\n\s+at (?:async )?([\w.<>]+)/.exec(j.err?.stack?.split('\n').filter((l) => !/node_modules|node:internal/.test(l)).join('\n') ?? '')?.[1];
      key = `${j.msg ?? ''}${j.op ? ` op=${j.op}` : ''} ${j.err?.code ?? ''} (${j.err?.message ?? ''})${frame ? ` at ${frame}` : ''}`;
    } catch {
      // not a JSON log line: keep its text
    }
    kinds.set(key, (kinds.get(key) ?? 0) + 1);
  }
  return [...kinds].map(([k, n]) => `${k} x${n}`);
}

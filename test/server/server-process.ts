/** A real Nexus server in a child process (test/server/server-child.mjs over dist/), for SDK and HTTP tests. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO, staleOutputs } from '../helpers/build.js';

/**
 * Compile when dist/ is stale. Type errors in files outside this suite's
 * reach do not stop it: tsc emits anyway, and what matters here is that
 * every output is fresh.
 */
export function buildForChildren(): void {
  if (staleOutputs().length === 0) return;
  const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: REPO, encoding: 'utf8' });
  const still = staleOutputs();
  if (still.length) throw new Error(`dist/ is stale after a build (${still.join(', ')}):\n${r.stdout}\n${r.stderr}`);
  if (r.status !== 0) {
    const mine = r.stdout.split('\n').filter((l) => /^src\/(server|sdk)\/|^src\/services\/file-streams/.test(l));
    if (mine.length) throw new Error(`build failed:\n${mine.join('\n')}`);
    process.stderr.write(`note: tsc reported type errors outside src/server and src/sdk; running on the emitted dist/\n`);
  }
}

export interface ServerProcess {
  url: string;
  port: number;
  socketPath: string | null;
  /** An admin API key (subject user:admin) made on the data directory before serving; '' with `adminKey: false`. */
  adminKey: string;
  proc: ChildProcess;
  /** Everything the server wrote to stderr so far (pino access logs). */
  stderr(): string;
  /** SIGTERM, then wait for the exit code. */
  stop(): Promise<number | null>;
}

export interface ServerProcessOptions {
  bodyLimit?: number;
  maxFileBytes?: number;
  /** Requests per second per principal (`nexus serve --rate-limit`). */
  rateLimit?: number;
  /** Drop a request whose body stops arriving for this long (ms). */
  bodyIdleTimeoutMs?: number;
  /** false: make no admin key (a data directory that has one already). */
  adminKey?: boolean;
}

/** A server on `dataDir`, which it first gives an admin key (`adminKey` in the result). */
export async function startServerProcess(dataDir: string, opts: ServerProcessOptions = {}): Promise<ServerProcess> {
  const script = join(REPO, 'test', 'server', 'server-child.mjs');
  const args = [script, dataDir, JSON.stringify(opts)];
  const proc = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NEXUS_LOG_LEVEL: 'info' } });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  const first = await Promise.race([
    new Promise<string>((res) => createInterface({ input: proc.stdout! }).once('line', res)),
    exited.then((code) => {
      throw new Error(`server process exited (${code}) before listening:\n${err}`);
    }),
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`server process did not start in 15 s:\n${err}`)), 15_000).unref()),
  ]);
  const info = JSON.parse(first) as { url: string; port: number; socketPath: string | null; adminKey: string | null };
  return {
    ...info,
    adminKey: info.adminKey ?? '',
    proc,
    stderr: () => err,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

export interface HolderProcess {
  pid: number;
  socketPath: string | null;
  stop(): Promise<number | null>;
}

/** A process holding `dataDir` like the mount daemon: with its local socket, or (nosocket) without. */
export async function startHolderProcess(dataDir: string, opts: { socket?: boolean } = {}): Promise<HolderProcess> {
  const script = join(REPO, 'test', 'server', 'socket-child.mjs');
  const args = [script, dataDir, ...(opts.socket === false ? ['nosocket'] : [])];
  const proc = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  const first = await Promise.race([
    new Promise<string>((res) => createInterface({ input: proc.stdout! }).once('line', res)),
    exited.then((code) => {
      throw new Error(`holder process exited (${code}) before it was ready:\n${err}`);
    }),
  ]);
  const info = JSON.parse(first) as { pid: number; socketPath: string | null };
  return {
    ...info,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`holder process exited with ${code}:\n${err}`);
      return code;
    },
  };
}

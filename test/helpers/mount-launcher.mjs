/**
 * The one mount launcher of the tests, with no vitest dependency: used by
 * test/helpers/mount.ts (vitest fixtures), the differential tester (its
 * shrinker starts fresh mounts on its own) and scripts/differential.mjs.
 * `bin/nexus mount --foreground` in a child process (cwd '/', so the daemon
 * never touches its own mount), readiness over IPC, cleanup() always unmounts.
 */
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = process.env.NEXUS_TEST_REPO ? resolve(process.env.NEXUS_TEST_REPO) : resolve(import.meta.dirname, '../..');
export const NEXUS_BIN = join(REPO, 'bin/nexus');
export const fuseAvailable = existsSync('/dev/fuse') && existsSync(join(REPO, 'dist/src/cli/main.js'));

const unescapeMounts = (s) => s.replace(/\\([0-7]{3})/g, (_m, o) => String.fromCharCode(parseInt(o, 8)));

export function mountedTargets() {
  return readFileSync('/proc/mounts', 'utf8').split('\n').filter(Boolean).map((l) => unescapeMounts(l.split(' ')[1] ?? ''));
}

export function isMounted(dir) {
  return mountedTargets().includes(resolve(dir));
}

export function lazyUnmount(dir) {
  for (const bin of ['fusermount3', 'fusermount']) {
    try {
      execFileSync(bin, ['-u', '-z', dir], { stdio: 'ignore' });
      return;
    } catch {
      // not this binary, or already gone
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every mount point started here (for an afterAll "nothing left mounted" check). */
export const startedMountpoints = new Set();
/** Daemons that did not unmount by themselves on SIGTERM. */
export const forcedUnmounts = [];

/**
 * Start a daemon. opts.dataDir / opts.mountpoint default to fresh directories
 * under a new base; opts.env adds to the daemon's environment.
 */
export async function launchMount(opts = {}) {
  const ownBase = !opts.base;
  const base = opts.base ?? mkdtempSync(join(tmpdir(), 'nexus-diff-'));
  chmodSync(base, 0o755);
  const mountpoint = opts.mountpoint ?? join(base, 'mnt');
  const dataDir = opts.dataDir ?? join(base, 'data');
  // A stale mount (a killed daemon's) is left to `nexus mount` to clean: mkdir would fail with ENOTCONN.
  if (!isMounted(mountpoint)) mkdirSync(mountpoint, { recursive: true });
  startedMountpoints.add(resolve(mountpoint));
  const child = spawn(process.execPath, [NEXUS_BIN, 'mount', mountpoint, '--foreground', '--data-dir', dataDir, ...(opts.extraArgs ?? [])], {
    cwd: '/',
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, NEXUS_LOG_LEVEL: process.env.NEXUS_LOG_LEVEL ?? 'warn', ...(opts.env ?? {}) },
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((r) => child.once('exit', () => r()));
  const msg = await new Promise((res) => {
    child.once('message', (m) => res(m));
    child.once('exit', (code) => res({ type: 'error', message: `daemon exited with ${code}: ${output}` }));
  });
  if (msg.type !== 'ready') {
    if (ownBase) rmSync(base, { recursive: true, force: true });
    throw new Error(`mount failed: ${msg.message}`);
  }
  const alive = () => child.exitCode === null && child.signalCode === null;
  const m = {
    mountpoint,
    dataDir,
    base,
    child,
    pid: child.pid,
    alive,
    output: () => output,
    exitInfo: () => ({ code: child.exitCode, signal: child.signalCode }),
    async stop() {
      if (alive()) {
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(30_000)]);
      }
      if (isMounted(mountpoint)) {
        forcedUnmounts.push(`${mountpoint} (daemon ${alive() ? 'still running' : 'exited'})`);
        lazyUnmount(mountpoint);
      }
      if (alive()) {
        child.kill('SIGKILL');
        await exited;
      }
    },
    async kill() {
      if (alive()) {
        child.kill('SIGKILL');
        await exited;
      }
    },
    async cleanup() {
      // A daemon that is already dead (kill()ed) left a stale mount: not a failed SIGTERM unmount.
      if (alive()) await m.stop();
      if (isMounted(mountpoint)) lazyUnmount(mountpoint);
      if (ownBase && !opts.keep) rmSync(base, { recursive: true, force: true });
    },
  };
  return m;
}

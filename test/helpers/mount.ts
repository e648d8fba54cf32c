/**
 * Mount fixtures: each test gets its own mount point and data directory, a
 * daemon in a child process (`bin/nexus mount --foreground`, readiness over
 * IPC), and is always unmounted, even when the test fails.
 *
 * The vitest process is not the daemon, so node:fs calls from a test are safe;
 * the daemon itself never touches its mount (it runs with cwd '/').
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeEach, expect } from 'vitest';

// The tree whose bin/nexus and dist/ the daemons run (NEXUS_TEST_REPO: another build, e.g. a patched fuse-native).
export { REPO, NEXUS_BIN, isMounted, lazyUnmount, mountedTargets } from './mount-launcher.mjs';
import { NEXUS_BIN, forcedUnmounts, fuseAvailable as launcherFuseAvailable, launchMount, mountedTargets } from './mount-launcher.mjs';
/** The system python (the pyenv shim under /root is not reachable by other users). */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Mount tests need /dev/fuse and a built tree; without them they are skipped loudly. */
export const fuseAvailable = launcherFuseAvailable;
if (!fuseAvailable) {
  console.warn('\n*** /dev/fuse (or the build) is missing: MOUNT TESTS ARE SKIPPED on this machine ***\n');
}
export const isRoot = process.getuid?.() === 0;

export interface TestMount {
  mountpoint: string;
  dataDir: string;
  base: string;
  child: ChildProcess;
  /** Everything the daemon printed (logs at NEXUS_LOG_LEVEL, default warn). */
  output(): string;
  /** SIGTERM the daemon (commits, unmounts) and wait for it to exit. */
  stop(): Promise<void>;
  /** kill -9 the daemon, leaving a stale mount behind (as a crash would). */
  kill(): Promise<void>;
  /** Remove everything the fixture made; unmounts first if still mounted. */
  cleanup(): Promise<void>;
}

/** Every mount point this test file used, and those the daemon failed to unmount itself on SIGTERM. */
const usedMountpoints = new Set<string>();

/** Register a mount point made outside startMount (e.g. `nexus mount` run by a test). */
export function trackMountpoint(dir: string): void {
  usedMountpoints.add(resolve(dir));
}


/**
 * For afterAll: no mount point this file used is still in /proc/mounts, and
 * every daemon that was asked to stop unmounted by itself (none needed the
 * fixture's fusermount -uz fallback).
 */
export function expectNoMountsLeft(): void {
  const left = mountedTargets().filter((t) => usedMountpoints.has(t));
  expect(left, 'mounts left in /proc/mounts').toEqual([]);
  expect(forcedUnmounts, 'daemons that did not unmount on SIGTERM').toEqual([]);
}

export async function startMount(opts: { dataDir?: string; mountpoint?: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<TestMount> {
  const base = mkdtempSync(join(tmpdir(), 'nexus-mt-'));
  // Other users (setpriv tests) must be able to reach the mount point.
  chmodSync(base, 0o755);
  const mountpoint = opts.mountpoint ?? join(base, 'mnt');
  const dataDir = opts.dataDir ?? join(base, 'data');
  mkdirSync(mountpoint, { recursive: true });
  return launch(base, mountpoint, dataDir, opts.extraArgs ?? [], opts.env);
}

/** Start a daemon again on the same data directory and mount point (after stop or kill). */
export async function remount(m: TestMount): Promise<TestMount> {
  return launch(m.base, m.mountpoint, m.dataDir, []);
}

async function launch(base: string, mountpoint: string, dataDir: string, extraArgs: string[], env?: NodeJS.ProcessEnv): Promise<TestMount> {
  usedMountpoints.add(resolve(mountpoint));
  const m = await launchMount({ base, mountpoint, dataDir, extraArgs, env });
  return {
    mountpoint, dataDir, base, child: m.child,
    output: m.output,
    stop: m.stop,
    kill: m.kill,
    async cleanup() {
      await m.cleanup(); // unmounts, also a kill()ed daemon's stale mount
      rmSync(base, { recursive: true, force: true });
    },
  };
}


export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A native temporary directory (ext4 here) to run the same steps on, as the reference. */
export function nativeDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-native-'));
  chmodSync(dir, 0o755);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ShResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run a bash script with cwd inside `dir` (a child process: the daemon never
 * touches its own mount), with LC_ALL=C and TZ=UTC so outputs compare.
 */
export function sh(dir: string, script: string, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): ShResult {
  const r = spawnSync('/bin/bash', ['-c', script], {
    cwd: dir,
    env: { ...process.env, LC_ALL: 'C', TZ: 'UTC', ...opts.env },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    input: opts.input,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? 128 + 9, stdout: r.stdout, stderr: r.stderr };
}

/** Like sh, but the script must succeed: returns stdout, throws with stderr otherwise. */
export function shOk(dir: string, script: string, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): string {
  const r = sh(dir, 'set -e\n' + script, opts);
  if (r.code !== 0) throw new Error(`script failed (${r.code}) in ${dir}:\n${script}\n--- stderr:\n${r.stderr}\n--- stdout:\n${r.stdout}`);
  return r.stdout;
}

/** Run a python3 script (argv[1] = dir, cwd = dir); it prints results, one per line. */
export function py(dir: string, code: string, opts: { args?: string[]; asUser?: number; timeoutMs?: number } = {}): ShResult {
  const cmd = opts.asUser !== undefined ? 'setpriv' : PYTHON;
  const args = [...(opts.asUser !== undefined ? [`--reuid=${opts.asUser}`, `--regid=${opts.asUser}`, '--clear-groups', PYTHON] : []), '-c', code, dir, ...(opts.args ?? [])];
  const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, env: { ...process.env, LC_ALL: 'C' } });
  if (r.error) throw r.error;
  return { code: r.status ?? 137, stdout: r.stdout, stderr: r.stderr };
}

/** A python prelude: `t(name, fn)` prints `name OK <result>` or `name <ERRNO>`. */
export const PY_ERRNO_PRELUDE = `
import os, sys, errno
def t(name, fn):
    try:
        r = fn()
        print(name, 'OK', '' if r is None else r)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
`;

/** Run the same script in a mount directory and in a native one. */
export function onBoth(mountDir: string, nativeDirPath: string, script: string, opts: { env?: NodeJS.ProcessEnv } = {}): { mount: ShResult; native: ShResult } {
  return { native: sh(nativeDirPath, script, opts), mount: sh(mountDir, script, opts) };
}

/** `nexus ...` as a user would run it (not the fixture): exit code, stdout, stderr. */
export function nexus(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): ShResult {
  const r = spawnSync(process.execPath, [NEXUS_BIN, ...args], {
    cwd: '/', encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, env: { ...process.env, NEXUS_LOG_LEVEL: 'warn', ...opts.env },
  });
  if (r.error) throw r.error;
  return { code: r.status ?? 137, stdout: r.stdout, stderr: r.stderr };
}

/**
 * One mount per test: `const t = mountPerTest()`, then `t.m` and `t.native`
 * inside tests. Unmounts after each test and asserts in afterAll that nothing
 * is left in /proc/mounts.
 */
export function mountPerTest(): { readonly m: TestMount; readonly native: string; set(m: TestMount): void } {
  let cur: TestMount | undefined;
  let nat: { dir: string; cleanup(): void } | undefined;
  beforeEach(async () => {
    cur = await startMount();
    nat = nativeDir();
  });
  afterEach(async () => {
    await cur?.cleanup();
    nat?.cleanup();
    cur = undefined;
    nat = undefined;
  });
  afterAll(() => expectNoMountsLeft());
  return {
    get m() {
      if (!cur) throw new Error('no mount');
      return cur;
    },
    get native() {
      if (!nat) throw new Error('no native dir');
      return nat.dir;
    },
    /** Replace the current mount (after remount), so afterEach cleans the right one. */
    set(m: TestMount) {
      cur = m;
    },
  };
}

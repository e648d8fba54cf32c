/**
 * `nexus mount` / `nexus unmount` as a user runs them (detached, no
 * --foreground): one-line errors with non-zero exits, commit on unmount,
 * and stale mounts left by a killed daemon cleaned by the next mount.
 */
import { describe, it, expect, afterAll, afterEach } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { abortFuseConnection } from '../../src/fuse/mount-table.js';
import { join } from 'node:path';
import {
  fuseAvailable, startMount, remount, nexus, NEXUS_BIN, isMounted, mountedTargets, lazyUnmount, trackMountpoint, expectNoMountsLeft, shOk, sh, sleep,
  PYTHON, type TestMount,
} from '../helpers/mount.js';

function oneLineError(r: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  expect(r.code, `exit code (stderr: ${r.stderr})`).not.toBe(0);
  const lines = r.stderr.trim().split('\n');
  expect(lines, 'stderr is one line').toHaveLength(1);
  expect(lines[0]).toMatch(/^nexus: /);
  expect(lines[0]).toMatch(pattern);
}

/** pids of live `nexus mount <mountpoint>` daemons (from /proc, not pgrep: no shell to match itself). */
function daemonsFor(mountpoint: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone
    }
    const i = argv.indexOf('mount');
    if (i > 0 && argv[i + 1] === mountpoint && argv.some((a) => a.endsWith('bin/nexus'))) pids.push(Number(name));
  }
  return pids;
}

describe.skipIf(!fuseAvailable)('nexus mount / unmount from the command line', () => {
  const bases: string[] = [];
  const mounts: TestMount[] = [];
  const newBase = () => {
    const b = mkdtempSync(join(tmpdir(), 'nexus-cli-'));
    bases.push(b);
    return b;
  };
  afterEach(async () => {
    for (const m of mounts.splice(0)) await m.cleanup();
    for (const b of bases.splice(0)) {
      // Every mount point a test made under its base (mnt, full, mnt2...).
      for (const mp of mountedTargets().filter((t) => t.startsWith(b + '/'))) {
        // A detached daemon a test left running: stop it the way a user would.
        try {
          nexus(['unmount', mp], { timeoutMs: 20_000 });
        } catch {
          // reported by the test itself
        }
        for (const pid of daemonsFor(mp)) process.kill(pid, 'SIGKILL');
        if (isMounted(mp)) lazyUnmount(mp);
      }
      for (const sub of ['mnt', 'full', 'mnt2']) for (const pid of daemonsFor(join(b, sub))) process.kill(pid, 'SIGKILL');
      rmSync(b, { recursive: true, force: true });
    }
  });
  afterAll(() => expectNoMountsLeft());

  it('mount detaches, serves, and `nexus unmount` commits a file still open for writing, then unmounts', async () => {
    const b = newBase();
    const mp = join(b, 'mnt');
    const data = join(b, 'data');
    mkdirSync(mp);
    trackMountpoint(mp);
    const r = nexus(['mount', mp, '--data-dir', data]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^mounted .*mnt/);
    expect(isMounted(mp)).toBe(true);
    const st = nexus(['status', '--data-dir', data]);
    expect(st.stdout).toContain(`mounted at ${mp}`);

    shOk(mp, 'echo committed-on-close > closed.txt');
    // A writer that keeps its file open (dirty) across the unmount.
    const writer = spawn(PYTHON, ['-c', `
import os, sys, time
fd = os.open('open.txt', os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b'written-before-unmount\\n')
print('ready', flush=True)
sys.stdin.read()
`], { cwd: mp, stdio: ['pipe', 'pipe', 'pipe'] });
    await new Promise<void>((res) => writer.stdout!.once('data', () => res()));
    const u = nexus(['unmount', mp]);
    expect(u.stderr).toBe('');
    expect(u.code).toBe(0);
    expect(u.stdout).toBe(`unmounted ${mp}\n`);
    expect(isMounted(mp)).toBe(false);
    writer.stdin!.end();
    await new Promise((res) => writer.once('close', res));
    // The daemon is gone and released the data directory.
    expect(await waitFor(() => daemonsFor(mp).length === 0, 10_000)).toBe(true);

    const again = nexus(['mount', mp, '--data-dir', data]);
    expect(again.code, again.stderr).toBe(0);
    expect(shOk(mp, 'cat closed.txt open.txt')).toBe('committed-on-close\nwritten-before-unmount\n');
    expect(nexus(['unmount', mp]).code).toBe(0);
    expect(isMounted(mp)).toBe(false);
  });

  it('one-line errors: missing mount point, a file, a non-empty dir without --nonempty, an already-mounted dir, a locked data dir', async () => {
    const b = newBase();
    const data = join(b, 'data');

    oneLineError(nexus(['mount', join(b, 'missing'), '--data-dir', data]), /does not exist/);

    writeFileSync(join(b, 'file'), 'x');
    oneLineError(nexus(['mount', join(b, 'file'), '--data-dir', data]), /not a directory/);

    mkdirSync(join(b, 'full'));
    writeFileSync(join(b, 'full', 'x'), 'x');
    oneLineError(nexus(['mount', join(b, 'full'), '--data-dir', data]), /not empty.*--nonempty/);
    // --nonempty mounts over it (and hides what was there).
    trackMountpoint(join(b, 'full'));
    const ne = nexus(['mount', join(b, 'full'), '--data-dir', join(b, 'data-ne'), '--nonempty']);
    expect(ne.code, ne.stderr).toBe(0);
    expect(shOk(join(b, 'full'), 'ls')).toBe('');
    expect(nexus(['unmount', join(b, 'full')]).code).toBe(0);
    expect(readFileSync(join(b, 'full', 'x'), 'utf8')).toBe('x');

    const m = await startMount();
    mounts.push(m);
    oneLineError(nexus(['mount', m.mountpoint, '--data-dir', join(b, 'other-data')]), /already mounted/);
    // Same data directory, another (empty) mount point: the data directory is locked.
    mkdirSync(join(b, 'mnt2'));
    trackMountpoint(join(b, 'mnt2'));
    oneLineError(nexus(['mount', join(b, 'mnt2'), '--data-dir', m.dataDir]), /in use/);
    expect(isMounted(join(b, 'mnt2'))).toBe(false);
    // None of the failures left a mount or a daemon behind, and the first mount still serves.
    for (const p of ['missing', 'file', 'full', 'mnt2']) expect(isMounted(join(b, p)), p).toBe(false);
    expect(await waitFor(() => daemonsFor(join(b, 'mnt2')).length === 0, 5_000), 'the refused daemon exits').toBe(true);
    expect(shOk(m.mountpoint, 'echo fine > f && cat f')).toBe('fine\n');

    oneLineError(nexus(['unmount', join(b, 'full')]), /not mounted/);
  });

  it('the daemon commits and exits when its mount is removed from outside (fusermount -u)', async () => {
    const m = await startMount();
    mounts.push(m);
    shOk(m.mountpoint, 'echo before > f');
    const exited = new Promise<number | null>((res) => m.child.once('exit', (code) => res(code)));
    shOk('/', `fusermount -u ${m.mountpoint}`);
    const code = await Promise.race([exited, sleep(10_000).then(() => 'still running' as const)]);
    expect(code, 'daemon exit after an external unmount').toBe(0);
    expect(isMounted(m.mountpoint)).toBe(false);
    // The data directory was released: a new daemon mounts it and has the file.
    const m2 = await remount(m);
    mounts.push(m2);
    expect(shOk(m2.mountpoint, 'cat f')).toBe('before\n');
  });

  it('a stale mount left by a killed daemon is cleaned by the next mount of the same mount point', async () => {
    const m = await startMount();
    mounts.push(m);
    shOk(m.mountpoint, 'mkdir d && echo survived > d/f');
    await m.kill();
    // The kernel mount is still there, but nobody answers.
    expect(isMounted(m.mountpoint)).toBe(true);
    const dead = sh('/', `stat ${m.mountpoint}/d 2>&1`);
    expect(dead.code).not.toBe(0);
    expect(dead.stdout).toMatch(/Transport endpoint is not connected/);

    const m2 = await remount(m);
    mounts.push(m2);
    expect(isMounted(m.mountpoint)).toBe(true);
    expect(shOk(m2.mountpoint, 'cat d/f; echo new > g; cat g')).toBe('survived\nnew\n');
    // One mount at that point, not a stack of them.
    const count = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.split(' ')[1] === m.mountpoint).length;
    expect(count).toBe(1);
    await m2.stop();
    expect(isMounted(m.mountpoint)).toBe(false);
  });

  it('aborting the FUSE connection of a daemon that stopped answering releases a process waiting on it', async () => {
    const m = await startMount();
    mounts.push(m);
    shOk(m.mountpoint, 'echo before > f');
    process.kill(m.child.pid!, 'SIGSTOP');
    try {
      // A write that can never be answered (as when a killed daemon's thread is stuck in the kernel).
      const waiter = spawn('/bin/sh', ['-c', `echo more >> ${m.mountpoint}/f`], { stdio: 'ignore' });
      const done = new Promise<number | null>((res) => waiter.once('exit', (code) => res(code)));
      expect(await Promise.race([done, sleep(1500).then(() => 'waiting' as const)])).toBe('waiting');
      expect(abortFuseConnection(m.mountpoint)).toBe(true);
      const code = await Promise.race([done, sleep(10_000).then(() => 'still waiting' as const)]);
      expect(code).not.toBe('still waiting');
      expect(code).not.toBe(0);
    } finally {
      await m.kill(); // SIGKILL ends a stopped process too; its stale mount is cleaned with the others
    }
  });

  it('`nexus mount` (detached) also cleans a stale mount, and `nexus unmount` of a stale mount detaches it', async () => {
    const b = newBase();
    const mp = join(b, 'mnt');
    const data = join(b, 'data');
    mkdirSync(mp);
    chmodSync(b, 0o755);
    trackMountpoint(mp);
    expect(nexus(['mount', mp, '--data-dir', data]).code).toBe(0);
    shOk(mp, 'echo one > f');
    const pid = JSON.parse(readFileSync(join(data, 'daemon.json'), 'utf8')).pid as number;
    process.kill(pid, 'SIGKILL');
    // Wait until init has reaped it (a zombie is the next test's subject).
    expect(await waitFor(() => !existsSync(`/proc/${pid}`), 20_000)).toBe(true);
    expect(isMounted(mp)).toBe(true);

    const r = nexus(['mount', mp, '--data-dir', data]);
    expect(r.stderr).not.toMatch(/^nexus: /m);
    expect(r.code, r.stderr).toBe(0);
    expect(shOk(mp, 'cat f')).toBe('one\n');
    const pid2 = JSON.parse(readFileSync(join(data, 'daemon.json'), 'utf8')).pid as number;
    process.kill(pid2, 'SIGKILL');
    expect(await waitFor(() => !existsSync(`/proc/${pid2}`), 20_000)).toBe(true);

    const u = nexus(['unmount', mp]);
    expect(u.code, u.stderr).toBe(0);
    expect(isMounted(mp)).toBe(false);
    expect(statSync(mp).isDirectory()).toBe(true);
  }, 90_000);

  it('a daemon killed but not yet reaped (a zombie) is dead: its stale mount and lock do not block the next mount', async () => {
    const b = newBase();
    const mp = join(b, 'mnt');
    const data = join(b, 'data');
    mkdirSync(mp);
    trackMountpoint(mp);
    // A parent that never wait()s, so the killed daemon stays a zombie while we remount.
    const parent = spawn(PYTHON, ['-c', `
import subprocess, sys, time
p = subprocess.Popen([sys.argv[1], sys.argv[2], 'mount', sys.argv[3], '--foreground', '--data-dir', sys.argv[4]],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd='/')
print(p.pid, flush=True)
time.sleep(600)
`, process.execPath, NEXUS_BIN, mp, data], { stdio: ['ignore', 'pipe', 'inherit'] });
    let pid = 0;
    try {
      pid = Number(await new Promise<string>((res) => parent.stdout!.once('data', (d) => res(String(d)))));
      expect(await waitFor(() => isMounted(mp), 10_000)).toBe(true);
      shOk(mp, 'echo zombie-era > f');
      process.kill(pid, 'SIGKILL');
      expect(await waitFor(() => /^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')), 10_000), 'daemon is a zombie').toBe(true);

      const r = nexus(['mount', mp, '--data-dir', data], { timeoutMs: 20_000 });
      expect(r.stderr).not.toMatch(/^nexus: /m);
      expect(r.code, r.stderr).toBe(0);
      expect(shOk(mp, 'cat f')).toBe('zombie-era\n');
      const u = nexus(['unmount', mp], { timeoutMs: 20_000 });
      expect(u.code, u.stderr).toBe(0);
      expect(isMounted(mp)).toBe(false);
    } finally {
      parent.kill('SIGKILL');
      if (pid) await waitFor(() => !existsSync(`/proc/${pid}`), 20_000);
    }
  }, 90_000);
});

async function waitFor(pred: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await sleep(50);
  }
  return pred();
}

/**
 * Workspaces, snapshots and sessions at a real mount: /.nexus control files
 * driven from sh, session tagging of processes, read-only snapshot browsing,
 * and the CLI talking to the running daemon.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { fuseAvailable, startMount, sh, NEXUS_BIN, type TestMount } from '../helpers/mount.js';

let m: TestMount;

/** The CLI against the mounted data directory (goes through the daemon's socket). */
function cli(...args: string[]): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(process.execPath, [NEXUS_BIN, ...args, '--data-dir', m.dataDir], { encoding: 'utf8', cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, stdout, stderr: '' };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { code: err.status ?? 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

function ctl(command: string): { ok: boolean; [k: string]: unknown } {
  // Read-after-write on one descriptor: the result of exactly this command.
  const r = sh(m.mountpoint, `exec 3<>.nexus/ctl && printf '%s\\n' "$CMD" >&3; cat <&3`, { env: { CMD: command } });
  return JSON.parse(r.stdout.trim()) as { ok: boolean };
}

describe.skipIf(!fuseAvailable)('mount: workspaces, snapshots and sessions through /.nexus', () => {
  beforeAll(async () => {
    m = await startMount();
  });
  afterAll(async () => {
    await m?.cleanup();
  });

  it('ctl: workspace create, snapshot, diff and restore from a plain shell, result on the same descriptor', () => {
    expect(sh(m.mountpoint, 'mkdir -p ws/acme && echo one > ws/acme/a.txt && echo keep > ws/acme/k.txt').code).toBe(0);
    const ws = ctl('workspace create /ws/acme {"tenant_id":"acme-123"}');
    expect(ws).toMatchObject({ ok: true, workspace: { path: '/ws/acme', metadata: { tenant_id: 'acme-123' } } });
    expect(sh(m.mountpoint, 'cat .nexus/workspaces').stdout).toContain('"path":"/ws/acme"');

    const snap = ctl('snapshot /ws/acme daily');
    expect(snap.ok).toBe(true);
    const id = snap.snapshot_id as string;
    expect(id).toMatch(/^snap_[0-9a-f]{16}$/);

    expect(sh(m.mountpoint, 'echo two > ws/acme/a.txt && echo new > ws/acme/n.txt && rm ws/acme/k.txt').code).toBe(0);
    expect(ctl(`diff ${id}`)).toMatchObject({ ok: true, added: ['/ws/acme/n.txt'], modified: ['/ws/acme/a.txt'], deleted: ['/ws/acme/k.txt'] });

    const r = ctl(`restore ${m.mountpoint}/ws/acme ${id}`); // a path under the mount point works too
    expect(r).toMatchObject({ ok: true, path: '/ws/acme', snapshot_id: id });
    expect(sh(m.mountpoint, 'cat ws/acme/a.txt ws/acme/k.txt; ls ws/acme').stdout).toBe('one\nkeep\na.txt\nk.txt\n');
    // ...and the restore can be undone.
    expect(ctl(`restore /ws/acme ${r.pre_restore_snapshot_id as string}`).ok).toBe(true);
    expect(sh(m.mountpoint, 'cat ws/acme/a.txt; ls ws/acme').stdout).toBe('two\na.txt\nn.txt\n');
  });

  it('ctl: bad commands fail the write with an errno, change nothing, and the reason is readable afterwards', () => {
    const before = sh(m.mountpoint, 'ls -R ws; cat .nexus/workspaces').stdout;
    const cases: [string, string, string][] = [
      ['frobnicate now', 'Invalid argument', 'INVALID_ARGUMENT'],
      ['snapshot', 'Invalid argument', 'INVALID_ARGUMENT'],
      ['restore /ws/acme snap_0000000000000000', 'No such file or directory', 'NOT_FOUND'],
      ['snapshot /no/such/dir', 'No such file or directory', 'NOT_FOUND'],
      ['workspace create /ws/acme/inner', 'Invalid argument', 'INVALID_ARGUMENT'],
    ];
    for (const [cmd, strerror, code] of cases) {
      const r = sh(m.mountpoint, `printf '%s\\n' "$CMD" > .nexus/ctl`, { env: { CMD: cmd } });
      expect(r.code, cmd).not.toBe(0);
      expect(r.stderr, cmd).toContain(strerror);
      // The reason, on a fresh open by the same user.
      const reason = JSON.parse(sh(m.mountpoint, 'cat .nexus/ctl').stdout) as { ok: boolean; error: { code: string } };
      expect(reason, cmd).toMatchObject({ ok: false, error: { code } });
    }
    // A line over 4 KiB, and binary junk.
    expect(sh(m.mountpoint, "head -c 5000 /dev/zero | tr '\\0' a > .nexus/ctl").code).not.toBe(0);
    expect(sh(m.mountpoint, 'printf "snap\\001\\377shot\\n" > .nexus/ctl').code).not.toBe(0);
    expect(sh(m.mountpoint, 'ls -R ws; cat .nexus/workspaces').stdout).toBe(before);
  });

  it('snapshots are browsable read-only under /.nexus/snapshots/<id>/', () => {
    sh(m.mountpoint, 'mkdir -p browse/sub && echo hello > browse/sub/h.txt && ln -s sub/h.txt browse/link');
    const id = ctl('snapshot /browse').snapshot_id as string;
    sh(m.mountpoint, 'echo changed > browse/sub/h.txt');
    const dir = `.nexus/snapshots/${id}`;
    expect(sh(m.mountpoint, `ls .nexus/snapshots`).stdout.split('\n')).toContain(id);
    expect(sh(m.mountpoint, `cat ${dir}/sub/h.txt; readlink ${dir}/link; ls ${dir}`).stdout).toBe('hello\nsub/h.txt\nlink\nsub\n');
    for (const cmd of [`echo x > ${dir}/sub/h.txt`, `touch ${dir}/new`, `rm ${dir}/sub/h.txt`, `mkdir ${dir}/d`]) {
      const r = sh(m.mountpoint, cmd);
      expect(r.code, cmd).not.toBe(0);
      expect(r.stderr, cmd).toMatch(/Read-only file system|Operation not permitted|Permission denied/);
    }
    expect(sh(m.mountpoint, 'cat browse/sub/h.txt').stdout).toBe('changed\n');
  });

  it('sessions: NEXUS_SESSION in the environment and /.nexus/session tag a process and its children, and nobody else', () => {
    const created = cli('session', 'create', '--agent', 'shell-agent', '--json');
    expect(created.code).toBe(0);
    const sessionId = (JSON.parse(created.stdout) as { session_id: string }).session_id;
    const second = (JSON.parse(cli('session', 'create', '--agent', 'binder', '--json').stdout) as { session_id: string }).session_id;

    sh(m.mountpoint, 'mkdir -p agent');
    // Environment: the process and what it starts.
    expect(sh(m.mountpoint, 'echo a > agent/env.txt && sh -c "echo b > agent/env-child.txt"', { env: { NEXUS_SESSION: sessionId } }).code).toBe(0);
    // Binding: this shell and its children, after writing the id.
    const bound = sh(m.mountpoint, `echo ${second} > .nexus/session && cat .nexus/session && echo c > agent/bound.txt && sh -c 'echo d > agent/bound-child.txt'`);
    expect(bound.code).toBe(0);
    expect(bound.stdout).toBe(`${second}\n`);
    // Someone else, at the same time: untagged.
    expect(sh(m.mountpoint, 'echo e > agent/other.txt && cat .nexus/session').stdout).toBe('');

    const files = (id: string) => (JSON.parse(cli('session', 'files', id, '--json').stdout) as { path: string }[]).map((f) => f.path).sort();
    expect(files(sessionId)).toEqual(['/agent/env-child.txt', '/agent/env.txt']);
    expect(files(second)).toEqual(['/agent/bound-child.txt', '/agent/bound.txt']);

    // A bad id is refused with EINVAL-class errors and binds nothing.
    const bad = sh(m.mountpoint, 'echo sess_ffffffffffffffff > .nexus/session');
    expect(bad.code).not.toBe(0);

    // Revert the env session: its files go, the others stay.
    expect(cli('session', 'revert', sessionId).code).toBe(0);
    expect(sh(m.mountpoint, 'ls agent').stdout).toBe('bound-child.txt\nbound.txt\nother.txt\n');
  });

  it('the CLI restores while mounted and cat and ls see it at once', () => {
    sh(m.mountpoint, 'mkdir -p live && echo v1 > live/f');
    const id = cli('workspace', 'snapshot', '/live').stdout.trim();
    expect(id).toMatch(/^snap_/);
    sh(m.mountpoint, 'echo v2 > live/f && echo extra > live/g');
    const r = cli('workspace', 'restore', '/live', id);
    expect(r.code).toBe(0);
    expect(sh(m.mountpoint, 'cat live/f && ls live').stdout).toBe('v1\nf\n');
  });

  it('a snapshot taken while a file is being rewritten holds the old or the new content, never a mix', async () => {
    sh(m.mountpoint, 'mkdir -p busy');
    const size = 3 * 1024 * 1024 + 123; // several chunks
    // A writer rewrites the file, alternating all-A and all-B contents, in 64 KiB writes.
    const writer = spawn('python3', ['-c', `
import os, sys
p = sys.argv[1]; n = int(sys.argv[2]); i = 0
while not os.path.exists(p + '.stop'):
    b = (b'A' if i % 2 == 0 else b'B') * 65536
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    left = n
    while left > 0:
        left -= os.write(fd, b[:min(left, 65536)])
    os.close(fd); i += 1
`, `${m.mountpoint}/busy/f`, String(size)], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) {
        ids.push(ctl('snapshot /busy').snapshot_id as string);
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const id of ids) {
        const out = sh(m.mountpoint, `test -f .nexus/snapshots/${id}/f || { echo absent; exit 0; }; python3 -c "
import sys
d = open('.nexus/snapshots/${id}/f','rb').read()
print(len(d), sorted(set(d)))"`).stdout.trim();
        // The file may not exist yet in the first snapshot; if it does, it is one whole committed version.
        if (out === 'absent') continue;
        expect([`${size} [65]`, `${size} [66]`, '0 []'], `snapshot ${id}: ${out}`).toContain(out);
      }
    } finally {
      sh(m.mountpoint, 'touch busy/f.stop');
      await new Promise((r) => writer.once('exit', r));
    }
  });
});

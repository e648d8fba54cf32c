/**
 * The mount lets the kernel cache attributes, names, negative names and file
 * pages (src/fuse/kernel-cache.ts). Every change that does not come through
 * the kernel must still show at once: each check below runs well inside the
 * cache timeout, so only the invalidation can make it pass.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fuseAvailable, startMount, sh, py, NEXUS_BIN, type TestMount } from '../helpers/mount.js';

let m: TestMount;

function cli(args: string[], input?: string): string {
  return execFileSync(process.execPath, [NEXUS_BIN, ...args, '--data-dir', m.dataDir], { encoding: 'utf8', cwd: '/', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

describe.skipIf(!fuseAvailable)('mount: kernel caches never hide a change', () => {
  beforeAll(async () => {
    // Cache for 30 s (the daemon inherits the environment): a check that passes
    // can only have passed through an invalidation, never through a timeout.
    // On by default; set here so that NEXUS_FUSE_CACHE=0 in the environment cannot skip these checks.
    const before = { timeout: process.env.NEXUS_FUSE_ATTR_TIMEOUT, cache: process.env.NEXUS_FUSE_CACHE };
    process.env.NEXUS_FUSE_ATTR_TIMEOUT = '30';
    process.env.NEXUS_FUSE_CACHE = '1';
    try {
      m = await startMount();
    } finally {
      for (const [k, v] of [['NEXUS_FUSE_ATTR_TIMEOUT', before.timeout], ['NEXUS_FUSE_CACHE', before.cache]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
  afterAll(async () => {
    await m?.cleanup();
  });

  it('names, negative names and attributes changed through the CLI show at once', () => {
    sh(m.mountpoint, 'mkdir -p kc && echo one > kc/a');
    // Cache a negative name, a positive one and its attributes.
    expect(sh(m.mountpoint, 'stat -c %s kc/new 2>/dev/null || echo missing; stat -c %s kc/a').stdout).toBe('missing\n4\n');
    cli(['write', '/kc/new'], 'hello\n');
    cli(['write', '/kc/a'], 'a longer line\n');
    expect(sh(m.mountpoint, 'stat -c %s kc/new kc/a; cat kc/new kc/a').stdout).toBe('6\n14\nhello\na longer line\n');
    cli(['rm', '/kc/new']);
    cli(['mv', '/kc/a', '/kc/b']);
    expect(sh(m.mountpoint, 'ls kc; stat -c %s kc/new 2>/dev/null || echo gone; cat kc/b').stdout).toBe('b\ngone\na longer line\n');
    // The directory's own attributes, from a shell that sits in it.
    cli(['mkdir', '/kc/sub']);
    expect(sh(`${m.mountpoint}/kc`, 'stat -c %h ../kc; ls').stdout).toBe('3\nb\nsub\n');
  });

  it('cached pages are dropped when a restore brings back the same size and mtime', () => {
    sh(m.mountpoint, "mkdir -p pg && printf AAAA > pg/f && touch -d '2001-01-01 00:00:00' pg/f");
    const id = cli(['workspace', 'snapshot', '/pg']).trim();
    sh(m.mountpoint, "printf BBBB > pg/f && touch -d '2001-01-01 00:00:00' pg/f");
    // Two reads: the second open may keep the pages of the first.
    expect(sh(m.mountpoint, 'cat pg/f; cat pg/f').stdout).toBe('BBBBBBBB');
    cli(['workspace', 'restore', '/pg', id]);
    expect(sh(m.mountpoint, 'cat pg/f; stat -c %s pg/f').stdout).toBe('AAAA4\n');
  });

  it('cached pages are dropped when a session revert rewrites a file in place at the same size', () => {
    sh(m.mountpoint, 'mkdir -p rv && printf AAAA > rv/f');
    const id = cli(['session', 'create', '--agent', 'kc']).trim();
    sh(m.mountpoint, 'printf BBBB > rv/f', { env: { NEXUS_SESSION: id } });
    // Same inode, same size: only dropping the cached pages shows the revert.
    expect(sh(m.mountpoint, 'cat rv/f; cat rv/f; stat -c %i rv/f').stdout).toMatch(/^BBBBBBBB\d+\n$/);
    const ino = sh(m.mountpoint, 'stat -c %i rv/f').stdout;
    cli(['session', 'revert', id]);
    expect(sh(m.mountpoint, 'cat rv/f; stat -c %i rv/f').stdout).toBe(`AAAA${ino}`);
  });

  it('a descriptor opened before a CLI change (same size) reads the new content at once', () => {
    sh(m.mountpoint, 'mkdir -p fd && printf one > fd/f');
    const r = py(m.mountpoint, `
import os, subprocess, sys
fd = os.open('fd/f', os.O_RDONLY)
before = (os.fstat(fd).st_size, os.pread(fd, 100, 0))
subprocess.run([sys.argv[2], sys.argv[3], 'write', '/fd/f', '--data-dir', sys.argv[4]], input=b'two', check=True, cwd='/', stdout=subprocess.DEVNULL)
print(before, (os.fstat(fd).st_size, os.pread(fd, 100, 0)))
`, { args: [process.execPath, NEXUS_BIN, m.dataDir] });
    expect(r.stdout.trim()).toBe("(3, b'one') (3, b'two')");
  });

  it('a change through one name of a hard-linked file shows under its other names', () => {
    sh(m.mountpoint, 'mkdir -p hl && echo data > hl/f && ln hl/f hl/g && stat -c %s hl/f hl/g >/dev/null && cat hl/f hl/g >/dev/null');
    expect(sh(m.mountpoint, 'echo more >> hl/g; stat -c %s hl/f; cat hl/f').stdout).toBe('10\ndata\nmore\n');
    expect(sh(m.mountpoint, 'chmod 600 hl/f; stat -c %a hl/g').stdout).toBe('600\n');
    expect(sh(m.mountpoint, 'ln hl/f hl/h; stat -c %h hl/g; rm hl/h hl/f; stat -c %h hl/g').stdout).toBe('3\n1\n');
  });

  it('writes to a hard-linked file while control commands drop the caches never deadlock', () => {
    // Each control command drops the pages of every open file; each write to a
    // file with several names drops its other names' attributes before it is
    // answered. The first waits for the page a write holds; when the second
    // waited for the first (one lock for all notifications), both hung.
    sh(m.mountpoint, 'mkdir -p dl && echo start > dl/f && ln dl/f dl/g');
    const r = sh(m.mountpoint, `
python3 -c '
import os
fd = os.open("dl/g", os.O_WRONLY | os.O_APPEND)
for i in range(3000):
    os.write(fd, b"x" * 4096)
os.close(fd)
' &
writer=$!
for i in $(seq 1 30); do
  exec 3<>.nexus/ctl && printf 'snapshot /dl\\n' >&3 && cat <&3 >/dev/null; exec 3>&-
done
wait $writer && stat -c %s dl/f`, { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${6 + 3000 * 4096}\n`);
  }, 100_000);

  it('a restore through /.nexus/ctl shows at once', () => {
    sh(m.mountpoint, 'mkdir -p ctl && echo v1 > ctl/f');
    const snap = JSON.parse(sh(m.mountpoint, "exec 3<>.nexus/ctl && printf 'snapshot /ctl\\n' >&3; cat <&3").stdout) as { snapshot_id: string };
    sh(m.mountpoint, 'echo version-two > ctl/f && echo x > ctl/g && cat ctl/f >/dev/null');
    const r = sh(m.mountpoint, `exec 3<>.nexus/ctl && printf 'restore /ctl ${snap.snapshot_id}\\n' >&3; cat <&3`);
    expect(r.stdout).toContain('"ok":true');
    expect(sh(m.mountpoint, 'cat ctl/f; stat -c %s ctl/f; ls ctl; stat ctl/g 2>/dev/null || echo no-g').stdout).toBe('v1\n3\nf\nno-g\n');
  });
});

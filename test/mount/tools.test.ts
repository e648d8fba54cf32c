/**
 * Bigger tools at the mount: tar, rsync, git and large files, each checked
 * against the same steps on a native (ext4) directory.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuseAvailable, mountPerTest, onBoth, remount, shOk, type ShResult } from '../helpers/mount.js';

const PRELUDE = `
list() { find "\${1:-.}" -mindepth 1 \\( -type d -printf '%P|d|%m|%n\\n' \\) -o \\( -printf '%P|%y|%m|%n|%s|%l\\n' \\) | sort; }
sums() { find "\${1:-.}" -type f -print0 | sort -z | xargs -0 -r sha256sum; }
mtimes() { find "\${1:-.}" -mindepth 1 -printf '%P %y %T@\\n' | sort; }
`;

function same(r: { mount: ShResult; native: ShResult }): void {
  expect(r.native.code, `native run failed: ${r.native.stderr}`).toBe(0);
  expect(r.mount).toEqual(r.native);
}

/** A source tree of `files` files in 40 directories, varied sizes, modes, links and nanosecond mtimes. */
function makeTree(dir: string, files: number): void {
  shOk(dir, `${'/usr/bin/python3'} - <<'EOF'
import os, random
random.seed(7)
rand = os.urandom(1 << 20)
for d in range(40):
    os.makedirs(f'src/d{d:02}/sub', exist_ok=True)
for i in range(${files}):
    d = i % 40
    p = f'src/d{d:02}/{"sub/" if i % 3 == 0 else ""}f{i:05}.dat'
    n = random.choice([0, 1, 17, 100, 4096, 5000, 70000]) if i % 50 else 300000
    off = random.randrange(0, len(rand) - n) if n else 0
    with open(p, 'wb') as f:
        f.write(rand[off:off + n])
    os.chmod(p, random.choice([0o644, 0o600, 0o755, 0o444]))
    t = 1_000_000_000_000_000_000 + i * 1_234_567_891
    os.utime(p, ns=(t, t))
os.symlink('d00/f00000.dat', 'src/top-link')
os.symlink('missing', 'src/d01/dangling')
os.link('src/d02/f00002.dat', 'src/d02/hard')
for root, dirs, _ in os.walk('src', topdown=False):
    for x in dirs:
        os.utime(os.path.join(root, x), ns=(1_100_000_000_123_456_789, 1_100_000_000_123_456_789))
EOF`);
}

describe.skipIf(!fuseAvailable)('mount: tar, rsync, git, large files', () => {
  const t = mountPerTest();
  let srcBase: string;
  const FILES = 2000;

  beforeAll(() => {
    srcBase = mkdtempSync(join(tmpdir(), 'nexus-tree-'));
    makeTree(srcBase, FILES);
    shOk(srcBase, 'tar --format=posix -cf tree.tar -C src .');
  }, 120_000);
  afterAll(() => rmSync(srcBase, { recursive: true, force: true }));

  const both = (script: string, env: NodeJS.ProcessEnv = {}) => {
    const dirs = [join(t.m.mountpoint, 'w'), join(t.native, 'w')] as const;
    for (const d of dirs) mkdirSync(d);
    return onBoth(dirs[0], dirs[1], PRELUDE + script, { env: { SRC: join(srcBase, 'src'), TAR: join(srcBase, 'tree.tar'), ...env } });
  };

  it(`tar -x of ${FILES} files keeps content, modes, links and nanosecond mtimes; tar -c reads them back`, () => {
    const r = both(`
      mkdir x; tar -xf "$TAR" -C x
      find x -type f | wc -l
      (cd x && list | sha256sum && sums | sha256sum && mtimes | sha256sum)
      mtimes x | head -3; list x | grep -E 'top-link|dangling|hard'
      diff -r --no-dereference x "$SRC" && echo same-as-source
      tar --format=posix --sort=name --owner=0 --group=0 --numeric-owner --pax-option=delete=atime,delete=ctime -cf - -C x . | sha256sum
      tar --format=posix -cf - -C x d00 | tar -tvf - --full-time | sort -k6 | head -5
    `);
    same(r);
    // The extracted tree equals the source tree itself (not only the native copy).
    const src = shOk(join(srcBase, 'src'), PRELUDE + 'list | sha256sum; sums | sha256sum; mtimes | sha256sum');
    const lines = r.mount.stdout.split('\n');
    expect(lines.slice(1, 4).join('\n') + '\n').toBe(src);
    expect(r.mount.stdout).toContain('same-as-source');
  }, 180_000);

  it('rsync -a copies in, a second run transfers nothing, a change transfers one file, and copies out', () => {
    same(both(`
      # 10 of the 40 directories (about 500 files) keep this test quick.
      mkdir r; rsync -a "$SRC"/d0? r/
      (cd r && list | sha256sum && sums | sha256sum && mtimes | sha256sum)
      rsync -ai "$SRC"/d0? r/ | wc -l
      echo changed > r/d03/f00003.dat; touch -d '2020-01-01' r/d03/f00003.dat
      rsync -ai --out-format='%n' "$SRC"/d0? r/ | grep -v '/$'
      rsync -ai "$SRC"/d0? r/ | wc -l
      rsync -a --delete r/d04/ r/d05/; (cd r/d05 && list | sha256sum)
      rsync -a r/ out/; (cd out && mtimes | sha256sum && sums | sha256sum)
      rsync -a --inplace "$SRC/d06/" r/d06/; rsync -ai --checksum "$SRC"/d0? r/ | wc -l
    `));
  }, 120_000);

  it('git init, add, commit, status, log, branch and checkout give the same hashes as native', () => {
    const env = {
      GIT_AUTHOR_NAME: 'N', GIT_AUTHOR_EMAIL: 'n@example.com', GIT_AUTHOR_DATE: '2020-01-01T00:00:00Z',
      GIT_COMMITTER_NAME: 'N', GIT_COMMITTER_EMAIL: 'n@example.com', GIT_COMMITTER_DATE: '2020-01-01T00:00:00Z',
      GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1',
    };
    same(both(`
      git init -q -b main repo; cd repo
      cp -r "$SRC/d07" "$SRC/d08" .; echo '# readme' > README.md
      git add -A; git commit -qm 'first'; git status --porcelain; git log --format='%H %s'
      git branch feature; git checkout -q feature
      echo 'more' >> README.md; rm -r d08; mkdir new; echo n > new/file; chmod +x new/file
      git status --porcelain
      git add -A; git commit -qm 'second'; git log --format='%H %s'
      git checkout -q main; cat README.md; ls; [ -d d08 ] && echo d08-back
      git branch -a; git diff --stat main feature | tail -1
      git checkout -q -b hotfix; git mv README.md READ.md; git commit -qm 'rename'; git log --oneline | head -1
      git checkout -q feature; git merge -q --no-edit main 2>&1 || true
      git status --porcelain | head; git log --format='%H' | head -3
      git gc -q --prune=now; git fsck --strict 2>&1; git count-objects -v | grep -E '^(count|in-pack|packs)'
      git stash list; echo dirty >> new/file; git stash -q; git status --porcelain; git stash pop -q; git status --porcelain
    `, env));
  }, 120_000);

  const BIG = process.env.NEXUS_TEST_BIG === '1';
  const MIB = BIG ? 1024 : 256;
  it(`sha256sum of a ${MIB} MiB file written with dd matches, and survives a remount`, async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'nexus-big-'));
    try {
      shOk(tmp, `dd if=/dev/urandom of=big bs=1M count=${MIB} status=none`);
      const expected = shOk(tmp, 'sha256sum < big');
      const src = join(tmp, 'big');
      const out = shOk(t.m.mountpoint, `
        dd if="${src}" of=big bs=1M conv=fsync status=none
        stat -c %s big; sha256sum < big
        dd if="${src}" of=big2 bs=64k status=none; sha256sum < big2
        cp big big3; cmp big big3 && echo cmp-ok
        dd if=/dev/zero of=big bs=1 count=1 seek=$((${MIB} * 1048576 / 2)) conv=notrunc status=none
        cmp -l "${src}" big | wc -l
      `, { timeoutMs: 240_000 });
      const lines = out.trim().split('\n');
      expect(lines[0]).toBe(String(MIB * 1024 * 1024));
      expect(lines[1] + '\n').toBe(expected);
      expect(lines[2] + '\n').toBe(expected);
      expect(lines[3]).toBe('cmp-ok');
      // One byte changed in the middle (zero unless the random byte there was zero).
      expect(Number(lines[4])).toBeLessThanOrEqual(1);
      await t.m.stop();
      const m2 = await remount(t.m);
      t.set(m2);
      expect(shOk(m2.mountpoint, 'sha256sum < big2; cmp big big3 >/dev/null && echo same || echo differ')).toBe(`${expected}${Number(lines[4]) === 1 ? 'differ' : 'same'}\n`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 300_000);
});

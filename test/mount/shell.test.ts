/**
 * Everyday shell tools at the mount, each run with the same steps on a native
 * (ext4) temporary directory: both must print the same thing and exit alike.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuseAvailable, mountPerTest, onBoth, shOk, PYTHON, type ShResult } from '../helpers/mount.js';

/** Listing helpers shared by the scripts (directory sizes differ by design: 0 at the mount, 4096 on ext4). */
const PRELUDE = `
list() { find "\${1:-.}" -mindepth 1 -name .nexus -prune -o \\( -type d -printf '%P|d|%m|%n\\n' \\) -o \\( -printf '%P|%y|%m|%n|%s|%l\\n' \\) | sort; }
sums() { find "\${1:-.}" -name .nexus -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum; }
mtimes() { find "\${1:-.}" -mindepth 1 -name .nexus -prune -o -printf '%P %y %T@\\n' | sort; }
`;

function same(r: { mount: ShResult; native: ShResult }, opts: { nativeOk?: boolean } = {}): void {
  if (opts.nativeOk !== false) expect(r.native.code, `native run failed: ${r.native.stderr}`).toBe(0);
  expect(r.mount).toEqual(r.native);
}

describe.skipIf(!fuseAvailable)('mount: shell tools match native', () => {
  const t = mountPerTest();
  let seedDir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(() => {
    // The same pseudo-random bytes for both sides.
    seedDir = mkdtempSync(join(tmpdir(), 'nexus-seed-'));
    shOk(seedDir, 'head -c 8388608 /dev/urandom > rand');
    env = { SEED: join(seedDir, 'rand') };
  });
  afterAll(() => rmSync(seedDir, { recursive: true, force: true }));

  /** Work in w/ on both sides, so the mount's /.nexus stays out of listings. */
  const both = (script: string) => {
    const dirs = [join(t.m.mountpoint, 'w'), join(t.native, 'w')] as const;
    for (const d of dirs) mkdirSync(d);
    return onBoth(dirs[0], dirs[1], PRELUDE + script, { env });
  };

  it('redirection: > truncates, >> appends, here-docs, an fd held open for append', () => {
    same(both(`
      printf 'one\\n' > f; printf 'two\\n' >> f; echo three >> f; cat f; wc -c < f
      exec 3>>f; echo four >&3; echo five >&3; exec 3>&-; cat f
      : > f; wc -c < f; echo six > f; cat f
      cat > h <<'EOF'
first line
second line
EOF
      cat h
      for i in $(seq 1 300); do echo "line $i"; done >> g; wc -l < g; tail -n 1 g
      echo x > a >> b; wc -c a b
      set -o noclobber; (echo y > f) 2>/dev/null || echo noclobber-refused; set +o noclobber
      echo z >| f; cat f
      exec 4<>rw; echo abc >&4; exec 4>&-; cat rw
    `));
  });

  it('cp -a of a tree keeps types, modes, hard and symbolic links, times and content', () => {
    const src = mkdtempSync(join(tmpdir(), 'nexus-src-'));
    try {
      shOk(src, `
        mkdir -p a/b/c e
        for i in $(seq 1 40); do head -c $((i * 997)) "$SEED" > a/f$i; done
        head -c 3000000 "$SEED" > a/b/big
        printf 'x' > a/b/c/tiny; : > a/empty
        chmod 600 a/f1; chmod 755 a/f2; chmod 444 a/f3; chmod 4755 a/f4; chmod 700 a/b/c; chmod 1777 e
        ln a/f5 a/b/hard5
        ln -s ../f6 a/b/rel; ln -s /nonexistent/target a/dangling; ln -s b a/dirlink
        find . -exec touch -h -d '2003-04-05 06:07:08.123456789' {} +
        touch -d '2004-01-01 00:00:00.5' a/f7
        touch -h -d '2005-01-01 00:00:00.25' a/b/rel
      `, { env });
      same(both(`
        cp -a "${src}/." copy
        list copy; sums copy; mtimes copy
        [ "$(stat -c %i copy/a/f5)" = "$(stat -c %i copy/a/b/hard5)" ] && echo hard-link-kept
        cp -a copy copy2; list copy2; mtimes copy2; diff -r copy copy2 && echo identical
        cp -r copy/a/b plain; list plain
      `));
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  });

  it('mv renames within and across directories, replaces files and empty directories, keeps inodes', () => {
    same(both(`
      mkdir -p d1/sub d2 d3 r/keep r2/keep
      echo a > d1/f; echo b > d1/g; echo c > d2/g; echo s > d1/sub/x; echo k > r/keep/k
      ino=$(stat -c %i d1/f)
      mv d1/f d1/f2; [ "$(stat -c %i d1/f2)" = "$ino" ] && echo same-ino-in-dir
      mv d1/f2 d3/f3; [ "$(stat -c %i d3/f3)" = "$ino" ] && echo same-ino-across
      mv d1/g d2/g; cat d2/g
      mv d1/sub d2/; cat d2/sub/x
      mv d2/sub d2/sub2; mv d2/sub2 d3/
      mv -T r/keep r2/keep; cat r2/keep/k
      ln -s f3 d3/link; mv d3/link d2/link; readlink d2/link
      mv d3 moved; ls moved
      mv moved/f3 moved/f3 2>&1 || echo same-file-refused
      echo one > x; echo two > y; mv -b y x 2>/dev/null || true; ls x* y* 2>/dev/null
      mkdir full; touch full/a; mkdir -p t/full; touch t/full/b; mv -T t/full full 2>&1 || echo nonempty-refused
      list; sums
    `));
  });

  it('rm -rf removes a deep tree with read-only files, symlinks and hard links', () => {
    same(both(`
      mkdir -p tree/a/b/c/d tree/e
      for i in $(seq 1 150); do echo $i > tree/a/f$i; done
      for i in $(seq 1 30); do echo $i > tree/a/b/c/d/g$i; done
      chmod 444 tree/a/f1; chmod 555 tree/e; ln tree/a/f2 outside-link; ln -s ../a tree/e2
      rm -rf tree; [ ! -e tree ] && echo gone
      cat outside-link; stat -c %h outside-link
      rm -rf tree missing; echo rc=$?
      mkdir -p again/x; rm -r again; ls -A
      list
    `));
  });

  it('mkdir -p creates missing parents, accepts existing ones, applies -m', () => {
    same(both(`
      umask 022
      mkdir -p a/b/c/d/e; mkdir -p a/b/c; mkdir -p a/./b/../b/c2
      mkdir -p -m 700 x/y; stat -c '%a %n' x x/y
      mkdir a 2>&1 || echo rc=$?
      touch f; mkdir -p f/x 2>&1 || echo rc=$?
      mkdir -m 1777 sticky; stat -c '%a %A' sticky
      list
    `));
  });

  it('ln and ln -s: link counts, shared inodes, relative, absolute and dangling targets', () => {
    same(both(`
      echo data > f; ln f h; stat -c '%h %n' f h
      [ "$(stat -c %i f)" = "$(stat -c %i h)" ] && echo same-inode
      echo more >> h; cat f
      mkdir d; ln h d/h2; stat -c %h h
      rm f; cat h; stat -c %h h
      ln -s h s; readlink s; cat s; stat -c '%F %s' s
      ln -s ../nowhere dangling; readlink dangling; cat dangling 2>/dev/null || echo dangling-fails
      ln -s ../h d/up; cat d/up; ln -s d dl; ls dl; cat dl/up
      ln -s "$PWD/h" abs; cat abs; rm abs
      ln -sf d/h2 s; readlink s; ln -sfn d dl2; readlink dl2
      ln d dhard 2>&1 || echo rc=$?
      ln h h 2>&1 || echo rc=$?
      ln -s x s 2>&1 || echo rc=$?
      ln -s loop1 loop2; ln -s loop2 loop1; cat loop1 2>&1 || echo rc=$?
      list
    `));
  });

  it('touch -d round-trips nanosecond times; touch -m and -a change only one of them', () => {
    same(both(`
      touch f; touch -d '2001-02-03 04:05:06.123456789' f; stat -c '%y|%x' f
      touch -m -d '2002-03-04 05:06:07.987654321' f; stat -c '%y|%x' f
      touch -a -d '1999-12-31 23:59:59.000000001' f; stat -c '%y|%x' f
      touch -m f; stat -c '%x' f; [ "$(stat -c %Y f)" -ge "$(($(date +%s) - 60))" ] && echo mtime-now
      touch -d '1960-01-01 00:00:00.5' old; stat -c %y old
      touch -d '2100-06-07 08:09:10.000000999' future; stat -c %y future
      mkdir d; touch -d '2010-01-01 00:00:00.25' d; stat -c %y d
      touch -d '2012-01-01 00:00:00.111111111' f
      ln -s f s; touch -h -d '2011-01-01 00:00:00.75' s; stat -c %y s; stat -c %y f
      touch -r f g; stat -c '%y|%x' g
      touch -c missing; ls missing 2>/dev/null || echo not-created
      echo more >> f; [ "$(stat -c %Y f)" -ge "$(($(date +%s) - 60))" ] && echo write-moved-mtime
    `));
  });

  it('chmod: every permission bit, symbolic modes, directories, through symlinks', () => {
    same(both(`
      touch f; for m in 0 644 600 755 777 4755 2755 1777 6711 444 7777; do chmod $m f; stat -c '%a %A' f; done
      mkdir d; chmod 2775 d; stat -c '%a %A' d; chmod g-s d; chmod u=rwx,go= d; stat -c '%a %A' d; chmod +t d; stat -c '%a' d
      mkdir -p r/s; touch r/s/x; chmod -R go+rX,u-w r; stat -c '%a %n' r r/s r/s/x; chmod -R u+w r
      ln -s f sl; chmod 640 sl; stat -c '%a' f; stat -c '%A' sl
      chmod a-x,u+s f; stat -c '%a %A' f
    `));
  });

  it('truncate -s grows with zeros and shrinks, on small and chunked files', () => {
    same(both(`
      printf 'hello world' > f; truncate -s 5 f; cat f; echo
      truncate -s 100000 f; stat -c %s f; sha256sum f; od -An -c -j 3 -N 4 f
      truncate -s 0 f; stat -c %s f; truncate -s 3M f; sha256sum f
      truncate -s +10 f; truncate -s -5 f; stat -c %s f
      head -c 5000000 "$SEED" > big; truncate -s 1048583 big; sha256sum big
      truncate -s 5M big; sha256sum big; stat -c %s big
      truncate -s 65536 big; sha256sum big; truncate -s 65535 big; sha256sum big
      head -c 200 "$SEED" > g; exec 3<>g; truncate -s 50 g; cat <&3 | wc -c; exec 3>&-
      truncate -s 10 missing-created; stat -c %s missing-created
      truncate -c -s 10 nope; ls nope 2>/dev/null || echo not-created
    `));
  });

  it('dd with seek writes sparse files; holes read as zeros; conv=notrunc keeps the rest', () => {
    const r = both(`
      dd if="$SEED" of=sp bs=4k count=1 seek=1000 status=none; stat -c %s sp; sha256sum sp
      od -An -tx1 -j 100 -N 16 sp
      dd if="$SEED" of=sp bs=4k count=2 seek=10 skip=7 conv=notrunc status=none; sha256sum sp; stat -c %s sp
      dd if=/dev/zero of=hole bs=1 count=0 seek=1G status=none; stat -c %s hole
      dd if=hole bs=1M skip=500 count=1 status=none | sha256sum
      dd if="$SEED" of=mid bs=1M count=1 seek=3 status=none; sha256sum mid; stat -c %s mid
      dd if="$SEED" of=mid bs=1000 count=3 seek=1 conv=notrunc status=none; sha256sum mid
      dd if=mid of=back bs=64k skip=40 status=none; sha256sum back
      [ $(( $(stat -c %b hole) * 512 )) -lt 1048576 ] && echo hole-unallocated
    `);
    same(r);
  });

  it('find and du see the same tree as native', () => {
    same(both(`
      mkdir -p p/q/r empty1 p/empty2 docs
      for i in $(seq 1 25); do head -c $((i * 1500)) "$SEED" > p/q/f$i.bin; echo note $i > docs/n$i.txt; done
      head -c 2000000 "$SEED" > p/big.bin; chmod 755 p/q/f3.bin
      ln -s ../docs/n1.txt p/lnk; ln -s nowhere p/broken; ln docs/n2.txt p/q/r/hard.txt
      touch -d '2001-01-01' ref; find . -name .nexus -prune -o -type f -newer ref -print | wc -l
      touch -d '2000-01-01' docs/n5.txt docs/n6.txt
      find . -name .nexus -prune -o -print | sort
      find . -type f -name '*.txt' | sort; find . -type d -empty | sort
      find . -type f -size +20k | sort; find . -type f ! -newer ref | sort
      find . -xtype l | sort; find . -type f -perm -u+x | sort; find . -links 2 -type f | sort
      find . -maxdepth 1 -mindepth 1 -name .nexus -prune -o -maxdepth 1 -mindepth 1 -printf '%y %P\\n' | sort
      find . -type f -exec du -lb {} + | sort -k2
      find . -type f ! -name big.bin -exec du -lk {} + | sort -k2
      find docs -type f -print0 | xargs -0 cat | wc -l
      total=$(find . -name .nexus -prune -o -type d -printf '%i %s\\n' -o -printf '%i %s\\n' | sort -u | awk '{ s += $2 } END { print s }')
      [ "$(du -sb --exclude=.nexus . | cut -f1)" = "$total" ] && echo du-matches-st_size
      du -b --exclude=.nexus -a docs | sort -k2 | grep -v 'docs$'
    `));
  });
  it('a directory of 3000 entries lists completely (past one readdir page), and rm -rf empties it while listing', () => {
    same(both(`
      mkdir big; (cd big && seq -f 'file-%05g' 1 3000 | xargs touch && seq -f 'dir-%04g' 1 50 | xargs mkdir)
      ls big | wc -l; ls -f big | wc -l; ls big | sort | sha256sum; ls -U big | sort | uniq -d | wc -l
      find big -mindepth 1 | wc -l
      ${PYTHON} -c "import os; print(len(list(os.scandir('big'))))"
      # Delete every other entry while a listing is in progress.
      ${PYTHON} -c "
import os
seen = []
with os.scandir('big') as it:
    for i, e in enumerate(it):
        seen.append(e.name)
        if i == 100:
            for n in sorted(os.listdir('big'))[::2]:
                (os.rmdir if n.startswith('dir-') else os.unlink)(os.path.join('big', n))
print('no-duplicates', len(seen) == len(set(seen)))
"
      ls big | wc -l
      rm -rf big; ls -A
    `));
  });

  it('xattrs, statfs and inode numbers: xattr round trips, cp -a keeps them, df works, ls -i agrees with stat', () => {
    same(both(`
      echo x > f; mkdir d; ln -s f s
      ${PYTHON} - <<'EOF'
import os, errno
def t(name, fn):
    try:
        print(name, 'OK', fn())
    except OSError as e:
        print(name, errno.errorcode[e.errno])
t('set small', lambda: os.setxattr('f', 'user.note', b'hello'))
t('set empty', lambda: os.setxattr('f', 'user.empty', b''))
t('set binary on a dir', lambda: os.setxattr('d', 'user.dir', b'\\x00\\x01binary'))
t('get small', lambda: os.getxattr('f', 'user.note'))
t('get empty', lambda: os.getxattr('f', 'user.empty'))
t('get binary', lambda: os.getxattr('d', 'user.dir'))
t('replace', lambda: os.setxattr('f', 'user.note', b'replaced', os.XATTR_REPLACE))
t('remove', lambda: os.removexattr('f', 'user.empty'))
t('after', lambda: (sorted(os.listxattr('f')), os.getxattr('f', 'user.note')))
t('list', lambda: sorted(os.listxattr('d')))
t('symlink has none', lambda: os.listxattr('s', follow_symlinks=False))
# readdir's d_ino is the inode stat reports, for every entry.
t('d_ino == st_ino', lambda: all(e.inode() == os.stat(e.path, follow_symlinks=False).st_ino for e in os.scandir('.')))
EOF
      cp -a f g; ${PYTHON} -c "import os; print(os.getxattr('g', 'user.note'))"
      [ "$(stat -c %i f)" = "$(ls -i f | cut -d' ' -f1)" ] && echo ls-i-agrees
      df -P . >/dev/null && echo df-ok; [ "$(stat -f -c %l .)" = 255 ] && echo namemax-255
      [ "$(stat -f -c %a .)" -gt 0 ] && echo has-free-blocks
    `));
  });
  it('xattr values and name lists longer than the first buffer a caller offers: ERANGE, then the retry gets them', () => {
    same(both(`
      echo x > f; echo y > f2; mkdir d
      ${PYTHON} - <<'EOF'
import os, errno
def t(name, fn):
    try:
        print(name, 'OK', fn())
    except OSError as e:
        print(name, errno.errorcode[e.errno])
# CPython asks with a 128-byte buffer (256 for lists) first, and retries bigger on ERANGE.
t('set 4000 bytes', lambda: os.setxattr('f', 'user.big', b'v' * 4000))
t('get 4000 bytes', lambda: len(os.getxattr('f', 'user.big')))
t('set 129 bytes', lambda: os.setxattr('f2', 'user.just-over', b'w' * 129))
t('get 129 bytes', lambda: os.getxattr('f2', 'user.just-over') == b'w' * 129)
for i in range(40):
    os.setxattr('d', 'user.a-rather-long-attribute-name-%02d' % i, b'1')
t('list 40 names (about 1400 bytes)', lambda: len(os.listxattr('d')))
t('still serving', lambda: sorted(os.listdir('.')))
EOF
    `));
  });
});

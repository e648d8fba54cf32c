/**
 * Conformance: the namespace (mkdir, rmdir, readdir, rename, hard links,
 * symlinks, FIFOs). Same assertions on every adapter; native is the reference.
 */
import { describe, expect, it } from 'vitest';
import { ADAPTERS, O } from './fs-under-test.js';
import { expectErrno, expectFailsCleanly, pattern, expectBytes, CHUNK_SIZE, useFs } from './harness.js';

describe.each(ADAPTERS)('namespace [$name]', (adapter) => {
  const fs = useFs(adapter);

  describe('mkdir', () => {
    it('creates a directory with the umask applied, nlink 2, empty', async () => {
      await fs().mkdir('/d', 0o777);
      const st = await fs().stat('/d');
      expect(st.type).toBe('dir');
      expect(st.perm).toBe(0o755);
      expect(st.nlink).toBe(2);
      expect(await fs().readdir('/d')).toEqual([]);
    });

    it('counts subdirectories in the parent nlink, not files', async () => {
      await fs().mkdir('/d');
      await fs().mkdir('/d/a');
      await fs().mkdir('/d/b');
      await fs().writeFile('/d/f', 'x');
      expect((await fs().stat('/d')).nlink).toBe(4);
      await fs().rmdir('/d/a');
      expect((await fs().stat('/d')).nlink).toBe(3);
    });

    it('an existing name is EEXIST (dir, file or symlink)', async () => {
      await fs().mkdir('/d');
      await fs().writeFile('/f', 'x');
      await fs().symlink('nowhere', '/l');
      await expectFailsCleanly(fs(), () => fs().mkdir('/d'), 'EEXIST', 'dir');
      await expectFailsCleanly(fs(), () => fs().mkdir('/f'), 'EEXIST', 'file');
      await expectFailsCleanly(fs(), () => fs().mkdir('/l'), 'EEXIST', 'symlink');
    });

    it('a missing parent is ENOENT', async () => {
      await expectFailsCleanly(fs(), () => fs().mkdir('/a/b'), 'ENOENT');
    });

    it('recursive creates every missing level and accepts existing ones', async () => {
      await fs().mkdir('/a/b/c', 0o777, { recursive: true });
      expect((await fs().stat('/a/b/c')).type).toBe('dir');
      expect((await fs().stat('/a')).nlink).toBe(3);
      await fs().mkdir('/a/b/c', 0o777, { recursive: true }); // all exist: fine
      await fs().mkdir('/a/b/d/e', 0o777, { recursive: true });
      expect(await fs().readdir('/a/b')).toEqual(['c', 'd']);
    });

    it('recursive onto an existing file is EEXIST; through a file ENOTDIR', async () => {
      await fs().writeFile('/f', 'x');
      await expectFailsCleanly(fs(), () => fs().mkdir('/f', 0o777, { recursive: true }), 'EEXIST', 'onto a file');
      await expectFailsCleanly(fs(), () => fs().mkdir('/f/x/y', 0o777, { recursive: true }), 'ENOTDIR', 'through a file');
    });

    it('recursive follows a symlink to a directory', async () => {
      await fs().mkdir('/real');
      await fs().symlink('real', '/link');
      await fs().mkdir('/link/sub', 0o777, { recursive: true });
      expect(await fs().readdir('/real')).toEqual(['sub']);
    });
  });

  describe('rmdir', () => {
    it('removes an empty directory', async () => {
      await fs().mkdir('/d');
      await fs().rmdir('/d');
      await expectErrno(fs().stat('/d'), 'ENOENT');
      expect(await fs().readdir('/')).toEqual([]);
    });

    it('a non-empty directory is ENOTEMPTY and stays', async () => {
      await fs().mkdir('/d');
      await fs().writeFile('/d/f', 'x');
      await expectFailsCleanly(fs(), () => fs().rmdir('/d'), 'ENOTEMPTY', 'with a file');
      await fs().unlink('/d/f');
      await fs().mkdir('/d/sub');
      await expectFailsCleanly(fs(), () => fs().rmdir('/d'), 'ENOTEMPTY', 'with a subdir');
    });

    it('a file is ENOTDIR, a missing name ENOENT, a symlink to a dir ENOTDIR', async () => {
      await fs().writeFile('/f', 'x');
      await fs().mkdir('/d');
      await fs().symlink('d', '/l');
      await expectFailsCleanly(fs(), () => fs().rmdir('/f'), 'ENOTDIR', 'file');
      await expectFailsCleanly(fs(), () => fs().rmdir('/nope'), 'ENOENT', 'missing');
      await expectFailsCleanly(fs(), () => fs().rmdir('/l'), 'ENOTDIR', 'symlink');
    });
  });

  describe('readdir', () => {
    it('lists names sorted, without . and ..', async () => {
      await fs().mkdir('/d');
      for (const n of ['b', 'a', 'C', 'z.txt', 'ä', '.hidden']) await fs().writeFile(`/d/${n}`, n);
      await fs().mkdir('/d/sub');
      await fs().symlink('a', '/d/lnk');
      expect(await fs().readdir('/d')).toEqual(['.hidden', 'C', 'a', 'b', 'lnk', 'sub', 'z.txt', 'ä']);
    });

    it('follows changes: unlink, rename in, rename out', async () => {
      await fs().mkdir('/d');
      await fs().mkdir('/e');
      await fs().writeFile('/d/a', '');
      await fs().writeFile('/d/b', '');
      await fs().writeFile('/e/c', '');
      await fs().unlink('/d/a');
      await fs().rename('/e/c', '/d/c');
      await fs().rename('/d/b', '/e/b');
      expect(await fs().readdir('/d')).toEqual(['c']);
      expect(await fs().readdir('/e')).toEqual(['b']);
    });

    it('lists more than a thousand entries', async () => {
      await fs().mkdir('/many');
      const names: string[] = [];
      for (let i = 0; i < 1100; i++) names.push(`f${String(i).padStart(5, '0')}`);
      for (const n of names) await fs().writeFile(`/many/${n}`, '');
      expect(await fs().readdir('/many')).toEqual(names);
    });

    it('a file is ENOTDIR, a missing dir ENOENT; a symlink to a dir is followed', async () => {
      await fs().writeFile('/f', 'x');
      await fs().mkdir('/d');
      await fs().writeFile('/d/in', 'x');
      await fs().symlink('d', '/l');
      await expectErrno(fs().readdir('/f'), 'ENOTDIR');
      await expectErrno(fs().readdir('/nope'), 'ENOENT');
      expect(await fs().readdir('/l')).toEqual(['in']);
    });
  });

  describe('rename', () => {
    it('renames a file within a directory', async () => {
      await fs().writeFile('/a', 'content');
      const ino = (await fs().stat('/a')).ino;
      await fs().rename('/a', '/b');
      await expectErrno(fs().stat('/a'), 'ENOENT');
      expect((await fs().readFile('/b')).toString()).toBe('content');
      expect((await fs().stat('/b')).ino).toBe(ino);
      expect(await fs().readdir('/')).toEqual(['b']);
    });

    it('atomically replaces an existing file', async () => {
      await fs().writeFile('/a', 'new');
      await fs().writeFile('/b', 'old, longer content');
      await fs().rename('/a', '/b');
      expect((await fs().readFile('/b')).toString()).toBe('new');
      expect((await fs().stat('/b')).nlink).toBe(1);
      expect(await fs().readdir('/')).toEqual(['b']);
    });

    it('a reader racing repeated replace-by-rename always finds a whole version, never ENOENT', async () => {
      const version = (i: number) => Buffer.concat([Buffer.from(`v${i}:`), pattern(3000 + i, i)]);
      await fs().writeFile('/target', version(0));
      const valid = new Set([version(0).toString('hex')]);
      let writing = true;
      const problems: string[] = [];
      const reader = (async () => {
        while (writing) {
          try {
            const got = (await fs().readFile('/target')).toString('hex');
            if (!valid.has(got)) problems.push(`torn or unknown content (${got.length / 2} bytes)`);
          } catch (e) {
            problems.push(String((e as { code?: string }).code ?? e));
          }
          await new Promise((r) => setImmediate(r));
        }
      })();
      for (let i = 1; i <= 40; i++) {
        valid.add(version(i).toString('hex'));
        await fs().writeFile(`/tmp${i}`, version(i));
        await fs().rename(`/tmp${i}`, '/target');
      }
      writing = false;
      await reader;
      expect(problems.slice(0, 5)).toEqual([]);
      expect((await fs().readFile('/target')).equals(version(40))).toBe(true);
      expect(await fs().readdir('/')).toEqual(['target']);
    });

    it('replacing a file that has another link drops one link only', async () => {
      await fs().writeFile('/victim', 'victim');
      await fs().link('/victim', '/other');
      await fs().writeFile('/a', 'a');
      await fs().rename('/a', '/victim');
      expect((await fs().stat('/other')).nlink).toBe(1);
      expect((await fs().readFile('/other')).toString()).toBe('victim');
    });

    it('moves a file across directories', async () => {
      await fs().mkdir('/x');
      await fs().mkdir('/y');
      await fs().writeFile('/x/f', pattern(CHUNK_SIZE + 3, 4));
      await fs().rename('/x/f', '/y/g');
      expect(await fs().readdir('/x')).toEqual([]);
      expectBytes(await fs().readFile('/y/g'), pattern(CHUNK_SIZE + 3, 4));
    });

    it('moves a file with unsaved writes', async () => {
      const fd = await fs().open('/f', O.RDWR | O.CREAT);
      await fs().write(fd, 'unsaved', 0);
      await fs().rename('/f', '/g');
      await fs().write(fd, '!', 7);
      await fs().close(fd);
      expect((await fs().readFile('/g')).toString()).toBe('unsaved!');
    });

    it('moves a directory with its content across directories and fixes link counts and ..', async () => {
      await fs().mkdir('/x');
      await fs().mkdir('/y');
      await fs().mkdir('/x/d');
      await fs().writeFile('/x/d/f', 'deep');
      await fs().rename('/x/d', '/y/d2');
      expect((await fs().readFile('/y/d2/f')).toString()).toBe('deep');
      expect((await fs().stat('/x')).nlink).toBe(2);
      expect((await fs().stat('/y')).nlink).toBe(3);
      expect((await fs().stat('/y/d2/..')).ino).toBe((await fs().stat('/y')).ino);
    });

    it('replaces an empty directory with a directory', async () => {
      await fs().mkdir('/src');
      await fs().writeFile('/src/f', 'x');
      await fs().mkdir('/dst');
      await fs().rename('/src', '/dst');
      expect(await fs().readdir('/')).toEqual(['dst']);
      expect(await fs().readdir('/dst')).toEqual(['f']);
      expect((await fs().stat('/')).nlink).toBe(3);
    });

    it('a directory onto a non-empty directory is ENOTEMPTY and changes nothing', async () => {
      await fs().mkdir('/src');
      await fs().mkdir('/dst');
      await fs().writeFile('/dst/keep', 'x');
      await expectFailsCleanly(fs(), () => fs().rename('/src', '/dst'), 'ENOTEMPTY');
    });

    it('a directory into its own subtree is EINVAL', async () => {
      await fs().mkdir('/d/sub/deeper', 0o777, { recursive: true });
      await expectFailsCleanly(fs(), () => fs().rename('/d', '/d/sub/x'), 'EINVAL', 'into a grandchild');
      await expectFailsCleanly(fs(), () => fs().rename('/d', '/d/x'), 'EINVAL', 'into itself');
      await expectFailsCleanly(fs(), () => fs().rename('/d', '/d/sub/deeper'), 'EINVAL', 'onto a descendant');
    });

    it('a file onto a directory is EISDIR', async () => {
      await fs().writeFile('/f', 'x');
      await fs().mkdir('/d');
      await expectFailsCleanly(fs(), () => fs().rename('/f', '/d'), 'EISDIR');
    });

    it('a directory onto a file is ENOTDIR', async () => {
      await fs().writeFile('/f', 'x');
      await fs().mkdir('/d');
      await expectFailsCleanly(fs(), () => fs().rename('/d', '/f'), 'ENOTDIR');
    });

    it('onto itself, or onto another link of the same file, does nothing', async () => {
      await fs().writeFile('/f', 'x');
      await fs().rename('/f', '/f');
      expect((await fs().readFile('/f')).toString()).toBe('x');
      await fs().link('/f', '/g');
      await fs().rename('/f', '/g');
      expect(await fs().readdir('/')).toEqual(['f', 'g']);
      expect((await fs().stat('/f')).nlink).toBe(2);
      await fs().mkdir('/d');
      await fs().rename('/d', '/d');
      expect((await fs().stat('/d')).type).toBe('dir');
    });

    it('a missing source is ENOENT; a missing destination directory ENOENT', async () => {
      await fs().writeFile('/f', 'x');
      await expectFailsCleanly(fs(), () => fs().rename('/nope', '/g'), 'ENOENT', 'source');
      await expectFailsCleanly(fs(), () => fs().rename('/f', '/nodir/g'), 'ENOENT', 'destination dir');
    });

    it('renames a symlink itself, not its target', async () => {
      await fs().writeFile('/t', 'target');
      await fs().symlink('t', '/l');
      await fs().rename('/l', '/l2');
      expect((await fs().lstat('/l2')).type).toBe('symlink');
      expect(await fs().readlink('/l2')).toBe('t');
      expect((await fs().readFile('/t')).toString()).toBe('target');
    });
  });

  describe('hard links', () => {
    it('counts links and shares content both ways', async () => {
      await fs().writeFile('/a', 'one');
      await fs().link('/a', '/b');
      const [sa, sb] = [await fs().stat('/a'), await fs().stat('/b')];
      expect(sa.nlink).toBe(2);
      expect(sb.ino).toBe(sa.ino);
      await fs().writeFile('/b', 'two');
      expect((await fs().readFile('/a')).toString()).toBe('two');
      await fs().mkdir('/d');
      await fs().link('/a', '/d/c');
      expect((await fs().stat('/b')).nlink).toBe(3);
      await fs().unlink('/a');
      expect((await fs().stat('/b')).nlink).toBe(2);
      expect((await fs().readFile('/d/c')).toString()).toBe('two');
      await fs().unlink('/b');
      expect((await fs().stat('/d/c')).nlink).toBe(1);
    });

    it('unsaved writes through one name are visible through the other', async () => {
      await fs().writeFile('/a', '');
      await fs().link('/a', '/b');
      const fd = await fs().open('/a', O.RDWR);
      await fs().write(fd, 'live', 0);
      expect((await fs().readFile('/b')).toString()).toBe('live');
      expect((await fs().stat('/b')).size).toBe(4);
      await fs().close(fd);
      expect((await fs().readFile('/b')).toString()).toBe('live');
    });

    it('a directory cannot be hard-linked (EPERM); an existing name is EEXIST; a missing source ENOENT', async () => {
      await fs().mkdir('/d');
      await fs().writeFile('/f', 'x');
      await fs().writeFile('/g', 'y');
      await expectFailsCleanly(fs(), () => fs().link('/d', '/d2'), 'EPERM', 'dir');
      await expectFailsCleanly(fs(), () => fs().link('/f', '/g'), 'EEXIST', 'existing');
      await expectFailsCleanly(fs(), () => fs().link('/nope', '/h'), 'ENOENT', 'missing');
      await expectFailsCleanly(fs(), () => fs().link('/f', '/nodir/h'), 'ENOENT', 'missing dir');
    });

    it('linking a symlink links the symlink itself', async () => {
      await fs().writeFile('/t', 'x');
      await fs().symlink('t', '/l');
      await fs().link('/l', '/l2');
      expect((await fs().lstat('/l2')).type).toBe('symlink');
      expect((await fs().lstat('/l')).nlink).toBe(2);
      expect((await fs().stat('/t')).nlink).toBe(1);
    });
  });

  describe('symlinks', () => {
    it('readlink returns the target verbatim; lstat sees a link of that size; stat follows', async () => {
      await fs().writeFile('/t', 'hello');
      await fs().symlink('t', '/l');
      await fs().symlink('./some/../t', '/l2');
      expect(await fs().readlink('/l')).toBe('t');
      expect(await fs().readlink('/l2')).toBe('./some/../t');
      const ls = await fs().lstat('/l');
      expect(ls.type).toBe('symlink');
      expect(ls.size).toBe(1);
      expect(ls.perm).toBe(0o777);
      expect((await fs().stat('/l')).type).toBe('file');
      expect((await fs().stat('/l')).size).toBe(5);
      expect((await fs().readFile('/l')).toString()).toBe('hello');
    });

    it('relative targets resolve from the link directory, with ..', async () => {
      await fs().mkdir('/a/b', 0o777, { recursive: true });
      await fs().writeFile('/a/f', 'up');
      await fs().symlink('../f', '/a/b/l');
      expect((await fs().readFile('/a/b/l')).toString()).toBe('up');
      await fs().symlink('b', '/a/dl');
      await fs().writeFile('/a/dl/through', 'x');
      expect(await fs().readdir('/a/b')).toEqual(['l', 'through']);
    });

    it('a chain of links resolves; writes through a link reach the target', async () => {
      await fs().writeFile('/t', 'v1');
      await fs().symlink('t', '/l1');
      await fs().symlink('l1', '/l2');
      await fs().writeFile('/l2', 'v2');
      expect((await fs().readFile('/t')).toString()).toBe('v2');
      expect((await fs().lstat('/l2')).type).toBe('symlink');
    });

    it('a dangling link: lstat works, stat is ENOENT', async () => {
      await fs().symlink('nowhere', '/l');
      expect((await fs().lstat('/l')).type).toBe('symlink');
      await expectErrno(fs().stat('/l'), 'ENOENT');
      await expectErrno(fs().readFile('/l'), 'ENOENT');
    });

    it('open(O_CREAT) through a dangling link creates its target', async () => {
      await fs().symlink('made', '/l');
      const fd = await fs().open('/l', O.WRONLY | O.CREAT, 0o644);
      await fs().write(fd, 'via link', 0);
      await fs().close(fd);
      expect((await fs().readFile('/made')).toString()).toBe('via link');
      expect((await fs().lstat('/l')).type).toBe('symlink');
    });

    it('open(O_CREAT|O_EXCL) on a dangling link is EEXIST', async () => {
      await fs().symlink('made', '/l');
      await expectFailsCleanly(fs(), () => fs().open('/l', O.WRONLY | O.CREAT | O.EXCL), 'EEXIST');
    });

    it('a loop is ELOOP', async () => {
      await fs().symlink('b', '/a');
      await fs().symlink('a', '/b');
      await fs().symlink('self', '/self');
      await expectErrno(fs().stat('/a'), 'ELOOP');
      await expectErrno(fs().stat('/self'), 'ELOOP');
      await expectErrno(fs().readFile('/a/x'), 'ELOOP');
      expect(await fs().readlink('/a')).toBe('b');
    });

    it('unlink removes the link, not the target', async () => {
      await fs().writeFile('/t', 'x');
      await fs().mkdir('/d');
      await fs().symlink('t', '/l');
      await fs().symlink('d', '/ld');
      await fs().unlink('/l');
      await fs().unlink('/ld');
      expect(await fs().readdir('/')).toEqual(['d', 't']);
    });

    it('readlink of a non-link is EINVAL; of a missing path ENOENT', async () => {
      await fs().writeFile('/f', 'x');
      await fs().mkdir('/d');
      await expectErrno(fs().readlink('/f'), 'EINVAL');
      await expectErrno(fs().readlink('/d'), 'EINVAL');
      await expectErrno(fs().readlink('/nope'), 'ENOENT');
    });

    it('an existing name is EEXIST; an empty target ENOENT', async () => {
      await fs().writeFile('/f', 'x');
      await expectFailsCleanly(fs(), () => fs().symlink('t', '/f'), 'EEXIST', 'existing');
      await expectFailsCleanly(fs(), () => fs().symlink('', '/e'), 'ENOENT', 'empty target');
    });

    it('chmod through a link changes the target', async () => {
      await fs().writeFile('/t', 'x');
      await fs().symlink('t', '/l');
      await fs().chmod('/l', 0o600);
      expect((await fs().stat('/t')).perm).toBe(0o600);
      expect((await fs().lstat('/l')).perm).toBe(0o777);
    });

    it('utimes through a link changes the target', async () => {
      await fs().writeFile('/t', 'x');
      await fs().symlink('t', '/l');
      const t = 1_234_567_890_000_000_000n;
      await fs().utimes('/l', t, t);
      expect((await fs().stat('/t')).mtimeNs).toBe(t);
      expect((await fs().lstat('/l')).mtimeNs).not.toBe(t);
    });
  });

  describe('FIFOs', () => {
    it('mkfifo creates a FIFO that stat reports', async (ctx) => {
      if (!fs().caps.fifo) ctx.skip();
      await fs().mkfifo('/p', 0o644);
      const st = await fs().lstat('/p');
      expect(st.type).toBe('fifo');
      expect(st.perm).toBe(0o644);
      expect(await fs().readdir('/')).toEqual(['p']);
      await fs().unlink('/p');
      expect(await fs().readdir('/')).toEqual([]);
    });
  });
});

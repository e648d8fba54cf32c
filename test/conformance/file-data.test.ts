/**
 * Conformance: file content (create, read and write at offsets, holes,
 * O_APPEND, truncation across chunk boundaries, open-unlinked files,
 * attributes). Same assertions on every adapter; native is the reference.
 */
import { describe, expect, it } from 'vitest';
import { ADAPTERS, O } from './fs-under-test.js';
import { CHUNK_SIZE, expectBytes, expectErrno, pattern, sleep, useFs } from './harness.js';

const C = CHUNK_SIZE;

describe.each(ADAPTERS)('file data [$name]', (adapter) => {
  const fs = useFs(adapter);

  describe('create, read, write', () => {
    it('creates an empty file with O_CREAT and reads nothing from it', async () => {
      const fd = await fs().open('/f', O.RDWR | O.CREAT, 0o644);
      expect((await fs().fstat(fd)).size).toBe(0);
      expect((await fs().read(fd, 100, 0)).length).toBe(0);
      await fs().close(fd);
      const st = await fs().stat('/f');
      expect(st.type).toBe('file');
      expect(st.size).toBe(0);
      expect(st.perm).toBe(0o644);
      expect(st.nlink).toBe(1);
      expect(await fs().readFile('/f')).toEqual(Buffer.alloc(0));
    });

    it('applies the umask to the mode of new files', async () => {
      await fs().writeFile('/f', 'x', { mode: 0o777 });
      expect((await fs().stat('/f')).perm).toBe(0o755);
    });

    it('writes at offsets and reads back, with a zero gap', async () => {
      const fd = await fs().open('/f', O.RDWR | O.CREAT);
      expect(await fs().write(fd, 'hello', 0)).toBe(5);
      expect(await fs().write(fd, 'world', 10)).toBe(5);
      expect((await fs().fstat(fd)).size).toBe(15);
      expect((await fs().read(fd, 100, 0)).toString('latin1')).toBe('hello\0\0\0\0\0world');
      expect((await fs().read(fd, 3, 2)).toString()).toBe('llo');
      expect((await fs().read(fd, 10, 12)).toString()).toBe('rld'); // short at EOF
      expect((await fs().read(fd, 10, 15)).length).toBe(0); // at EOF
      expect((await fs().read(fd, 10, 1000)).length).toBe(0); // past EOF
      await fs().write(fd, 'XY', 3); // overwrite in the middle
      await fs().close(fd);
      expect((await fs().readFile('/f')).toString('latin1')).toBe('helXY\0\0\0\0\0world');
    });

    it('overwrites part of a committed file and keeps the rest', async () => {
      const data = pattern(3 * C + 1234, 7);
      await fs().writeFile('/f', data);
      const fd = await fs().open('/f', O.RDWR);
      const patch = pattern(100, 8);
      await fs().write(fd, patch, C + 10);
      data.set(patch, C + 10);
      expectBytes(await fs().read(fd, data.length, 0), data, 'through the fd');
      await fs().close(fd);
      expectBytes(await fs().readFile('/f'), data, 'after close');
    });

    it('round-trips a multi-chunk file written in odd-sized pieces', async () => {
      const data = pattern(2 * C + 777, 3);
      const fd = await fs().open('/f', O.WRONLY | O.CREAT | O.TRUNC);
      for (let off = 0; off < data.length; off += 300_001) await fs().write(fd, data.subarray(off, off + 300_001), off);
      await fs().close(fd);
      expect((await fs().stat('/f')).size).toBe(data.length);
      expectBytes(await fs().readFile('/f'), data);
      const rfd = await fs().open('/f', O.RDONLY);
      // A read spanning the chunk boundary.
      expectBytes(await fs().read(rfd, 1000, C - 500), data.subarray(C - 500, C + 500), 'span');
      await fs().close(rfd);
    });

    it('writeFile replaces the whole content (O_TRUNC)', async () => {
      await fs().writeFile('/f', pattern(C + 10));
      await fs().writeFile('/f', 'short');
      expect((await fs().readFile('/f')).toString()).toBe('short');
      expect((await fs().stat('/f')).size).toBe(5);
    });

    it('O_TRUNC on open empties an existing file', async () => {
      await fs().writeFile('/f', 'something');
      const fd = await fs().open('/f', O.WRONLY | O.TRUNC);
      expect((await fs().fstat(fd)).size).toBe(0);
      await fs().close(fd);
      expect((await fs().readFile('/f')).length).toBe(0);
    });

    it('O_CREAT without O_EXCL opens an existing file without truncating it', async () => {
      await fs().writeFile('/f', 'keep');
      const fd = await fs().open('/f', O.RDWR | O.CREAT, 0o600);
      expect((await fs().read(fd, 10, 0)).toString()).toBe('keep');
      await fs().close(fd);
      expect((await fs().stat('/f')).perm).toBe(0o644); // mode of the existing file is kept
    });

    it('O_CREAT|O_EXCL creates a new file and refuses an existing one', async () => {
      const fd = await fs().open('/f', O.WRONLY | O.CREAT | O.EXCL, 0o600);
      await fs().close(fd);
      await expectErrno(fs().open('/f', O.WRONLY | O.CREAT | O.EXCL), 'EEXIST');
    });

    it('every open descriptor sees writes through another one at once', async () => {
      const a = await fs().open('/f', O.RDWR | O.CREAT);
      const b = await fs().open('/f', O.RDONLY);
      await fs().write(a, 'first', 0);
      expect((await fs().read(b, 10, 0)).toString()).toBe('first');
      expect((await fs().fstat(b)).size).toBe(5);
      expect((await fs().stat('/f')).size).toBe(5);
      await fs().write(a, pattern(10, 1), C - 5);
      expect((await fs().fstat(b)).size).toBe(C + 5);
      expectBytes(await fs().read(b, 10, C - 5), pattern(10, 1));
      await fs().close(a);
      expectBytes(await fs().read(b, 10, C - 5), pattern(10, 1), 'after the writer closed');
      await fs().close(b);
    });

    it('a file growing from small to large and shrinking back keeps every byte (256 KiB region)', async () => {
      const K = 1024;
      const a = await fs().open('/f', O.RDWR | O.CREAT);
      const b = await fs().open('/f', O.RDONLY);
      const want = Buffer.alloc(2 * C + 10);
      const put = async (at: number, data: Buffer) => {
        await fs().write(a, data, at);
        data.copy(want, at);
      };
      await put(0, pattern(200 * K, 31));
      await put(250 * K, pattern(12 * K, 32)); // straddles 256 KiB
      expectBytes(await fs().read(b, 262 * K, 0), want.subarray(0, 262 * K), 'grown past 256 KiB');
      await fs().ftruncate(a, 100 * K);
      want.fill(0, 100 * K);
      await put(C + 5, pattern(5, 33));
      expect((await fs().fstat(b)).size).toBe(C + 10);
      expectBytes(await fs().read(b, C + 10, 0), want.subarray(0, C + 10), 'shrunk, then grown');
      await fs().fsync(a);
      await put(2 * C, pattern(10, 34));
      await fs().close(a);
      expectBytes(await fs().read(b, 2 * C + 10, 0), want, 'after close of the writer');
      await fs().close(b);
      expectBytes(await fs().readFile('/f'), want, 'by path');
    });

    it('hundreds of files open and written at once all keep their content', async () => {
      await fs().mkdir('/many');
      const fds: number[] = [];
      for (let i = 0; i < 300; i++) {
        const fd = await fs().open(`/many/f${i}`, O.RDWR | O.CREAT);
        await fs().write(fd, pattern(1000 + i, i), 0);
        fds.push(fd);
      }
      for (let i = 0; i < 300; i += 7) expectBytes(await fs().read(fds[i]!, 5000, 0), pattern(1000 + i, i), `f${i} open`);
      for (const fd of fds) await fs().close(fd);
      for (let i = 0; i < 300; i++) expectBytes(await fs().readFile(`/many/f${i}`), pattern(1000 + i, i), `f${i}`);
    });

    it('fsync keeps the content and the descriptor usable', async () => {
      const fd = await fs().open('/f', O.RDWR | O.CREAT);
      await fs().write(fd, 'abc', 0);
      await fs().fsync(fd);
      await fs().write(fd, 'def', 3);
      await fs().fsync(fd);
      await fs().fsync(fd); // clean fsync
      expect((await fs().read(fd, 10, 0)).toString()).toBe('abcdef');
      await fs().close(fd);
      expect((await fs().readFile('/f')).toString()).toBe('abcdef');
    });

    it('refuses to write on a read-only descriptor and to read on a write-only one', async () => {
      await fs().writeFile('/f', 'data');
      const r = await fs().open('/f', O.RDONLY);
      await expectErrno(fs().write(r, 'x', 0), 'EBADF');
      await expectErrno(fs().ftruncate(r, 0), 'EINVAL');
      await fs().close(r);
      const w = await fs().open('/f', O.WRONLY);
      await expectErrno(fs().read(w, 1, 0), 'EBADF');
      await fs().close(w);
      expect((await fs().readFile('/f')).toString()).toBe('data');
    });

    it('a closed descriptor is EBADF', async () => {
      const fd = await fs().open('/f', O.RDWR | O.CREAT);
      await fs().close(fd);
      await expectErrno(fs().read(fd, 1, 0), 'EBADF');
      await expectErrno(fs().write(fd, 'x', 0), 'EBADF');
    });

    it('reading a directory as a file is EISDIR; opening it for writing too', async () => {
      await fs().mkdir('/d');
      await expectErrno(fs().readFile('/d'), 'EISDIR');
      await expectErrno(fs().open('/d', O.WRONLY), 'EISDIR');
      await expectErrno(fs().open('/d', O.RDWR), 'EISDIR');
      await expectErrno(fs().writeFile('/d', 'x'), 'EISDIR');
      await expectErrno(fs().truncate('/d', 0), 'EISDIR');
    });
  });

  describe('holes', () => {
    it('a write past the end leaves a hole that reads as zeros (same chunk)', async () => {
      const fd = await fs().open('/f', O.RDWR | O.CREAT);
      await fs().write(fd, 'x', 4096);
      expect((await fs().read(fd, 4097, 0)).equals(Buffer.concat([Buffer.alloc(4096), Buffer.from('x')]))).toBe(true);
      await fs().close(fd);
      expect((await fs().readFile('/f')).equals(Buffer.concat([Buffer.alloc(4096), Buffer.from('x')]))).toBe(true);
    });

    it('holes spanning whole chunks read as zeros, before and after commit', async () => {
      const fd = await fs().open('/f', O.RDWR | O.CREAT);
      await fs().write(fd, 'head', 0);
      await fs().write(fd, 'tail', 3 * C + 5);
      const want = Buffer.alloc(3 * C + 9);
      want.write('head', 0);
      want.write('tail', 3 * C + 5);
      expectBytes(await fs().read(fd, want.length, 0), want, 'dirty');
      await fs().close(fd);
      expect((await fs().stat('/f')).size).toBe(want.length);
      expectBytes(await fs().readFile('/f'), want, 'committed');
      const rfd = await fs().open('/f', O.RDONLY);
      expectBytes(await fs().read(rfd, 100, 2 * C - 50), Buffer.alloc(100), 'inside the hole');
      await fs().close(rfd);
    });

    it('a file that is all hole reads as zeros', async () => {
      await fs().writeFile('/f', '');
      await fs().truncate('/f', 2 * C + 3);
      expectBytes(await fs().readFile('/f'), Buffer.alloc(2 * C + 3));
    });

    it('writing zeros over data reads back zeros', async () => {
      await fs().writeFile('/f', pattern(C + 100, 5));
      const fd = await fs().open('/f', O.RDWR);
      await fs().write(fd, Buffer.alloc(C), 0);
      await fs().close(fd);
      const want = pattern(C + 100, 5);
      want.fill(0, 0, C);
      expectBytes(await fs().readFile('/f'), want);
    });
  });

  describe('O_APPEND', () => {
    it('appends at the end whatever offset is given', async () => {
      await fs().writeFile('/f', 'abc');
      const fd = await fs().open('/f', O.WRONLY | O.APPEND);
      await fs().write(fd, 'def', 0);
      await fs().write(fd, 'ghi', 1);
      await fs().close(fd);
      expect((await fs().readFile('/f')).toString()).toBe('abcdefghi');
    });

    it('appends after data another descriptor wrote past the end', async () => {
      await fs().writeFile('/f', 'abc');
      const app = await fs().open('/f', O.WRONLY | O.APPEND);
      const rw = await fs().open('/f', O.RDWR);
      await fs().write(rw, 'Z', 9);
      await fs().write(app, '!', 0);
      await fs().close(rw);
      await fs().close(app);
      expect((await fs().readFile('/f')).toString('latin1')).toBe('abc\0\0\0\0\0\0Z!');
    });

    it('appends across a chunk boundary', async () => {
      const head = pattern(C - 3, 2);
      await fs().writeFile('/f', head);
      const fd = await fs().open('/f', O.WRONLY | O.APPEND | O.CREAT);
      await fs().write(fd, '0123456789', 0);
      await fs().close(fd);
      expectBytes(await fs().readFile('/f'), Buffer.concat([head, Buffer.from('0123456789')]));
    });

    it('appends after a truncate on the same descriptor', async () => {
      await fs().writeFile('/f', 'abcdef');
      const fd = await fs().open('/f', O.RDWR | O.APPEND);
      await fs().ftruncate(fd, 2);
      await fs().write(fd, 'XY', 0);
      await fs().close(fd);
      expect((await fs().readFile('/f')).toString()).toBe('abXY');
    });
  });

  describe('truncate', () => {
    it('shrinks and grows within a chunk; grown bytes are zeros', async () => {
      await fs().writeFile('/f', 'hello world');
      await fs().truncate('/f', 5);
      expect((await fs().readFile('/f')).toString()).toBe('hello');
      await fs().truncate('/f', 8);
      expect((await fs().readFile('/f')).toString('latin1')).toBe('hello\0\0\0');
      expect((await fs().stat('/f')).size).toBe(8);
      await fs().truncate('/f', 0);
      expect((await fs().readFile('/f')).length).toBe(0);
    });

    for (const cut of [0, 1, C - 1, C, C + 1, 2 * C, 2 * C + 17]) {
      it(`truncate down to ${cut} then up to 3 MiB + 5 (committed file)`, async () => {
        const data = pattern(2 * C + C / 2, 11);
        await fs().writeFile('/f', data);
        await fs().truncate('/f', cut);
        expect((await fs().stat('/f')).size).toBe(cut);
        expectBytes(await fs().readFile('/f'), data.subarray(0, cut), 'after shrink');
        await fs().truncate('/f', 3 * C + 5);
        const want = Buffer.alloc(3 * C + 5);
        data.copy(want, 0, 0, cut);
        expectBytes(await fs().readFile('/f'), want, 'after grow');
      });
    }

    for (const cut of [0, C - 1, C, C + 1]) {
      it(`ftruncate down to ${cut} and up again on an open descriptor with unsaved writes`, async () => {
        const fd = await fs().open('/f', O.RDWR | O.CREAT);
        const data = pattern(2 * C + 100, 12);
        await fs().write(fd, data, 0);
        await fs().ftruncate(fd, cut);
        expect((await fs().fstat(fd)).size).toBe(cut);
        await fs().ftruncate(fd, 2 * C + 100);
        const want = Buffer.alloc(2 * C + 100);
        data.copy(want, 0, 0, cut);
        expectBytes(await fs().read(fd, want.length, 0), want, 'through the fd');
        // Write into the re-grown range, then commit.
        await fs().write(fd, 'mark', C + 50);
        want.write('mark', C + 50);
        await fs().close(fd);
        expectBytes(await fs().readFile('/f'), want, 'after close');
      });
    }

    it('shrink of a committed file, then a write past the cut on the same descriptor, zero-fills between', async () => {
      const data = pattern(2 * C, 13);
      await fs().writeFile('/f', data);
      const fd = await fs().open('/f', O.RDWR);
      await fs().ftruncate(fd, C / 2);
      await fs().write(fd, 'end', 2 * C - 3);
      const want = Buffer.alloc(2 * C);
      data.copy(want, 0, 0, C / 2);
      want.write('end', 2 * C - 3);
      expectBytes(await fs().read(fd, 2 * C, 0), want, 'through the fd');
      await fs().fsync(fd);
      await fs().close(fd);
      expectBytes(await fs().readFile('/f'), want, 'after close');
    });

    it('repeated shrink/grow between commits keeps only the surviving prefix', async () => {
      const data = pattern(3 * C, 14);
      await fs().writeFile('/f', data);
      await fs().truncate('/f', 2 * C + 10);
      await fs().truncate('/f', C + 5);
      await fs().truncate('/f', 3 * C);
      await fs().truncate('/f', C + 7);
      const want = Buffer.alloc(C + 7);
      data.copy(want, 0, 0, C + 5);
      expectBytes(await fs().readFile('/f'), want);
    });

    it('truncate of a file open elsewhere is seen by the open descriptor', async () => {
      await fs().writeFile('/f', pattern(C + 10, 15));
      const fd = await fs().open('/f', O.RDONLY);
      await fs().truncate('/f', 10);
      expect((await fs().fstat(fd)).size).toBe(10);
      expect((await fs().read(fd, C, 0)).length).toBe(10);
      await fs().close(fd);
    });

    it('truncate of a missing file is ENOENT and of a directory EISDIR', async () => {
      await expectErrno(fs().truncate('/nope', 0), 'ENOENT');
      await fs().mkdir('/d');
      await expectErrno(fs().truncate('/d', 0), 'EISDIR');
    });
  });

  describe('unlinked but open', () => {
    it('stays readable and writable through its descriptor until closed', async () => {
      const data = pattern(C + 99, 21);
      await fs().writeFile('/f', data);
      const fd = await fs().open('/f', O.RDWR);
      await fs().unlink('/f');
      await expectErrno(fs().stat('/f'), 'ENOENT');
      expect(await fs().readdir('/')).toEqual([]);
      expect((await fs().fstat(fd)).nlink).toBe(0);
      expectBytes(await fs().read(fd, data.length, 0), data, 'after unlink');
      await fs().write(fd, 'more', data.length);
      expect((await fs().read(fd, 4, data.length)).toString()).toBe('more');
      await fs().fsync(fd);
      await fs().close(fd);
      await expectErrno(fs().stat('/f'), 'ENOENT');
      // The name is free again and a new file there is a different one.
      await fs().writeFile('/f', 'new');
      expect((await fs().readFile('/f')).toString()).toBe('new');
    });

    it('with unsaved writes, stays readable after unlink', async () => {
      const fd = await fs().open('/f', O.RDWR | O.CREAT);
      await fs().write(fd, 'dirty data', 0);
      await fs().unlink('/f');
      expect((await fs().read(fd, 100, 0)).toString()).toBe('dirty data');
      await fs().close(fd);
      await expectErrno(fs().stat('/f'), 'ENOENT');
    });

    it('a second descriptor keeps it alive after the first closes', async () => {
      await fs().writeFile('/f', 'shared');
      const a = await fs().open('/f', O.RDONLY);
      const b = await fs().open('/f', O.RDONLY);
      await fs().unlink('/f');
      await fs().close(a);
      expect((await fs().read(b, 10, 0)).toString()).toBe('shared');
      await fs().close(b);
    });

    it('a file replaced by rename stays readable through an old descriptor', async () => {
      await fs().writeFile('/old', 'old content');
      await fs().writeFile('/new', 'new content');
      const fd = await fs().open('/old', O.RDONLY);
      await fs().rename('/new', '/old');
      expect((await fs().read(fd, 100, 0)).toString()).toBe('old content');
      await fs().close(fd);
      expect((await fs().readFile('/old')).toString()).toBe('new content');
    });
  });

  describe('attributes', () => {
    it('stat reports the size of unsaved writes by path', async () => {
      const fd = await fs().open('/f', O.WRONLY | O.CREAT);
      await fs().write(fd, pattern(C + 1), 0);
      expect((await fs().stat('/f')).size).toBe(C + 1);
      await fs().close(fd);
      expect((await fs().stat('/f')).size).toBe(C + 1);
    });

    it('utimes sets atime and mtime to the nanosecond', async () => {
      await fs().writeFile('/f', 'x');
      const g = fs().caps.timeGranularityNs;
      const at = 1_500_000_000_000_000_000n + 1_953_125n; // 2^-9 s: exact through a double
      const mt = 1_600_000_000_000_000_000n + 250_000_000n;
      await fs().utimes('/f', at, mt);
      const st = await fs().stat('/f');
      expect(st.atimeNs).toBe(at - (at % g));
      expect(st.mtimeNs).toBe(mt - (mt % g));
      // Before 1970 is refused by node:fs (it means "now"); stay after.
      await fs().mkdir('/d');
      await fs().utimes('/d', at, mt);
      expect((await fs().stat('/d')).mtimeNs).toBe(mt - (mt % g));
    });

    it('a write moves mtime and ctime forward', async () => {
      await fs().writeFile('/f', 'x');
      const old = 1_000_000_000_000_000_000n;
      await fs().utimes('/f', old, old);
      const before = await fs().stat('/f');
      await sleep(15);
      const fd = await fs().open('/f', O.WRONLY);
      await fs().write(fd, 'y', 0);
      await fs().close(fd);
      const after = await fs().stat('/f');
      expect(after.mtimeNs).toBeGreaterThan(old);
      expect(after.ctimeNs).toBeGreaterThan(before.ctimeNs);
    });

    it('mtime and ctime never go backwards over consecutive writes', async () => {
      const fd = await fs().open('/f', O.RDWR | O.CREAT);
      let prev = await fs().fstat(fd);
      const back: string[] = [];
      for (let i = 0; i < 400; i++) {
        await fs().write(fd, 'x', i);
        const st = await fs().fstat(fd);
        if (st.mtimeNs < prev.mtimeNs) back.push(`write ${i}: mtime ${prev.mtimeNs} -> ${st.mtimeNs}`);
        if (st.ctimeNs < prev.ctimeNs) back.push(`write ${i}: ctime ${prev.ctimeNs} -> ${st.ctimeNs}`);
        prev = st;
      }
      await fs().close(fd);
      expect(back.slice(0, 5)).toEqual([]);
    });

    it('truncate moves mtime forward', async () => {
      await fs().writeFile('/f', 'xyz');
      const old = 1_000_000_000_000_000_000n;
      await fs().utimes('/f', old, old);
      await fs().truncate('/f', 1);
      expect((await fs().stat('/f')).mtimeNs).toBeGreaterThan(old);
    });

    it('chmod changes permission bits, keeps the type, moves ctime', async () => {
      await fs().writeFile('/f', 'x');
      const before = await fs().stat('/f');
      await sleep(15);
      await fs().chmod('/f', 0o640);
      const st = await fs().stat('/f');
      expect(st.perm).toBe(0o640);
      expect(st.type).toBe('file');
      expect(st.ctimeNs).toBeGreaterThan(before.ctimeNs);
      await fs().chmod('/f', 0o4755);
      expect((await fs().stat('/f')).perm).toBe(0o4755);
      await fs().mkdir('/d');
      await fs().chmod('/d', 0o1777);
      expect((await fs().stat('/d')).perm).toBe(0o1777);
    });

    it('chown changes owner and group; -1 leaves one unchanged', async () => {
      await fs().writeFile('/f', 'x');
      await fs().chown('/f', 1000, 2000);
      let st = await fs().stat('/f');
      expect([st.uid, st.gid]).toEqual([1000, 2000]);
      await fs().chown('/f', -1, 3000);
      st = await fs().stat('/f');
      expect([st.uid, st.gid]).toEqual([1000, 3000]);
      await fs().chown('/f', 4000, -1);
      st = await fs().stat('/f');
      expect([st.uid, st.gid]).toEqual([4000, 3000]);
    });

    it('chown of a regular file clears setuid, and setgid when group-exec is set', async () => {
      await fs().writeFile('/f', 'x');
      await fs().chmod('/f', 0o6755);
      await fs().chown('/f', 1000, 1000);
      expect((await fs().stat('/f')).perm).toBe(0o755);
      await fs().writeFile('/g', 'x');
      await fs().chmod('/g', 0o6745); // setgid without group exec: mandatory locking bit, kept
      await fs().chown('/g', 1000, 1000);
      expect((await fs().stat('/g')).perm).toBe(0o2745);
    });

    it('chown through a symlink changes the target, not the link', async () => {
      await fs().writeFile('/f', 'x');
      await fs().symlink('f', '/l');
      await fs().chown('/l', 1234, 1234);
      expect((await fs().stat('/f')).uid).toBe(1234);
      expect((await fs().lstat('/l')).uid).toBe(0);
    });
  });
});

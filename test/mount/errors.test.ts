/**
 * Bad input at the mount, side by side with native ext4: the same syscall
 * must fail with the same errno (or succeed alike), and the daemon must keep
 * serving afterwards.
 */
import { describe, it, expect } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fuseAvailable, mountPerTest, py, shOk, PY_ERRNO_PRELUDE } from '../helpers/mount.js';

const BAD_INPUT = PY_ERRNO_PRELUDE + `
os.chdir(sys.argv[1])
os.mkdir('dir'); open('dir/x', 'w').close(); open('file', 'w').write('abc'); os.mkdir('empty')
t('create name of 256 bytes', lambda: os.open('a' * 256, os.O_CREAT | os.O_WRONLY, 0o644))
t('mkdir name of 256 bytes', lambda: os.mkdir('a' * 256))
t('stat name of 256 bytes', lambda: os.stat('a' * 256))
t('stat through a 256-byte component', lambda: os.stat('a' * 256 + '/x'))
t('rename to a 256-byte name', lambda: os.rename('file', 'b' * 256))
t('symlink named with 256 bytes', lambda: os.symlink('file', 'c' * 256))
t('create name of 255 bytes', lambda: os.close(os.open('b' * 255, os.O_CREAT | os.O_WRONLY, 0o644)))
t('create 255 multibyte-utf8 bytes', lambda: os.close(os.open('\\u00e9' * 127 + 'x', os.O_CREAT | os.O_WRONLY, 0o644)))
t('create 256 multibyte-utf8 bytes', lambda: os.open('\\u00e9' * 128, os.O_CREAT | os.O_WRONLY, 0o644))
t('open a directory O_WRONLY', lambda: os.open('dir', os.O_WRONLY))
t('open a directory O_RDWR', lambda: os.open('dir', os.O_RDWR))
t('open a directory O_WRONLY|O_CREAT', lambda: os.open('dir', os.O_WRONLY | os.O_CREAT, 0o644))
t('open a directory O_RDONLY', lambda: os.close(os.open('dir', os.O_RDONLY)))
t('rmdir a non-empty directory', lambda: os.rmdir('dir'))
t('rmdir a file', lambda: os.rmdir('file'))
t('rmdir dir/.', lambda: os.rmdir('dir/.'))
t('rename a directory into itself', lambda: os.rename('dir', 'dir/sub'))
t('rename a directory into its own child dir', lambda: (os.mkdir('dir/c'), os.rename('dir', 'dir/c/d')))
t('rename a directory over a non-empty one', lambda: os.rename('empty', 'dir'))
t('rename a directory over a file', lambda: os.rename('empty', 'file'))
t('rename a file over a directory', lambda: os.rename('file', 'empty'))
t('rename a missing file', lambda: os.rename('missing', 'y'))
t('rename into a missing directory', lambda: os.rename('file', 'nope/file'))
t('open a missing file', lambda: os.open('missing', os.O_RDONLY))
t('open in a missing directory', lambda: os.open('nope/x', os.O_CREAT | os.O_WRONLY, 0o644))
t('open through a file as directory', lambda: os.open('file/x', os.O_RDONLY))
t('O_EXCL on an existing file', lambda: os.open('file', os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
t('O_EXCL on an existing directory', lambda: os.open('dir', os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
t('O_EXCL on a dangling symlink', lambda: (os.symlink('nowhere', 'dl'), os.open('dl', os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)))
t('O_CREAT through a dangling symlink', lambda: (os.symlink('made-by-link', 'dl2'), os.close(os.open('dl2', os.O_CREAT | os.O_WRONLY, 0o644)), os.path.exists('made-by-link'))[2])
def read_past_eof():
    fd = os.open('file', os.O_RDONLY)
    try:
        return (len(os.pread(fd, 10, 100)), len(os.pread(fd, 10, 3)), len(os.pread(fd, 10, 2)))
    finally:
        os.close(fd)
t('read past EOF', read_past_eof)
def read_wronly():
    fd = os.open('file', os.O_WRONLY)
    try: return os.read(fd, 1)
    finally: os.close(fd)
t('read from an O_WRONLY descriptor', read_wronly)
def write_rdonly():
    fd = os.open('file', os.O_RDONLY)
    try: return os.write(fd, b'x')
    finally: os.close(fd)
t('write to an O_RDONLY descriptor', write_rdonly)
t('truncate to a negative size', lambda: os.truncate('file', -1))
def ftrunc_neg():
    fd = os.open('file', os.O_RDWR)
    try: os.ftruncate(fd, -1)
    finally: os.close(fd)
t('ftruncate to a negative size', ftrunc_neg)
def ftrunc_ro():
    fd = os.open('file', os.O_RDONLY)
    try: os.ftruncate(fd, 0)
    finally: os.close(fd)
t('ftruncate an O_RDONLY descriptor', ftrunc_ro)
t('truncate a directory', lambda: os.truncate('dir', 0))
t('unlink a directory', lambda: os.unlink('dir'))
t('mkdir an existing name', lambda: os.mkdir('file'))
t('hard link to a directory', lambda: os.link('dir', 'dirlink'))
t('hard link over an existing name', lambda: os.link('file', 'dir/x'))
t('symlink over an existing name', lambda: os.symlink('x', 'file'))
t('readlink a regular file', lambda: os.readlink('file'))
t('listdir a file', lambda: os.listdir('file'))
t('symlink loop', lambda: (os.symlink('l2', 'l1'), os.symlink('l1', 'l2'), os.stat('l1')))
t('getxattr missing', lambda: os.getxattr('file', 'user.none'))
t('setxattr in an unknown namespace', lambda: os.setxattr('file', 'bogus.name', b'v'))
t('setxattr XATTR_CREATE twice', lambda: (os.setxattr('file', 'user.a', b'1'), os.setxattr('file', 'user.a', b'2', os.XATTR_CREATE)))
t('setxattr XATTR_REPLACE missing', lambda: os.setxattr('file', 'user.b', b'1', os.XATTR_REPLACE))
t('removexattr missing', lambda: os.removexattr('file', 'user.none'))
t('seek to a negative offset', lambda: os.lseek(os.open('file', os.O_RDONLY), -1, os.SEEK_SET))
t('utime a missing file', lambda: os.utime('missing', (1, 1)))
t('chmod a missing file', lambda: os.chmod('missing', 0o644))
t('pwrite at offset 2**63-1', lambda: os.pwrite(os.open('file', os.O_WRONLY), b'x', 2**63 - 1))
t('listing', lambda: sorted(n[:20] for n in os.listdir('.')))
`;

describe.skipIf(!fuseAvailable)('mount: bad input gives the errno native ext4 gives', () => {
  const t = mountPerTest();

  it('names, directories, renames, opens, reads, truncates, links and xattrs: same errno as native', () => {
    const out: string[] = [];
    for (const d of [join(t.m.mountpoint, 'w'), join(t.native, 'w')]) {
      mkdirSync(d);
      const r = py(d, BAD_INPUT);
      expect(r.stderr, d).toBe('');
      out.push(r.stdout);
    }
    expect(out[0]).toBe(out[1]);
    // The reference really produced the errnos the issue names.
    for (const want of [
      'create name of 256 bytes ENAMETOOLONG', 'open a directory O_WRONLY EISDIR', 'rmdir a non-empty directory ENOTEMPTY',
      'rename a directory into itself EINVAL', 'open a missing file ENOENT', 'O_EXCL on an existing file EEXIST',
      'read past EOF OK (0, 0, 1)', 'truncate to a negative size EINVAL',
    ]) expect(out[1]).toContain(want + '\n');
    // The daemon keeps serving.
    expect(shOk(t.m.mountpoint, 'echo still-serving > after && cat after && ls w | wc -l')).toBe(shOk(t.native, 'echo still-serving > after && cat after && ls w | wc -l'));
    expect(t.m.child.exitCode).toBeNull();
  });

  it('node:fs from a child process gets the same error codes as on native', () => {
    const script = `
      const fs = require('node:fs');
      const d = process.argv[1];
      process.chdir(d);
      fs.mkdirSync('dir'); fs.writeFileSync('dir/x', 'x'); fs.writeFileSync('file', 'abc');
      const t = (name, fn) => { try { const r = fn(); console.log(name, 'OK', r === undefined ? '' : JSON.stringify(r)); } catch (e) { console.log(name, e.code); } };
      t('writeFile on a directory', () => fs.writeFileSync('dir', 'x'));
      t('readFile on a directory', () => fs.readFileSync('dir'));
      t('rmdir non-empty', () => fs.rmdirSync('dir'));
      t('rename into itself', () => fs.renameSync('dir', 'dir/in'));
      t('open missing', () => fs.openSync('missing', 'r'));
      t('wx on existing', () => fs.openSync('file', 'wx'));
      t('long name', () => fs.writeFileSync('n'.repeat(256), ''));
      t('truncate negative', () => fs.truncateSync('file', -1));
      t('read past EOF', () => { const fd = fs.openSync('file', 'r'); const b = Buffer.alloc(8); const n = fs.readSync(fd, b, 0, 8, 50); fs.closeSync(fd); return n; });
      t('mkdir recursive over a file', () => fs.mkdirSync('file/a/b', { recursive: true }));
      t('rm -r', () => fs.rmSync('dir', { recursive: true }));
      t('readdir', () => fs.readdirSync('.').filter((n) => n !== 'w'));
    `;
    const out: string[] = [];
    for (const d of [join(t.m.mountpoint, 'w'), join(t.native, 'w')]) {
      mkdirSync(d);
      const r = spawnSync(process.execPath, ['-e', script, d], { cwd: '/', encoding: 'utf8' });
      expect(r.stderr, d).toBe('');
      out.push(r.stdout);
    }
    expect(out[0]).toBe(out[1]);
    expect(out[1]).toContain('writeFile on a directory EISDIR\n');
    expect(t.m.child.exitCode).toBeNull();
  });
});

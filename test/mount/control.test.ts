/**
 * The reserved /.nexus tree: readable with plain tools, never removed,
 * renamed, replaced or written except through its control files; `.nexus`
 * is an ordinary name below the root.
 */
import { describe, it, expect } from 'vitest';
import { fuseAvailable, mountPerTest, py, sh, shOk, PY_ERRNO_PRELUDE } from '../helpers/mount.js';

describe.skipIf(!fuseAvailable)('mount: /.nexus is reserved', () => {
  const t = mountPerTest();

  it('is listed at the root and readable with cat, ls and stat', () => {
    const out = shOk(t.m.mountpoint, `ls -a | grep -x .nexus; ls .nexus | grep -x README; head -1 .nexus/README; stat -c '%F %a' .nexus .nexus/README; wc -c < .nexus/README`);
    const [, readme, title, dirLine, fileLine, size] = out.trim().split('\n');
    expect(readme).toBe('README');
    expect(title).toBe('Nexus control files');
    expect(dirLine).toBe('directory 555');
    expect(fileLine).toBe('regular file 444');
    expect(Number(size)).toBeGreaterThan(100);
  });

  it('cannot be removed, renamed, replaced or written, from the shell or by syscalls', () => {
    const r = py(t.m.mountpoint, PY_ERRNO_PRELUDE + `
os.chdir(sys.argv[1])
os.mkdir('d'); open('f', 'w').write('x')
t('rmdir /.nexus', lambda: os.rmdir('.nexus'))
t('unlink /.nexus', lambda: os.unlink('.nexus'))
t('rename /.nexus away', lambda: os.rename('.nexus', 'elsewhere'))
t('rename /.nexus into a dir', lambda: os.rename('.nexus', 'd/.nexus'))
t('rename a dir over /.nexus', lambda: os.rename('d', '.nexus'))
t('rename a file over /.nexus', lambda: os.rename('f', '.nexus'))
t('mkdir /.nexus', lambda: os.mkdir('.nexus'))
t('create /.nexus', lambda: os.open('.nexus', os.O_CREAT | os.O_WRONLY, 0o644))
t('create /.nexus O_EXCL', lambda: os.open('.nexus', os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
t('symlink at /.nexus', lambda: os.symlink('d', '.nexus'))
t('hard link at /.nexus/f', lambda: os.link('f', '.nexus/f'))
t('create in /.nexus', lambda: os.open('.nexus/new', os.O_CREAT | os.O_WRONLY, 0o644))
t('mkdir in /.nexus', lambda: os.mkdir('.nexus/sub'))
t('unlink README', lambda: os.unlink('.nexus/README'))
t('rename README', lambda: os.rename('.nexus/README', '.nexus/README2'))
t('move README out', lambda: os.rename('.nexus/README', 'README'))
t('write README', lambda: os.open('.nexus/README', os.O_WRONLY))
t('truncate README', lambda: os.truncate('.nexus/README', 0))
t('chmod /.nexus', lambda: os.chmod('.nexus', 0o777))
t('chmod README', lambda: os.chmod('.nexus/README', 0o666))
t('chown README', lambda: os.chown('.nexus/README', 1, 1))
t('utime README', lambda: os.utime('.nexus/README', (1, 1)))
t('setxattr README', lambda: os.setxattr('.nexus/README', 'user.x', b'1'))
t('read README', lambda: open('.nexus/README').read().splitlines()[0])
t('still a directory', lambda: 'README' in os.listdir('.nexus'))
`);
    expect(r.stderr).toBe('');
    // Every mutation failed; none silently succeeded.
    const lines = r.stdout.trim().split('\n');
    const mutations = lines.filter((l) => !l.startsWith('read README') && !l.startsWith('still a directory'));
    expect(mutations.filter((l) => / OK/.test(l)), 'mutations of /.nexus that succeeded').toEqual([]);
    expect(lines).toContain("read README OK Nexus control files");
    expect(lines).toContain('still a directory OK True');
    // The errnos people see: EPERM for the reserved tree, EEXIST/EISDIR for the name itself.
    expect(lines).toContain('rmdir /.nexus EPERM');
    expect(lines).toContain('rename /.nexus away EPERM');
    expect(lines).toContain('mkdir /.nexus EEXIST');
    expect(lines).toContain('create /.nexus O_EXCL EEXIST');
    expect(lines).toContain('unlink README EPERM');

    // The shell says so and exits non-zero.
    for (const cmd of ['rm -rf .nexus', 'rmdir .nexus', 'mv .nexus x', 'mv d .nexus', 'mkdir .nexus', 'echo hi > .nexus/README', 'touch .nexus/new', 'rm .nexus/README']) {
      const s = sh(t.m.mountpoint, cmd);
      expect(s.code, cmd).not.toBe(0);
      expect(s.stderr, cmd).not.toBe('');
    }
    expect(shOk(t.m.mountpoint, 'ls .nexus | grep -x README; ls -d elsewhere x 2>/dev/null || true; cat f')).toBe('README\nx');
  });

  it('.nexus is an ordinary name below the root, and /.nexus stays out of what tools copy from subdirectories', () => {
    const out = shOk(t.m.mountpoint, `
      mkdir -p sub/.nexus; echo mine > sub/.nexus/README; cat sub/.nexus/README
      mv sub/.nexus sub/renamed; ls -a sub | grep -v '^\\.\\.\\?$'; rm -r sub/renamed; ls -a sub | wc -l
      touch sub/.nexus; rm sub/.nexus; echo ok
    `);
    expect(out).toBe('mine\nrenamed\n2\nok\n');
  });
});

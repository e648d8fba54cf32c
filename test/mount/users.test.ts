/**
 * Other users at an allow_other mount (the daemon runs as root): what they
 * create is theirs, and default_permissions mode checks hold for them, as on
 * a native directory with the same modes.
 */
import { describe, it, expect } from 'vitest';
import { mkdirSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { fuseAvailable, isRoot, mountPerTest, py, shOk, PY_ERRNO_PRELUDE } from '../helpers/mount.js';

const NOBODY = 65534;

describe.skipIf(!fuseAvailable || !isRoot)('mount: other users', () => {
  const t = mountPerTest();
  const dirs = () => {
    const d = [join(t.m.mountpoint, 'w'), join(t.native, 'w')] as const;
    for (const x of d) {
      mkdirSync(x);
      chmodSync(x, 0o755);
    }
    return d;
  };

  it('files, directories and links a non-root user creates are owned by that user', () => {
    const asNobody = `
import os, sys, subprocess
os.umask(0o022)
os.chdir(sys.argv[1] + '/pub')
open('f', 'w').write('mine\\n')
os.mkdir('d'); os.mkdir('d/e', 0o700)
os.symlink('f', 's'); os.link('f', 'h')
os.mkfifo('p')
subprocess.run(['cp', 'f', 'g'], check=True)
subprocess.run(['sh', '-c', 'echo redirected > r; mkdir -p x/y/z; touch -d "2001-01-01 00:00:00.5" r'], check=True)
os.rename('g', 'd/g')
fd = os.open('n', os.O_CREAT | os.O_WRONLY, 0o640); os.close(fd)
`;
    const report = `find pub -printf '%P %u %g %m %y %n\\n' | sort; stat -c '%y' pub/r; cat pub/f pub/r`;
    const out: string[] = [];
    for (const d of dirs()) {
      shOk(d, 'mkdir pub && chmod 1777 pub');
      const r = py(d, asNobody, { asUser: NOBODY });
      expect(r.stderr, d).toBe('');
      expect(r.code).toBe(0);
      out.push(shOk(d, report));
    }
    expect(out[0]).toBe(out[1]);
    expect(out[0]).toMatch(/^ root root 1777 d 4$/m);
    expect(out[0]).toMatch(/^f nobody nogroup 644 f 2$/m);
    expect(out[0]).toMatch(/^d\/e nobody nogroup 700 d 2$/m);
  });

  it('mode checks (EACCES, EPERM) for a non-root user match native, and the daemon keeps serving', () => {
    const setup = `
      echo secret > secret; chmod 600 secret
      echo shared > ro; chmod 644 ro
      echo open > rw; chmod 666 rw
      echo other > oread; chmod 604 oread
      mkdir private; chmod 700 private; echo p > private/f
      mkdir xonly; chmod 711 xonly; echo x > xonly/known; chmod 644 xonly/known
      mkdir rootdir; chmod 755 rootdir
      mkdir sticky; chmod 1777 sticky; echo r > sticky/rootfile; chmod 666 sticky/rootfile
      mkdir grpdir; chmod 775 grpdir
    `;
    const checks = PY_ERRNO_PRELUDE + `
os.chdir(sys.argv[1])
t('read 0600 root file', lambda: os.open('secret', os.O_RDONLY))
t('cat 0600 root file', lambda: open('secret').read())
t('write 0644 root file', lambda: os.open('ro', os.O_WRONLY))
t('read 0644 root file', lambda: open('ro').read().strip())
t('append 0666 root file', lambda: os.write(os.open('rw', os.O_WRONLY | os.O_APPEND), b'more\\n'))
t('read 0604 (other) file', lambda: open('oread').read().strip())
t('truncate 0644 root file', lambda: os.truncate('ro', 0))
t('list 0700 dir', lambda: os.listdir('private'))
t('open in 0700 dir', lambda: os.open('private/f', os.O_RDONLY))
t('stat in 0700 dir', lambda: os.stat('private/f').st_size)
t('list 0711 dir', lambda: os.listdir('xonly'))
t('read known name in 0711 dir', lambda: open('xonly/known').read().strip())
t('create in 0755 root dir', lambda: os.open('rootdir/new', os.O_CREAT | os.O_WRONLY, 0o644))
t('mkdir in 0755 root dir', lambda: os.mkdir('rootdir/sub'))
t('unlink root file in 0755 dir', lambda: os.unlink('ro'))
t('rename root file in 0755 dir', lambda: os.rename('ro', 'ro2'))
t('unlink root file in sticky dir', lambda: os.unlink('sticky/rootfile'))
t('write root 0666 file in sticky dir', lambda: os.write(os.open('sticky/rootfile', os.O_WRONLY), b'w'))
t('create own file in sticky dir', lambda: os.close(os.open('sticky/mine', os.O_CREAT | os.O_WRONLY, 0o600)))
t('unlink own file in sticky dir', lambda: os.unlink('sticky/mine'))
t('chmod root file', lambda: os.chmod('rw', 0o777))
t('chown root file to self', lambda: os.chown('rw', ${NOBODY}, ${NOBODY}))
t('set explicit times on root 0666 file', lambda: os.utime('rw', (1, 1)))
t('set times to now on root 0666 file', lambda: os.utime('rw'))
t('set times to now on root 0644 file', lambda: os.utime('ro'))
t('access W_OK on 0644', lambda: os.access('ro', os.W_OK))
t('access R_OK on 0600', lambda: os.access('secret', os.R_OK))
t('setxattr user.* on root file', lambda: os.setxattr('ro', 'user.k', b'v'))
t('mkdir in 0775 root group dir', lambda: os.mkdir('grpdir/x'))
t('symlink in 0755 root dir', lambda: os.symlink('x', 'rootdir/l'))
t('hard link to root 0600 file in sticky dir', lambda: os.link('secret', 'sticky/hl'))
`;
    const out: string[] = [];
    for (const d of dirs()) {
      shOk(d, setup);
      const r = py(d, checks, { asUser: NOBODY });
      expect(r.stderr, d).toBe('');
      out.push(r.stdout);
    }
    expect(out[0]).toBe(out[1]);
    expect(out[0]).toContain('read 0600 root file EACCES');
    expect(out[0]).toContain('write 0644 root file EACCES');
    expect(out[0]).toContain('unlink root file in sticky dir EPERM');
    // Nothing changed that should not have, and the daemon still answers.
    const after = `cat secret ro rw; ls sticky rootdir | sort; echo alive > alive; cat alive`;
    expect(shOk(join(t.m.mountpoint, 'w'), after)).toBe(shOk(join(t.native, 'w'), after));
  });
});

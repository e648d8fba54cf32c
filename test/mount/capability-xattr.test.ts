/**
 * security.capability at the mount. The kernel reads it before every write(2)
 * to clear it, and the daemon answers that read without a path walk while no
 * file has one (src/fuse/adapter.ts): the shortcut must never hide a real
 * attribute, and a write must clear one as on ext4. Root only (setting file
 * capabilities needs CAP_SETFCAP).
 */
import { describe, it, expect } from 'vitest';
import { fuseAvailable, isRoot, mountPerTest, onBoth, PYTHON } from '../helpers/mount.js';

// VFS_CAP_REVISION_2 with the effective bit, permitting cap_net_raw (13).
const SCRIPT = `${PYTHON} - <<'EOF'
import os, struct, errno
cap = struct.pack('<IIIII', 0x02000001, 1 << 13, 0, 0, 0)
def get(p):
    try: return os.getxattr(p, 'security.capability').hex()
    except OSError as e: return errno.errorcode[e.errno]
with open('f', 'wb') as f: f.write(b'one')
with open('g', 'wb') as f: f.write(b'two')
print('new file:', get('f'))
os.setxattr('f', 'security.capability', cap)
print('after setxattr:', get('f'), 'listed:', 'security.capability' in os.listxattr('f'))
print('other file:', get('g'))
with open('g', 'ab') as f: f.write(b'more')
print('other file after a write:', get('g'))
with open('f', 'ab') as f: f.write(b'more')
print('after a write:', get('f'), 'listed:', 'security.capability' in os.listxattr('f'))
print('content:', open('f', 'rb').read())
EOF`;

describe.skipIf(!fuseAvailable || !isRoot)('mount: security.capability', () => {
  const t = mountPerTest();

  it('reads as absent, then as set, and a write clears it, as on a native directory', () => {
    const r = onBoth(t.m.mountpoint, t.native, SCRIPT);
    expect(r.native.stderr).toBe('');
    expect(r.native.stdout).toContain('after setxattr: 0100000200200000');
    expect(r.native.stdout).toContain('after a write: ENODATA');
    expect(r.mount.stderr).toBe('');
    expect(r.mount.stdout).toBe(r.native.stdout);
  });
});

/**
 * Several processes on one file at the mount: an editor's atomic save under a
 * concurrent reader, concurrent O_APPEND writers, a file unlinked while open,
 * and mmap. The native directory runs the same programs as the reference.
 */
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { fuseAvailable, mountPerTest, py, PYTHON } from '../helpers/mount.js';

/** Run a python program asynchronously (so several can overlap). */
function pyAsync(code: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(PYTHON, ['-c', code, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

const SAVER = `
import os, sys
d, size, saves = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
old = (b'O' * 63 + b'\\n') * (size // 64)
new = (b'N' * 63 + b'\\n') * (size // 64)
for i in range(saves):
    body = new if i % 2 == 0 else old
    fd = os.open(os.path.join(d, '.doc.txt.swp'), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    # An editor writes in pieces, so a reader of the swap file would see it half done.
    for off in range(0, len(body), 8192):
        os.write(fd, body[off:off + 8192])
    os.fsync(fd)
    os.close(fd)
    os.rename(os.path.join(d, '.doc.txt.swp'), os.path.join(d, 'doc.txt'))
open(os.path.join(d, 'saver.done'), 'w').close()
print('saves', saves)
`;

const READER = `
import os, sys, hashlib, errno
d, size = sys.argv[1], int(sys.argv[2])
old = (b'O' * 63 + b'\\n') * (size // 64)
new = (b'N' * 63 + b'\\n') * (size // 64)
seen = {'old': 0, 'new': 0}
bad = []
def once():
    try:
        with open(os.path.join(d, 'doc.txt'), 'rb') as f:
            data = f.read()
    except OSError as e:
        bad.append(errno.errorcode[e.errno])
        return
    if data == old: seen['old'] += 1
    elif data == new: seen['new'] += 1
    else: bad.append((len(data), data[:8], data[-8:], hashlib.sha256(data).hexdigest()[:12]))
while not os.path.exists(os.path.join(d, 'saver.done')):
    once()
once()
print('old', seen['old'] > 0, 'new', seen['new'] > 0, 'reads', seen['old'] + seen['new'], 'bad', len(bad), bad[:3], 'other', len([b for b in bad if b != 'ENOENT']))
`;

const APPENDER = `
import os, sys
path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
for i in range(n):
    line = f'{tag} {i:06d} '.encode() + tag.encode() * (40 + i % 60) + b'\\n'
    assert os.write(fd, line) == len(line)
os.close(fd)
`;

const CHECK_APPEND = `
import sys, re, collections
lines = open(sys.argv[2], 'rb').read().split(b'\\n')
assert lines[-1] == b'', 'no trailing newline'
lines = lines[:-1]
per = collections.defaultdict(list)
torn = 0
for l in lines:
    m = re.fullmatch(rb'([AB]) (\\d{6}) ([AB]+)', l)
    if not m or m.group(3) != m.group(1) * len(m.group(3)) or len(m.group(3)) != 40 + int(m.group(2)) % 60:
        torn += 1
        continue
    per[m.group(1)].append(int(m.group(2)))
n = int(sys.argv[3])
print('lines', len(lines), 'torn', torn, 'A-in-order', per[b'A'] == list(range(n)), 'B-in-order', per[b'B'] == list(range(n)))
`;

describe.skipIf(!fuseAvailable)('mount: concurrent access', () => {
  const t = mountPerTest();
  const dirs = () => {
    const d = [join(t.m.mountpoint, 'w'), join(t.native, 'w')] as const;
    for (const x of d) mkdirSync(x, { recursive: true });
    return d;
  };

  // Content atomicity, strictly: a reader opening doc.txt during saves reads the
  // whole old or the whole new file, never a mix, a partial file or an error
  // other than the one below.
  for (const size of [4096, 1 << 20]) {
    it(`editor-style save (${size} B): a concurrent reader sees only the whole old or the whole new content`, async () => {
      for (const d of dirs()) {
        py(d, `import sys; open(sys.argv[1] + '/doc.txt', 'wb').write((b'O' * 63 + b'\\n') * (${size} // 64))`);
        const saves = size > 100_000 ? 30 : 150;
        const [reader, saver] = await Promise.all([pyAsync(READER, [d, String(size)], d), pyAsync(SAVER, [d, String(size), String(saves)], d)]);
        expect(saver.stderr).toBe('');
        expect(saver.stdout).toBe(`saves ${saves}\n`);
        expect(reader.stderr).toBe('');
        // "other": failed or wrong reads that are not the ENOENT below.
        const m = /^old True new True reads \d+ bad \d+ .* other (\d+)\n$/.exec(reader.stdout);
        expect(m, `${d}: ${reader.stdout}`).not.toBeNull();
        // KNOWN LIMITATION (libfuse 2.9's path-based API): an open() that the
        // kernel resolved to the old file just before the rename reaches libfuse
        // after it, when that node has no name any more, and libfuse answers
        // ENOENT without asking us (native-notes/fuse-native.md). The strict
        // version of this test is below, behind NEXUS_TEST_KNOWN_LIMITS=1.
        expect(Number(m![1]), `${d}: reader saw other content: ${reader.stdout}`).toBe(0);
      }
    }, 120_000);

    it.skipIf(!process.env.NEXUS_TEST_KNOWN_LIMITS)(`editor-style save (${size} B): the name never disappears for a concurrent reader [known libfuse 2.9 limitation]`, async () => {
      for (const d of dirs()) {
        py(d, `import sys; open(sys.argv[1] + '/doc.txt', 'wb').write((b'O' * 63 + b'\\n') * (${size} // 64))`);
        const saves = size > 100_000 ? 30 : 150;
        const [reader] = await Promise.all([pyAsync(READER, [d, String(size)], d), pyAsync(SAVER, [d, String(size), String(saves)], d)]);
        expect(reader.stdout, `${d}: reader saw other content`).toMatch(/^old True new True reads \d+ bad 0 \[\] other 0\n$/);
      }
    }, 120_000);
  }

  it('two processes appending to one file: every line present, in order, none torn', async () => {
    const n = 3000;
    for (const d of dirs()) {
      const f = join(d, 'log');
      const [a, b] = await Promise.all([pyAsync(APPENDER, [f, 'A', String(n)], d), pyAsync(APPENDER, [f, 'B', String(n)], d)]);
      expect(a.stderr + b.stderr).toBe('');
      const r = py(d, CHECK_APPEND, { args: [f, String(n)] });
      expect(r.stderr).toBe('');
      expect(r.stdout, d).toBe(`lines ${2 * n} torn 0 A-in-order True B-in-order True\n`);
    }
  }, 120_000);

  const deletedWhileOpen = (code: string) => {
    const [md, nd] = dirs();
    const native = py(nd, code);
    const mount = py(md, code);
    expect(native.stderr).toBe('');
    expect(mount).toEqual(native);
  };

  it('a file deleted while open is still read and written through its descriptor (size seen by lseek)', () => {
    deletedWhileOpen(`
import os, sys
os.chdir(sys.argv[1])
data = bytes(range(256)) * 4000
with open('victim', 'wb') as f: f.write(data)
fd = os.open('victim', os.O_RDWR)
fd2 = os.open('victim', os.O_RDONLY)
os.unlink('victim')
print('exists', os.path.exists('victim'))
print('size', os.lseek(fd, 0, os.SEEK_END))
print('read-ok', os.pread(fd, len(data), 0) == data)
os.pwrite(fd, b'tail', len(data))
os.fsync(fd)
print('size-after-write', os.lseek(fd, 0, os.SEEK_END), 'other-fd-sees', os.pread(fd2, 4, len(data)))
os.ftruncate(fd, 10)
print('after-truncate', os.pread(fd2, 100, 0))
os.close(fd)
print('still-readable', os.pread(fd2, 3, 0))
os.close(fd2)
with open('victim', 'wb') as f: f.write(b'new file')
print('recreated', open('victim', 'rb').read())
# The same through a hard link and a rename over an open file.
with open('a', 'wb') as f: f.write(b'first')
fa = os.open('a', os.O_RDONLY)
with open('b', 'wb') as f: f.write(b'second')
os.rename('b', 'a')
print('renamed-over-open', os.pread(fa, 10, 0), open('a', 'rb').read())
os.close(fa)
`);
  });

  // fstat(2) of a file deleted while open asks for attributes without a file
  // handle; libfuse 2.9 has no path for the node and answers ENOENT, which the
  // patched binding retries with a handle of the node (patch version 10,
  // native-notes/fuse-native.md). nlink must read 0.
  it('a file deleted while open: fstat through its descriptor', () => {
    deletedWhileOpen(`
import os, sys
os.chdir(sys.argv[1])
data = bytes(range(256)) * 4000
with open('victim', 'wb') as f: f.write(data)
fd = os.open('victim', os.O_RDWR)
fd2 = os.open('victim', os.O_RDONLY)
os.unlink('victim')
print('exists', os.path.exists('victim'))
st = os.fstat(fd)
print('nlink', st.st_nlink, 'size', st.st_size)
print('read-ok', os.pread(fd, len(data), 0) == data)
os.pwrite(fd, b'tail', len(data))
os.fsync(fd)
print('size-after-write', os.fstat(fd).st_size, 'other-fd-sees', os.pread(fd2, 4, len(data)))
os.ftruncate(fd, 10)
print('after-truncate', os.pread(fd2, 100, 0))
os.close(fd)
print('still-readable', os.pread(fd2, 3, 0))
os.close(fd2)
with open('victim', 'wb') as f: f.write(b'new file')
print('recreated', open('victim', 'rb').read())
# The same through a hard link and a rename over an open file.
with open('a', 'wb') as f: f.write(b'first')
fa = os.open('a', os.O_RDONLY)
with open('b', 'wb') as f: f.write(b'second')
os.rename('b', 'a')
print('renamed-over-open', os.pread(fa, 10, 0), open('a', 'rb').read())
os.close(fa)
`);
  });

  it('fstat of a deleted file right after another descriptor of it closed (its handle may be closing)', () => {
    deletedWhileOpen(`
import os, sys
os.chdir(sys.argv[1])
bad = 0
for i in range(300):
    with open('v', 'wb') as f: f.write(b'x' * (100 + i))
    a = os.open('v', os.O_RDONLY)
    b = os.open('v', os.O_RDONLY)
    os.unlink('v')
    os.close(a)
    st = os.fstat(b)
    if st.st_size != 100 + i or st.st_nlink != 0: bad += 1
    os.close(b)
print('bad', bad)
`);
  });

  it('a file unlinked while open leaves no name behind (no .fuse_hidden entry in listings)', () => {
    const code = `
import os, sys
os.chdir(sys.argv[1])
with open('victim', 'wb') as f: f.write(b'data')
fd = os.open('victim', os.O_RDONLY)
os.unlink('victim')
print('listing', sorted(os.listdir('.')))
with open('target', 'wb') as f: f.write(b'old')
ft = os.open('target', os.O_RDONLY)
with open('new', 'wb') as f: f.write(b'new')
os.rename('new', 'target')
print('listing after rename over an open file', sorted(os.listdir('.')))
os.close(fd); os.close(ft)
print('listing after close', sorted(os.listdir('.')))
`;
    const [md, nd] = dirs();
    const native = py(nd, code);
    const mount = py(md, code);
    expect(native.stderr).toBe('');
    expect(mount).toEqual(native);
  });

  it('rm -rf of a directory holding an open, deleted file succeeds and leaves no trace', () => {
    const code = `
import os, sys, shutil
os.chdir(sys.argv[1])
os.makedirs('build/obj')
with open('build/obj/log', 'w') as f: f.write('x' * 100)
fd = os.open('build/obj/log', os.O_RDONLY)
os.unlink('build/obj/log')
print('listing', os.listdir('build/obj'))
try:
    shutil.rmtree('build')
    print('rmtree ok', os.path.exists('build'))
except OSError as e:
    print('rmtree failed', e.strerror)
print('read', len(os.pread(fd, 1000, 0)))
os.close(fd)
`;
    const [md, nd] = dirs();
    const native = py(nd, code);
    const mount = py(md, code);
    expect(native.stdout).toBe("listing []\nrmtree ok False\nread 100\n");
    expect(mount).toEqual(native);
  });

  it('mmap reads see the file content, at every offset, including after an in-place change', () => {
    const code = `
import os, sys, mmap, hashlib
os.chdir(sys.argv[1])
data = os.urandom(1) and bytes((i * 7919 + 13) % 251 for i in range(3 * 1024 * 1024 + 12345))
with open('m', 'wb') as f: f.write(data)
with open('m', 'rb') as f:
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    print('len', len(mm), 'sha-equal', hashlib.sha256(mm).digest() == hashlib.sha256(data).digest())
    print('slices', all(mm[o:o + 4096] == data[o:o + 4096] for o in range(0, len(data), 65537)))
    print('last', mm[-5:] == data[-5:])
    mm.close()
# Change 4 bytes through write(), map again.
with open('m', 'r+b') as f:
    f.seek(1 << 20); f.write(b'WXYZ')
with open('m', 'rb') as f:
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    print('changed', mm[(1 << 20) - 1:(1 << 20) + 5] == data[(1 << 20) - 1:(1 << 20)] + b'WXYZ' + data[(1 << 20) + 4:(1 << 20) + 5])
    mm.close()
# A shared writable mapping, flushed, then read back with read().
with open('m', 'r+b') as f:
    mm = mmap.mmap(f.fileno(), 0)
    mm[10:15] = b'HELLO'
    mm.flush()
    mm.close()
print('mapped-write', open('m', 'rb').read()[8:17] == data[8:10] + b'HELLO' + data[15:17])
with open('small', 'wb') as f: f.write(b'0123456789')
with open('small', 'rb') as f:
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    print('small', mm[:], mm.size())
`;
    const [md, nd] = dirs();
    const native = py(nd, code);
    const mount = py(md, code);
    expect(native.stderr).toBe('');
    expect(native.stdout).not.toContain('False');
    expect(mount).toEqual(native);
  }, 60_000);
});

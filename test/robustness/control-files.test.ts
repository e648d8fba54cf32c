/**
 * Robustness: garbage written to every /.nexus control file. Random bytes,
 * 1 MiB lines, NULs, invalid UTF-8, several commands in one write, writes at
 * huge offsets, through every open mode, from Python and from dd: each gets
 * an error (never success, never EIO, never a dead daemon), the control
 * files keep working, and no file is lost.
 */
import { describe, it, expect } from 'vitest';
import { fuseAvailable, mountPerTest } from '../helpers/mount.js';
import { bugLines, expectCanaries, expectFsckConsistent, expectServing, py, sh, shOk, writeCanaries } from '../helpers/robust-util.js';

const MiB = 1024 * 1024;

describe.skipIf(!fuseAvailable)('robustness: garbage into /.nexus control files', () => {
  const t = mountPerTest();

  it('random bytes and 1 MiB lines into ctl, session and the read-only files get errors; the daemon keeps serving and nothing is lost', async () => {
    const mp = t.m.mountpoint;
    await shOk(mp, 'mkdir -p ws/sub');
    const canaries = await writeCanaries(`${mp}/ws`, [10, 100_000, 300_000, 2 * MiB + 12345]);
    // A snapshot, so the read-only snapshot tree has a directory and a file to abuse.
    const snap = JSON.parse(await shOk(mp, 'exec 3<>.nexus/ctl; echo "snapshot /ws robust" >&3; cat <&3')) as { ok: boolean; snapshot_id: string };
    expect(snap.ok).toBe(true);
    const snapFile = `.nexus/snapshots/${snap.snapshot_id}/${[...canaries.keys()][1]}`;
    expect((await sh(mp, `cmp -s ${snapFile} ws/${[...canaries.keys()][1]}`)).code).toBe(0);

    const writable = ['.nexus/ctl', '.nexus/session'];
    const readOnly = ['.nexus/README', '.nexus/workspaces', '.nexus/sessions', snapFile];
    const dirs = ['.nexus', '.nexus/snapshots', `.nexus/snapshots/${snap.snapshot_id}`];

    const r = await py(mp, `
import os, sys, json, random, errno
os.chdir(sys.argv[1])
writable, read_only, dirs = json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
rng = random.Random(20240611)
def garbage(n):
    b = bytes(rng.getrandbits(8) for _ in range(n)) if n < 70000 else rng.randbytes(n)
    return b'\\xff\\x00' + b  # never valid UTF-8 text, whatever the draw
MiB = 1 << 20
payloads = {
  'random-1': garbage(1), 'random-100': garbage(100), 'random-4094': garbage(4094), 'random-4096': garbage(4096),
  'random-65536': garbage(65536), 'random-1MiB': garbage(MiB),
  'line-1MiB': b'x' * MiB + b'\\n', 'line-1MiB-no-newline': b'y' * MiB,
  'command-1MiB': b'snapshot /ws ' + b'n' * MiB + b'\\n',
  'spaces-1MiB': b'snapshot' + b' ' * MiB + b'/ws\\n',
  'nul': b'snapshot /ws\\x00x\\n', 'two-commands': b'snapshot /ws\\nsnapshot /ws\\n',
  'valid-then-garbage': b'snapshot /ws a\\n' + garbage(50),
  'unknown': b'frobnicate /ws\\n', 'restore-bogus': b'restore /ws snap_' + b'0' * 40 + b'\\n',
  'session-bogus': b'sess_doesnotexist\\n',
}
def attempt(path, flags, data, offset=None):
    try:
        fd = os.open(path, flags)
    except OSError as e:
        return 'open:' + errno.errorcode[e.errno]
    try:
        mv, total = memoryview(data), 0
        while mv:
            n = os.pwrite(fd, mv, offset + total) if offset is not None else os.write(fd, mv)
            if n == 0: break
            total += n; mv = mv[n:]
        return 'OK %d' % total
    except OSError as e:
        return 'write:' + errno.errorcode[e.errno]
    finally:
        os.close(fd)
results = []
modes = {'WRONLY': os.O_WRONLY, 'RDWR': os.O_RDWR, 'TRUNC': os.O_WRONLY | os.O_TRUNC, 'APPEND': os.O_WRONLY | os.O_APPEND}
for path in writable + read_only:
    for mname, flags in modes.items():
        for pname, data in payloads.items():
            results.append([path, mname, pname, attempt(path, flags, data)])
    results.append([path, 'RDWR', 'random-100@1TiB', attempt(path, os.O_RDWR, garbage(100), 1 << 40)])
for path in dirs:
    for mname, flags in modes.items():
        results.append([path, mname, 'random-100', attempt(path, flags, garbage(100))])
    results.append([path, 'CREAT', 'new file', attempt(path + '/new', os.O_WRONLY | os.O_CREAT, b'x')])
print(json.dumps(results))
`, { args: [JSON.stringify(writable), JSON.stringify(readOnly), JSON.stringify(dirs)], timeoutMs: 300_000 });
    expect(r.stderr).toBe('');
    const results = JSON.parse(r.stdout) as [string, string, string, string][];
    expect(results.length).toBeGreaterThan(100);

    const succeeded = results.filter(([, , , out]) => out.startsWith('OK'));
    expect(succeeded, 'garbage writes that succeeded').toEqual([]);
    const eio = results.filter(([, , , out]) => /EIO|ENOTCONN|ETIMEDOUT|ECONNABORTED/.test(out));
    expect(eio, 'garbage writes answered with EIO or a dead mount').toEqual([]);
    // Writable control files refuse the content (EINVAL, ENOENT for an unknown session or snapshot);
    // read-only ones refuse the open (EACCES, EROFS); directories say EISDIR (or EROFS/EPERM for new names).
    for (const [path, mode, payload, out] of results) {
      const where = `${path} ${mode} ${payload}: ${out}`;
      if (writable.includes(path)) expect(out, where).toMatch(/^write:(EINVAL|ENOENT)$/);
      else if (readOnly.includes(path)) expect(out, where).toMatch(/^open:(EACCES|EROFS|EPERM)$/);
      else if (mode === 'CREAT') expect(out, where).toMatch(/^open:(EROFS|EPERM|EACCES|ENOENT)$/);
      else expect(out, where).toMatch(/^open:(EISDIR|EROFS|EPERM|EACCES)$/);
    }
    const tally = new Map<string, number>();
    for (const [path, , , out] of results) tally.set(`${path} -> ${out}`, (tally.get(`${path} -> ${out}`) ?? 0) + 1);
    console.log([...tally].map(([k, n]) => `${k} x${n}`).join('\n'));

    // The shell sees errors too, and dd reports them.
    for (const target of [...writable, ...readOnly]) {
      const s = await sh(mp, `head -c ${MiB} /dev/urandom > ${target}`);
      expect(s.code, `head > ${target}`).not.toBe(0);
      const d = await sh(mp, `dd if=/dev/urandom of=${target} bs=1M count=1 conv=notrunc 2>&1`);
      expect(d.code, `dd of=${target}: ${d.stdout}`).not.toBe(0);
      expect(d.stdout).not.toMatch(/Input\/output error|Transport endpoint/);
    }

    // The control files still work: the last error is readable as JSON, commands succeed.
    const last = JSON.parse(await shOk(mp, 'cat .nexus/ctl')) as { ok: boolean; error?: { code: string } };
    expect(last.ok).toBe(false);
    const again = JSON.parse(await shOk(mp, 'exec 3<>.nexus/ctl; echo "snapshot /ws after" >&3; cat <&3')) as { ok: boolean; snapshot_id: string };
    expect(again.ok).toBe(true);
    expect(again.snapshot_id).toMatch(/^snap_/);
    expect(await shOk(mp, 'cat .nexus/session')).toBe('');
    expect(await shOk(mp, 'head -1 .nexus/README')).toBe('Nexus control files\n');
    expect((await shOk(mp, 'ls .nexus/snapshots | grep -c .')).trim()).toBe('2');
    expect((await sh(mp, `cmp -s ${snapFile} ws/${[...canaries.keys()][1]}`)).code).toBe(0);

    // Nothing lost, the daemon serves, the store is sound, and it logged no bug.
    await expectCanaries(`${mp}/ws`, canaries);
    await expectServing(t.m, 'after garbage');
    await expectFsckConsistent(t.m.dataDir);
    expect(await bugLines(t.m), 'daemon log').toEqual([]);
  }, 300_000);

  it('a refused write leaves its own reason readable on the same descriptor, never an earlier result', async () => {
    const mp = t.m.mountpoint;
    await shOk(mp, 'mkdir -p ws');
    const r = await py(mp, `
import os, sys, json, errno
os.chdir(sys.argv[1])
def cmd(payload):
    fd = os.open('.nexus/ctl', os.O_RDWR)
    try:
        try:
            os.write(fd, payload); w = 'OK'
        except OSError as e:
            w = errno.errorcode[e.errno]
        res = json.loads(os.read(fd, 1 << 20) or b'null')
        return [w, res.get('ok') if res else None, (res or {}).get('error', {}).get('code') or (res or {}).get('snapshot_id', '')[:5]]
    finally:
        os.close(fd)
out = {}
out['good'] = cmd(b'snapshot /ws first\\n')
out['unknown verb'] = cmd(b'frobnicate\\n')
out['good again'] = cmd(b'snapshot /ws second\\n')
out['invalid utf-8'] = cmd(b'\\xff\\xfe snapshot\\n')
out['control chars'] = cmd(b'snapshot /ws \\x01\\n')
out['5000 bytes'] = cmd(b'snapshot /ws ' + b'x' * 5000 + b'\\n')
out['two lines'] = cmd(b'snapshot /ws a\\nsnapshot /ws b\\n')
print(json.dumps(out))
`);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as Record<string, [string, boolean | null, string]>;
    expect(out.good).toEqual(['OK', true, 'snap_']);
    expect(out['unknown verb']).toEqual(['EINVAL', false, 'INVALID_ARGUMENT']);
    expect(out['good again']).toEqual(['OK', true, 'snap_']);
    // The same as an unknown verb: refused with EINVAL, and the reason is what the descriptor reads back.
    expect.soft(out['invalid utf-8'], 'invalid UTF-8').toEqual(['EINVAL', false, 'INVALID_ARGUMENT']);
    expect.soft(out['control chars'], 'control characters').toEqual(['EINVAL', false, 'INVALID_ARGUMENT']);
    expect.soft(out['5000 bytes'], 'a command over 4 KiB').toEqual(['EINVAL', false, 'INVALID_ARGUMENT']);
    expect.soft(out['two lines'], 'two commands in one write').toEqual(['EINVAL', false, 'INVALID_ARGUMENT']);
  });

  it('8 processes writing commands and garbage to ctl at once each read their own result on their own descriptor', async () => {
    const mp = t.m.mountpoint;
    await shOk(mp, 'mkdir -p ws && echo hello > ws/file');
    const canaries = await writeCanaries(`${mp}/ws`, [1000, 700_000]);
    const worker = `
import os, sys, json, errno, random
os.chdir(sys.argv[1])
me = sys.argv[2]
rng = random.Random(me)
out = {'ok': 0, 'refused': 0, 'wrong': []}
for i in range(30):
    good = rng.random() < 0.5
    name = 'p%s-%d' % (me, i)
    payload = ('snapshot /ws %s\\n' % name).encode() if good else b'\\xfe' + rng.randbytes(rng.choice([10, 3000, 200000]))
    fd = os.open('.nexus/ctl', os.O_RDWR)
    try:
        try:
            os.write(fd, payload); wrote = True
        except OSError as e:
            wrote = errno.errorcode[e.errno]
        res = json.loads(os.read(fd, 1 << 20) or b'null')
    finally:
        os.close(fd)
    if good and wrote is True and res and res.get('ok') and res['snapshot']['name'] == name: out['ok'] += 1
    elif not good and wrote == 'EINVAL' and res and res.get('ok') is False: out['refused'] += 1
    else: out['wrong'].append([name, good, wrote, res])
print(json.dumps(out))
`;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => py(mp, worker, { args: [String(i)], timeoutMs: 120_000 })));
    let ok = 0;
    let refused = 0;
    for (const r of results) {
      expect(r.stderr).toBe('');
      const o = JSON.parse(r.stdout) as { ok: number; refused: number; wrong: unknown[] };
      expect(o.wrong, 'results read back on the wrong descriptor, or wrong outcomes').toEqual([]);
      ok += o.ok;
      refused += o.refused;
    }
    expect(ok + refused).toBe(240);
    expect(ok).toBeGreaterThan(60);
    expect((await shOk(mp, 'ls .nexus/snapshots | wc -l')).trim()).toBe(String(ok));
    await expectCanaries(`${mp}/ws`, canaries);
    await expectServing(t.m, 'after concurrent ctl');
    await expectFsckConsistent(t.m.dataDir);
    expect(await bugLines(t.m), 'daemon log').toEqual([]);
  }, 300_000);
});

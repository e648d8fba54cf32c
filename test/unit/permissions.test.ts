/**
 * Unix permission rules of the engine, checked as several non-root users
 * (the tests run as root, so these cannot be compared with native).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDataDir, type OpenedDataDir } from '../../src/engine/data-dir.js';
import { contextFor, ROOT_CONTEXT, type Cred } from '../../src/engine/credentials.js';
import { engineView, normalizeError, O, type EngineFsView } from '../conformance/fs-under-test.js';
import { expectErrno } from '../conformance/harness.js';

const R_OK = 4;
const W_OK = 2;
const X_OK = 1;

const ALICE: Cred = { uid: 1000, gid: 1000, groups: [2000] };
const BOB: Cred = { uid: 1001, gid: 1001, groups: [] };
/** In alice's primary group. */
const CAROL: Cred = { uid: 1002, gid: 1002, groups: [1000] };

let dataDir: string;
let opened: OpenedDataDir;
let root: EngineFsView;
let alice: EngineFsView;
let bob: EngineFsView;
let carol: EngineFsView;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'nx-perm-'));
  opened = await openDataDir(dataDir);
  root = engineView(opened.engine, ROOT_CONTEXT, 'root');
  alice = engineView(opened.engine, contextFor(ALICE), 'alice');
  bob = engineView(opened.engine, contextFor(BOB), 'bob');
  carol = engineView(opened.engine, contextFor(CAROL), 'carol');
  // A world-writable playground, as /tmp without the sticky bit.
  await root.mkdir('/pub');
  await root.chmod('/pub', 0o777);
});

afterEach(async () => {
  for (const v of [alice, bob, carol, root]) await v.dispose();
  await opened.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** engine.access as an errno-normalized promise. */
async function access(view: EngineFsView, path: string, mask: number): Promise<void> {
  try {
    await view.engine.access(path, mask, view.ctx);
  } catch (e) {
    throw normalizeError(e, `access ${path}`);
  }
}

async function canOpen(view: EngineFsView, path: string, flags: number): Promise<void> {
  const fd = await view.open(path, flags);
  await view.close(fd);
}

describe('mode bits on files', () => {
  beforeEach(async () => {
    await alice.writeFile('/pub/a', 'secret');
    await alice.chmod('/pub/a', 0o640);
  });

  it('owner, group and other each get their own class of bits', async () => {
    await canOpen(alice, '/pub/a', O.RDWR);
    await canOpen(carol, '/pub/a', O.RDONLY);
    await expectErrno(carol.open('/pub/a', O.WRONLY), 'EACCES');
    await expectErrno(bob.open('/pub/a', O.RDONLY), 'EACCES');
    await expectErrno(bob.readFile('/pub/a'), 'EACCES');
    expect((await carol.readFile('/pub/a')).toString()).toBe('secret');
  });

  it('the owner class applies to the owner even when other bits would allow more', async () => {
    await alice.chmod('/pub/a', 0o077);
    await expectErrno(alice.open('/pub/a', O.RDONLY), 'EACCES');
    await canOpen(carol, '/pub/a', O.RDWR);
    await canOpen(bob, '/pub/a', O.RDWR);
  });

  it('the group class applies to group members even when other bits would allow more', async () => {
    await alice.chmod('/pub/a', 0o607);
    await expectErrno(carol.open('/pub/a', O.RDONLY), 'EACCES');
    await canOpen(bob, '/pub/a', O.RDWR);
  });

  it('supplementary groups count', async () => {
    await root.chown('/pub/a', 1000, 2000);
    await root.chmod('/pub/a', 0o060);
    await expectErrno(bob.open('/pub/a', O.RDONLY), 'EACCES');
    await expectErrno(carol.open('/pub/a', O.RDONLY), 'EACCES');
    const dave = engineView(opened.engine, contextFor({ uid: 1003, gid: 1003, groups: [7, 2000] }), 'dave');
    await canOpen(dave, '/pub/a', O.RDWR);
    await dave.dispose();
  });

  it('writing and truncating need write permission', async () => {
    await expectErrno(carol.writeFile('/pub/a', 'x'), 'EACCES');
    await expectErrno(carol.truncate('/pub/a', 0), 'EACCES');
    await expectErrno(carol.open('/pub/a', O.RDONLY | O.TRUNC), 'EACCES');
    await expectErrno(bob.open('/pub/a', O.WRONLY | O.CREAT), 'EACCES');
    expect((await alice.readFile('/pub/a')).toString()).toBe('secret');
  });

  it('permission is checked at open: an open descriptor keeps working after chmod 000', async () => {
    await alice.chmod('/pub/a', 0o666);
    const fd = await bob.open('/pub/a', O.RDWR);
    await alice.chmod('/pub/a', 0o000);
    await bob.write(fd, 'B', 0);
    expect((await bob.read(fd, 6, 0)).toString()).toBe('Becret');
    await bob.ftruncate(fd, 3);
    await bob.close(fd);
    await expectErrno(bob.open('/pub/a', O.RDONLY), 'EACCES');
    expect((await root.readFile('/pub/a')).toString()).toBe('Bec');
  });

  it('access() reports each bit; root may read and write anything but execute needs an x bit', async () => {
    await access(alice, '/pub/a', R_OK | W_OK);
    await expectErrno(access(alice, '/pub/a', X_OK), 'EACCES');
    await access(carol, '/pub/a', R_OK);
    await expectErrno(access(carol, '/pub/a', W_OK), 'EACCES');
    await expectErrno(access(bob, '/pub/a', R_OK), 'EACCES');
    await alice.chmod('/pub/a', 0o000);
    await access(root, '/pub/a', R_OK | W_OK);
    await expectErrno(access(root, '/pub/a', X_OK), 'EACCES');
    await alice.chmod('/pub/a', 0o001);
    await access(root, '/pub/a', X_OK);
    await access(bob, '/pub/a', X_OK);
  });
});

describe('mode bits on directories', () => {
  beforeEach(async () => {
    await alice.mkdir('/pub/d');
    await alice.writeFile('/pub/d/f', 'inside');
  });

  it('search (x) is needed to reach anything inside', async () => {
    await alice.chmod('/pub/d', 0o744);
    await expectErrno(bob.stat('/pub/d/f'), 'EACCES');
    await expectErrno(bob.readFile('/pub/d/f'), 'EACCES');
    expect(await bob.readdir('/pub/d')).toEqual(['f']); // r without x still lists names
    await alice.chmod('/pub/d', 0o711);
    expect((await bob.readFile('/pub/d/f')).toString()).toBe('inside');
    await expectErrno(bob.readdir('/pub/d'), 'EACCES'); // x without r: no listing
  });

  it('search is needed on every ancestor, not only the parent', async () => {
    await alice.mkdir('/pub/d/e');
    await alice.writeFile('/pub/d/e/g', 'deep');
    await alice.chmod('/pub/d', 0o700);
    await expectErrno(bob.readFile('/pub/d/e/g'), 'EACCES');
    await expectErrno(bob.writeFile('/pub/d/e/new', 'x'), 'EACCES');
  });

  it('write and search are needed to create, remove or rename entries', async () => {
    await alice.chmod('/pub/d', 0o755);
    await expectErrno(bob.writeFile('/pub/d/new', 'x'), 'EACCES');
    await expectErrno(bob.mkdir('/pub/d/sub'), 'EACCES');
    await expectErrno(bob.symlink('f', '/pub/d/l'), 'EACCES');
    await expectErrno(bob.unlink('/pub/d/f'), 'EACCES');
    await expectErrno(bob.rename('/pub/d/f', '/pub/moved'), 'EACCES');
    await bob.writeFile('/pub/b', 'bob');
    await expectErrno(bob.rename('/pub/b', '/pub/d/b'), 'EACCES');
    await expectErrno(bob.link('/pub/b', '/pub/d/b'), 'EACCES');
    await alice.chmod('/pub/d', 0o776); // w without x is not enough
    await expectErrno(bob.writeFile('/pub/d/new', 'x'), 'EACCES');
    await alice.chmod('/pub/d', 0o773);
    await bob.writeFile('/pub/d/new', 'x');
    await bob.unlink('/pub/d/f'); // not sticky: anyone with w+x may remove
    expect(await alice.readdir('/pub/d')).toEqual(['new']);
  });

  it('moving a directory to another parent needs write on the directory itself (its ..)', async () => {
    await bob.mkdir('/pub/bobdir');
    await bob.chmod('/pub/bobdir', 0o555);
    await root.mkdir('/pub2');
    await root.chmod('/pub2', 0o777);
    await expectErrno(bob.rename('/pub/bobdir', '/pub2/bobdir'), 'EACCES');
    await bob.rename('/pub/bobdir', '/pub/renamed'); // same parent: fine
    await bob.chmod('/pub/renamed', 0o755);
    await bob.rename('/pub/renamed', '/pub2/bobdir');
  });

  it('new files and directories belong to the caller, with the umask applied', async () => {
    await bob.writeFile('/pub/bf', 'x', { mode: 0o666 });
    await bob.mkdir('/pub/bd', 0o777);
    const f = await root.stat('/pub/bf');
    const d = await root.stat('/pub/bd');
    expect([f.uid, f.gid, f.perm]).toEqual([1001, 1001, 0o644]);
    expect([d.uid, d.gid, d.perm]).toEqual([1001, 1001, 0o755]);
  });
});

describe('sticky directories', () => {
  beforeEach(async () => {
    await root.mkdir('/tmp');
    await root.chmod('/tmp', 0o1777);
    await alice.writeFile('/tmp/alices', 'a');
    await alice.mkdir('/tmp/alicedir');
    await bob.writeFile('/tmp/bobs', 'b');
  });

  it("another user cannot unlink, rmdir, rename away or replace one's entries (EPERM)", async () => {
    await expectErrno(bob.unlink('/tmp/alices'), 'EPERM');
    await expectErrno(bob.rmdir('/tmp/alicedir'), 'EPERM');
    await expectErrno(bob.rename('/tmp/alices', '/tmp/mine'), 'EPERM');
    await expectErrno(bob.rename('/tmp/bobs', '/tmp/alices'), 'EPERM');
    expect(await root.readdir('/tmp')).toEqual(['alicedir', 'alices', 'bobs']);
    expect((await root.readFile('/tmp/alices')).toString()).toBe('a');
  });

  it('the owner of the entry and root may', async () => {
    await alice.rename('/tmp/alices', '/tmp/alices2');
    await alice.unlink('/tmp/alices2');
    await alice.rmdir('/tmp/alicedir');
    await bob.rename('/tmp/bobs', '/tmp/bobs2');
    await root.unlink('/tmp/bobs2');
    expect(await root.readdir('/tmp')).toEqual([]);
  });

  it('the owner of a sticky directory may remove anyone\'s entries in it', async () => {
    await bob.mkdir('/pub/bobsticky');
    await bob.chmod('/pub/bobsticky', 0o1777);
    await alice.writeFile('/pub/bobsticky/a', 'a');
    await expectErrno(carol.unlink('/pub/bobsticky/a'), 'EPERM');
    await bob.unlink('/pub/bobsticky/a');
    expect(await bob.readdir('/pub/bobsticky')).toEqual([]);
  });
});

describe('chmod', () => {
  beforeEach(async () => {
    await alice.writeFile('/pub/a', 'x');
  });

  it('only the owner or root may chmod (EPERM)', async () => {
    await expectErrno(bob.chmod('/pub/a', 0o777), 'EPERM');
    await expectErrno(carol.chmod('/pub/a', 0o777), 'EPERM');
    expect((await root.stat('/pub/a')).perm).toBe(0o644);
    await alice.chmod('/pub/a', 0o600);
    expect((await root.stat('/pub/a')).perm).toBe(0o600);
    await root.chmod('/pub/a', 0o640);
    expect((await root.stat('/pub/a')).perm).toBe(0o640);
  });

  it('an owner outside the file group loses setgid on chmod; inside, keeps it', async () => {
    await root.chown('/pub/a', 1000, 5000);
    await alice.chmod('/pub/a', 0o2755);
    expect((await root.stat('/pub/a')).perm).toBe(0o755);
    await root.chown('/pub/a', 1000, 2000); // a supplementary group of alice
    await alice.chmod('/pub/a', 0o2755);
    expect((await root.stat('/pub/a')).perm).toBe(0o2755);
    await root.chown('/pub/a', 1000, 5000);
    await root.chmod('/pub/a', 0o2755); // root keeps it regardless
    expect((await root.stat('/pub/a')).perm).toBe(0o2755);
  });

  it('a write by a non-root user clears setuid (and setgid with group exec)', async () => {
    await root.writeFile('/pub/suid', 'x');
    await root.chmod('/pub/suid', 0o6777);
    const fd = await alice.open('/pub/suid', O.WRONLY);
    await alice.write(fd, 'y', 0);
    await alice.close(fd);
    expect((await root.stat('/pub/suid')).perm).toBe(0o777);
    await root.chmod('/pub/suid', 0o6777);
    await root.writeFile('/pub/suid', 'by root');
    expect((await root.stat('/pub/suid')).perm).toBe(0o6777);
  });
});

describe('chown', () => {
  beforeEach(async () => {
    await alice.writeFile('/pub/a', 'x');
  });

  it('only root may give a file away', async () => {
    await expectErrno(alice.chown('/pub/a', 1001, -1), 'EPERM');
    await expectErrno(bob.chown('/pub/a', 1001, -1), 'EPERM');
    await root.chown('/pub/a', 1001, 1001);
    const st = await root.stat('/pub/a');
    expect([st.uid, st.gid]).toEqual([1001, 1001]);
  });

  it("the owner may change the group to one of their groups only", async () => {
    await alice.chown('/pub/a', -1, 2000);
    expect((await root.stat('/pub/a')).gid).toBe(2000);
    await alice.chown('/pub/a', 1000, 1000); // own uid, primary group
    expect((await root.stat('/pub/a')).gid).toBe(1000);
    await expectErrno(alice.chown('/pub/a', -1, 3000), 'EPERM');
    expect((await root.stat('/pub/a')).gid).toBe(1000);
  });

  it("a non-owner may not change the group, even to their own group", async () => {
    await alice.chmod('/pub/a', 0o666);
    await expectErrno(carol.chown('/pub/a', -1, 1000), 'EPERM');
    await expectErrno(bob.chown('/pub/a', -1, 1001), 'EPERM');
  });
});

describe('setgid directories', () => {
  beforeEach(async () => {
    await root.mkdir('/shared');
    await root.chown('/shared', 0, 5000);
    await root.chmod('/shared', 0o2777);
  });

  it('new entries take the directory group; new subdirectories also take the setgid bit', async () => {
    await alice.writeFile('/shared/f', 'x');
    await alice.mkdir('/shared/sub');
    const f = await root.stat('/shared/f');
    const sub = await root.stat('/shared/sub');
    expect([f.uid, f.gid]).toEqual([1000, 5000]);
    expect(f.perm & 0o2000).toBe(0);
    expect([sub.uid, sub.gid]).toEqual([1000, 5000]);
    expect(sub.perm).toBe(0o2755);
    // ...and it carries on one level down.
    await alice.mkdir('/shared/sub/deeper');
    await alice.writeFile('/shared/sub/deeper/g', 'x');
    expect((await root.stat('/shared/sub/deeper')).gid).toBe(5000);
    expect((await root.stat('/shared/sub/deeper')).perm & 0o2000).toBe(0o2000);
    expect((await root.stat('/shared/sub/deeper/g')).gid).toBe(5000);
  });

  it('a file created with setgid by a user outside the inherited group loses the bit', async () => {
    // Empty content: a write by a non-root user would clear setgid anyway.
    await alice.writeFile('/shared/f', '', { mode: 0o2755 });
    expect((await root.stat('/shared/f')).perm).toBe(0o755);
    const member = engineView(opened.engine, contextFor({ uid: 1004, gid: 1004, groups: [5000] }), 'member');
    await member.writeFile('/shared/g', '', { mode: 0o2755 });
    expect((await root.stat('/shared/g')).perm).toBe(0o2755);
    await member.dispose();
  });

  it('outside a setgid directory, new entries take the caller primary group', async () => {
    await alice.writeFile('/pub/f', 'x');
    await alice.mkdir('/pub/sub');
    expect((await root.stat('/pub/f')).gid).toBe(1000);
    expect((await root.stat('/pub/sub')).gid).toBe(1000);
    expect((await root.stat('/pub/sub')).perm & 0o2000).toBe(0);
  });
});

describe('utimens', () => {
  const T = 1_600_000_000_123_456_789n;

  beforeEach(async () => {
    await alice.writeFile('/pub/a', 'x');
    await alice.chmod('/pub/a', 0o666); // everyone may write
  });

  it('explicit times by a non-owner are EPERM even with write permission', async () => {
    await expectErrno(bob.utimes('/pub/a', T, T), 'EPERM');
    expect((await root.stat('/pub/a')).mtimeNs).not.toBe(T);
  });

  it('explicit times by the owner or root are set to the nanosecond', async () => {
    await alice.utimes('/pub/a', T, T + 1n);
    let st = await root.stat('/pub/a');
    expect([st.atimeNs, st.mtimeNs]).toEqual([T, T + 1n]);
    await root.utimes('/pub/a', T + 2n, T + 3n);
    st = await root.stat('/pub/a');
    expect([st.atimeNs, st.mtimeNs]).toEqual([T + 2n, T + 3n]);
  });

  it("'now' by the owner needs no write permission", async () => {
    await alice.chmod('/pub/a', 0o444);
    await alice.utimes('/pub/a', T, T);
    await opened.engine.utimens('/pub/a', 'now', 'now', alice.ctx);
    expect((await root.stat('/pub/a')).mtimeNs).toBeGreaterThan(T);
  });

  it("'now' by a non-owner needs write permission", async () => {
    const e = opened.engine;
    await alice.utimes('/pub/a', T, T);
    await e.utimens('/pub/a', 'now', 'now', bob.ctx);
    expect((await root.stat('/pub/a')).mtimeNs).toBeGreaterThan(T);
    await alice.chmod('/pub/a', 0o644);
    await expectErrno(
      e.utimens('/pub/a', 'now', 'now', bob.ctx).catch((err) => {
        throw normalizeError(err);
      }),
      'EACCES',
    );
  });
});

/**
 * One SDK suite, three ways: embedded (connect({ dataDir }) opens the data
 * directory in this process), remote (a real server process, connect({
 * remoteUrl })), and through a daemon's local socket (connect({ dataDir }) on
 * a directory another process holds and serves on nexus.sock).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import {
  connect, NexusClient, NexusError, HttpApi, NotFoundError, ConflictError, InvalidArgumentError, PermissionError, AuthenticationError,
} from '../../src/sdk/index.js';
import { LocalApi } from '../../src/sdk/local-api.js';
import { buildForChildren, startHolderProcess, startServerProcess } from '../server/server-process.js';

interface Setup {
  nx: NexusClient;
  dataDir: string;
  /** A second client acting as an API key's subject, where the transport authenticates keys (remote); null elsewhere. */
  as?(apiKey: string): Promise<NexusClient>;
  /** A client with no API key at all (remote only). */
  anonymous?(): Promise<NexusClient>;
  teardown(): Promise<void>;
}

async function tmp(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

const setups: [string, () => Promise<Setup>][] = [
  [
    'embedded',
    async () => {
      const dataDir = await tmp('nx-sdk-emb-');
      const nx = await connect({ dataDir });
      expect(nx.api).toBeInstanceOf(LocalApi);
      return { nx, dataDir, teardown: async () => rm(dataDir, { recursive: true, force: true }) };
    },
  ],
  [
    'remote',
    async () => {
      buildForChildren();
      const dataDir = await tmp('nx-sdk-rem-');
      const server = await startServerProcess(dataDir);
      // TCP needs an API key: the admin key the server process made before serving.
      const nx = await connect({ remoteUrl: server.url, apiKey: server.adminKey });
      expect(nx.api).toBeInstanceOf(HttpApi);
      return {
        nx,
        dataDir,
        as: (apiKey) => connect({ remoteUrl: server.url, apiKey }),
        anonymous: () => connect({ remoteUrl: server.url }),
        teardown: async () => {
          expect(await server.stop()).toBe(0);
          await rm(dataDir, { recursive: true, force: true });
        },
      };
    },
  ],
  [
    'daemon socket',
    async () => {
      buildForChildren();
      const dataDir = await tmp('nx-sdk-sock-');
      const holder = await startHolderProcess(dataDir);
      const nx = await connect({ dataDir });
      expect(nx.api).toBeInstanceOf(HttpApi);
      return {
        nx,
        dataDir,
        teardown: async () => {
          await holder.stop();
          await rm(dataDir, { recursive: true, force: true });
        },
      };
    },
  ],
];

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe.each(setups)('SDK (%s)', (mode, setup) => {
  let env: Setup;
  let nx: NexusClient;

  beforeAll(async () => {
    env = await setup();
    nx = env.nx;
  });
  afterAll(async () => {
    await nx?.close();
    await env?.teardown();
  });

  it('writes, reads, stats, lists, renames and deletes files', async () => {
    const info = await nx.write('/docs/readme.md', '# Hello', { parents: true });
    expect(info).toMatchObject({ path: '/docs/readme.md', name: 'readme.md', type: 'file', size: 7 });
    expect(await nx.readText('/docs/readme.md')).toBe('# Hello');
    expect(Buffer.compare(await nx.read('/docs/readme.md'), Buffer.from('# Hello'))).toBe(0);

    // Binary content, an empty file, and overwriting in place (same inode).
    const bin = Buffer.from([0, 255, 1, 254, 10, 13, 0]);
    await nx.write('/docs/bin', bin);
    expect(Buffer.compare(await nx.read('/docs/bin'), bin)).toBe(0);
    await nx.write('/docs/empty', new Uint8Array(0));
    expect((await nx.read('/docs/empty')).length).toBe(0);
    const again = await nx.write('/docs/readme.md', '# Hello again');
    expect(again.ino).toBe(info.ino);
    expect(await nx.readText('/docs/readme.md')).toBe('# Hello again');

    expect(await nx.stat('/docs')).toMatchObject({ path: '/docs', type: 'directory' });
    expect(await nx.exists('/docs/readme.md')).toBe(true);
    expect(await nx.exists('/docs/missing')).toBe(false);

    const dir = await nx.mkdir('/docs/a/b', { parents: true });
    expect(dir).toMatchObject({ path: '/docs/a/b', type: 'directory' });
    await nx.mkdir('/docs/c');
    await nx.write('/docs/a/b/deep.txt', 'deep');

    expect((await nx.list('/docs')).map((f) => f.name).sort()).toEqual(['a', 'bin', 'c', 'empty', 'readme.md']);
    expect((await nx.list('/docs', { recursive: true })).map((f) => f.path).sort()).toEqual([
      '/docs/a', '/docs/a/b', '/docs/a/b/deep.txt', '/docs/bin', '/docs/c', '/docs/empty', '/docs/readme.md',
    ]);

    await nx.rename('/docs/readme.md', '/docs/c/README.md');
    expect(await nx.exists('/docs/readme.md')).toBe(false);
    expect(await nx.readText('/docs/c/README.md')).toBe('# Hello again');

    await nx.delete('/docs/bin');
    expect(await nx.exists('/docs/bin')).toBe(false);
    await expect(nx.delete('/docs/a')).rejects.toBeInstanceOf(ConflictError); // not empty
    await nx.delete('/docs/a', { recursive: true });
    expect(await nx.exists('/docs/a/b/deep.txt')).toBe(false);
    await nx.delete('/docs', { recursive: true });
    expect(await nx.exists('/docs')).toBe(false);
  });

  it('keeps unusual path names intact', async () => {
    const p = '/odd dir/名前 with spaces & ?query=1#frag%20.txt';
    await nx.write(p, 'odd', { parents: true });
    expect(await nx.readText(p)).toBe('odd');
    expect((await nx.list('/odd dir')).map((f) => f.path)).toEqual([p]);
    await nx.delete('/odd dir', { recursive: true });
  });

  it('gives typed errors', async () => {
    await expect(nx.read('/no/such/file')).rejects.toBeInstanceOf(NotFoundError);
    await expect(nx.stat('/no/such/file')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(nx.read('relative/path')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nx.mkdir('/x/y/z')).rejects.toBeInstanceOf(NotFoundError); // no parents
    await nx.mkdir('/errs');
    await expect(nx.mkdir('/errs')).rejects.toBeInstanceOf(ConflictError);
    await expect(nx.read('/errs')).rejects.toMatchObject({ code: 'IS_A_DIRECTORY' });
    await expect(nx.read('/errs')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nx.write('/.nexus/ctl', 'x')).rejects.toBeInstanceOf(PermissionError);
    await expect(nx.workspace.getSnapshot('not-a-snapshot')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nx.workspace.getSnapshot('snap_0000000000000000')).rejects.toBeInstanceOf(NotFoundError);
    await expect(nx.session.get('sess_nope')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nx.session.get('sess_0000000000000000')).rejects.toBeInstanceOf(NotFoundError);
    await expect(nx.write('/errs/f', 'x', { context: { sessionId: 'bogus' } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nx.write('/errs/f', 'x', { context: { sessionId: 'sess_0000000000000000' } })).rejects.toBeInstanceOf(NotFoundError);
    // The same for a large body (remote: refused before the body is sent, after `Expect: 100-continue`).
    const big = Buffer.alloc(5 * 2 ** 20, 1);
    await expect(nx.write('/errs/big', big, { context: { sessionId: 'sess_0000000000000000' } })).rejects.toBeInstanceOf(NotFoundError);
    await expect(nx.write('/no/parent/big', big)).rejects.toBeInstanceOf(NotFoundError);
    await expect(nx.write('/.nexus/big', big)).rejects.toBeInstanceOf(PermissionError);
    expect(await nx.exists('/errs/f')).toBe(false);
    expect(await nx.exists('/errs/big')).toBe(false);
    const e = await nx.read('/no/such/file').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NexusError);
    expect(e).toMatchObject({ code: 'NOT_FOUND', status: 404, errno: 'ENOENT' });
    await nx.delete('/errs');
  });

  it('creates, lists, inspects and deletes workspaces', async () => {
    const ws = await nx.workspace.create('/workspace/acme', { metadata: { tenant_id: 'acme-123', plan: 'enterprise' } });
    expect(ws).toMatchObject({ path: '/workspace/acme', metadata: { tenant_id: 'acme-123', plan: 'enterprise' } });
    expect(Date.parse(ws.created_at)).toBeGreaterThan(0);
    await expect(nx.workspace.create('/workspace/acme')).rejects.toBeInstanceOf(ConflictError);
    await expect(nx.workspace.create('/workspace/acme/inner')).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await nx.workspace.list()).map((w) => w.path)).toContain('/workspace/acme');
    expect(await nx.workspace.info('/workspace/acme')).toEqual(ws);
    await nx.write('/workspace/acme/data.json', '{"records": 1000}');
    await nx.workspace.delete('/workspace/acme');
    expect((await nx.workspace.list()).map((w) => w.path)).not.toContain('/workspace/acme');
    expect(await nx.exists('/workspace/acme')).toBe(false);
    await expect(nx.workspace.info('/workspace/acme')).rejects.toBeInstanceOf(NotFoundError);
    await expect(nx.workspace.delete('/workspace/acme')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('snapshots, diffs, restores (and undoes the restore), deletes snapshots', async () => {
    await nx.workspace.create('/ws');
    await nx.write('/ws/a.txt', 'a1');
    await nx.write('/ws/sub/b.txt', 'b1', { parents: true });
    const s1 = await nx.workspace.snapshot('/ws', { name: 'first', metadata: { reason: 'test' } });
    expect(s1).toMatch(/^snap_[0-9a-f]{16}$/);
    expect(await nx.workspace.getSnapshot(s1)).toMatchObject({ snapshot_id: s1, path: '/ws', name: 'first', metadata: { reason: 'test' }, file_count: 2, total_bytes: 4, kind: 'manual' });

    await nx.write('/ws/a.txt', 'a2');
    await nx.delete('/ws/sub/b.txt');
    await nx.write('/ws/c.txt', 'c');
    expect(await nx.workspace.diff(s1)).toEqual({ added: ['/ws/c.txt'], modified: ['/ws/a.txt'], deleted: ['/ws/sub/b.txt'] });
    const s2 = await nx.workspace.snapshot('/ws');
    expect(await nx.workspace.diff(s1, s2)).toEqual({ added: ['/ws/c.txt'], modified: ['/ws/a.txt'], deleted: ['/ws/sub/b.txt'] });
    expect((await nx.workspace.listSnapshots('/ws')).map((s) => s.snapshot_id)).toEqual([s1, s2]);
    expect((await nx.workspace.listSnapshots()).map((s) => s.snapshot_id)).toEqual(expect.arrayContaining([s1, s2]));

    const r = await nx.workspace.restore('/ws', s1);
    expect(r).toMatchObject({ path: '/ws', snapshot_id: s1 });
    expect(r.pre_restore_snapshot_id).toMatch(/^snap_/);
    expect(await nx.readText('/ws/a.txt')).toBe('a1');
    expect(await nx.readText('/ws/sub/b.txt')).toBe('b1');
    expect(await nx.exists('/ws/c.txt')).toBe(false);
    await nx.workspace.restore('/ws', r.pre_restore_snapshot_id); // undo
    expect(await nx.readText('/ws/a.txt')).toBe('a2');
    expect(await nx.exists('/ws/c.txt')).toBe(true);
    await expect(nx.workspace.restore('/elsewhere', s1)).rejects.toBeInstanceOf(InvalidArgumentError);

    await nx.workspace.deleteSnapshot(s2);
    await expect(nx.workspace.getSnapshot(s2)).rejects.toBeInstanceOf(NotFoundError);
    await expect(nx.workspace.deleteSnapshot(s2)).rejects.toBeInstanceOf(NotFoundError);
    await expect(nx.workspace.diff(s1, 'bogus')).rejects.toBeInstanceOf(InvalidArgumentError);
    await nx.workspace.delete('/ws');
  });

  it('tags writes with sessions (per call, session.context, connection default) and reverts them', async () => {
    const s = await nx.session.create({ agentId: `agent-${mode}`, metadata: { model: 'test' } });
    expect(s).toMatchObject({ agent_id: `agent-${mode}`, metadata: { model: 'test' }, ended_at: null });
    expect(s.session_id).toMatch(/^sess_[0-9a-f]{16}$/);
    expect(await nx.session.get(s.session_id)).toEqual(s);
    expect((await nx.session.list({ agentId: `agent-${mode}` })).map((x) => x.session_id)).toEqual([s.session_id]);
    expect((await nx.session.list()).map((x) => x.session_id)).toContain(s.session_id);

    await nx.write('/agent/base.txt', 'base', { parents: true }); // no session
    await nx.write('/agent/one.txt', 'one', { context: { sessionId: s.session_id } });
    const inside = await nx.session.context(s.session_id, async (h) => {
      expect(h.id).toBe(s.session_id);
      await nx.write('/agent/two.txt', 'two');
      await nx.write('/agent/base.txt', 'changed by the agent');
      return 'done';
    });
    expect(inside).toBe('done');
    // Outside the context, writes are untagged again.
    await nx.write('/agent/after.txt', 'after');
    // A connection default session (an explicit context still wins).
    const tagged = new NexusClient(nx.api, s.session_id);
    await tagged.write('/agent/three.txt', 'three');

    expect((await nx.session.files(s.session_id)).map((f) => f.path)).toEqual(['/agent/base.txt', '/agent/one.txt', '/agent/three.txt', '/agent/two.txt']);
    expect((await nx.list('/agent', { filter: { sessionId: s.session_id } })).map((f) => f.path).sort()).toEqual([
      '/agent/base.txt', '/agent/one.txt', '/agent/three.txt', '/agent/two.txt',
    ]);
    expect(await nx.session.diff(s.session_id)).toEqual({
      created: ['/agent/one.txt', '/agent/three.txt', '/agent/two.txt'], modified: ['/agent/base.txt'], deleted: [],
    });
    expect((await nx.session.get(s.session_id)).file_count).toBeGreaterThanOrEqual(3);

    // Someone else changes a file the session wrote: revert refuses, with the file named, unless forced.
    await nx.write('/agent/two.txt', 'edited by a person');
    const conflict = await nx.session.revert(s.session_id).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect((conflict as NexusError).details).toEqual({ conflicts: ['/agent/two.txt'] });
    expect(await nx.readText('/agent/base.txt')).toBe('changed by the agent');
    const rep = await nx.session.revert(s.session_id, { force: true });
    expect(rep).toMatchObject({ session_id: s.session_id, conflicts: ['/agent/two.txt'], forced: true });
    expect(rep.reverted).toEqual(['/agent/base.txt', '/agent/one.txt', '/agent/three.txt', '/agent/two.txt']);
    expect(await nx.readText('/agent/base.txt')).toBe('base');
    expect(await nx.exists('/agent/one.txt')).toBe(false);
    expect(await nx.readText('/agent/after.txt')).toBe('after');

    const ended = await nx.session.end(s.session_id);
    expect(ended.ended_at).not.toBeNull();
    await expect(nx.session.context(s.session_id, async () => 1)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nx.write('/agent/late.txt', 'x', { context: { sessionId: s.session_id } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nx.session.create({ agentId: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await nx.delete('/agent', { recursive: true });
  });

  it('creates, lists and revokes API keys; the secret is shown once', async () => {
    const k = await nx.keys.create({ subject: `user:alice-${mode.replace(/ /g, '-')}@acme-123.com` });
    expect(k.api_key).toMatch(/^nx_[0-9a-f]{16}_[0-9a-f]{48}$/);
    expect(k.api_key.slice(3, 19)).toBe(k.key_id);
    expect(k).toMatchObject({ admin: false, expires_at: null, revoked_at: null });
    expect(Date.parse(k.created_at)).toBeGreaterThan(0);
    const listed = await nx.keys.list();
    const mine = listed.find((x) => x.key_id === k.key_id);
    expect(mine).toEqual({ key_id: k.key_id, subject: k.subject, admin: false, created_at: k.created_at, expires_at: null, revoked_at: null });
    expect(JSON.stringify(listed)).not.toContain(k.api_key.slice(20)); // never the secret

    const t0 = Date.now();
    const expiring = await nx.keys.create({ subject: 'agent:nightly-job', expiresIn: '90d' });
    expect(Date.parse(expiring.expires_at!) - t0).toBeGreaterThan(89 * 86400e3);
    expect(Date.parse(expiring.expires_at!) - t0).toBeLessThan(91 * 86400e3);
    const admin = await nx.keys.create({ subject: 'user:ops@example.com', admin: true });
    expect(admin.admin).toBe(true);

    await expect(nx.keys.create({ subject: 'no-colon' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nx.keys.create({ subject: 'user:' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nx.keys.create({ subject: 'user:x', expiresIn: 'soon' })).rejects.toBeInstanceOf(InvalidArgumentError);

    // Revoke by id, or by the key itself.
    await nx.keys.revoke(k.key_id);
    await nx.keys.revoke(expiring.api_key);
    const after = await nx.keys.list();
    expect(after.find((x) => x.key_id === k.key_id)!.revoked_at).not.toBeNull();
    expect(after.find((x) => x.key_id === expiring.key_id)!.revoked_at).not.toBeNull();
    expect(after.find((x) => x.key_id === admin.key_id)!.revoked_at).toBeNull();
    await nx.keys.revoke(admin.key_id);
  });

  it('creates, lists and deletes ReBAC grants; a key acts within its grants', async () => {
    const subject = `bob-${mode.replace(/ /g, '-')}@beta-456.com`;
    await nx.mkdir('/rb/beta/data', { parents: true });
    await nx.write('/rb/beta/data/report.txt', 'beta report');
    await nx.write('/rb/other/secret.txt', 'other tenant', { parents: true });
    const g = await nx.rebacCreate('user', subject, 'editor', 'file', '/rb/beta');
    expect(g).toMatchObject({ subject_type: 'user', subject_id: subject, relation: 'editor', object_type: 'file', object_id: '/rb/beta' });
    expect(Date.parse(g.created_at)).toBeGreaterThan(0);
    // Object paths are normalized: the same grant, however it is written.
    expect((await nx.rebacList({ subjectType: 'user', subjectId: subject })).map((x) => [x.relation, x.object_id])).toEqual([['editor', '/rb/beta']]);
    expect((await nx.rebacList({ objectType: 'file', objectId: '/rb/beta/' })).map((x) => x.subject_id)).toEqual([subject]);
    await expect(nx.rebacCreate('user', subject, 'superuser', 'file', '/rb/beta')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nx.rebacCreate('user', '', 'viewer', 'file', '/rb/beta')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(nx.rebacDelete('user', subject, 'owner', 'file', '/rb/beta')).rejects.toBeInstanceOf(NotFoundError);

    const key = await nx.keys.create({ subject: `user:${subject}` });
    const bob = await env.as?.(key.api_key);
    if (bob) {
      try {
        // Editor inside the grant, down the tree.
        expect(await bob.readText('/rb/beta/data/report.txt')).toBe('beta report');
        await bob.write('/rb/beta/data/new.txt', 'by bob');
        await bob.mkdir('/rb/beta/models');
        // Nothing outside it, not even its existence.
        await expect(bob.read('/rb/other/secret.txt')).rejects.toBeInstanceOf(PermissionError);
        await expect(bob.write('/rb/other/planted.txt', 'x')).rejects.toBeInstanceOf(PermissionError);
        await expect(bob.stat('/rb/other')).rejects.toBeInstanceOf(PermissionError);
        expect((await bob.list('/rb')).map((f) => f.path)).toEqual(['/rb/beta']);
        // Editor is not owner: no granting, no workspaces, no keys.
        await expect(bob.rebacCreate('user', 'mallory@x.com', 'viewer', 'file', '/rb/beta')).rejects.toBeInstanceOf(PermissionError);
        await expect(bob.workspace.create('/rb/beta/ws')).rejects.toBeInstanceOf(PermissionError);
        await expect(bob.keys.create({ subject: 'user:mallory@x.com' })).rejects.toBeInstanceOf(PermissionError);
        await expect(bob.keys.list()).rejects.toBeInstanceOf(PermissionError);
        // Bob sees his own grant only.
        expect((await bob.rebacList()).map((x) => x.subject_id)).toEqual([subject]);

        // The grant goes: so does the access.
        await nx.rebacDelete('user', subject, 'editor', 'file', '/rb/beta');
        await expect(bob.read('/rb/beta/data/report.txt')).rejects.toBeInstanceOf(PermissionError);
        // The key goes: every call is refused as unauthenticated.
        await nx.keys.revoke(key.key_id);
        const e = await bob.stat('/').catch((x: unknown) => x);
        expect(e).toBeInstanceOf(AuthenticationError);
        expect(e).toBeInstanceOf(PermissionError);
        expect(e).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
      } finally {
        await bob.close();
      }
      const anon = await env.anonymous!();
      await expect(anon.stat('/')).rejects.toBeInstanceOf(AuthenticationError);
      await anon.close();
    } else {
      await nx.rebacDelete('user', subject, 'editor', 'file', '/rb/beta');
      await nx.keys.revoke(key.key_id);
    }
    expect(await nx.rebacList({ subjectType: 'user', subjectId: subject })).toEqual([]);
    expect(await nx.readText('/rb/other/secret.txt')).toBe('other tenant');
    await nx.delete('/rb', { recursive: true });
  });

  it('round-trips a 20 MiB file', async () => {
    const data = randomBytes(20 * 2 ** 20);
    const t0 = performance.now();
    const info = await nx.write('/big/blob.bin', data, { parents: true });
    const t1 = performance.now();
    expect(info.size).toBe(data.length);
    const back = await nx.read('/big/blob.bin');
    const t2 = performance.now();
    expect(back.length).toBe(data.length);
    expect(sha(back)).toBe(sha(data));
    // Overwrite with a shorter file: no stale tail.
    await nx.write('/big/blob.bin', data.subarray(0, 3 * 2 ** 20 + 17));
    expect(sha(await nx.read('/big/blob.bin'))).toBe(sha(data.subarray(0, 3 * 2 ** 20 + 17)));
    process.stderr.write(`[sdk ${mode}] 20 MiB write ${(t1 - t0).toFixed(0)} ms, read ${(t2 - t1).toFixed(0)} ms\n`);
    await nx.delete('/big', { recursive: true });
  });
});

describe('embedded: input the services must refuse themselves', () => {
  // Over HTTP the server refuses JSON nested deeper than 64 levels before any
  // service sees it; an embedded caller reaches the services directly.
  it('metadata nested 10,000 levels deep is an InvalidArgumentError, not an internal stack overflow', async () => {
    const dataDir = await tmp('nx-sdk-deep-');
    const nx = await connect({ dataDir });
    try {
      let deep: Record<string, unknown> = { leaf: true };
      for (let i = 0; i < 10_000; i++) deep = { a: deep };
      await expect(nx.workspace.create('/deep', { metadata: deep })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(nx.session.create({ agentId: 'deep', metadata: deep })).rejects.toBeInstanceOf(InvalidArgumentError);
      expect(await nx.workspace.list()).toEqual([]);
    } finally {
      await nx.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('connect', () => {
  it('reports a server that is not there, naming the URL', async () => {
    // A port nobody listens on: bind one, note it, close it.
    const port = await new Promise<number>((res) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    const nx = await connect({ remoteUrl: `http://127.0.0.1:${port}` });
    const e = await nx.stat('/').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NexusError);
    expect((e as NexusError).message).toContain(`http://127.0.0.1:${port}`);
    expect((e as NexusError).message).toContain('connection refused');
    await nx.close();
  });

  it('refuses URLs that are not http(s)', async () => {
    await expect(connect({ remoteUrl: 'ftp://example.com' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(connect({ remoteUrl: 'not a url' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('goes through the socket of a process that holds the data directory, and falls back to embedded once it is gone', async () => {
    buildForChildren();
    const dataDir = await tmp('nx-sdk-held-');
    try {
      const holder = await startHolderProcess(dataDir);
      expect(holder.socketPath).toBe(join(dataDir, 'nexus.sock'));
      expect((await stat(holder.socketPath!)).mode & 0o777).toBe(0o600);
      const nx = await connect({ dataDir });
      expect(nx.api).toBeInstanceOf(HttpApi);
      await nx.write('/via-socket.txt', 'hello through the daemon');
      await nx.close();
      await holder.stop();
      await expect(stat(holder.socketPath!)).rejects.toMatchObject({ code: 'ENOENT' });

      const embedded = await connect({ dataDir });
      expect(embedded.api).toBeInstanceOf(LocalApi);
      expect(await embedded.readText('/via-socket.txt')).toBe('hello through the daemon');
      await embedded.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('still says LOCKED when the holder serves no socket', async () => {
    buildForChildren();
    const dataDir = await tmp('nx-sdk-locked-');
    try {
      const holder = await startHolderProcess(dataDir, { socket: false });
      const e = await connect({ dataDir }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ConflictError);
      expect(e).toMatchObject({ code: 'LOCKED' });
      await holder.stop();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

/**
 * The HTTP API from the outside: raw fetch() (and node:http, for uploads that
 * break off) against a real server process. Bad input of every kind gets a
 * JSON error with the catalog's status, leaves the data as it was, and the
 * server keeps answering. Every request carries the server's admin key
 * (TCP needs one) unless it sets its own Authorization header; what keys
 * and grants refuse is in attacks.test.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERRORS, NexusError } from '../../src/errors.js';
import { buildApp } from '../../src/server/app.js';
import type { Services } from '../../src/services/services.js';
import { contextFor, ROOT_CONTEXT } from '../../src/engine/credentials.js';
import { openServices } from '../../src/services/services.js';
import { buildForChildren, startServerProcess, type ServerProcess } from './server-process.js';

const BODY_LIMIT = 64 * 1024;
const MAX_FILE = 1 << 20;
const PRECIOUS = 'precious content';

let dataDir: string;
let server: ServerProcess;
let base: string;

beforeAll(async () => {
  buildForChildren();
  dataDir = await mkdtemp(join(tmpdir(), 'nx-http-'));
  server = await startServerProcess(dataDir, { bodyLimit: BODY_LIMIT, maxFileBytes: MAX_FILE });
  base = server.url;
  const r = await fetch(`${base}/api/v1/files/content?path=/keep/precious.txt&parents=true`, { method: 'PUT', body: PRECIOUS });
  expect(r.status).toBe(200);
});

afterAll(async () => {
  if (process.env.SHOW_SERVER_LOG) process.stderr.write(server.stderr().split('\n').filter((l) => !l.includes('"msg":"request"')).join('\n'));
  if (server) expect(await server.stop()).toBe(0);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** fetch() with the admin key, unless the request names its own Authorization. */
function fetch(url: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has('authorization')) headers.set('authorization', `Bearer ${server.adminKey}`);
  return globalThis.fetch(url, { ...init, headers });
}
const auth = () => ({ authorization: `Bearer ${server.adminKey}` });

const api = (p: string) => `${base}/api/v1${p}`;
const postJson = (p: string, body: string, headers: Record<string, string> = {}) =>
  fetch(api(p), { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

/** The response is a catalog error with its status; returns the error object. */
async function expectError(r: Response, code: keyof typeof ERRORS): Promise<{ code: string; message: string; details?: Record<string, unknown> }> {
  const text = await r.text();
  let body: { error?: { code: string; message: string; details?: Record<string, unknown> } };
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`not JSON (HTTP ${r.status}): ${text.slice(0, 200)}`);
  }
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  expect(body.error, text).toBeDefined();
  expect(body.error!.code, text).toBe(code);
  expect(r.status).toBe(ERRORS[code].status);
  expect(typeof body.error!.message).toBe('string');
  expect(body.error!.message.length).toBeGreaterThan(0);
  return body.error!;
}

/** Nothing was harmed: the precious file is intact, no stray files appeared, the server answers. */
async function unharmed(): Promise<void> {
  const h = await fetch(`${base}/health`);
  expect(h.status).toBe(200);
  expect(await h.json()).toMatchObject({ status: 'ok' });
  const f = await fetch(api('/files/content?path=/keep/precious.txt'));
  expect(f.status).toBe(200);
  const text = await f.text();
  // (No diff of a megabyte of bytes when this fails: just say what is there.)
  expect(text === PRECIOUS, `precious file now holds ${text.length} bytes: ${JSON.stringify(text.slice(0, 40))}`).toBe(true);
  const l = await fetch(api('/files/list?path=/&recursive=true'));
  const { files } = (await l.json()) as { files: { path: string }[] };
  expect(files.map((x) => x.path).filter((p) => !p.startsWith('/ok'))).toEqual(['/keep', '/keep/precious.txt']);
}

describe('HTTP API', () => {
  it('answers /health without authentication', async () => {
    const r = await globalThis.fetch(`${base}/health`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ok', version: expect.any(String) });
  });

  it('refuses malformed JSON', async () => {
    for (const body of ['{"path":', '{path: "/x"}', 'null garbage', '[1,2', '\u0000']) {
      const e = await expectError(await postJson('/files/mkdir', body), 'INVALID_ARGUMENT');
      expect(e.message).toMatch(/JSON/);
    }
    await expectError(await postJson('/files/mkdir', ''), 'INVALID_ARGUMENT');
    await expectError(await postJson('/files/mkdir', '{"__proto__": {"polluted": true}, "path": "/p"}'), 'INVALID_ARGUMENT');
    await unharmed();
  });

  it('refuses wrong types, without coercing them', async () => {
    const cases: [string, unknown][] = [
      ['/files/mkdir', { path: 123 }],
      ['/files/mkdir', { path: '/ok-not', parents: 'true' }],
      ['/files/mkdir', ['/ok-not']],
      ['/files/mkdir', '/ok-not'],
      ['/files/delete', { path: '/keep', recursive: 'yes' }],
      ['/files/delete', { path: ['/keep'], recursive: true }],
      ['/files/rename', { from: '/keep/precious.txt', to: 5 }],
      ['/workspaces', { path: '/keep', metadata: 'x' }],
      ['/workspaces', { path: '/keep', metadata: [1] }],
      ['/snapshots', { path: '/keep', name: 5 }],
      ['/sessions', { agent_id: 7 }],
      ['/sessions', { agent_id: 'a', metadata: null }],
    ];
    for (const [route, body] of cases) {
      const e = await expectError(await postJson(route, JSON.stringify(body)), 'INVALID_ARGUMENT');
      expect(e.details).toMatchObject({ part: 'body' });
    }
    await expectError(await fetch(api('/files/list?path=/&recursive=yes')), 'INVALID_ARGUMENT');
    await expectError(await fetch(api('/files/stat?path=/a&path=/b')), 'INVALID_ARGUMENT');
    await expectError(await fetch(api('/files/stat?path=/keep&extra=1')), 'INVALID_ARGUMENT');
    await expectError(await fetch(api('/files/content?path=/ok-not&parents=maybe'), { method: 'PUT', body: 'x' }), 'INVALID_ARGUMENT');
    // A valid session then a revert with a non-boolean force.
    const s = (await (await postJson('/sessions', JSON.stringify({ agent_id: 'types' }))).json()) as { session_id: string };
    await expectError(await postJson(`/sessions/${s.session_id}/revert`, '{"force":"true"}'), 'INVALID_ARGUMENT');
    await unharmed();
  });

  it('refuses missing fields', async () => {
    await expectError(await postJson('/files/mkdir', '{}'), 'INVALID_ARGUMENT');
    await expectError(await postJson('/files/delete', '{"recursive":true}'), 'INVALID_ARGUMENT');
    await expectError(await postJson('/files/rename', '{"from":"/keep/precious.txt"}'), 'INVALID_ARGUMENT');
    await expectError(await postJson('/workspaces', '{"metadata":{}}'), 'INVALID_ARGUMENT');
    await expectError(await postJson('/snapshots', '{"name":"x"}'), 'INVALID_ARGUMENT');
    await expectError(await postJson('/sessions', '{}'), 'INVALID_ARGUMENT');
    await expectError(await postJson('/snapshots/snap_0000000000000000/restore', '{}'), 'INVALID_ARGUMENT');
    await expectError(await fetch(api('/files/mkdir'), { method: 'POST' }), 'INVALID_ARGUMENT'); // no body at all
    for (const p of ['/files/stat', '/files/exists', '/files/list', '/files/content', '/workspaces/info']) {
      await expectError(await fetch(api(p)), 'INVALID_ARGUMENT');
    }
    await expectError(await fetch(api('/workspaces'), { method: 'DELETE' }), 'INVALID_ARGUMENT');
    await expectError(await fetch(api('/files/content'), { method: 'PUT', body: 'x' }), 'INVALID_ARGUMENT');
    await unharmed();
  });

  it('refuses bodies that are not JSON on JSON routes', async () => {
    const r = await fetch(api('/files/mkdir'), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"path":"/ok-not"}' });
    await expectError(r, 'INVALID_ARGUMENT');
    const r2 = await fetch(api('/files/mkdir'), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'path=/ok-not' });
    await expectError(r2, 'INVALID_ARGUMENT');
    await unharmed();
  });

  it('answers unknown routes and methods with a JSON 404', async () => {
    const e = await expectError(await fetch(api('/nope')), 'NOT_FOUND');
    expect(e.message).toContain('/api/v1/nope');
    await expectError(await fetch(`${base}/nope`), 'NOT_FOUND');
    await expectError(await fetch(api('/files/stat?path=/'), { method: 'POST' }), 'NOT_FOUND');
    await expectError(await fetch(api('/files/delete'), { method: 'GET' }), 'NOT_FOUND');
    await expectError(await fetch(`${base}/api/v2/files/stat?path=/`), 'NOT_FOUND');
    await unharmed();
  });

  it('maps service errors to the catalog', async () => {
    await expectError(await fetch(api('/files/stat?path=/missing')), 'NOT_FOUND');
    await expectError(await fetch(api('/files/content?path=/missing')), 'NOT_FOUND');
    await expectError(await fetch(api('/files/content?path=/keep')), 'IS_A_DIRECTORY');
    await expectError(await fetch(api('/files/stat?path=relative')), 'INVALID_ARGUMENT');
    await expectError(await fetch(api('/snapshots/not-an-id')), 'INVALID_ARGUMENT');
    await expectError(await fetch(api(`/snapshots/${'x'.repeat(500)}`)), 'INVALID_ARGUMENT');
    await expectError(await fetch(api('/sessions/sess_0000000000000000')), 'NOT_FOUND');
    await expectError(await fetch(api('/files/content?path=/.nexus/x'), { method: 'PUT', body: 'x' }), 'NOT_PERMITTED');
    await expectError(await postJson('/files/mkdir', '{"path":"/keep"}'), 'ALREADY_EXISTS');
    await expectError(await postJson('/files/delete', '{"path":"/keep"}'), 'NOT_EMPTY');
    const ws = await postJson('/workspaces', '{"path":"/ok-ws"}');
    expect(ws.status).toBe(201);
    await expectError(await postJson('/workspaces', '{"path":"/ok-ws"}'), 'ALREADY_EXISTS');
    expect((await fetch(api('/workspaces?path=/ok-ws'), { method: 'DELETE' })).status).toBe(204);
    await unharmed();
  });

  it('checks the X-Nexus-Session header', async () => {
    await expectError(await fetch(api('/files/stat?path=/'), { headers: { 'x-nexus-session': 'bogus' } }), 'INVALID_ARGUMENT');
    await expectError(await fetch(api('/files/stat?path=/'), { headers: { 'x-nexus-session': 'sess_0000000000000000' } }), 'NOT_FOUND');
    const put = await fetch(api('/files/content?path=/keep/precious.txt'), { method: 'PUT', headers: { 'x-nexus-session': 'sess_0000000000000000' }, body: 'overwritten' });
    await expectError(put, 'NOT_FOUND');
    // A real one tags the write.
    const s = (await (await postJson('/sessions', '{"agent_id":"hdr"}')).json()) as { session_id: string };
    const w = await fetch(api('/files/content?path=/ok-tagged.txt'), { method: 'PUT', headers: { 'x-nexus-session': s.session_id }, body: 'tagged' });
    expect(w.status).toBe(200);
    const files = (await (await fetch(api(`/sessions/${s.session_id}/files`))).json()) as { files: { path: string }[] };
    expect(files.files.map((f) => f.path)).toEqual(['/ok-tagged.txt']);
    expect((await postJson(`/sessions/${s.session_id}/revert`, '{}')).status).toBe(200);
    expect((await fetch(api(`/sessions/${s.session_id}/end`), { method: 'POST' })).status).toBe(200);
    await unharmed();
  });

  it('refuses a JSON body over the limit with 413', async () => {
    const big = JSON.stringify({ path: '/ok-not', metadata: { pad: 'x'.repeat(BODY_LIMIT + 10) } });
    const e = await expectError(await postJson('/workspaces', big), 'PAYLOAD_TOO_LARGE');
    expect(e.message).toMatch(/too large/i);
    await unharmed();
  });

  it('refuses an upload over the limit with 413 and leaves the file as it was', async () => {
    const tooBig = Buffer.alloc(MAX_FILE + 1, 7);
    // Declared size over the limit: refused before a byte is written.
    await expectError(await fetch(api('/files/content?path=/keep/precious.txt'), { method: 'PUT', body: tooBig }), 'PAYLOAD_TOO_LARGE');
    await expectError(await fetch(api('/files/content?path=/keep/new.bin'), { method: 'PUT', body: tooBig }), 'PAYLOAD_TOO_LARGE');
    await unharmed();

    // Chunked, no declared size: refused once the limit is passed, and undone.
    for (const target of ['/keep/precious.txt', '/keep/new.bin']) {
      const r = await fetch(api(`/files/content?path=${target}`), {
        method: 'PUT',
        body: new ReadableStream({
          start(c) {
            for (let i = 0; i < 24; i++) c.enqueue(new Uint8Array(64 * 1024).fill(i));
            c.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
      await expectError(r, 'PAYLOAD_TOO_LARGE');
      await unharmed();
    }
    // Exactly at the limit is fine.
    const ok = await fetch(api('/files/content?path=/ok-limit.bin'), { method: 'PUT', body: Buffer.alloc(MAX_FILE, 1) });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { size: number }).size).toBe(MAX_FILE);
    await unharmed();
  });

  it('answers a refused upload before its body when the client waits for 100-continue', async () => {
    const { port } = new URL(base);
    const put = (path: string, size: number, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; body: string; continued: boolean }>((resolve, reject) => {
        let continued = false;
        const req = http.request({
          host: '127.0.0.1', port, method: 'PUT', path: `/api/v1/files/content?path=${encodeURIComponent(path)}`,
          headers: { expect: '100-continue', 'content-length': String(size), ...auth(), ...headers },
        }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => {
            resolve({ status: res.statusCode!, body, continued });
            req.destroy();
          });
        });
        req.on('continue', () => {
          continued = true;
          req.end(Buffer.alloc(size, 3));
        });
        req.on('error', (e) => { if (!continued) reject(e); });
        req.flushHeaders();
      });
    const tooBig = await put('/keep/precious.txt', 8 * MAX_FILE);
    expect(tooBig).toMatchObject({ status: 413, continued: false });
    expect(JSON.parse(tooBig.body)).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
    const badSession = await put('/keep/precious.txt', MAX_FILE, { 'x-nexus-session': 'sess_0000000000000000' });
    expect(badSession).toMatchObject({ status: 404, continued: false });
    const noParent = await put('/no/parent.bin', MAX_FILE);
    expect(noParent).toMatchObject({ status: 404, continued: false });
    const ok = await put('/ok-continue.bin', MAX_FILE);
    expect(ok).toMatchObject({ status: 200, continued: true });
    await unharmed();
  });

  it('answers a refused upload whose body is sent anyway (no Expect)', async () => {
    // Several MiB, more than socket buffers hold: closing at once would reset the connection and lose the answer.
    const body = Buffer.alloc(6 * MAX_FILE, 5);
    const chunked = () =>
      new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < 6; i++) c.enqueue(body.subarray(i * MAX_FILE, (i + 1) * MAX_FILE));
          c.close();
        },
      });
    const r1 = await fetch(api('/files/content?path=/keep/precious.txt'), {
      method: 'PUT', headers: { 'x-nexus-session': 'sess_0000000000000000' }, body: chunked(), duplex: 'half',
    } as RequestInit);
    await expectError(r1, 'NOT_FOUND');
    const r2 = await fetch(api('/files/content?path=/keep/precious.txt'), { method: 'PUT', body });
    await expectError(r2, 'PAYLOAD_TOO_LARGE');
    await unharmed();
  });

  it('undoes an upload whose client goes away part way', async () => {
    const { port } = new URL(base);
    for (const target of ['/keep/precious.txt', '/keep/partial.bin']) {
      await new Promise<void>((resolve) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: `/api/v1/files/content?path=${encodeURIComponent(target)}`, headers: { 'content-length': String(800 * 1024), ...auth() } });
        req.on('error', () => resolve());
        req.write(Buffer.alloc(400 * 1024, 9), () => setTimeout(() => {
          req.destroy();
          resolve();
        }, 100));
      });
      // The server notices the broken connection, releases the handle and undoes the write.
      for (let i = 0; ; i++) {
        try {
          await unharmed();
          break;
        } catch (e) {
          if (i > 50) throw e;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  });

  it('never interleaves two uploads to the same path', async () => {
    // A long one that starts first and a short one that ends last: were their
    // pieces interleaved, the file would be the short one over the long one.
    const slow = (byte: number, pieces: number, delayMs: number) =>
      new ReadableStream<Uint8Array>({
        async pull(c) {
          if (pieces-- === 0) return c.close();
          await new Promise((r) => setTimeout(r, delayMs));
          c.enqueue(new Uint8Array(32 * 1024).fill(byte));
        },
      });
    const put = (byte: number, pieces: number, delayMs: number) =>
      fetch(api('/files/content?path=/ok-race.bin'), { method: 'PUT', body: slow(byte, pieces, delayMs), duplex: 'half' } as RequestInit);
    const long = put(0x61, 24, 5);
    await new Promise((r) => setTimeout(r, 20));
    const short = put(0x62, 8, 25);
    expect((await long).status).toBe(200);
    expect((await short).status).toBe(200);
    const got = Buffer.from(await (await fetch(api('/files/content?path=/ok-race.bin'))).arrayBuffer());
    const whole = (b: Buffer, byte: number, n: number) => b.length === n && b.every((x) => x === byte);
    expect(whole(got, 0x61, 24 * 32 * 1024) || whole(got, 0x62, 8 * 32 * 1024)).toBe(true);
    await unharmed();
  });

  it('streams file content both ways with the right headers', async () => {
    const data = Buffer.alloc(MAX_FILE - 5);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    const put = await fetch(api('/files/content?path=/ok-dir/stream.bin&parents=true'), { method: 'PUT', body: data, headers: { 'content-type': 'image/png' } });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ path: '/ok-dir/stream.bin', type: 'file', size: data.length });
    const get = await fetch(api('/files/content?path=/ok-dir/stream.bin'));
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('application/octet-stream');
    expect(get.headers.get('content-length')).toBe(String(data.length));
    expect(Buffer.compare(Buffer.from(await get.arrayBuffer()), data)).toBe(0);
    const head = await fetch(api('/files/content?path=/ok-dir/stream.bin'), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(data.length));
    await unharmed();
  });

  it('keeps secrets and bodies out of the access log', async () => {
    // A wrong key (refused) and the real one (served): neither is logged, nor any body.
    expect((await fetch(api('/files/stat?path=/keep'), { headers: { authorization: 'Bearer sekrit-token-123' } })).status).toBe(401);
    await fetch(api('/files/content?path=/ok-log.txt'), { method: 'PUT', headers: { authorization: 'Bearer sekrit-token-123' }, body: 'body-secret-456' });
    expect((await fetch(api('/files/content?path=/ok-log.txt'), { method: 'PUT', body: 'body-secret-456' })).status).toBe(200);
    await postJson('/sessions', JSON.stringify({ agent_id: 'json-secret-789' }), { authorization: 'Bearer sekrit-token-123' });
    expect((await postJson('/sessions', JSON.stringify({ agent_id: 'json-secret-789' }))).status).toBe(201);
    await new Promise((r) => setTimeout(r, 100));
    const log = server.stderr();
    expect(log).toContain('"url":"/api/v1/files/stat?path=/keep"');
    expect(log).toMatch(/"status":200/);
    expect(log).toMatch(/"status":401/);
    expect(log).toContain('"principal":"user:admin"');
    expect(log).not.toContain('sekrit');
    expect(log).not.toContain(server.adminKey.slice(20)); // the admin key's secret part
    expect(log).not.toContain('body-secret');
    expect(log).not.toContain('json-secret');
    expect(log.toLowerCase()).not.toContain('authorization');
  });
});

describe('buildApp in process', () => {
  const ctx = contextFor({ uid: 1000, gid: 1000, groups: [] }, { principal: 'test' });

  it('turns an unexpected error into a 500 INTERNAL without leaking its message, and logs it', async () => {
    const logged: unknown[] = [];
    const fakeLogger = {
      level: 'info', info() {}, warn() {}, debug() {}, trace() {}, fatal() {}, silent() {},
      error(...args: unknown[]) { logged.push(args); },
      child() { return fakeLogger; },
    };
    const services = { files: { stat: async () => { throw new TypeError('secret internal detail at /srv/data'); } } } as unknown as Services;
    const app = await buildApp({ services, authenticate: () => ({ ctx }), logger: fakeLogger as never });
    const r = await app.inject({ method: 'GET', url: '/api/v1/files/stat?path=/x' });
    expect(r.statusCode).toBe(500);
    const body = r.json() as { error: { code: string; message: string; details: { request_id: string } } };
    expect(body.error.code).toBe('INTERNAL');
    expect(body.error.message).not.toContain('secret');
    expect(body.error.details.request_id).toBeTruthy();
    expect(JSON.stringify(logged)).toContain('unexpected error');
    expect(((logged[0] as unknown[])[0] as { err: Error }).err.message).toContain('secret internal detail'); // the log has it all
    await app.close();
  });

  it('runs the authentication hook on API routes, not on /health', async () => {
    const services = { files: { stat: async () => ({ path: '/' }) } } as unknown as Services;
    const app = await buildApp({
      services,
      logger: false,
      authenticate: (req) => {
        if (req.headers.authorization !== 'Bearer good') throw new NexusError('UNAUTHENTICATED');
        return { ctx };
      },
    });
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    const denied = await app.inject({ url: '/api/v1/files/stat?path=/' });
    expect(denied.statusCode).toBe(401);
    expect(denied.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    const ok = await app.inject({ url: '/api/v1/files/stat?path=/', headers: { authorization: 'Bearer good' } });
    expect(ok.statusCode).toBe(200);
    await app.close();
  });

  it('checks ReBAC grants on streamed file content as the services do', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nx-http-acl-'));
    const opened = await openServices(dir);
    try {
      const { services } = opened;
      await services.files.write('/tenants/a/mine.txt', Buffer.from('a'), ROOT_CONTEXT, { parents: true });
      await services.files.write('/tenants/b/secret.txt', Buffer.from('b'), ROOT_CONTEXT, { parents: true });
      await services.access.createGrant({ subjectType: 'user', subjectId: 'alice', relation: 'editor', objectType: 'file', objectId: '/tenants/a' }, ROOT_CONTEXT);
      const alice = { ...ROOT_CONTEXT, principal: 'user:alice', access: { subjectType: 'user', subjectId: 'alice', isAdmin: false } };
      const app = await buildApp({ services, logger: false, authenticate: () => ({ ctx: alice }) });
      const content = (path: string) => `/api/v1/files/content?path=${encodeURIComponent(path)}`;

      expect((await app.inject({ method: 'GET', url: content('/tenants/a/mine.txt') })).body).toBe('a');
      const put = await app.inject({ method: 'PUT', url: content('/tenants/a/new.txt'), payload: Buffer.from('new') });
      expect(put.statusCode).toBe(200);

      for (const method of ['GET', 'HEAD'] as const) {
        const r = await app.inject({ method, url: content('/tenants/b/secret.txt') });
        expect(r.statusCode).toBe(403);
      }
      const denied = await app.inject({ method: 'GET', url: content('/tenants/b/secret.txt') });
      expect(denied.json()).toMatchObject({ error: { code: 'PERMISSION_DENIED' } });
      const overwrite = await app.inject({ method: 'PUT', url: content('/tenants/b/secret.txt'), payload: Buffer.from('pwned') });
      expect(overwrite.statusCode).toBe(403);
      const create = await app.inject({ method: 'PUT', url: content('/tenants/b/planted.txt'), payload: Buffer.from('x') });
      expect(create.statusCode).toBe(403);
      expect((await services.files.read('/tenants/b/secret.txt', ROOT_CONTEXT)).toString()).toBe('b');
      expect(await services.files.exists('/tenants/b/planted.txt', ROOT_CONTEXT)).toBe(false);
      await app.close();
    } finally {
      await opened.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Attacks and bad input over real HTTP, against a server process that
 * authenticates API keys (test/server/server-child.mjs over dist/).
 *
 * Two tenants: alice@acme owns /tenants/acme, bob@beta owns /tenants/beta.
 * Before the server starts, the data directory gets (through the engine, as
 * an admin would place them: the HTTP API has no symlink call) symlinks inside
 * acme that lead into beta. Every attack is answered with a catalog error in
 * the JSON shape `{ error: { code, message } }` with a 4xx status, never a
 * 500, never another tenant's bytes; afterwards every other byte is as it was
 * and /health answers.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERRORS } from '../../src/errors.js';
import { ROOT_CONTEXT } from '../../src/engine/credentials.js';
import { openServices } from '../../src/services/services.js';
import { connect, type NexusClient } from '../../src/sdk/index.js';
import { buildForChildren, startServerProcess, type ServerProcess } from './server-process.js';

const BODY_LIMIT = 64 * 1024;
const MAX_FILE = 1 << 20;
const IDLE_MS = 1500;

const ACME_OWN = 'acme own data';
const BETA_SECRET = 'beta secret: do not leak';
const ALICE = 'user:alice@acme.com';
const BOB = 'user:bob@beta.com';

let dataDir: string;
let server: ServerProcess;
let base: string;
let admin: NexusClient;
const keys: Record<string, { api_key: string; key_id: string }> = {};
/** A key made to expire one second after it was made, and whether it worked at first. */
let expiring: { api_key: string; madeAt: number; firstStatus: number };
/** Every secret handed out, to look for in the data directory. */
const secrets: string[] = [];
/** The tree as it was after setup (admin's recursive listing of /tenants). */
let treeBefore: string[];

type Code = keyof typeof ERRORS;
type ErrorBody = { code: string; message: string; details?: Record<string, unknown> };

const api = (p: string) => `${base}/api/v1${p}`;
const q = (p: string) => encodeURIComponent(p);
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** fetch as the holder of `key` (no key: null). */
function as(key: string | null, url: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (key !== null) headers.set('authorization', `Bearer ${key}`);
  return fetch(url, { ...init, headers });
}
const alice = (url: string, init?: RequestInit) => as(keys.alice!.api_key, url, init);
const bob = (url: string, init?: RequestInit) => as(keys.bob!.api_key, url, init);
const postJson = (key: string | null, p: string, body: unknown) =>
  as(key, api(p), { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

/** The response is the catalog error `code`, in the JSON error shape, with its status. */
async function expectError(r: Response, code: Code): Promise<ErrorBody> {
  const text = await r.text();
  let body: { error?: ErrorBody };
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`not JSON (HTTP ${r.status}): ${text.slice(0, 200)}`);
  }
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  expect(body.error?.code, `${r.status} ${text}`).toBe(code);
  expect(r.status).toBe(ERRORS[code].status);
  expect(typeof body.error!.message).toBe('string');
  expect(body.error!.message.length).toBeGreaterThan(0);
  expect(text).not.toContain(BETA_SECRET);
  return body.error!;
}

/** Refused with one of `codes` (a JSON catalog error, 4xx), and nothing of beta's in the answer. */
async function expectRefused(r: Response, codes: Code[], what: string): Promise<ErrorBody> {
  const text = await r.text();
  expect(r.status, `${what}: ${text}`).toBeGreaterThanOrEqual(400);
  expect(r.status, `${what}: ${text}`).toBeLessThan(500);
  expect(text, what).not.toContain(BETA_SECRET);
  let body: { error?: ErrorBody };
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${what}: not JSON (HTTP ${r.status}): ${text.slice(0, 200)}`);
  }
  expect(codes, `${what}: ${text}`).toContain(body.error?.code);
  expect(r.status, what).toBe(ERRORS[body.error!.code as Code].status);
  return body.error!;
}

/** Everything else is as it was: /health answers, both tenants' data are intact, nothing was planted. */
async function intact(): Promise<void> {
  const h = await fetch(`${base}/health`);
  expect(h.status).toBe(200);
  expect(await h.json()).toMatchObject({ status: 'ok' });
  expect(await admin.readText('/tenants/beta/data/secret.txt')).toBe(BETA_SECRET);
  expect(await admin.readText('/tenants/acme/data/own.txt')).toBe(ACME_OWN);
  const now = (await admin.list('/tenants', { recursive: true })).map((f) => f.path).filter((p) => !p.includes('/ok-')).sort();
  expect(now).toEqual(treeBefore);
  expect((await admin.workspace.list()).map((w) => w.path).sort()).toEqual(['/tenants/acme', '/tenants/beta']);
}

/** Raw bytes to the server, for requests fetch() will not send; the status and body of its answer. */
function raw(request: string | Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { port } = new URL(base);
    const sock = net.connect(Number(port), '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (b) => chunks.push(b));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    sock.end(request);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  buildForChildren();
  dataDir = await mkdtemp(join(tmpdir(), 'nx-attacks-'));

  // The tenants' trees, with links an admin placed in acme that lead into beta.
  const opened = await openServices(dataDir);
  try {
    const { services } = opened;
    const root = ROOT_CONTEXT;
    await services.workspaces.create('/tenants/acme', { tenant: 'acme' }, root);
    await services.workspaces.create('/tenants/beta', { tenant: 'beta' }, root);
    await services.files.mkdir('/tenants/acme/data', root);
    await services.files.mkdir('/tenants/beta/data', root);
    await services.files.write('/tenants/acme/data/own.txt', Buffer.from(ACME_OWN), root);
    await services.files.write('/tenants/beta/data/secret.txt', Buffer.from(BETA_SECRET), root);
    const e = services.engine;
    await e.symlink('/tenants/beta/data/secret.txt', '/tenants/acme/data/abs-link', root);
    await e.symlink('../../beta/data/secret.txt', '/tenants/acme/data/rel-link', root);
    await e.symlink('/tenants/acme/data/abs-link', '/tenants/acme/data/chain-link', root);
    await e.symlink('/tenants/beta/data', '/tenants/acme/beta-dir', root);
    await e.symlink('../../..', '/tenants/acme/data/root-link', root);
    await e.symlink('/tenants/acme/data/own.txt', '/tenants/acme/data/ok-link', root);
    await e.symlink('/tenants/beta/data/secret.txt', '/tenants/acme/data/ok-removable-link', root);
    await e.symlink('/tenants/acme/data/loop-b', '/tenants/acme/data/loop-a', root);
    await e.symlink('/tenants/acme/data/loop-a', '/tenants/acme/data/loop-b', root);
  } finally {
    await opened.close();
  }

  server = await startServerProcess(dataDir, { bodyLimit: BODY_LIMIT, maxFileBytes: MAX_FILE, bodyIdleTimeoutMs: IDLE_MS });
  base = server.url;
  secrets.push(server.adminKey);
  admin = await connect({ remoteUrl: base, apiKey: server.adminKey });

  // The admin grants each tenant's owner its tree and makes their keys, over HTTP.
  await admin.rebacCreate('user', 'alice@acme.com', 'owner', 'file', '/tenants/acme');
  await admin.rebacCreate('user', 'bob@beta.com', 'owner', 'file', '/tenants/beta');
  for (const [name, subject] of [['alice', ALICE], ['bob', BOB]] as const) {
    const k = await admin.keys.create({ subject });
    keys[name] = k;
    secrets.push(k.api_key);
  }
  const ex = await admin.keys.create({ subject: ALICE, expiresIn: '1s' });
  const madeAt = Date.now();
  secrets.push(ex.api_key);
  const first = await as(ex.api_key, api(`/files/stat?path=${q('/tenants/acme/data/own.txt')}`));
  expiring = { api_key: ex.api_key, madeAt, firstStatus: first.status };

  treeBefore = (await admin.list('/tenants', { recursive: true })).map((f) => f.path).filter((p) => !p.includes('/ok-')).sort();
});

afterAll(async () => {
  if (process.env.SHOW_SERVER_LOG && server) process.stderr.write(server.stderr().split('\n').filter((l) => !l.includes('"msg":"request"')).join('\n'));
  await admin?.close();
  if (server) expect(await server.stop()).toBe(0);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('attacks on a server with API keys', () => {
  afterEach(intact);

  it('sanity: each tenant reads and writes its own tree', async () => {
    expect(await (await alice(api(`/files/content?path=${q('/tenants/acme/data/own.txt')}`))).text()).toBe(ACME_OWN);
    expect(await (await bob(api(`/files/content?path=${q('/tenants/beta/data/secret.txt')}`))).text()).toBe(BETA_SECRET);
    const w = await alice(api(`/files/content?path=${q('/tenants/acme/data/ok-alice.txt')}`), { method: 'PUT', body: 'mine' });
    expect(w.status).toBe(200);
    // The symlink that stays inside acme works.
    expect(await (await alice(api(`/files/content?path=${q('/tenants/acme/data/ok-link')}`))).text()).toBe(ACME_OWN);
  });

  it('no key: 401 UNAUTHENTICATED in the JSON error shape, on every kind of route; /health needs none', async () => {
    expect((await fetch(`${base}/health`)).status).toBe(200);
    const own = q('/tenants/acme/data/own.txt');
    const attempts: [string, RequestInit][] = [
      [`/files/stat?path=${own}`, {}],
      [`/files/content?path=${own}`, {}],
      [`/files/content?path=${own}`, { method: 'HEAD' }],
      [`/files/content?path=${own}`, { method: 'PUT', body: 'overwritten' }],
      [`/files/list?path=/&recursive=true`, {}],
      ['/files/mkdir', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"path":"/planted"}' }],
      ['/files/delete', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"path":"/tenants","recursive":true}' }],
      ['/workspaces', {}],
      ['/keys', {}],
      ['/keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"subject":"user:evil","admin":true}' }],
      ['/rebac', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ subject_type: 'user', subject_id: 'evil', relation: 'owner', object_type: 'file', object_id: '/' }) }],
      ['/snapshots', {}],
      ['/sessions', {}],
    ];
    for (const [p, init] of attempts) {
      const r = await as(null, api(p), init);
      if (init.method === 'HEAD') {
        expect(r.status).toBe(401);
        continue;
      }
      const e = await expectError(r, 'UNAUTHENTICATED');
      expect(e.message).toBe('Missing or invalid API key');
    }
  });

  it('malformed keys: 401, all with the same answer', async () => {
    const real = keys.alice!.api_key;
    const values = [
      'Bearer',
      'Bearer ',
      'Bearer nx_',
      'Bearer nx_zz_zz',
      `Bearer ${real.toUpperCase()}`,
      `Bearer ${real}x`,
      `Bearer ${real.slice(0, -1)}`,
      `Bearer ${real.replace('nx_', 'nx-')}`,
      `Bearer ${real.slice(0, 19)}`,
      `Bearer ${real.slice(0, 20)} ${real.slice(20)}`,
      `Basic ${Buffer.from(`alice:${real}`).toString('base64')}`,
      `Token ${real}`,
      real, // no scheme
      `Bearer ${'a'.repeat(8000)}`,
      `Bearer nx_${'0'.repeat(16)}_${'0'.repeat(48)}`,
      "Bearer nx_' OR 1=1 --",
    ];
    const messages = new Set<string>();
    for (const v of values) {
      const r = await fetch(api(`/files/stat?path=${q('/tenants/acme/data/own.txt')}`), { headers: { authorization: v } });
      messages.add((await expectError(r, 'UNAUTHENTICATED')).message);
    }
    // A key in the query string or a cookie is not a key.
    await expectError(await fetch(api(`/files/stat?path=/&api_key=${real}`)), 'UNAUTHENTICATED');
    await expectError(await fetch(api('/files/stat?path=/'), { headers: { cookie: `api_key=${real}`, 'x-api-key': real } }), 'UNAUTHENTICATED');
    expect([...messages]).toEqual(['Missing or invalid API key']);
  });

  it('the wrong secret for a real key id (even the admin key\'s id) is refused like an unknown key', async () => {
    const wrong = (key: string) => `${key.slice(0, 20)}${randomBytes(24).toString('hex')}`;
    const unknown = `nx_${randomBytes(8).toString('hex')}_${randomBytes(24).toString('hex')}`;
    const answers: string[] = [];
    for (const key of [wrong(keys.alice!.api_key), wrong(server.adminKey), unknown]) {
      const r = await as(key, api('/keys'));
      answers.push(JSON.stringify(await expectError(r, 'UNAUTHENTICATED')));
      await expectError(await as(key, api(`/files/content?path=${q('/tenants/beta/data/secret.txt')}`)), 'UNAUTHENTICATED');
      await expectError(await as(key, api(`/files/content?path=${q('/tenants/acme/data/own.txt')}`), { method: 'PUT', body: 'pwned' }), 'UNAUTHENTICATED');
    }
    // Known id or not, the same answer: no oracle for which key ids exist.
    expect(new Set(answers).size).toBe(1);
  });

  it('a revoked key is refused at once, tenant or admin', async () => {
    const tenantKey = await admin.keys.create({ subject: ALICE });
    const adminKey = await admin.keys.create({ subject: 'user:second-admin', admin: true });
    secrets.push(tenantKey.api_key, adminKey.api_key);
    const own = api(`/files/content?path=${q('/tenants/acme/data/own.txt')}`);
    expect((await as(tenantKey.api_key, own)).status).toBe(200);
    expect((await as(adminKey.api_key, api('/keys'))).status).toBe(200);

    // Revoked over HTTP, by id and by the key itself.
    expect((await as(server.adminKey, api(`/keys/${tenantKey.key_id}`), { method: 'DELETE' })).status).toBe(204);
    expect((await as(server.adminKey, api(`/keys/${q(adminKey.api_key)}`), { method: 'DELETE' })).status).toBe(204);
    await expectError(await as(tenantKey.api_key, own), 'UNAUTHENTICATED');
    await expectError(await as(adminKey.api_key, api('/keys')), 'UNAUTHENTICATED');
    await expectError(await as(adminKey.api_key, api('/keys'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"subject":"user:revenant","admin":true}' }), 'UNAUTHENTICATED');
    // Revoking again, or a key that never was, changes nothing and breaks nothing.
    const again = await as(server.adminKey, api(`/keys/${tenantKey.key_id}`), { method: 'DELETE' });
    expect([204, 404]).toContain(again.status);
    const listed = await admin.keys.list();
    expect(listed.find((k) => k.key_id === tenantKey.key_id)!.revoked_at).not.toBeNull();
    expect(listed.some((k) => k.subject === 'user:revenant')).toBe(false);
  });

  it('an expired key is refused (expires_in 1s)', async () => {
    expect(expiring.firstStatus).toBe(200);
    const wait = expiring.madeAt + 1100 - Date.now();
    if (wait > 0) await sleep(wait);
    await expectError(await as(expiring.api_key, api(`/files/stat?path=${q('/tenants/acme/data/own.txt')}`)), 'UNAUTHENTICATED');
    await expectError(await as(expiring.api_key, api(`/files/content?path=${q('/tenants/acme/data/ok-late.txt')}`), { method: 'PUT', body: 'late' }), 'UNAUTHENTICATED');
    const listed = (await admin.keys.list()).find((k) => k.key_id === expiring.api_key.slice(3, 19))!;
    expect(Date.parse(listed.expires_at!)).toBeLessThanOrEqual(Date.now());
  });

  it('key lifetimes that are not lifetimes are refused up front (400), never a 500 or a key that never expires', async () => {
    for (const expires_in of ['0', '-1s', '1y', '1.5h', '', 'forever', '99999999999999999999d']) {
      const r = await postJson(server.adminKey, '/keys', { subject: ALICE, expires_in });
      expect(r.status, `expires_in ${JSON.stringify(expires_in)}: ${await r.clone().text()}`).toBe(400);
      await expectError(r, 'INVALID_ARGUMENT');
    }
  });

  it("another tenant's key: 403 PERMISSION_DENIED in the JSON error shape, for every operation on the other tree", async () => {
    const secret = '/tenants/beta/data/secret.txt';
    const denied = async (r: Response, what: string) => {
      if (r.status === 403 && r.headers.get('content-length') === '0') return; // HEAD
      const e = await expectError(r, 'PERMISSION_DENIED');
      expect(e.message, what).toMatch(/^Permission denied/);
    };
    await denied(await alice(api(`/files/content?path=${q(secret)}`)), 'read');
    expect((await alice(api(`/files/content?path=${q(secret)}`), { method: 'HEAD' })).status).toBe(403);
    await denied(await alice(api(`/files/stat?path=${q(secret)}`)), 'stat');
    await denied(await alice(api(`/files/exists?path=${q(secret)}`)), 'exists');
    await denied(await alice(api(`/files/exists?path=${q('/tenants/beta/data/nothing-here')}`)), 'exists (absent)');
    await denied(await alice(api(`/files/list?path=${q('/tenants/beta')}&recursive=true`)), 'list');
    await denied(await alice(api(`/files/content?path=${q(secret)}`), { method: 'PUT', body: 'pwned' }), 'overwrite');
    await denied(await alice(api(`/files/content?path=${q('/tenants/beta/data/planted.txt')}`), { method: 'PUT', body: 'x' }), 'create');
    await denied(await postJson(keys.alice!.api_key, '/files/mkdir', { path: '/tenants/beta/data/evil' }), 'mkdir');
    await denied(await postJson(keys.alice!.api_key, '/files/delete', { path: secret }), 'delete');
    await denied(await postJson(keys.alice!.api_key, '/files/delete', { path: '/tenants/beta', recursive: true }), 'delete tree');
    await denied(await postJson(keys.alice!.api_key, '/files/delete', { path: '/tenants', recursive: true }), 'delete parent');
    await denied(await postJson(keys.alice!.api_key, '/files/delete', { path: '/', recursive: true }), 'delete root');
    await denied(await alice(api(`/workspaces/info?path=${q('/tenants/beta')}`)), 'workspace info');
    await denied(await alice(api(`/workspaces?path=${q('/tenants/beta')}`), { method: 'DELETE' }), 'workspace delete');
    await denied(await postJson(keys.alice!.api_key, '/workspaces', { path: '/tenants/beta/inner' }), 'workspace create inside');
    await denied(await postJson(keys.alice!.api_key, '/workspaces', { path: '/tenants/gamma' }), 'workspace create beside');
    await denied(await postJson(keys.alice!.api_key, '/snapshots', { path: '/tenants/beta' }), 'snapshot');

    // Beta's snapshots: neither listed, nor read, diffed, restored or deleted.
    const snap = await admin.workspace.snapshot('/tenants/beta', { name: 'beta-backup' });
    expect((await (await alice(api('/snapshots'))).json() as { snapshots: { snapshot_id: string }[] }).snapshots.map((s) => s.snapshot_id)).not.toContain(snap);
    await denied(await alice(api(`/snapshots/${snap}`)), 'snapshot get');
    await denied(await alice(api(`/snapshots/${snap}/diff`)), 'snapshot diff');
    await denied(await postJson(keys.alice!.api_key, `/snapshots/${snap}/restore`, { path: '/tenants/beta' }), 'restore');
    await denied(await alice(api(`/snapshots/${snap}`), { method: 'DELETE' }), 'snapshot delete');
    const r = await postJson(keys.alice!.api_key, `/snapshots/${snap}/restore`, { path: '/tenants/acme' }); // beta's snapshot onto acme
    await expectRefused(r, ['PERMISSION_DENIED', 'INVALID_ARGUMENT'], 'restore beta onto acme');
    await admin.workspace.deleteSnapshot(snap);

    // No escalation: no keys, no grants outside what alice owns, no admin.
    await denied(await alice(api('/keys')), 'list keys');
    await denied(await postJson(keys.alice!.api_key, '/keys', { subject: ALICE, admin: true }), 'make an admin key');
    await denied(await postJson(keys.alice!.api_key, '/keys', { subject: 'user:alice-friend@acme.com' }), 'make any key');
    await denied(await alice(api(`/keys/${keys.bob!.key_id}`), { method: 'DELETE' }), "revoke bob's key");
    for (const object_id of ['/tenants/beta', '/tenants', '/', '/tenants/beta/data/secret.txt']) {
      await denied(await postJson(keys.alice!.api_key, '/rebac', { subject_type: 'user', subject_id: 'alice@acme.com', relation: 'viewer', object_type: 'file', object_id }), `grant on ${object_id}`);
    }
    await denied(await postJson(keys.alice!.api_key, '/rebac/delete', { subject_type: 'user', subject_id: 'bob@beta.com', relation: 'owner', object_type: 'file', object_id: '/tenants/beta' }), "delete bob's grant");
    await denied(await postJson(keys.alice!.api_key, '/rebac', { subject_type: 'user', subject_id: 'alice@acme.com', relation: 'owner', object_type: 'tenant', object_id: 'beta' }), 'non-file grant');

    // What alice sees: her own tree, the way to it, her own grant; nothing of beta.
    const listing = (await (await alice(api('/files/list?path=/&recursive=true'))).json()) as { files: { path: string }[] };
    const seen = listing.files.map((f) => f.path);
    expect(seen).toContain('/tenants/acme/data/own.txt');
    expect(seen.filter((p) => !p.startsWith('/tenants/acme'))).toEqual(['/tenants']);
    const ws = (await (await alice(api('/workspaces'))).json()) as { workspaces: { path: string }[] };
    expect(ws.workspaces.map((w) => w.path)).toEqual(['/tenants/acme']);
    const grants = (await (await alice(api('/rebac'))).json()) as { grants: { subject_id: string }[] };
    expect(grants.grants.map((g) => g.subject_id)).toEqual(['alice@acme.com']);
    const byObject = (await (await alice(api(`/rebac?object_type=file&object_id=${q('/tenants/beta')}`))).json()) as { grants: unknown[] };
    expect(byObject.grants).toEqual([]);
  });

  it("another tenant's agent session: not shown, not ended, not reverted, and not usable to tag writes", async () => {
    const s = (await (await postJson(keys.bob!.api_key, '/sessions', { agent_id: 'bob-agent' })).json()) as { session_id: string };
    const w = await bob(api(`/files/content?path=${q('/tenants/beta/data/ok-by-session.txt')}`), { method: 'PUT', headers: { 'x-nexus-session': s.session_id }, body: 'bob agent' });
    expect(w.status).toBe(200);
    const aliceSessions = (await (await alice(api('/sessions'))).json()) as { sessions: { session_id: string }[] };
    expect(aliceSessions.sessions.map((x) => x.session_id)).not.toContain(s.session_id);
    await expectError(await alice(api(`/sessions/${s.session_id}`)), 'PERMISSION_DENIED');
    await expectError(await alice(api(`/sessions/${s.session_id}/files`)), 'PERMISSION_DENIED');
    await expectError(await alice(api(`/sessions/${s.session_id}/diff`)), 'PERMISSION_DENIED');
    await expectError(await postJson(keys.alice!.api_key, `/sessions/${s.session_id}/revert`, { force: true }), 'PERMISSION_DENIED');
    await expectError(await alice(api(`/sessions/${s.session_id}/end`), { method: 'POST' }), 'PERMISSION_DENIED');

    // Tagging her own writes with bob's session would put them in bob's
    // session (its files, its diff, its revert, which bob could then not
    // complete: he has no access to acme). Refused like acting on it.
    const tagged = await alice(api(`/files/content?path=${q('/tenants/acme/data/ok-tagged.txt')}`), { method: 'PUT', headers: { 'x-nexus-session': s.session_id }, body: 'alice' });
    const taggedMkdir = await as(keys.alice!.api_key, api('/files/mkdir'), {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-nexus-session': s.session_id }, body: JSON.stringify({ path: '/tenants/acme/ok-tagged-dir' }),
    });
    const bobFiles = await bob(api(`/sessions/${s.session_id}/files`));
    const bobFilesText = await bobFiles.text();
    const bobRevert = await postJson(keys.bob!.api_key, `/sessions/${s.session_id}/revert`, {});
    const bobRevertText = await bobRevert.text();
    // Clean up whatever got through, so the other checks stay meaningful.
    await admin.delete('/tenants/acme/data/ok-tagged.txt').catch(() => {});
    await admin.delete('/tenants/acme/ok-tagged-dir').catch(() => {});
    await admin.delete('/tenants/beta/data/ok-by-session.txt').catch(() => {});
    await expectError(tagged, 'PERMISSION_DENIED');
    await expectError(taggedMkdir, 'PERMISSION_DENIED');
    // Bob's session is his alone: he lists and reverts it.
    expect(bobFiles.status, bobFilesText).toBe(200);
    expect((JSON.parse(bobFilesText) as { files: { path: string }[] }).files.map((f) => f.path)).toEqual(['/tenants/beta/data/ok-by-session.txt']);
    expect(bobRevert.status, bobRevertText).toBe(200);
  });

  it('path traversal: .., %2e%2e, doubled slashes, NUL bytes, over-long paths: 400 or 403, never a 500, never beta\'s data', async () => {
    const secret = '/tenants/beta/data/secret.txt';
    // [query string as sent, acceptable codes]; NOT_FOUND marks names that only look like traversal
    const traversals: [string, Code[]][] = [
      [q('/tenants/acme/../beta/data/secret.txt'), ['PERMISSION_DENIED']],
      ['/tenants/acme/../beta/data/secret.txt', ['PERMISSION_DENIED']],
      ['/tenants/acme/%2e%2e/beta/data/secret.txt', ['PERMISSION_DENIED']],
      ['/tenants/acme/%2E%2E/beta/data/secret.txt', ['PERMISSION_DENIED']],
      ['%2ftenants%2facme%2f%2e%2e%2fbeta%2fdata%2fsecret.txt', ['PERMISSION_DENIED']],
      ['/tenants/acme/./../beta/./data/secret.txt', ['PERMISSION_DENIED']],
      ['/tenants/acme/data/../../beta/data/secret.txt', ['PERMISSION_DENIED']],
      ['/tenants/acme/../../../../../tenants/beta/data/secret.txt', ['PERMISSION_DENIED']],
      ['/../../tenants/beta/data/secret.txt', ['PERMISSION_DENIED']],
      ['//tenants//beta//data//secret.txt', ['PERMISSION_DENIED']],
      ['/tenants/acme//..//beta//data/secret.txt', ['PERMISSION_DENIED']],
      ['///tenants/acme/..///beta/data/secret.txt/', ['PERMISSION_DENIED']],
      ['/tenants/beta/data/secret.txt/.', ['PERMISSION_DENIED']],
      // Names that only look like traversal are names: inside acme they are simply absent.
      ['/tenants/acme/%252e%252e/beta/data/secret.txt', ['NOT_FOUND']],
      ['/tenants/acme/..%5cbeta%5cdata%5csecret.txt', ['NOT_FOUND']],
      ['/tenants/acme%5c..%5cbeta%5cdata%5csecret.txt', ['PERMISSION_DENIED']],
      ['/tenants/acme/%E2%80%A5/beta/data/secret.txt', ['NOT_FOUND']],
      ['/tenants/acme/%C0%AE%C0%AE/beta/data/secret.txt', ['NOT_FOUND', 'INVALID_ARGUMENT']],
      // NUL anywhere: refused as a bad path before anything else.
      ['/tenants/acme/data/own.txt%00', ['INVALID_ARGUMENT']],
      ['/tenants/acme/data/own.txt%00/../../../beta/data/secret.txt', ['INVALID_ARGUMENT']],
      [`${q(secret)}%00.txt`, ['INVALID_ARGUMENT', 'PERMISSION_DENIED']],
      // Not absolute.
      ['tenants/beta/data/secret.txt', ['INVALID_ARGUMENT']],
      ['..%2ftenants%2fbeta%2fdata%2fsecret.txt', ['INVALID_ARGUMENT']],
      ['', ['NOT_FOUND', 'INVALID_ARGUMENT']],
      // Over-long: a path over PATH_MAX, a name over NAME_MAX.
      [`/tenants/acme/${'d/'.repeat(2100)}x`, ['NAME_TOO_LONG']],
      [`/tenants/acme/data/${'n'.repeat(300)}`, ['NAME_TOO_LONG']],
      [`/tenants/acme/${'../'.repeat(1400)}tenants/beta/data/secret.txt`, ['NAME_TOO_LONG']],
    ];
    for (const [qs, codes] of traversals) {
      for (const route of ['/files/content', '/files/stat', '/files/exists']) {
        const r = await alice(api(`${route}?path=${qs}`));
        if (route === '/files/exists' && codes.includes('NOT_FOUND') && r.status === 200) {
          expect(await r.json(), qs).toEqual({ exists: false }); // an absent name inside acme
          continue;
        }
        await expectRefused(r, codes, `GET ${route}?path=${qs.slice(0, 80)}`);
      }
      const put = await alice(api(`/files/content?path=${qs}`), { method: 'PUT', body: 'planted' });
      if (codes.includes('NOT_FOUND') && put.status === 200) {
        // A literal name, written where it says: inside acme, and nowhere else.
        const info = (await put.json()) as { path: string };
        expect(info.path.startsWith('/tenants/acme/'), info.path).toBe(true);
        await admin.delete(info.path);
        continue;
      }
      await expectRefused(put, [...codes, 'NOT_FOUND'], `PUT ?path=${qs.slice(0, 80)}`);
    }

    // The same in JSON bodies.
    const bodies: [string, unknown][] = [
      ['/files/mkdir', { path: '/tenants/acme/../beta/evil' }],
      ['/files/mkdir', { path: '//tenants//beta//evil' }],
      ['/files/mkdir', { path: '/tenants/acme/../beta/evil', parents: true }],
      ['/files/delete', { path: '/tenants/acme/../beta/data/secret.txt' }],
      ['/files/rename', { from: '/tenants/acme/data/own.txt', to: '/tenants/acme/../beta/data/own.txt' }],
      ['/files/rename', { from: '/tenants/acme/../beta/data/secret.txt', to: '/tenants/acme/data/stolen.txt' }],
      ['/workspaces', { path: '/tenants/acme/../beta/ws' }],
      ['/snapshots', { path: '/tenants/acme/..' }],
      ['/rebac', { subject_type: 'user', subject_id: 'alice@acme.com', relation: 'owner', object_type: 'file', object_id: '/tenants/acme/../beta' }],
      ['/rebac', { subject_type: 'user', subject_id: 'alice@acme.com', relation: 'owner', object_type: 'file', object_id: '/tenants/acme/../../' }],
      ['/files/mkdir', { path: '/tenants/acme/evil\u0000/../../beta/evil' }],
      ['/files/mkdir', { path: `/tenants/acme/${'x'.repeat(5000)}` }],
    ];
    for (const [route, body] of bodies) {
      await expectRefused(await postJson(keys.alice!.api_key, route, body), ['PERMISSION_DENIED', 'INVALID_ARGUMENT', 'NAME_TOO_LONG'], `${route} ${JSON.stringify(body).slice(0, 80)}`);
    }

    // Traversal in the URL path itself: no route outside the API, nothing served from disk.
    for (const target of [
      '/api/v1/files/../keys',
      '/api/v1/%2e%2e/v1/keys',
      '/api/v1/snapshots/..%2f..%2fkeys',
      '/api/v1/sessions/%2e%2e',
      '/api/v1/keys/..%2f..%2fhealth',
      '/../../../etc/passwd',
      '/api/v1/files/content/../../../../etc/passwd',
    ]) {
      const r = await raw(`GET ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.alice!.api_key}\r\nConnection: close\r\n\r\n`);
      expect(r.status, target).toBeGreaterThanOrEqual(400);
      expect(r.status, target).toBeLessThan(500);
      expect(r.body).not.toContain('root:');
      expect(JSON.parse(r.body)).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
    }
  });

  it('malformed requests the HTTP parser refuses (raw NUL, URL over 16 KiB, broken request line) get a JSON 400', async () => {
    const key = keys.alice!.api_key;
    const cases = [
      Buffer.concat([Buffer.from('GET /api/v1/files/stat?path=/tenants/acme/data/own.txt'), Buffer.from([0]), Buffer.from(`/../../beta HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nConnection: close\r\n\r\n`)]),
      `GET /api/v1/files/stat?path=/tenants/acme/${'a/'.repeat(10_000)} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nConnection: close\r\n\r\n`,
      `GET /api/v1/files/stat?path=/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nX-Pad: ${'p'.repeat(20_000)}\r\nConnection: close\r\n\r\n`,
      'GARBAGE\r\n\r\n',
      `GET /api/v1/files/stat?path=/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nAuthorization: Bearer ${key}\r\n\r\n0\r\n\r\n`,
      `GET /api/v1/files/stat?path=/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nBad Header Name: y\r\nConnection: close\r\n\r\n`,
    ];
    for (const c of cases) {
      const r = await raw(c);
      const label = String(c).slice(0, 60);
      expect(r.status, label).toBe(400);
      expect(JSON.parse(r.body), label).toMatchObject({ error: { code: 'INVALID_ARGUMENT', message: expect.any(String) } });
    }
    // A URL just under the header limit is parsed, and refused as a path that is too long.
    const long = await alice(api(`/files/stat?path=/tenants/acme/${'a/'.repeat(3000)}`));
    await expectError(long, 'NAME_TOO_LONG');
  });

  it('symlinks inside acme that lead into beta are refused to acme: read, write, list, snapshot; the one that stays inside works', async () => {
    const refused = async (r: Response, what: string) => {
      await expectRefused(r, ['PERMISSION_DENIED'], what);
    };
    for (const link of ['/tenants/acme/data/abs-link', '/tenants/acme/data/rel-link', '/tenants/acme/data/chain-link', '/tenants/acme/beta-dir/secret.txt', '/tenants/acme/data/root-link/tenants/beta/data/secret.txt']) {
      await refused(await alice(api(`/files/content?path=${q(link)}`)), `read ${link}`);
      expect((await alice(api(`/files/content?path=${q(link)}`), { method: 'HEAD' })).status, `HEAD ${link}`).toBe(403);
      await refused(await alice(api(`/files/stat?path=${q(link)}`)), `stat ${link}`);
      await refused(await alice(api(`/files/content?path=${q(link)}`), { method: 'PUT', body: 'pwned through a link' }), `write ${link}`);
    }
    // Through the directory link: no listing, no new files or directories, no snapshot, no restore target.
    await refused(await alice(api(`/files/list?path=${q('/tenants/acme/beta-dir')}`)), 'list beta-dir');
    await refused(await alice(api(`/files/list?path=${q('/tenants/acme/data/root-link')}&recursive=true`)), 'list root-link');
    await refused(await alice(api(`/files/content?path=${q('/tenants/acme/beta-dir/planted.txt')}`), { method: 'PUT', body: 'x' }), 'create through beta-dir');
    await refused(await postJson(keys.alice!.api_key, '/files/mkdir', { path: '/tenants/acme/beta-dir/evil' }), 'mkdir through beta-dir');
    await refused(await postJson(keys.alice!.api_key, '/snapshots', { path: '/tenants/acme/beta-dir' }), 'snapshot beta-dir');
    await refused(await postJson(keys.alice!.api_key, '/files/delete', { path: '/tenants/acme/beta-dir/secret.txt' }), 'delete through beta-dir');
    await refused(await postJson(keys.alice!.api_key, '/workspaces', { path: '/tenants/acme/beta-dir/ws' }), 'workspace through beta-dir');
    // A symlink loop is a 400, not a hang or a 500.
    await expectRefused(await alice(api(`/files/content?path=${q('/tenants/acme/data/loop-a')}`)), ['SYMLINK_LOOP'], 'loop');

    // Her listing shows the links as links, and does not follow them into beta.
    const listing = (await (await alice(api(`/files/list?path=${q('/tenants/acme')}&recursive=true`))).json()) as { files: { path: string; type: string }[] };
    const types = Object.fromEntries(listing.files.map((f) => [f.path, f.type]));
    expect(types['/tenants/acme/beta-dir']).toBe('symlink');
    expect(types['/tenants/acme/data/abs-link']).toBe('symlink');
    expect(listing.files.every((f) => f.path.startsWith('/tenants/acme/'))).toBe(true);
    expect(Object.keys(types).some((p) => p.includes('secret'))).toBe(false);

    // The link that stays in acme is fine; a snapshot of acme holds the links, not beta's bytes.
    expect(await (await alice(api(`/files/content?path=${q('/tenants/acme/data/ok-link')}`))).text()).toBe(ACME_OWN);
    const snap = (await (await postJson(keys.alice!.api_key, '/snapshots', { path: '/tenants/acme', name: 'with-links' })).json()) as { snapshot_id: string; total_bytes: number };
    expect(snap.snapshot_id).toMatch(/^snap_/);
    expect(snap.total_bytes).toBeLessThan(BETA_SECRET.length + ACME_OWN.length + 200);
    expect((await alice(api(`/snapshots/${snap.snapshot_id}`), { method: 'DELETE' })).status).toBe(204);

    // Bob, who may read the secret, gets nothing through acme's links either: acme is not his.
    await refused(await bob(api(`/files/content?path=${q('/tenants/acme/data/abs-link')}`)), 'bob through acme');
  });

  it('missing directories are not created through a link into beta (mkdir -p, write with parents)', async () => {
    const attempts: [string, () => Promise<Response>][] = [
      ['mkdir -p beta-dir/evil/deeper', () => postJson(keys.alice!.api_key, '/files/mkdir', { path: '/tenants/acme/beta-dir/evil/deeper', parents: true })],
      ['mkdir -p root-link/tenants/beta/data/evil2/deeper', () => postJson(keys.alice!.api_key, '/files/mkdir', { path: '/tenants/acme/data/root-link/tenants/beta/data/evil2/deeper', parents: true })],
      ['PUT parents=true beta-dir/evil3/planted.txt', () => alice(api(`/files/content?path=${q('/tenants/acme/beta-dir/evil3/planted.txt')}&parents=true`), { method: 'PUT', body: 'planted' })],
      // A workspace makes its directory with its parents too (alice owns acme, so she may make workspaces there).
      ['workspace beta-dir/evil4/ws', () => postJson(keys.alice!.api_key, '/workspaces', { path: '/tenants/acme/beta-dir/evil4/ws' })],
    ];
    const outcomes: string[] = [];
    for (const [what, attempt] of attempts) {
      const r = await attempt();
      outcomes.push(`${what}: ${r.status} ${(await r.text()).slice(0, 120)}`);
    }
    // Whatever got into beta goes again, so one finding does not spoil the checks after it.
    const planted = (await admin.list('/tenants/beta', { recursive: true })).map((f) => f.path).filter((p) => /evil|planted/.test(p));
    const strayWorkspaces = (await admin.workspace.list()).map((w) => w.path).filter((p) => p.includes('evil'));
    for (const w of strayWorkspaces) await admin.workspace.delete(w).catch(() => {});
    for (const p of ['/tenants/beta/data/evil', '/tenants/beta/data/evil2', '/tenants/beta/data/evil3', '/tenants/beta/data/evil4']) await admin.delete(p, { recursive: true }).catch(() => {});
    expect(strayWorkspaces, 'workspaces registered through the link').toEqual([]);
    expect(planted, `created inside beta; answers were:\n${outcomes.join("\n")}`).toEqual([]);
    // Refused: for access (403), or, for the workspace, because workspaces cannot nest (400).
    for (const o of outcomes) expect(o).toMatch(/: (403 \{"error":\{"code":"PERMISSION_DENIED"|400 \{"error":\{"code":"INVALID_ARGUMENT")/);
  });

  it("acme may remove a link in its own tree, even one that leads into beta (it is acme's entry, not beta's file)", async () => {
    // unlink does not follow the link: removing it touches nothing of beta's.
    const link = '/tenants/acme/data/ok-removable-link';
    const r = await postJson(keys.alice!.api_key, '/files/delete', { path: link });
    const body = await r.text();
    expect(await admin.readText('/tenants/beta/data/secret.txt')).toBe(BETA_SECRET);
    expect(r.status, body).toBe(204);
    expect(await admin.exists(link)).toBe(false);
    // Nor is moving the link (not its target) inside acme a move into beta.
    const moved = await postJson(keys.alice!.api_key, '/files/rename', { from: '/tenants/acme/data/abs-link', to: '/tenants/acme/data/ok-moved-link' });
    const movedBody = await moved.text();
    if (moved.status === 204) await admin.rename('/tenants/acme/data/ok-moved-link', '/tenants/acme/data/abs-link');
    expect(moved.status, movedBody).toBe(204);
  });

  it('hard links and renames into (or out of) another tenant are refused', async () => {
    const rename = (from: string, to: string) => postJson(keys.alice!.api_key, '/files/rename', { from, to });
    const cases: [string, string][] = [
      ['/tenants/acme/data/own.txt', '/tenants/beta/data/stolen.txt'], // push into beta
      ['/tenants/acme/data/own.txt', '/tenants/beta/data/secret.txt'], // replace beta's file
      ['/tenants/beta/data/secret.txt', '/tenants/acme/data/stolen.txt'], // pull out of beta
      ['/tenants/acme/data', '/tenants/beta/acme-data'], // a directory
      ['/tenants/acme', '/tenants/beta/acme'], // the whole tenant
      ['/tenants/beta', '/tenants/acme/beta'],
      ['/tenants/acme', '/tenants/acme-renamed'], // its own root, out from under its grant
      ['/tenants/acme/beta-dir/secret.txt', '/tenants/acme/data/stolen.txt'], // through a directory link
      ['/tenants/acme/data/own.txt', '/tenants/acme/beta-dir/own.txt'],
      ['/tenants/acme/data/own.txt', '/tenants/acme/data/root-link/tenants/beta/data/own.txt'],
    ];
    for (const [from, to] of cases) {
      await expectRefused(await rename(from, to), ['PERMISSION_DENIED'], `rename ${from} -> ${to}`);
    }
    // Hard links and symlinks cannot be made over HTTP at all.
    for (const route of ['/files/link', '/files/symlink', '/files/hardlink']) {
      const r = await postJson(keys.alice!.api_key, route, { existing: '/tenants/beta/data/secret.txt', new: '/tenants/acme/data/hl', target: '/tenants/beta/data/secret.txt', path: '/tenants/acme/data/sl' });
      await expectError(r, 'NOT_FOUND');
    }
    // A rename inside acme works.
    expect((await rename('/tenants/acme/data/own.txt', '/tenants/acme/data/ok-moved.txt')).status).toBe(204);
    expect((await rename('/tenants/acme/data/ok-moved.txt', '/tenants/acme/data/own.txt')).status).toBe(204);
  });

  it('malformed JSON, wrong types, missing fields, odd content types: 400, from a tenant key too', async () => {
    const k = keys.alice!.api_key;
    for (const body of ['{"path":', '{path: "/tenants/acme/x"}', 'null', '"just a string"', '[1,2', '\u0000', '{"path":"/tenants/acme/x",}', '{"__proto__":{"admin":true},"path":"/tenants/acme/ok-p"}', '{"constructor":{"prototype":{"admin":true}},"path":"/tenants/acme/ok-c"}']) {
      await expectError(await postJson(k, '/files/mkdir', body), 'INVALID_ARGUMENT');
    }
    // Deep nesting: refused, not a stack overflow.
    await expectError(await postJson(k, '/files/mkdir', `${'['.repeat(30_000)}${']'.repeat(30_000)}`), 'INVALID_ARGUMENT');
    await expectError(await postJson(k, '/workspaces', `{"path":"/tenants/acme/ok-deep","metadata":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`), 'INVALID_ARGUMENT');
    const e65 = await expectError(await postJson(k, '/sessions', `{"agent_id":"deep","metadata":${'{"a":'.repeat(64)}1${'}'.repeat(64)}}`), 'INVALID_ARGUMENT');
    expect(e65.message).toMatch(/nested deeper than 64/);
    expect((await postJson(k, '/sessions', `{"agent_id":"deep","metadata":${'{"a":'.repeat(50)}1${'}'.repeat(50)}}`)).status).toBe(201); // reasonable nesting is fine
    const wrongTypes: [string, unknown][] = [
      ['/files/mkdir', { path: 42 }],
      ['/files/mkdir', { path: ['/tenants/acme/x'] }],
      ['/files/mkdir', { path: { $ne: null } }],
      ['/files/mkdir', { path: '/tenants/acme/ok-t', parents: 'yes' }],
      ['/files/rename', { from: '/tenants/acme/data/own.txt', to: null }],
      ['/rebac', { subject_type: 'user', subject_id: ['alice@acme.com'], relation: 'owner', object_type: 'file', object_id: '/tenants/beta' }],
      ['/rebac', { subject_type: 'user', subject_id: 'alice@acme.com', relation: 'owner', object_type: 'file', object_id: '/tenants/beta', extra: 1 }],
      ['/keys', { subject: 5 }],
      ['/keys', { subject: ALICE, admin: 'true' }],
      ['/sessions', { agent_id: 'a', metadata: 'x' }],
    ];
    for (const [route, body] of wrongTypes) {
      await expectRefused(await postJson(k, route, body), ['INVALID_ARGUMENT'], `${route} ${JSON.stringify(body)}`);
    }
    for (const [route, body] of [['/files/mkdir', {}], ['/files/rename', { from: '/tenants/acme/data/own.txt' }], ['/rebac', { subject_type: 'user' }], ['/keys', {}], ['/sessions', {}]] as const) {
      await expectError(await postJson(k, route, body), 'INVALID_ARGUMENT');
    }
    await expectError(await alice(api('/files/mkdir'), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"path":"/tenants/acme/ok-x"}' }), 'INVALID_ARGUMENT');
    await expectError(await alice(api('/files/stat?path=/tenants/acme&path=/tenants/beta')), 'INVALID_ARGUMENT');
    await expectError(await alice(api('/files/list?path=/tenants/acme&recursive=yes')), 'INVALID_ARGUMENT');
    await expectError(await alice(api('/files/stat?path[]=/tenants/beta')), 'INVALID_ARGUMENT');
    await expectError(await alice(api('/snapshots/not-an-id')), 'INVALID_ARGUMENT');
    await expectRefused(await alice(api(`/keys/${'x'.repeat(5000)}`), { method: 'DELETE' }), ['PERMISSION_DENIED', 'INVALID_ARGUMENT'], 'long key id');
    // Without a key the answer is 401 whatever the body: authentication comes first.
    await expectError(await postJson(null, '/files/mkdir', '{"path":'), 'UNAUTHENTICATED');
  });

  it('a body over the limit: 413, with or without a key the server is fine', async () => {
    const k = keys.alice!.api_key;
    const bigJson = JSON.stringify({ path: '/tenants/acme/ok-big', metadata: { pad: 'x'.repeat(BODY_LIMIT + 10) } });
    const e = await expectError(await postJson(k, '/workspaces', bigJson), 'PAYLOAD_TOO_LARGE');
    expect(e.message).toMatch(/too large/i);
    // An upload over the file limit, declared or streamed.
    const tooBig = Buffer.alloc(MAX_FILE + 1, 7);
    await expectError(await alice(api(`/files/content?path=${q('/tenants/acme/data/own.txt')}`), { method: 'PUT', body: tooBig }), 'PAYLOAD_TOO_LARGE');
    const streamed = await alice(api(`/files/content?path=${q('/tenants/acme/data/own.txt')}`), {
      method: 'PUT',
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 20; i++) c.enqueue(new Uint8Array(64 * 1024).fill(i));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    await expectError(streamed, 'PAYLOAD_TOO_LARGE');
    // Another tenant's big upload is refused for access, not read.
    await expectError(await alice(api(`/files/content?path=${q('/tenants/beta/data/secret.txt')}`), { method: 'PUT', body: Buffer.alloc(MAX_FILE - 1, 1) }), 'PERMISSION_DENIED');
    // Without a key: 401 (the body is not parsed), the connection and the server fine.
    await expectError(await postJson(null, '/workspaces', bigJson), 'UNAUTHENTICATED');
    await expectError(await as(null, api(`/files/content?path=${q('/tenants/acme/data/own.txt')}`), { method: 'PUT', body: tooBig }), 'UNAUTHENTICATED');
  });

  it('a slow client (its body trickles in) does not hold up anyone else', async () => {
    const { port } = new URL(base);
    const pieces = 20;
    const piece = Buffer.alloc(1000, 0x61);
    let finished = false;
    const slowUpload = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port, method: 'PUT', path: `/api/v1/files/content?path=${q('/tenants/acme/data/ok-slow.bin')}`,
        headers: { 'content-length': String(pieces * piece.length), ...bearer(keys.alice!.api_key) },
      }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => {
          finished = true;
          resolve({ status: res.statusCode!, body });
        });
      });
      req.on('error', reject);
      let sent = 0;
      const tick = () => {
        req.write(piece);
        if (++sent === pieces) req.end();
        else setTimeout(tick, 100);
      };
      tick();
    });
    // A slow JSON body too, and a client that sends half its headers and stops.
    const slowJson = new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({ path: '/tenants/acme/ok-slow-dir' });
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/v1/files/mkdir', headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...bearer(keys.alice!.api_key) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      let i = 0;
      const tick = () => {
        req.write(body[i]!);
        if (++i === body.length) req.end();
        else setTimeout(tick, 1000 / body.length);
      };
      tick();
    });
    const halfHeaders = Array.from({ length: 20 }, () => {
      const s = net.connect(Number(port), '127.0.0.1');
      s.on('error', () => {});
      s.write(`GET /api/v1/files/stat?path=/ HTTP/1.1\r\nHost: x\r\nAuthor`);
      return s;
    });

    // Meanwhile bob is served promptly, many times over, while the slow upload is still coming in.
    const latencies: number[] = [];
    let servedDuringUpload = 0;
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const r = await bob(api(`/files/content?path=${q('/tenants/beta/data/secret.txt')}`));
      expect(await r.text()).toBe(BETA_SECRET);
      latencies.push(performance.now() - t0);
      if (!finished) servedDuringUpload++;
      await sleep(20);
    }
    expect(servedDuringUpload).toBeGreaterThanOrEqual(5);
    expect(Math.max(...latencies)).toBeLessThan(1000);

    const up = await slowUpload;
    expect(up.status, up.body).toBe(200);
    expect(JSON.parse(up.body)).toMatchObject({ size: pieces * piece.length });
    expect(await slowJson).toBe(201);
    const back = Buffer.from(await (await alice(api(`/files/content?path=${q('/tenants/acme/data/ok-slow.bin')}`))).arrayBuffer());
    expect(back.equals(Buffer.concat(Array(pieces).fill(piece)))).toBe(true);
    for (const s of halfHeaders) s.destroy();
  });

  it('a slow but steady upload is not dropped, nor is one that waits behind it for its turn longer than the idle timeout', async () => {
    const { port } = new URL(base);
    const target = '/tenants/acme/data/ok-steady.bin';
    const pieces = 8;
    const steady = new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: `/api/v1/files/content?path=${q(target)}`, headers: { 'content-length': String(pieces), ...bearer(keys.alice!.api_key) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      });
      req.on('error', reject);
      let sent = 0;
      const tick = () => {
        req.write('s');
        if (++sent === pieces) req.end();
        else setTimeout(tick, IDLE_MS / 4);
      };
      tick();
    });
    await sleep(100);
    const t0 = performance.now();
    const behind = await alice(api(`/files/content?path=${q(target)}`), { method: 'PUT', body: 'behind' });
    const waited = performance.now() - t0;
    expect(await steady).toBe(200);
    expect(behind.status).toBe(200);
    expect(waited).toBeGreaterThan(IDLE_MS); // it really did wait longer than the limit, and was not dropped
    expect(await (await alice(api(`/files/content?path=${q(target)}`))).text()).toBe('behind');
  });

  it('a client that stalls mid-upload is dropped after the idle timeout: its write undone, the next upload to that path goes through', async () => {
    const { port } = new URL(base);
    const target = '/tenants/acme/data/ok-stalled.bin';
    expect((await alice(api(`/files/content?path=${q(target)}`), { method: 'PUT', body: 'before' })).status).toBe(200);
    const closed = new Promise<number>((resolve) => {
      const t0 = Date.now();
      const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: `/api/v1/files/content?path=${q(target)}`, headers: { 'content-length': '100000', ...bearer(keys.alice!.api_key) } });
      req.on('error', () => resolve(Date.now() - t0));
      req.on('close', () => resolve(Date.now() - t0));
      req.write(Buffer.alloc(40_000, 0x78)); // then nothing more, ever
    });
    // While it stalls, a second upload to the same path waits its turn (uploads never interleave)...
    await sleep(100);
    const second = alice(api(`/files/content?path=${q(target)}`), { method: 'PUT', body: 'after' });
    const ms = await closed;
    expect(ms).toBeGreaterThanOrEqual(IDLE_MS - 200);
    expect(ms).toBeLessThan(IDLE_MS + 3000);
    // ...and goes through once the stalled one is dropped and undone.
    expect((await second).status).toBe(200);
    expect(await (await alice(api(`/files/content?path=${q(target)}`))).text()).toBe('after');

    // A JSON body that stalls is dropped the same way, having changed nothing.
    const json = JSON.stringify({ path: '/tenants/acme/data/ok-never-made' });
    const jsonMs = await new Promise<number>((resolve) => {
      const t0 = Date.now();
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/v1/files/mkdir', headers: { 'content-type': 'application/json', 'content-length': String(json.length), ...bearer(keys.alice!.api_key) } });
      req.on('error', () => resolve(Date.now() - t0));
      req.on('close', () => resolve(Date.now() - t0));
      req.write(json.slice(0, 10));
    });
    expect(jsonMs).toBeGreaterThanOrEqual(IDLE_MS - 200);
    expect(jsonMs).toBeLessThan(IDLE_MS + 3000);
    expect(await admin.exists('/tenants/acme/data/ok-never-made')).toBe(false);
  });
});

describe('rate limit (--rate-limit 5: 5 requests a second per principal, bursts of 10)', () => {
  let rlDir: string;
  let rl: ServerProcess;
  let tenantKey: string;

  beforeAll(async () => {
    rlDir = await mkdtemp(join(tmpdir(), 'nx-ratelimit-'));
    rl = await startServerProcess(rlDir, { rateLimit: 5 });
    const a = await connect({ remoteUrl: rl.url, apiKey: rl.adminKey });
    try {
      await a.mkdir('/t', { parents: true });
      await a.rebacCreate('user', 'carol@t.com', 'owner', 'file', '/t');
      tenantKey = (await a.keys.create({ subject: 'user:carol@t.com' })).api_key;
    } finally {
      await a.close();
    }
    await sleep(2100); // the admin's setup calls came out of its own bucket; let every bucket refill
  });

  afterAll(async () => {
    if (rl) expect(await rl.stop()).toBe(0);
    if (rlDir) await rm(rlDir, { recursive: true, force: true });
  });

  it('answers 429 RATE_LIMITED past the burst, per principal; others and /health are served; it recovers', async () => {
    const url = `${rl.url}/api/v1/files/stat?path=/t`;
    const t0 = performance.now();
    const responses = await Promise.all(Array.from({ length: 30 }, () => as(tenantKey, url)));
    const elapsed = (performance.now() - t0) / 1000;
    const statuses = responses.map((r) => r.status);
    // A burst of 10, then 5 a second for however long the 30 took to arrive.
    const allowed = 10 + Math.ceil(5 * elapsed);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(10);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(allowed);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(30 - allowed);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    const limited = responses.find((r) => r.status === 429)!;
    for (const r of responses) if (r !== limited) await r.arrayBuffer();
    const e = await expectError(limited, 'RATE_LIMITED');
    expect(e.message).toMatch(/5 per second/);

    // Another principal is not limited by carol's flood; /health is not limited at all.
    expect((await as(rl.adminKey, `${rl.url}/api/v1/files/stat?path=/`)).status).toBe(200);
    for (let i = 0; i < 15; i++) expect((await fetch(`${rl.url}/health`)).status).toBe(200);

    // Tokens come back at 5 a second.
    await sleep(450);
    expect((await as(tenantKey, url)).status).toBe(200);
  });

  it('guessing keys is throttled too: failed authentications count against the address', async () => {
    const t0 = performance.now();
    const guesses = await Promise.all(Array.from({ length: 30 }, () => as(`nx_${randomBytes(8).toString('hex')}_${randomBytes(24).toString('hex')}`, `${rl.url}/api/v1/keys`)));
    const allowed = 10 + Math.ceil((5 * (performance.now() - t0)) / 1000);
    const statuses = guesses.map((r) => r.status);
    for (const r of guesses) await expectError(r, r.status === 429 ? 'RATE_LIMITED' : 'UNAUTHENTICATED');
    expect(statuses.filter((s) => s === 401).length).toBeGreaterThanOrEqual(10);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(allowed);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(30 - allowed);
    // A real key is its own principal: still served.
    expect((await as(rl.adminKey, `${rl.url}/api/v1/keys`)).status).toBe(200);
  });
});

describe('keys at rest', () => {
  it('the data directory holds only hashes of the keys: no secret in meta.db (or its WAL), nor in the server log', async () => {
    expect(secrets.length).toBeGreaterThanOrEqual(6);
    const files: string[] = [];
    const walk = async (d: string) => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile()) files.push(p);
      }
    };
    await walk(dataDir);
    const meta = files.filter((f) => /meta\.db/.test(f));
    expect(meta.map((f) => f.slice(dataDir.length + 1))).toContain('meta.db');
    let hashesFound = 0;
    const all = await Promise.all(files.map(async (f) => ({ f, bytes: await readFile(f) })));
    for (const key of secrets) {
      const secret = key.slice(20);
      const hash = createHash('sha256').update(secret).digest('hex');
      for (const { f, bytes } of all) {
        expect(bytes.includes(Buffer.from(secret)), `${f} holds a key's secret`).toBe(false);
        expect(bytes.includes(Buffer.from(secret.toUpperCase())), `${f} holds a key's secret`).toBe(false);
        expect(bytes.includes(Buffer.from(secret, 'hex')), `${f} holds a key's secret (as bytes)`).toBe(false);
        if (bytes.includes(Buffer.from(hash)) || bytes.includes(Buffer.from(hash, 'hex'))) hashesFound++;
      }
      expect(server.stderr()).not.toContain(secret);
    }
    // What is there instead: their SHA-256 (so the look above was in the right place).
    expect(hashesFound).toBeGreaterThanOrEqual(secrets.length);
    expect((await stat(dataDir)).mode & 0o077).toBe(0);
  });
});

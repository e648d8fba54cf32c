/**
 * The seed's "Run the Full Demo", as a user runs it:
 *
 *   ./scripts/init-nexus-with-auth.sh
 *   source .nexus-admin-env
 *   ./examples/cli/workspace_session_demo.sh
 *
 * in a temporary directory (the default ./nexus-data-auth there), on a free
 * port. The server the first script leaves running is killed afterwards,
 * whatever happened.
 */
import { spawn } from 'node:child_process';
import { readFile, stat, mkdtemp, rm, readdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/build.js';
import { buildForChildren } from '../server/server-process.js';

const INIT = join(REPO, 'scripts', 'init-nexus-with-auth.sh');
const DEMO = join(REPO, 'examples', 'cli', 'workspace_session_demo.sh');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    p.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not finish in ${opts.timeoutMs ?? 60_000} ms:\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    p.on('error', reject);
    // 'close', not 'exit': the server the init script starts in the background
    // has its own output file, so the pipes close when the script ends.
    p.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The environment of a user's shell, without any Nexus settings of ours. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of ['NEXUS_URL', 'NEXUS_API_KEY', 'NEXUS_DATA_DIR', 'NEXUS_SESSION', 'NEXUS_ENV_FILE', 'NEXUS_LOG_FILE', 'NEXUS_BIN']) {
    if (!(k in extra)) delete e[k];
  }
  return e;
}

let dir: string;
let port: number;
let serverPid: number | undefined;
let init: Run;

beforeAll(async () => {
  buildForChildren();
  dir = await mkdtemp(join(tmpdir(), 'nx-cli-demo-'));
  port = await freePort();
  init = await run('bash', [INIT], { cwd: dir, env: cleanEnv({ NEXUS_PORT: String(port) }) });
  serverPid = Number(/To stop the server: kill (\d+)/.exec(init.stdout)?.[1]) || undefined;
}, 60_000);

afterAll(async () => {
  if (serverPid && alive(serverPid)) {
    process.kill(serverPid, 'SIGTERM');
    for (let i = 0; i < 100 && alive(serverPid); i++) await new Promise((r) => setTimeout(r, 50));
    if (alive(serverPid)) process.kill(serverPid, 'SIGKILL');
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('scripts/init-nexus-with-auth.sh, then examples/cli/workspace_session_demo.sh', () => {
  let url: string;
  let key: string;

  it('starts nexus serve with authentication on ./nexus-data-auth, makes an admin key, writes .nexus-admin-env (0600) and says how to stop', async () => {
    expect(init.stderr).toBe('');
    expect(init.status).toBe(0);
    expect(serverPid).toBeGreaterThan(0);
    expect(alive(serverPid!)).toBe(true);
    expect(init.stdout).toContain(`at http://127.0.0.1:${port} with API-key authentication (pid ${serverPid})`);
    expect(init.stdout).toContain('source ./.nexus-admin-env');
    expect(init.stdout).toContain(`To stop the server: kill ${serverPid}`);

    const envFile = join(dir, '.nexus-admin-env');
    expect((await stat(envFile)).mode & 0o777).toBe(0o600);
    const text = await readFile(envFile, 'utf8');
    const m = /^export NEXUS_URL=(\S+) NEXUS_API_KEY=(\S+)$/m.exec(text);
    expect(m, text).not.toBeNull();
    [url, key] = [m![1]!, m![2]!];
    expect(url).toBe(`http://127.0.0.1:${port}`);
    expect(key).toMatch(/^nx_[0-9a-f]{16}_[0-9a-f]{48}$/);
    expect(init.stdout).not.toContain(key); // the secret is in the file only

    // The data directory is the fresh default one, with the server's local socket in it.
    const dataDir = join(dir, 'nexus-data-auth');
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect(await readdir(dataDir)).toEqual(expect.arrayContaining(['meta.db', 'nexus.lock', 'nexus.sock']));

    // TCP asks for the key, and the key is an admin's.
    expect((await fetch(`${url}/api/v1/files/stat?path=/`)).status).toBe(401);
    const keys = await fetch(`${url}/api/v1/keys`, { headers: { authorization: `Bearer ${key}` } });
    expect(keys.status).toBe(200);
    expect(((await keys.json()) as { keys: { subject: string; admin: boolean }[] }).keys).toEqual([
      expect.objectContaining({ subject: 'user:admin', admin: true }),
    ]);
  });

  it('the demo, run with the sourced credentials, goes through the seed CLI flow and exits 0', async () => {
    expect(key, 'the init script did not produce a key').toBeTruthy();
    const demo = await run('bash', ['-c', `source ./.nexus-admin-env && exec ${JSON.stringify(DEMO)}`], { cwd: dir, env: cleanEnv() });
    expect(demo.stderr).toBe('');
    expect(demo.status).toBe(0);
    const out = demo.stdout;
    for (const step of ['Create workspace', 'List workspaces', 'Create snapshot', 'Restore snapshot', 'Create agent session', 'List sessions', 'Files the session wrote', 'What the session changed']) {
      expect(out).toContain(`== ${step}`);
    }
    expect(out).toContain('created workspace /workspace/acme-corp');
    const snapshotId = /snapshot (snap_[0-9a-f]{16}) \(daily-backup\)/.exec(out)?.[1];
    const sessionId = /session (sess_[0-9a-f]{16})/.exec(out)?.[1];
    expect(snapshotId, out).toBeDefined();
    expect(sessionId, out).toBeDefined();
    expect(out).toContain(`restored /workspace/acme-corp to ${snapshotId}: 0 created, 1 modified, 1 removed`);
    expect(out).toContain('data.json is {"records": 1000} again');
    expect(out).toContain('A /workspace/acme-corp/memory/conversation.json');
    expect(out).toContain('M /workspace/acme-corp/data.json');

    // What it did is on the server, as the admin sees it.
    const get = async (p: string) => {
      const r = await fetch(`${url}/api/v1${p}`, { headers: { authorization: `Bearer ${key}` } });
      expect(r.status, p).toBe(200);
      return r;
    };
    const snap = (await (await get(`/snapshots/${snapshotId}`)).json()) as { name: string; path: string; file_count: number };
    expect(snap).toMatchObject({ name: 'daily-backup', path: '/workspace/acme-corp', file_count: 1 });
    expect(await (await get(`/files/content?path=${encodeURIComponent('/workspace/acme-corp/data.json')}`)).text()).toBe('{"records": 1001}');
    expect(await (await get(`/files/exists?path=${encodeURIComponent('/workspace/acme-corp/import.log')}`)).json()).toEqual({ exists: false });
    const files = (await (await get(`/sessions/${sessionId}/files`)).json()) as { files: { path: string }[] };
    expect(files.files.map((f) => f.path).sort()).toEqual(['/workspace/acme-corp/data.json', '/workspace/acme-corp/memory/conversation.json']);
    const session = (await (await get(`/sessions/${sessionId}`)).json()) as { agent_id: string; created_by?: string };
    expect(session.agent_id).toBe('gpt-4-agent');
  }, 60_000);

  it('the demo without credentials says what to do, and changes nothing', async () => {
    const r = await run('bash', [DEMO], { cwd: dir, env: cleanEnv() });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/NEXUS_URL.*source \.nexus-admin-env/);
    expect(r.stdout).toBe('');
  });

  it('refuses a data directory that holds data, and a port that is taken, leaving the running server alone', async () => {
    const again = await run('bash', [INIT], { cwd: dir, env: cleanEnv({ NEXUS_PORT: String(port) }) });
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/nexus-data-auth already holds data/);

    const taken = await run('bash', [INIT], { cwd: dir, env: cleanEnv({ NEXUS_PORT: String(port), NEXUS_DATA_DIR: './second', NEXUS_ENV_FILE: './second.env', NEXUS_LOG_FILE: './second.log' }) });
    expect(taken.status).toBe(1);
    expect(taken.stderr).toMatch(/is port \d+ free\?/);
    await expect(stat(join(dir, 'second.env'))).rejects.toMatchObject({ code: 'ENOENT' });

    expect(alive(serverPid!)).toBe(true);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    expect((await fetch(`${url}/api/v1/workspaces`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
  });

  it('keeps the key out of the server log and stores only its hash', async () => {
    const secret = key.slice(20);
    expect(await readFile(join(dir, '.nexus-server.log'), 'utf8')).not.toContain(secret);
    for (const f of await readdir(join(dir, 'nexus-data-auth'))) {
      if (!f.startsWith('meta.db')) continue;
      const bytes = await readFile(join(dir, 'nexus-data-auth', f));
      expect(bytes.includes(Buffer.from(secret)), f).toBe(false);
      expect(bytes.includes(Buffer.from(key)), f).toBe(false);
    }
  });
});

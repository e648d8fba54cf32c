/**
 * The seed document's examples (examples/*.ts), each run through its exported
 * main() against a fresh data directory, with their outcomes checked in the
 * data directory afterwards through a new connection. One example also runs
 * compiled, as a user runs it: `node dist/examples/quickstart.js`.
 *
 * Waiting for issue 5 (nx.rebacCreate, API keys): the multi-tenant example and
 * TenantManager's owner grant. Their tests are written and skipped (named so);
 * two "until issue 5" tests check that those paths refuse up front today and
 * must be deleted, and the skipped ones enabled, when issue 5 lands.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { connect, PermissionError, type NexusClient } from 'nexus';
import { REPO, staleOutputs } from '../helpers/build.js';
import * as quickstart from '../../examples/quickstart.js';
import * as workspaceManagement from '../../examples/workspace-management.js';
import * as multiTenant from '../../examples/multi-tenant.js';
import * as snapshots from '../../examples/snapshots.js';
import * as agentSessions from '../../examples/agent-sessions.js';
import * as saas from '../../examples/saas-tenant-manager.js';
import * as agentMemory from '../../examples/agent-memory-manager.js';
import * as bestPractices from '../../examples/best-practices.js';
import { hasRebac, RebacUnavailableError } from '../../examples/rebac.js';
import { yyyymmdd } from '../../examples/run.js';

const SNAP_ID = /^snap_[0-9a-f]{16}$/;
const SESS_ID = /^sess_[0-9a-f]{16}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

let dataDir: string;
let logged: string[];

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'nx-examples-'));
  logged = [];
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    logged.push(args.map(String).join(' '));
  });
});

afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dataDir, { recursive: true, force: true });
});

/** A new connection to the example's data directory, to check what it left there. */
async function inDataDir<T>(fn: (nx: NexusClient) => Promise<T>): Promise<T> {
  const nx = await connect({ dataDir });
  try {
    return await fn(nx);
  } finally {
    await nx.close();
  }
}

const paths = (xs: { path: string }[]) => xs.map((x) => x.path).sort();
const output = () => logged.join('\n');

describe('quickstart', () => {
  it('creates the workspace, snapshots it, and the restore brings data.json back', async () => {
    const r = await quickstart.main({ dataDir });
    expect(r.workspace).toMatchObject({ path: '/workspace/acme-corp', metadata: { tenant_id: 'acme-123', plan: 'enterprise' } });
    expect(r.workspace.created_at).toMatch(ISO);
    expect(r.snapshotId).toMatch(SNAP_ID);
    expect(r.changes).toEqual({ added: ['/workspace/acme-corp/import.log'], modified: ['/workspace/acme-corp/data.json'], deleted: [] });
    expect(r.data).toBe('{"records": 1000}');
    expect(r.files).toEqual(['/workspace/acme-corp/data.json']);
    expect(r.restore.pre_restore_snapshot_id).toMatch(SNAP_ID);
    expect(output()).toContain(`Created snapshot ${r.snapshotId} of /workspace/acme-corp`);

    await inDataDir(async (nx) => {
      expect(await nx.readText('/workspace/acme-corp/data.json')).toBe('{"records": 1000}');
      expect(await nx.exists('/workspace/acme-corp/import.log')).toBe(false);
      expect((await nx.workspace.info('/workspace/acme-corp')).metadata).toEqual({ tenant_id: 'acme-123', plan: 'enterprise' });
      const snap = await nx.workspace.getSnapshot(r.snapshotId);
      expect(snap).toMatchObject({ path: '/workspace/acme-corp', name: 'daily-backup', file_count: 1, total_bytes: 17, kind: 'manual' });
      // The automatic pre-restore snapshot holds the state the restore replaced.
      const pre = await nx.workspace.getSnapshot(r.restore.pre_restore_snapshot_id);
      expect(pre).toMatchObject({ kind: 'pre-restore', file_count: 2 });
    });
  });
});

describe('workspace-management', () => {
  it('creates a workspace with metadata, lists all, deletes one with its contents', async () => {
    const r = await workspaceManagement.main({ dataDir });
    expect(r.created).toMatchObject({
      path: '/workspace/project-alpha',
      metadata: { project: 'Alpha Initiative', team: 'backend', created_by: 'admin', budget: 50000 },
    });
    expect(paths(r.listed)).toEqual(['/workspace/old-project', '/workspace/project-alpha']);
    expect(paths(r.remaining)).toEqual(['/workspace/project-alpha']);
    expect(r.oldProjectExists).toBe(false);
    expect(output()).toContain('Path: /workspace/project-alpha');
    expect(output()).toContain('Metadata: {"project":"Alpha Initiative","team":"backend","created_by":"admin","budget":50000}');

    await inDataDir(async (nx) => {
      expect(paths(await nx.workspace.list())).toEqual(['/workspace/project-alpha']);
      expect(await nx.exists('/workspace/old-project/notes/todo.md')).toBe(false);
      expect(await nx.exists('/workspace/project-alpha')).toBe(true);
    });
  });
});

describe('snapshots', () => {
  it('snapshots with name and metadata, lists it, and restore undoes the refactor', async () => {
    const r = await snapshots.main({ dataDir });
    expect(r.snapshotId).toMatch(SNAP_ID);
    expect(r.snapshots).toHaveLength(1);
    const original = {
      '/workspace/project/README.md': '# Project\n',
      '/workspace/project/src/app.py': 'def handler(event):\n    return process(event)\n',
      '/workspace/project/src/util.py': 'def process(event):\n    return event\n',
    };
    expect(r.snapshots[0]).toMatchObject({
      snapshot_id: r.snapshotId,
      path: '/workspace/project',
      name: 'before-refactor',
      metadata: { reason: 'Major refactoring planned' },
      file_count: 3,
      total_bytes: Object.values(original).reduce((n, s) => n + Buffer.byteLength(s), 0),
    });
    expect(r.snapshots[0]!.created_at).toMatch(ISO);
    expect(r.filesAfterRestore).toEqual(original); // core.py gone, util.py back, app.py as before
    expect(output()).toContain(`ID: ${r.snapshotId}`);
    expect(output()).toContain('Files: 3');

    await inDataDir(async (nx) => {
      expect(await nx.readText('/workspace/project/src/app.py')).toBe(original['/workspace/project/src/app.py']);
      expect(await nx.exists('/workspace/project/src/core.py')).toBe(false);
      expect(await nx.workspace.diff(r.snapshotId)).toEqual({ added: [], modified: [], deleted: [] });
    });
  });
});

describe('agent-sessions', () => {
  it('tags writes with the session; the session filter and the agent filter return exactly its own', async () => {
    const r = await agentSessions.main({ dataDir });
    expect(r.session.session_id).toMatch(SESS_ID);
    expect(r.session).toMatchObject({ agent_id: 'gpt-4-agent', metadata: { user_id: 'user_123', conversation_id: 'conv_456' }, ended_at: null });
    expect(r.session.metadata.started_at).toMatch(ISO);

    // Explicit context and the enclosing session.context() both tag; notes.md (no session) is left out.
    expect(paths(r.filesInSession)).toEqual(['/agent/memory/conversation.json', '/agent/memory/summary.txt']);
    expect(paths(r.allFiles)).toEqual(['/agent/memory/conversation.json', '/agent/memory/notes.md', '/agent/memory/summary.txt']);

    // Only gpt-4-agent's session, not claude-agent's.
    expect(r.sessions.map((s) => s.session_id)).toEqual([r.session.session_id]);
    expect(r.sessions[0]!.file_count).toBe(2);
    expect(output()).toContain(`Session: ${r.session.session_id}`);
    expect(output()).toContain('Files: 2');

    await inDataDir(async (nx) => {
      expect(paths(await nx.session.files(r.session.session_id))).toEqual(['/agent/memory/conversation.json', '/agent/memory/summary.txt']);
      expect((await nx.session.list()).map((s) => s.agent_id).sort()).toEqual(['claude-agent', 'gpt-4-agent']);
      expect(JSON.parse(await nx.readText('/agent/memory/conversation.json'))).toEqual({ messages: [{ role: 'user', content: 'hi' }] });
    });
  });
});

describe('saas-tenant-manager', () => {
  it('onboards (without the ReBAC step), backs up daily, and restores lost data', async () => {
    const r = await saas.main({ dataDir, grantAccess: false });
    expect(r.tenant.workspacePath).toBe('/tenants/acme-123');
    expect(r.tenant.owner).toBeNull();
    expect(r.tenant.workspace.metadata).toMatchObject({ tenant_id: 'acme-123', company: 'Acme Corp', plan: 'enterprise' });
    expect(r.tenant.workspace.metadata.onboarded_at).toMatch(ISO);
    expect(r.tenant.initialSnapshotId).toMatch(SNAP_ID);
    expect(r.backupId).toMatch(SNAP_ID);
    expect(r.backupId).not.toBe(r.tenant.initialSnapshotId);
    expect(r.customers).toBe('[{"name": "Wile E. Coyote"}]');
    expect(output()).toContain('✅ Tenant Acme Corp onboarded successfully');
    expect(output()).toContain('✅ Restored tenant acme-123');

    await inDataDir(async (nx) => {
      const dirs = (await nx.list('/tenants/acme-123')).filter((f) => f.type === 'directory').map((f) => f.name).sort();
      expect(dirs).toEqual(['data', 'exports', 'logs', 'models']);
      expect(await nx.readText('/tenants/acme-123/data/customers.json')).toBe('[{"name": "Wile E. Coyote"}]');
      const initial = await nx.workspace.getSnapshot(r.tenant.initialSnapshotId);
      expect(initial).toMatchObject({ name: 'initial-setup', metadata: { milestone: 'onboarding complete' }, file_count: 0 });
      const backup = await nx.workspace.getSnapshot(r.backupId);
      expect(backup.name).toMatch(/^daily-\d{8}$/);
      expect(backup.file_count).toBe(1);
    });
  });

  it('dailyBackup names the snapshot after the day; restoreTenant goes back to any backup', async () => {
    await inDataDir(async (nx) => {
      const manager = new saas.TenantManager(nx, { grantAccess: false });
      const t = await manager.onboardTenant('beta-456', 'Beta Inc', 'professional');
      await nx.write(`${t.workspacePath}/data/v.txt`, 'one');
      const monday = await manager.dailyBackup('beta-456', new Date(2025, 0, 6));
      await nx.write(`${t.workspacePath}/data/v.txt`, 'two');
      await manager.dailyBackup('beta-456', new Date(2025, 0, 7));
      await nx.write(`${t.workspacePath}/data/v.txt`, 'three');
      expect((await nx.workspace.getSnapshot(monday)).name).toBe('daily-20250106');
      await manager.restoreTenant('beta-456', monday);
      expect(await nx.readText(`${t.workspacePath}/data/v.txt`)).toBe('one');
      await manager.restoreTenant('beta-456', t.initialSnapshotId);
      expect(await nx.exists(`${t.workspacePath}/data/v.txt`)).toBe(false);
    });
  });

  // Waits for issue 5: nx.rebacCreate. Enable when the SDK has it (and delete the "until issue 5" test below).
  it.skip('grantTenantAdmin: onboarding grants admin@<tenant>.com owner on the workspace (waits for issue 5: nx.rebacCreate)', async () => {
    const r = await saas.main({ dataDir });
    expect(r.tenant.owner).toBe('admin@acme-123.com');
    await inDataDir(async (nx) => {
      expect(hasRebac(nx)).toBe(true);
      // With issue 5's key and check calls: a key for admin@acme-123.com reads
      // /tenants/acme-123/data/customers.json, and is refused /tenants/other-1.
    });
  });
});

describe('agent-memory-manager', () => {
  it('saves a session conversation, checkpoints the session folder, recalls it', async () => {
    const r = await agentMemory.main({ dataDir });
    expect(r.session.session_id).toMatch(SESS_ID);
    expect(r.session.agent_id).toBe('gpt-4-assistant');
    expect(r.sessionPath).toBe(`/agents/gpt-4-assistant/sessions/${r.session.session_id}`);
    expect(r.history.messages).toEqual([
      { role: 'user', content: 'What is Nexus?' },
      { role: 'assistant', content: 'Nexus is an AI-native filesystem...' },
    ]);
    expect(r.history.timestamp).toMatch(ISO);
    expect(r.snapshotId).toMatch(SNAP_ID);
    expect(output()).toContain('Loaded 2 messages');

    await inDataDir(async (nx) => {
      const snap = await nx.workspace.getSnapshot(r.snapshotId);
      expect(snap).toMatchObject({ path: r.sessionPath, name: `session-${r.session.session_id}-checkpoint`, file_count: 1 });
      expect((await nx.session.files(r.session.session_id)).filter((f) => f.type === 'file').map((f) => f.path)).toEqual([`${r.sessionPath}/conversation.json`]);

      // The checkpoint brings a later, overwritten conversation back.
      const agent = await agentMemory.AgentMemoryManager.create(nx, 'gpt-4-assistant');
      await agent.saveConversation(r.session.session_id, [{ role: 'user', content: 'forget everything' }]);
      expect((await agent.recallSession(r.session.session_id)).messages).toHaveLength(1);
      await nx.workspace.restore(r.sessionPath, r.snapshotId);
      expect(await agent.recallSession(r.session.session_id)).toEqual(r.history);
    });
  });
});

describe('best-practices', () => {
  it('the daily snapshot job snapshots every workspace under daily-YYYYMMDD', async () => {
    const before = yyyymmdd();
    const r = await bestPractices.main({ dataDir });
    const after = yyyymmdd();
    expect(paths(r.taken)).toEqual([...bestPractices.GOOD_WORKSPACE_NAMES].sort());
    for (const t of r.taken) expect(t.snapshotId).toMatch(SNAP_ID);
    expect(new Set(r.taken.map((t) => t.snapshotId)).size).toBe(3);
    for (const s of r.snapshots) {
      expect([`daily-${before}`, `daily-${after}`]).toContain(s.name);
      expect(s.file_count).toBe(1);
      expect(s.total_bytes).toBe(Buffer.byteLength(`# ${s.path}\n`));
    }
    await inDataDir(async (nx) => {
      for (const path of bestPractices.GOOD_WORKSPACE_NAMES) expect(await nx.workspace.listSnapshots(path)).toHaveLength(1);
    });
  });

  it('dailySnapshotJob takes nothing when there are no workspaces, and one per workspace otherwise', async () => {
    await inDataDir(async (nx) => {
      expect(await bestPractices.dailySnapshotJob(nx)).toEqual([]);
      await nx.workspace.create('/projects/beta/frontend');
      const taken = await bestPractices.dailySnapshotJob(nx, new Date(2025, 11, 31));
      expect(taken.map((t) => t.path)).toEqual(['/projects/beta/frontend']);
      expect((await nx.workspace.getSnapshot(taken[0]!.snapshotId)).name).toBe('daily-20251231');
    });
  });
});

/**
 * Issue 5 supplies these: `nexus serve` authenticating API keys, an admin key,
 * and a key for each named principal. Until then the skipped test that needs
 * them fails here, loudly, if someone enables it early.
 */
async function serverWithKeys(_dataDir: string, _principals: string[]): Promise<{ url: string; adminKey: string; keys: Record<string, string>; stop(): Promise<void> }> {
  throw new Error('needs issue 5: API-key authentication in the server and a way to create keys');
}

describe.skip('multi-tenant (waits for issue 5: nx.rebacCreate and API keys)', () => {
  it('onboards three tenants with owner grants; a tenant key is refused another tenant; the admin lists every tenant', async () => {
    const tenantAdmin = multiTenant.tenantAdmin(multiTenant.TENANTS[0]!);
    const server = await serverWithKeys(dataDir, [tenantAdmin]);
    try {
      const r = await multiTenant.main({ remoteUrl: server.url, apiKey: server.adminKey, tenantApiKey: server.keys[tenantAdmin]! });
      expect(paths(r.workspaces)).toEqual(['/tenants/acme-123', '/tenants/beta-456', '/tenants/gamma-789']);
      expect(r.workspaces[0]!.metadata).toEqual({ id: 'acme-123', name: 'Acme Corp', plan: 'enterprise' });
      expect(r.grants.map((g) => [g.subjectId, g.relation, g.objectId])).toEqual([
        ['admin@tenant-acme-123.com', 'owner', '/tenants/acme-123'],
        ['admin@tenant-beta-456.com', 'owner', '/tenants/beta-456'],
        ['admin@tenant-gamma-789.com', 'owner', '/tenants/gamma-789'],
      ]);
      expect(r.tenantWrite.path).toBe('/tenants/acme-123/data/records.json');
      expect(r.denied).toBeInstanceOf(PermissionError);
      expect(output()).toContain('Access denied - tenant isolation working!');
      expect(r.listings['/tenants/acme-123']!.filter((f) => f.type === 'file').map((f) => f.path)).toEqual(['/tenants/acme-123/data/records.json']);
      expect(r.listings['/tenants/beta-456']!.filter((f) => f.type === 'file').map((f) => f.path)).toEqual(['/tenants/beta-456/data/records.json']);
      expect(r.listings['/tenants/gamma-789']!.map((f) => f.name).sort()).toEqual(['data', 'exports', 'models']);
    } finally {
      await server.stop();
    }
  });
});

// Tripwires: true today, false once issue 5 lands. Then delete them and enable the skipped tests above.
describe('until issue 5: the examples that grant access refuse up front, changing nothing', () => {
  it('TenantManager.onboardTenant with grants throws RebacUnavailableError before creating the workspace', async () => {
    await inDataDir(async (nx) => {
      expect(hasRebac(nx)).toBe(false);
      await expect(new saas.TenantManager(nx).onboardTenant('acme-123', 'Acme Corp', 'enterprise')).rejects.toBeInstanceOf(RebacUnavailableError);
      expect(await nx.workspace.list()).toEqual([]);
      expect(await nx.exists('/tenants')).toBe(false);
    });
  });

  it('multi-tenant main throws RebacUnavailableError before onboarding anyone', async () => {
    await expect(multiTenant.main({ dataDir, tenantApiKey: 'not-checked-before-the-grant-call' })).rejects.toBeInstanceOf(RebacUnavailableError);
    await inDataDir(async (nx) => {
      expect(await nx.workspace.list()).toEqual([]);
    });
  });

  it('multi-tenant main without a tenant key says which key it needs', async () => {
    await expect(multiTenant.main({ dataDir })).rejects.toThrow(/admin@tenant-acme-123\.com.*NEXUS_TENANT_API_KEY/);
  });
});

/** Compile when dist/ is older than src/ or examples/; type errors elsewhere do not stop it, fresh outputs must exist. */
function buildExamples(): void {
  const examplesDir = join(REPO, 'examples');
  const staleExamples = readdirSync(examplesDir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .filter((f) => {
      const js = join(REPO, 'dist', 'examples', f.replace(/\.ts$/, '.js'));
      return !existsSync(js) || statSync(js).mtimeMs < statSync(join(examplesDir, f)).mtimeMs;
    });
  if (staleExamples.length === 0 && staleOutputs().length === 0) return;
  const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: REPO, encoding: 'utf8' });
  const mine = r.stdout.split('\n').filter((l) => l.startsWith('examples/'));
  if (mine.length) throw new Error(`examples do not compile:\n${mine.join('\n')}`);
  if (!existsSync(join(REPO, 'dist', 'examples', 'quickstart.js'))) throw new Error(`build produced no dist/examples/quickstart.js:\n${r.stdout}\n${r.stderr}`);
}

describe('compiled examples, run as a user runs them', () => {
  const env = () => {
    const e: NodeJS.ProcessEnv = { ...process.env, NEXUS_DATA_DIR: dataDir };
    delete e.NEXUS_URL;
    delete e.NEXUS_API_KEY;
    return e;
  };
  const runQuickstart = () =>
    // cwd outside the repository: 'nexus' resolves through the package's self-reference from dist/examples/.
    spawnSync(process.execPath, [join(REPO, 'dist', 'examples', 'quickstart.js')], { cwd: tmpdir(), env: env(), encoding: 'utf8', timeout: 60_000 });

  it('node dist/examples/quickstart.js with NEXUS_DATA_DIR: exit 0, the snapshot id on stdout, the data in the data directory', async () => {
    buildExamples();
    const r = runQuickstart();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const id = /Created snapshot (snap_[0-9a-f]{16}) of \/workspace\/acme-corp/.exec(r.stdout)?.[1];
    expect(id, r.stdout).toBeDefined();
    expect(r.stdout).toContain('Restored /workspace/acme-corp to ' + id + ': data.json is {"records": 1000} again');
    await inDataDir(async (nx) => {
      expect((await nx.workspace.getSnapshot(id!)).name).toBe('daily-backup');
      expect(await nx.readText('/workspace/acme-corp/data.json')).toBe('{"records": 1000}');
    });
  });

  it('a second run on the same data directory: exit 1, one line naming the conflict, and the hint', () => {
    buildExamples();
    expect(runQuickstart().status).toBe(0);
    const r = runQuickstart();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^quickstart: .*\/workspace\/acme-corp.*\nquickstart: the example creates fixed paths; run it against a fresh data directory/);
  });
});

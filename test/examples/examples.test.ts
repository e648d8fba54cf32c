/**
 * The seed document's examples (examples/*.ts), each run through its exported
 * main() against a fresh data directory, with their outcomes checked in the
 * data directory afterwards through a new connection. One example also runs
 * compiled, as a user runs it: `node dist/examples/quickstart.js`.
 *
 * The multi-tenant examples (tenants, owner grants, tenant keys) also run as
 * the seed runs them: over real HTTP against a server process
 * (test/server/server-child.mjs) with the admin key it made, the tenant keys
 * made by that admin with nx.keys.create.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuthenticationError, connect, PermissionError, type NexusClient } from 'nexus';
import { REPO, staleOutputs } from '../helpers/build.js';
import * as quickstart from '../../examples/quickstart.js';
import * as workspaceManagement from '../../examples/workspace-management.js';
import * as multiTenant from '../../examples/multi-tenant.js';
import * as snapshots from '../../examples/snapshots.js';
import * as agentSessions from '../../examples/agent-sessions.js';
import * as saas from '../../examples/saas-tenant-manager.js';
import * as agentMemory from '../../examples/agent-memory-manager.js';
import * as bestPractices from '../../examples/best-practices.js';
import { yyyymmdd } from '../../examples/run.js';
import { buildForChildren, startServerProcess } from '../server/server-process.js';

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
  it('onboards (with the owner grant), backs up daily, and restores lost data', async () => {
    const r = await saas.main({ dataDir });
    expect(r.tenant.workspacePath).toBe('/tenants/acme-123');
    expect(r.tenant.owner).toBe('admin@acme-123.com');
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
      const manager = new saas.TenantManager(nx);
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

  it('grantTenantAdmin: onboarding grants admin@<tenant>.com owner on the workspace, and that key works there only', async () => {
    const r = await saas.main({ dataDir });
    expect(r.tenant.owner).toBe('admin@acme-123.com');
    const key = await inDataDir(async (nx) => {
      expect((await nx.rebacList({ subjectType: 'user', subjectId: 'admin@acme-123.com' })).map((g) => [g.relation, g.object_type, g.object_id])).toEqual([
        ['owner', 'file', '/tenants/acme-123'],
      ]);
      await new saas.TenantManager(nx).onboardTenant('other-1', 'Other One', 'starter');
      await nx.write('/tenants/other-1/data/private.txt', 'other-1 only');
      return (await nx.keys.create({ subject: 'user:admin@acme-123.com' })).api_key;
    });
    // Embedded, acting as the key's subject: its grants limit it.
    const tenant = await connect({ dataDir, apiKey: key });
    try {
      expect(await tenant.readText('/tenants/acme-123/data/customers.json')).toBe('[{"name": "Wile E. Coyote"}]');
      await tenant.write('/tenants/acme-123/exports/report.csv', 'a,b\n');
      await expect(tenant.read('/tenants/other-1/data/private.txt')).rejects.toBeInstanceOf(PermissionError);
      await expect(tenant.list('/tenants/other-1')).rejects.toBeInstanceOf(PermissionError);
      expect((await tenant.list('/tenants')).map((f) => f.path)).toEqual(['/tenants/acme-123']);
      expect((await tenant.workspace.list()).map((w) => w.path)).toEqual(['/tenants/acme-123']);
    } finally {
      await tenant.close();
    }
  });

  it('the whole flow over HTTP: an admin key onboards, backs up and restores; the tenant admin key backs up and restores its own workspace only', async () => {
    const server = await serverWithKeys(dataDir, ['user:admin@acme-123.com']);
    try {
      const r = await saas.main({ remoteUrl: server.url, apiKey: server.adminKey });
      expect(r.tenant).toMatchObject({ workspacePath: '/tenants/acme-123', owner: 'admin@acme-123.com' });
      expect(r.tenant.initialSnapshotId).toMatch(SNAP_ID);
      expect(r.backupId).toMatch(SNAP_ID);
      expect(r.restore).toMatchObject({ path: '/tenants/acme-123', snapshot_id: r.backupId, created: 1 });
      expect(r.customers).toBe('[{"name": "Wile E. Coyote"}]');
      expect(output()).toContain('✅ Tenant Acme Corp onboarded successfully');
      expect(output()).toMatch(/Created backup: daily-\d{8} \(snap_[0-9a-f]{16}\)/);
      expect(output()).toContain('✅ Restored tenant acme-123');

      const admin = await connect({ remoteUrl: server.url, apiKey: server.adminKey });
      const tenant = await connect({ remoteUrl: server.url, apiKey: server.keys['user:admin@acme-123.com']! });
      try {
        await new saas.TenantManager(admin).onboardTenant('other-1', 'Other One', 'starter');
        await admin.write('/tenants/other-1/data/private.txt', 'other-1 only');
        const otherBackup = await new saas.TenantManager(admin).dailyBackup('other-1');

        // The tenant's admin runs its own backups and restores through the same manager.
        const own = new saas.TenantManager(tenant);
        await tenant.write('/tenants/acme-123/data/customers.json', '[]');
        const mine = await own.dailyBackup('acme-123', new Date(2025, 5, 1));
        expect((await tenant.workspace.getSnapshot(mine)).name).toBe('daily-20250601');
        await tenant.delete('/tenants/acme-123/data/customers.json');
        await own.restoreTenant('acme-123', mine);
        expect(await tenant.readText('/tenants/acme-123/data/customers.json')).toBe('[]');

        // ...and nothing of another tenant's.
        await expect(tenant.read('/tenants/other-1/data/private.txt')).rejects.toBeInstanceOf(PermissionError);
        await expect(own.dailyBackup('other-1')).rejects.toBeInstanceOf(PermissionError);
        await expect(own.restoreTenant('other-1', otherBackup)).rejects.toBeInstanceOf(PermissionError);
        await expect(tenant.workspace.getSnapshot(otherBackup)).rejects.toBeInstanceOf(PermissionError);
        await expect(own.onboardTenant('mallory-1', 'Mallory', 'free')).rejects.toBeInstanceOf(PermissionError);
        expect((await tenant.workspace.listSnapshots()).every((snap) => snap.path === '/tenants/acme-123')).toBe(true);
        expect((await tenant.workspace.list()).map((w) => w.path)).toEqual(['/tenants/acme-123']);

        // The admin sees both tenants, and other-1 is as it was.
        expect(paths(await admin.workspace.list())).toEqual(['/tenants/acme-123', '/tenants/other-1']);
        expect(await admin.readText('/tenants/other-1/data/private.txt')).toBe('other-1 only');
        expect(await admin.exists('/tenants/mallory-1')).toBe(false);
      } finally {
        await tenant.close();
        await admin.close();
      }
    } finally {
      await server.stop();
    }
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
 * A server process on `dataDir` (TCP needs API keys): the admin key it made
 * before serving, and a key per named subject, created by that admin over
 * HTTP with nx.keys.create.
 */
async function serverWithKeys(dir: string, subjects: string[]): Promise<{ url: string; adminKey: string; keys: Record<string, string>; stop(): Promise<void> }> {
  buildForChildren();
  const server = await startServerProcess(dir);
  const keys: Record<string, string> = {};
  try {
    const admin = await connect({ remoteUrl: server.url, apiKey: server.adminKey });
    try {
      for (const subject of subjects) keys[subject] = (await admin.keys.create({ subject })).api_key;
    } finally {
      await admin.close();
    }
  } catch (e) {
    await server.stop();
    throw e;
  }
  return {
    url: server.url,
    adminKey: server.adminKey,
    keys,
    async stop() {
      expect(await server.stop()).toBe(0);
    },
  };
}

describe('multi-tenant', () => {
  const checkOnboarded = (r: multiTenant.MultiTenantResult) => {
    expect(paths(r.workspaces)).toEqual(['/tenants/acme-123', '/tenants/beta-456', '/tenants/gamma-789']);
    expect(r.workspaces[0]!.metadata).toEqual({ id: 'acme-123', name: 'Acme Corp', plan: 'enterprise' });
    expect(r.grants.map((g) => [g.subjectId, g.relation, g.objectId])).toEqual([
      ['admin@tenant-acme-123.com', 'owner', '/tenants/acme-123'],
      ['admin@tenant-beta-456.com', 'owner', '/tenants/beta-456'],
      ['admin@tenant-gamma-789.com', 'owner', '/tenants/gamma-789'],
    ]);
    expect(r.tenantWrite.path).toBe('/tenants/acme-123/data/records.json');
    expect(r.denied).toBeInstanceOf(PermissionError);
    expect(r.denied.code).toBe('PERMISSION_DENIED');
    expect(output()).toContain('Created 3 isolated tenant workspaces');
    expect(output()).toContain('Access denied - tenant isolation working!');
    expect(r.listings['/tenants/acme-123']!.filter((f) => f.type === 'file').map((f) => f.path)).toEqual(['/tenants/acme-123/data/records.json']);
    expect(r.listings['/tenants/beta-456']!.filter((f) => f.type === 'file').map((f) => f.path)).toEqual(['/tenants/beta-456/data/records.json']);
    expect(r.listings['/tenants/gamma-789']!.map((f) => f.name).sort()).toEqual(['data', 'exports', 'models']);
    expect(output()).toContain('/tenants/acme-123: 4 entries (1 files)');
  };

  it('over HTTP: onboards three tenants with owner grants; the tenant key (made by the admin) writes its own files and is refused another tenant; the admin lists every tenant', async () => {
    const server = await serverWithKeys(dataDir, []);
    try {
      const r = await multiTenant.main({ remoteUrl: server.url, apiKey: server.adminKey });
      checkOnboarded(r);
      expect(r.createdKey).toEqual({ key_id: expect.stringMatching(/^[0-9a-f]{16}$/), subject: 'user:admin@tenant-acme-123.com' });
      expect(output()).toContain(`Created API key ${r.createdKey!.key_id} for user:admin@tenant-acme-123.com`);
      expect(output()).toContain(`Revoked API key ${r.createdKey!.key_id}`);

      const admin = await connect({ remoteUrl: server.url, apiKey: server.adminKey });
      try {
        // What the tenant wrote, and what it could not read, as the admin sees them.
        expect(await admin.readText('/tenants/acme-123/data/records.json')).toBe('{"records": ["acme only"]}');
        expect(await admin.readText('/tenants/beta-456/data/records.json')).toBe('{"records": ["beta only"]}');
        const written = await admin.stat('/tenants/acme-123/data/records.json');
        expect(written.ino).toBe(r.tenantWrite.ino);
        // The key made for the example was revoked at its end.
        const k = (await admin.keys.list()).find((x) => x.key_id === r.createdKey!.key_id)!;
        expect(k.revoked_at).not.toBeNull();
        expect((await admin.rebacList({ objectType: 'file' })).map((g) => g.subject_id).sort()).toEqual([
          'admin@tenant-acme-123.com', 'admin@tenant-beta-456.com', 'admin@tenant-gamma-789.com',
        ]);
      } finally {
        await admin.close();
      }
    } finally {
      await server.stop();
    }
  });

  it('over HTTP with a tenant key given (the seed\'s "tenant-specific-key"): the same isolation; that key keeps working afterwards, inside its tenant only', async () => {
    const subject = 'user:admin@tenant-acme-123.com';
    const server = await serverWithKeys(dataDir, [subject]);
    try {
      const r = await multiTenant.main({ remoteUrl: server.url, apiKey: server.adminKey, tenantApiKey: server.keys[subject]! });
      checkOnboarded(r);
      expect(r.createdKey).toBeNull();
      const tenant = await connect({ remoteUrl: server.url, apiKey: server.keys[subject]! });
      try {
        expect(await tenant.readText('/tenants/acme-123/data/records.json')).toBe('{"records": ["acme only"]}');
        expect((await tenant.list('/tenants')).map((f) => f.path)).toEqual(['/tenants/acme-123']);
        for (const other of ['/tenants/beta-456', '/tenants/gamma-789']) {
          await expect(tenant.list(other, { recursive: true })).rejects.toBeInstanceOf(PermissionError);
          await expect(tenant.write(`${other}/data/planted.json`, '{}')).rejects.toBeInstanceOf(PermissionError);
        }
      } finally {
        await tenant.close();
      }
      // A key that is not one: refused before anything happens.
      await expect(multiTenant.main({ remoteUrl: server.url, apiKey: 'nx_0000000000000000_' + '0'.repeat(48) })).rejects.toBeInstanceOf(AuthenticationError);
    } finally {
      await server.stop();
    }
  });

  it('embedded, without a tenant key: the admin (the data directory\'s own user) creates one with nx.keys.create, and revokes it at the end', async () => {
    const r = await multiTenant.main({ dataDir });
    checkOnboarded(r);
    expect(r.createdKey?.subject).toBe('user:admin@tenant-acme-123.com');
    await inDataDir(async (nx) => {
      expect((await nx.keys.list()).map((k) => [k.key_id, k.revoked_at !== null])).toEqual([[r.createdKey!.key_id, true]]);
      expect(await nx.readText('/tenants/acme-123/data/records.json')).toBe('{"records": ["acme only"]}');
    });
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

  it('node dist/examples/multi-tenant.js against a server (NEXUS_URL, NEXUS_API_KEY: an admin key): exit 0, isolation shown', async () => {
    buildExamples();
    const server = await serverWithKeys(dataDir, []);
    try {
      const e: NodeJS.ProcessEnv = { ...process.env, NEXUS_URL: server.url, NEXUS_API_KEY: server.adminKey };
      delete e.NEXUS_DATA_DIR;
      delete e.NEXUS_TENANT_API_KEY;
      const r = spawnSync(process.execPath, [join(REPO, 'dist', 'examples', 'multi-tenant.js')], { cwd: tmpdir(), env: e, encoding: 'utf8', timeout: 60_000 });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('Created 3 isolated tenant workspaces');
      expect(r.stdout).toContain('Access denied - tenant isolation working!');
      expect(r.stdout).toMatch(/\/tenants\/gamma-789: 3 entries \(0 files\)/);
      expect(r.stdout).not.toMatch(/nx_[0-9a-f]{16}_[0-9a-f]{48}/); // a key's secret is never printed
      // Run again: the tenants exist; one line naming the conflict, and the hint.
      const again = spawnSync(process.execPath, [join(REPO, 'dist', 'examples', 'multi-tenant.js')], { cwd: tmpdir(), env: e, encoding: 'utf8', timeout: 60_000 });
      expect(again.status).toBe(1);
      expect(again.stderr).toMatch(/^multi-tenant: .*\/tenants\/acme-123.*\nmulti-tenant: the example creates fixed paths/);
    } finally {
      await server.stop();
    }
  });

  it('a second run on the same data directory: exit 1, one line naming the conflict, and the hint', () => {
    buildExamples();
    expect(runQuickstart().status).toBe(0);
    const r = runQuickstart();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^quickstart: .*\/workspace\/acme-corp.*\nquickstart: the example creates fixed paths; run it against a fresh data directory/);
  });
});

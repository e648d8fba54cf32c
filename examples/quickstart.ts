/**
 * Quick start: create a workspace for a tenant, write to it, snapshot it,
 * and restore the snapshot after the data changed.
 *
 *   npm run build && NEXUS_DATA_DIR=/tmp/nx node dist/examples/quickstart.js
 */
import { connect, type ConnectOptions, type Diff, type RestoreReport, type Workspace } from 'nexus';
import { runIfMain } from './run.js';

export interface QuickstartResult {
  workspace: Workspace;
  snapshotId: string;
  /** What changed between the snapshot and the restore (the restore undoes it). */
  changes: Diff;
  restore: RestoreReport;
  /** data.json after the restore. */
  data: string;
  /** What the workspace holds after the restore. */
  files: string[];
}

export async function main(options: ConnectOptions): Promise<QuickstartResult> {
  const nx = await connect(options);
  try {
    // Create workspace
    const workspace = await nx.workspace.create('/workspace/acme-corp', {
      metadata: { tenant_id: 'acme-123', plan: 'enterprise' },
    });

    // Write to workspace
    await nx.write('/workspace/acme-corp/data.json', '{"records": 1000}');

    // Create snapshot
    const snapshotId = await nx.workspace.snapshot('/workspace/acme-corp', { name: 'daily-backup' });
    console.log(`Created snapshot ${snapshotId} of ${workspace.path}`);

    // The data changes after the backup...
    await nx.write('/workspace/acme-corp/data.json', '{"records": 0}');
    await nx.write('/workspace/acme-corp/import.log', 'import failed halfway\n');

    const changes = await nx.workspace.diff(snapshotId);
    console.log(`Since the backup: added ${JSON.stringify(changes.added)}, modified ${JSON.stringify(changes.modified)}, deleted ${JSON.stringify(changes.deleted)}`);

    // Later: restore snapshot
    const restore = await nx.workspace.restore('/workspace/acme-corp', snapshotId);
    const data = await nx.readText('/workspace/acme-corp/data.json');
    const files = (await nx.list('/workspace/acme-corp', { recursive: true })).map((f) => f.path);
    console.log(`Restored ${workspace.path} to ${snapshotId}: data.json is ${data} again`);
    console.log(`(a restore can be undone too: restore ${restore.pre_restore_snapshot_id})`);

    return { workspace, snapshotId, changes, restore, data, files };
  } finally {
    await nx.close();
  }
}

runIfMain(import.meta.url, main);

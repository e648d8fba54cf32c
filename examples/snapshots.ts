/**
 * Workspace snapshots: freeze a project before a risky refactor, list its
 * snapshots, and restore the project when the refactor goes wrong. A snapshot
 * copies no file data; a restore first snapshots the current state, so it can
 * be undone too.
 */
import { connect, type ConnectOptions, type RestoreReport, type Snapshot } from 'nexus';
import { runIfMain } from './run.js';

const PROJECT = '/workspace/project';

export interface SnapshotsResult {
  snapshotId: string;
  /** listSnapshots() before the restore. */
  snapshots: Snapshot[];
  restore: RestoreReport;
  /** path -> content of every file in the project after the restore. */
  filesAfterRestore: Record<string, string>;
}

export async function main(options: ConnectOptions): Promise<SnapshotsResult> {
  const nx = await connect(options);
  try {
    // A project to protect
    await nx.workspace.create(PROJECT, { metadata: { team: 'backend' } });
    await nx.write(`${PROJECT}/src/app.py`, 'def handler(event):\n    return process(event)\n', { parents: true });
    await nx.write(`${PROJECT}/src/util.py`, 'def process(event):\n    return event\n');
    await nx.write(`${PROJECT}/README.md`, '# Project\n');

    // Create snapshot of entire workspace
    const snapshotId = await nx.workspace.snapshot(PROJECT, {
      name: 'before-refactor',
      metadata: { reason: 'Major refactoring planned' },
    });
    console.log(`Created snapshot: ${snapshotId}`);

    // The refactor: a rewritten file, a deleted one, a new one
    await nx.write(`${PROJECT}/src/app.py`, 'from core import run\nrun()\n');
    await nx.delete(`${PROJECT}/src/util.py`);
    await nx.write(`${PROJECT}/src/core.py`, 'def run():\n    raise NotImplementedError\n');

    // List all snapshots for workspace
    const snapshots = await nx.workspace.listSnapshots(PROJECT);
    for (const snapshot of snapshots) {
      console.log(`
    ID: ${snapshot.snapshot_id}
    Name: ${snapshot.name}
    Created: ${snapshot.created_at}
    Files: ${snapshot.file_count}`);
    }

    // Restore workspace to previous state
    const restore = await nx.workspace.restore(PROJECT, snapshotId);
    console.log(`\nWorkspace restored to snapshot state (undo with ${restore.pre_restore_snapshot_id})`);

    const filesAfterRestore: Record<string, string> = {};
    for (const f of await nx.list(PROJECT, { recursive: true })) {
      if (f.type === 'file') filesAfterRestore[f.path] = await nx.readText(f.path);
    }
    return { snapshotId, snapshots, restore, filesAfterRestore };
  } finally {
    await nx.close();
  }
}

runIfMain(import.meta.url, main);

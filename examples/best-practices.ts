/**
 * Best practices: hierarchical, descriptive workspace names, and a daily
 * snapshot job over every workspace (schedule dailySnapshotJob() once a day,
 * e.g. from cron or a timer).
 *
 *   ✅ Good: hierarchical, descriptive     ❌ Bad: flat, non-descriptive
 *     /tenants/acme-corp/production          /workspace1
 *     /projects/alpha/backend                /data
 *     /agents/gpt-4/user-123                 /temp
 */
import { connect, type ConnectOptions, type NexusClient, type Snapshot } from 'nexus';
import { runIfMain, yyyymmdd } from './run.js';

export const GOOD_WORKSPACE_NAMES = ['/tenants/acme-corp/production', '/projects/alpha/backend', '/agents/gpt-4/user-123'];

export interface DailySnapshot {
  path: string;
  snapshotId: string;
}

/** ✅ Good: regular automated snapshots, one per workspace, named daily-YYYYMMDD. */
export async function dailySnapshotJob(nx: NexusClient, now: Date = new Date()): Promise<DailySnapshot[]> {
  const snapshotName = `daily-${yyyymmdd(now)}`;
  const taken: DailySnapshot[] = [];
  for (const ws of await nx.workspace.list()) {
    taken.push({ path: ws.path, snapshotId: await nx.workspace.snapshot(ws.path, { name: snapshotName }) });
  }
  return taken;
}

export interface BestPracticesResult {
  taken: DailySnapshot[];
  /** The snapshot records of what the job took. */
  snapshots: Snapshot[];
}

export async function main(options: ConnectOptions): Promise<BestPracticesResult> {
  const nx = await connect(options);
  try {
    for (const path of GOOD_WORKSPACE_NAMES) {
      await nx.workspace.create(path);
      await nx.write(`${path}/README.md`, `# ${path}\n`);
    }

    const taken = await dailySnapshotJob(nx);
    const snapshots = await Promise.all(taken.map((t) => nx.workspace.getSnapshot(t.snapshotId)));
    for (const s of snapshots) console.log(`${s.path}: ${s.name} ${s.snapshot_id} (${s.file_count} files, ${s.total_bytes} bytes)`);
    return { taken, snapshots };
  } finally {
    await nx.close();
  }
}

runIfMain(import.meta.url, main);

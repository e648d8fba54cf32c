/**
 * A SaaS application's tenant manager: onboard a tenant (workspace, directory
 * layout, owner grant for the tenant's admin, initial snapshot), take daily
 * backups, restore a tenant to a backup.
 *
 * Run it with an admin key against a server (NEXUS_URL, NEXUS_API_KEY), or
 * on a data directory of your own (NEXUS_DATA_DIR); granting needs owner on
 * the workspace, which an admin key (or the data directory's own user) has.
 */
import { connect, type ConnectOptions, type NexusClient, type RestoreReport, type Workspace } from 'nexus';
import { runIfMain, yyyymmdd } from './run.js';

export interface OnboardedTenant {
  workspacePath: string;
  workspace: Workspace;
  initialSnapshotId: string;
  /** Who was granted `owner` on the workspace: the id of a `user` subject (admin@<tenant>.com). */
  owner: string;
}

export class TenantManager {
  constructor(readonly nx: NexusClient) {}

  static workspacePath(tenantId: string): string {
    return `/tenants/${tenantId}`;
  }

  static adminEmail(tenantId: string): string {
    return `admin@${tenantId}.com`;
  }

  /** Complete tenant onboarding */
  async onboardTenant(tenantId: string, companyName: string, plan: string): Promise<OnboardedTenant> {
    const workspacePath = TenantManager.workspacePath(tenantId);

    // 1. Create workspace
    const workspace = await this.nx.workspace.create(workspacePath, {
      metadata: {
        tenant_id: tenantId,
        company: companyName,
        plan,
        onboarded_at: new Date().toISOString(),
      },
    });

    // 2. Create directory structure
    for (const subdir of ['data', 'models', 'exports', 'logs']) {
      await this.nx.mkdir(`${workspacePath}/${subdir}`, { parents: true });
    }

    // 3. Set up permissions
    const owner = await this.grantTenantAdmin(tenantId);

    // 4. Create initial snapshot
    const initialSnapshotId = await this.nx.workspace.snapshot(workspacePath, {
      name: 'initial-setup',
      metadata: { milestone: 'onboarding complete' },
    });

    console.log(`✅ Tenant ${companyName} onboarded successfully`);
    return { workspacePath, workspace, initialSnapshotId, owner };
  }

  /** Grant the tenant's admin `owner` on the tenant's workspace; returns the admin's principal. */
  async grantTenantAdmin(tenantId: string): Promise<string> {
    const adminEmail = TenantManager.adminEmail(tenantId);
    await this.nx.rebacCreate('user', adminEmail, 'owner', 'file', TenantManager.workspacePath(tenantId));
    return adminEmail;
  }

  /** Create daily backup snapshot */
  async dailyBackup(tenantId: string, now: Date = new Date()): Promise<string> {
    const snapshotName = `daily-${yyyymmdd(now)}`;
    const snapshotId = await this.nx.workspace.snapshot(TenantManager.workspacePath(tenantId), { name: snapshotName });
    console.log(`Created backup: ${snapshotName} (${snapshotId})`);
    return snapshotId;
  }

  /** Restore tenant to previous state */
  async restoreTenant(tenantId: string, snapshotId: string): Promise<RestoreReport> {
    const report = await this.nx.workspace.restore(TenantManager.workspacePath(tenantId), snapshotId);
    console.log(`✅ Restored tenant ${tenantId}`);
    return report;
  }
}

export interface SaasResult {
  tenant: OnboardedTenant;
  backupId: string;
  restore: RestoreReport;
  /** customers.json after the restore. */
  customers: string;
}

export async function main(options: ConnectOptions): Promise<SaasResult> {
  const nx = await connect(options);
  try {
    const manager = new TenantManager(nx);

    // Onboard new tenant
    const tenant = await manager.onboardTenant('acme-123', 'Acme Corp', 'enterprise');

    // The tenant's application stores data
    await nx.write(`${tenant.workspacePath}/data/customers.json`, '[{"name": "Wile E. Coyote"}]');

    // Daily backups
    const backupId = await manager.dailyBackup('acme-123');

    // Something goes wrong: the data is lost
    await nx.delete(`${tenant.workspacePath}/data/customers.json`);

    // Restore if needed
    const restore = await manager.restoreTenant('acme-123', backupId);
    const customers = await nx.readText(`${tenant.workspacePath}/data/customers.json`);
    return { tenant, backupId, restore, customers };
  } finally {
    await nx.close();
  }
}

runIfMain(import.meta.url, main);

/**
 * Multi-tenant isolation: an admin onboards three tenants, each an isolated
 * workspace whose admin is granted `owner` through ReBAC; a tenant's API key
 * can write its own workspace and is refused another tenant's files
 * (PermissionError); the admin key lists every tenant.
 *
 * The tenant's key (the seed's "tenant-specific-key") is given, or the admin
 * creates one for admin@tenant-acme-123.com with nx.keys.create and revokes
 * it when the example is done.
 *
 *   NEXUS_URL=http://localhost:8080 NEXUS_API_KEY=<admin key> node dist/examples/multi-tenant.js
 *   (optionally NEXUS_TENANT_API_KEY=<key of user:admin@tenant-acme-123.com>)
 */
import { connect, PermissionError, type ConnectOptions, type FileInfo, type NexusClient, type Workspace } from 'nexus';
import { runIfMain } from './run.js';

export interface Tenant {
  id: string;
  name: string;
  plan: string;
}

export const TENANTS: Tenant[] = [
  { id: 'acme-123', name: 'Acme Corp', plan: 'enterprise' },
  { id: 'beta-456', name: 'Beta Inc', plan: 'professional' },
  { id: 'gamma-789', name: 'Gamma Ltd', plan: 'starter' },
];

/** The principal that owns a tenant's workspace. */
export const tenantAdmin = (tenant: Tenant) => `admin@tenant-${tenant.id}.com`;
export const tenantPath = (tenant: Tenant) => `/tenants/${tenant.id}`;

export interface MultiTenantOptions extends ConnectOptions {
  /**
   * The API key of the first tenant's admin (user:admin@tenant-acme-123.com):
   * the seed's "tenant-specific-key", e.g. from `nexus key create`;
   * NEXUS_TENANT_API_KEY when the example runs directly. Without one, the
   * admin creates a key for the example (nx.keys.create) and revokes it at the end.
   */
  tenantApiKey?: string;
}

export interface Grant {
  subjectType: string;
  subjectId: string;
  relation: string;
  objectType: string;
  objectId: string;
}

export interface MultiTenantResult {
  workspaces: Workspace[];
  grants: Grant[];
  /** What the tenant key wrote in its own workspace. */
  tenantWrite: FileInfo;
  /** The error the tenant key got reading another tenant's file. */
  denied: PermissionError;
  /** Admin's recursive listing of each tenant: path -> entries. */
  listings: Record<string, FileInfo[]>;
  /** The key the admin created for the tenant (and revoked afterwards), when none was given. */
  createdKey: { key_id: string; subject: string } | null;
}

/** Create each tenant's workspace, grant its admin `owner`, and lay out its directories. */
export async function onboardTenants(nx: NexusClient, tenants: Tenant[]): Promise<{ workspaces: Workspace[]; grants: Grant[] }> {
  const workspaces: Workspace[] = [];
  const grants: Grant[] = [];
  for (const tenant of tenants) {
    // Create isolated workspace
    const workspacePath = tenantPath(tenant);
    workspaces.push(await nx.workspace.create(workspacePath, { metadata: { ...tenant } }));

    // Grant tenant admin full access
    const grant: Grant = { subjectType: 'user', subjectId: tenantAdmin(tenant), relation: 'owner', objectType: 'file', objectId: workspacePath };
    await nx.rebacCreate(grant.subjectType, grant.subjectId, grant.relation, grant.objectType, grant.objectId);
    grants.push(grant);

    // Create standard subdirectories
    await nx.mkdir(`${workspacePath}/data`, { parents: true });
    await nx.mkdir(`${workspacePath}/models`, { parents: true });
    await nx.mkdir(`${workspacePath}/exports`, { parents: true });
  }
  console.log(`Created ${tenants.length} isolated tenant workspaces`);
  return { workspaces, grants };
}

export async function main(options: MultiTenantOptions): Promise<MultiTenantResult> {
  const { tenantApiKey: givenKey, ...adminOptions } = options;
  const [acme, beta] = [TENANTS[0]!, TENANTS[1]!];

  // 1. The admin onboards the tenants (one connection at a time: an embedded
  //    data directory is held by one connection).
  const admin = await connect(adminOptions);
  let onboarded: { workspaces: Workspace[]; grants: Grant[] };
  let tenantApiKey = givenKey;
  let createdKey: MultiTenantResult['createdKey'] = null;
  try {
    onboarded = await onboardTenants(admin, TENANTS);
    // Beta's own data, which Acme's key must not read.
    await admin.write(`${tenantPath(beta)}/data/records.json`, '{"records": ["beta only"]}');
    if (!tenantApiKey) {
      // The tenant's key: acts as the principal the owner grant names.
      const k = await admin.keys.create({ subject: `user:${tenantAdmin(acme)}` });
      tenantApiKey = k.api_key;
      createdKey = { key_id: k.key_id, subject: k.subject };
      console.log(`Created API key ${k.key_id} for ${k.subject}`);
    }
  } finally {
    await admin.close();
  }

  // 2. Tenant user connects with their API key
  const tenantNx = await connect({ ...adminOptions, apiKey: tenantApiKey });
  let tenantWrite: FileInfo;
  let denied: PermissionError | undefined;
  try {
    // Write to tenant workspace
    tenantWrite = await tenantNx.write(`${tenantPath(acme)}/data/records.json`, '{"records": ["acme only"]}');

    // Tenant CANNOT access other tenants' data
    try {
      await tenantNx.read(`${tenantPath(beta)}/data/records.json`);
    } catch (e) {
      if (!(e instanceof PermissionError)) throw e;
      denied = e;
      console.log('Access denied - tenant isolation working!');
    }
  } finally {
    await tenantNx.close();
  }
  if (!denied) throw new Error(`Tenant isolation broken: ${tenantAdmin(acme)} read ${tenantPath(beta)}/data/records.json`);

  // 3. Admin can access all tenants
  const adminAgain = await connect(adminOptions);
  const listings: Record<string, FileInfo[]> = {};
  try {
    for (const tenant of TENANTS) {
      const files = await adminAgain.list(tenantPath(tenant), { recursive: true });
      listings[tenantPath(tenant)] = files;
      console.log(`${tenantPath(tenant)}: ${files.length} entries (${files.filter((f) => f.type === 'file').length} files)`);
    }
    // A key made for the example does not outlive it.
    if (createdKey) {
      await adminAgain.keys.revoke(createdKey.key_id);
      console.log(`Revoked API key ${createdKey.key_id}`);
    }
  } finally {
    await adminAgain.close();
  }

  return { ...onboarded, tenantWrite, denied, listings, createdKey };
}

runIfMain<MultiTenantOptions>(import.meta.url, main, process.env.NEXUS_TENANT_API_KEY ? { tenantApiKey: process.env.NEXUS_TENANT_API_KEY } : {});

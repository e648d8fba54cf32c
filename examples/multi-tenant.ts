/**
 * Multi-tenant isolation: an admin onboards three tenants, each an isolated
 * workspace whose admin is granted `owner` through ReBAC; a tenant's API key
 * can write its own workspace and is refused another tenant's files
 * (PermissionError); the admin key lists every tenant.
 *
 * Needs issue 5 (nx.rebacCreate, API keys): until then main() fails at once
 * with RebacUnavailableError, before it changes anything.
 *
 *   NEXUS_URL=http://localhost:8080 NEXUS_API_KEY=<admin key> \
 *   NEXUS_TENANT_API_KEY=<key of admin@tenant-acme-123.com> node dist/examples/multi-tenant.js
 */
import { connect, PermissionError, type ConnectOptions, type FileInfo, type NexusClient, type Workspace } from 'nexus';
import { withRebac } from './rebac.js';
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
   * The API key of the first tenant's admin (admin@tenant-acme-123.com): the
   * seed's "tenant-specific-key". Created out of band (`nexus key create`);
   * NEXUS_TENANT_API_KEY when the example runs directly.
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
    await withRebac(nx).rebacCreate(grant.subjectType, grant.subjectId, grant.relation, grant.objectType, grant.objectId);
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
  const { tenantApiKey, ...adminOptions } = options;
  if (!tenantApiKey) {
    throw new Error(`multi-tenant needs a tenant API key: the key of ${tenantAdmin(TENANTS[0]!)} (tenantApiKey; NEXUS_TENANT_API_KEY when run directly)`);
  }
  const [acme, beta] = [TENANTS[0]!, TENANTS[1]!];

  // 1. The admin onboards the tenants (one connection at a time: an embedded
  //    data directory is held by one connection).
  const admin = await connect(adminOptions);
  let onboarded: { workspaces: Workspace[]; grants: Grant[] };
  try {
    withRebac(admin); // fail before changing anything when the SDK cannot grant
    onboarded = await onboardTenants(admin, TENANTS);
    // Beta's own data, which Acme's key must not read.
    await admin.write(`${tenantPath(beta)}/data/records.json`, '{"records": ["beta only"]}');
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
  } finally {
    await adminAgain.close();
  }

  return { ...onboarded, tenantWrite, denied, listings };
}

runIfMain<MultiTenantOptions>(import.meta.url, main, process.env.NEXUS_TENANT_API_KEY ? { tenantApiKey: process.env.NEXUS_TENANT_API_KEY } : {});

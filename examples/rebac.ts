/**
 * `nx.rebacCreate(subjectType, subjectId, relation, objectType, objectId)` is
 * the SDK call the design names for ReBAC grants, e.g.
 *   nx.rebacCreate('user', 'admin@acme-123.com', 'owner', 'file', '/tenants/acme-123')
 * NexusClient does not have it yet (issue 5: API keys and ReBAC). The examples
 * call it through `withRebac(nx)`, which is `nx` itself, typed with the call,
 * once the SDK has it, and a loud error naming the missing call before then,
 * never a silent no-op. When issue 5 lands, `withRebac(nx).rebacCreate(...)`
 * can become `nx.rebacCreate(...)` and this file can go.
 */
import type { NexusClient } from 'nexus';

export interface RebacCalls {
  rebacCreate(subjectType: string, subjectId: string, relation: string, objectType: string, objectId: string): Promise<unknown>;
}

export class RebacUnavailableError extends Error {
  constructor() {
    super('nx.rebacCreate() is not in this SDK yet (issue 5: API keys and ReBAC grants)');
    this.name = 'RebacUnavailableError';
  }
}

export function hasRebac(nx: NexusClient): nx is NexusClient & RebacCalls {
  return typeof (nx as NexusClient & Partial<RebacCalls>).rebacCreate === 'function';
}

export function withRebac(nx: NexusClient): NexusClient & RebacCalls {
  if (!hasRebac(nx)) throw new RebacUnavailableError();
  return nx;
}

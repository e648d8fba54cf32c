/**
 * Workspaces: registered directories with metadata. Deleting a workspace
 * deletes its directory and contents; its snapshots are KEPT (so a deleted
 * workspace can still be restored) until deleted explicitly.
 */
import { NexusError } from '../errors.js';
import type { OpContext } from '../engine/credentials.js';
import { isWithin, normalizePath } from '../engine/names.js';
import type { MetaStore } from '../meta/meta-store.js';
import { nowNs } from '../util/time.js';
import type { FileService } from './files.js';
import type { AccessService } from './access.js';
import { toWorkspace, type Workspace } from './records.js';
import { RESERVED_ROOT } from './reserved.js';

export class WorkspaceService {
  constructor(
    private readonly meta: MetaStore,
    private readonly files: FileService,
    private readonly access: AccessService,
  ) {}

  async create(path: string, metadata: Record<string, unknown>, ctx: OpContext): Promise<Workspace> {
    const p = normalizePath(path);
    if (p === '/') throw new NexusError('INVALID_ARGUMENT', 'The root cannot be a workspace');
    if (isWithin(p, RESERVED_ROOT)) throw new NexusError('INVALID_ARGUMENT', `${RESERVED_ROOT} is reserved`);
    checkMetadata(metadata);
    // Making a workspace takes owner on its path (an admin key, or a tenant's owner grant above it).
    await this.files.guard(p, ctx, 'owner');
    const existing = await this.meta.registry.listWorkspaces();
    if (existing.some((w) => w.path === p)) throw new NexusError('ALREADY_EXISTS', `Already a workspace: ${p}`);
    const outer = existing.find((w) => isWithin(p, w.path));
    if (outer) throw new NexusError('INVALID_ARGUMENT', `${p} is inside workspace ${outer.path}; workspaces cannot nest`);
    const inner = existing.find((w) => isWithin(w.path, p));
    if (inner) throw new NexusError('INVALID_ARGUMENT', `${p} contains workspace ${inner.path}; workspaces cannot nest`);
    await this.files.mkdir(p, ctx, { parents: true });
    return toWorkspace(await this.meta.registry.createWorkspace({ path: p, metadata, createdBy: ctx.principal, createdAt: nowNs() }));
  }

  /** Workspaces the caller may see. */
  async list(ctx: OpContext): Promise<Workspace[]> {
    return (await this.meta.registry.listWorkspaces()).filter((w) => this.access.relationOn2(ctx, w.path) !== null).map(toWorkspace);
  }

  async info(path: string, ctx: OpContext): Promise<Workspace> {
    const p = await this.files.guard(path, ctx, 'viewer');
    const w = await this.meta.registry.getWorkspace(p);
    if (!w) throw new NexusError('NOT_FOUND', `Not a workspace: ${p}`);
    return toWorkspace(w);
  }

  async delete(path: string, ctx: OpContext): Promise<void> {
    const p = await this.files.guard(path, ctx, 'owner');
    await this.info(p, ctx);
    if (await this.files.exists(p, ctx)) await this.files.delete(p, ctx, { recursive: true });
    await this.meta.registry.deleteWorkspace(p);
  }
}

const METADATA_MAX_DEPTH = 64;

export function checkMetadata(metadata: unknown): asserts metadata is Record<string, unknown> {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw new NexusError('INVALID_ARGUMENT', 'metadata must be a JSON object');
  }
  // Depth first (iteratively): a deeply nested value would overflow JSON.stringify's stack.
  const stack: [unknown, number][] = [[metadata, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > METADATA_MAX_DEPTH) throw new NexusError('INVALID_ARGUMENT', `metadata is nested deeper than ${METADATA_MAX_DEPTH} levels`);
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  if (JSON.stringify(metadata).length > 64 * 1024) throw new NexusError('INVALID_ARGUMENT', 'metadata is larger than 64 KiB');
}

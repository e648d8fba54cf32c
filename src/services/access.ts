/**
 * Identity and access: API keys (stored as SHA-256 hashes, compared in
 * constant time) and ReBAC grants (subject, relation, object). owner includes
 * editor includes viewer; a grant on a directory holds for everything under
 * it. No grant, no access. One check, used by the SDK, the server and the mount.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { NexusError } from '../errors.js';
import type { AccessIdentity, OpContext } from '../engine/credentials.js';
import { isWithin, normalizePath } from '../engine/names.js';
import type { AccessStore } from '../meta/sub-stores.js';
import type { GrantRecord, GrantTuple } from '../meta/types.js';
import { nowNs, nsToIso, type TimeNs } from '../util/time.js';

export type Relation = 'viewer' | 'editor' | 'owner';
export const RELATIONS: readonly Relation[] = ['viewer', 'editor', 'owner'];
const RANK: Record<Relation, number> = { viewer: 1, editor: 2, owner: 3 };

export interface ApiKeyInfo {
  key_id: string;
  subject: string;
  admin: boolean;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

export interface CreatedKey extends ApiKeyInfo {
  /** The secret itself: shown once, never stored. */
  api_key: string;
}

export interface Grant {
  subject_type: string;
  subject_id: string;
  relation: string;
  object_type: string;
  object_id: string;
  created_at: string;
}

const KEY_RE = /^nx_([0-9a-f]{16})_([0-9a-f]{48})$/;
const SUBJECT_RE = /^[a-z][a-z0-9_-]{0,31}:[^\s:][^\s]{0,254}$/;

export function parseSubject(subject: string): { subjectType: string; subjectId: string } {
  if (typeof subject !== 'string' || !SUBJECT_RE.test(subject)) {
    throw new NexusError('INVALID_ARGUMENT', `A subject is type:id, e.g. user:alice@acme-123.com (got ${JSON.stringify(subject)})`);
  }
  const i = subject.indexOf(':');
  return { subjectType: subject.slice(0, i), subjectId: subject.slice(i + 1) };
}

/** '90d', '12h', '30m', '45s' -> milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)([smhd])$/.exec(String(text).trim());
  if (!m) throw new NexusError('INVALID_ARGUMENT', `Durations look like 90d, 12h, 30m or 45s (got ${JSON.stringify(text)})`);
  const ms = Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as 's' | 'm' | 'h' | 'd'];
  if (!Number.isSafeInteger(ms) || ms > 100 * 365 * 86400e3) throw new NexusError('INVALID_ARGUMENT', `Durations go up to 100 years (got ${JSON.stringify(text)})`);
  return ms;
}

const hashSecret = (secret: string) => createHash('sha256').update(secret).digest();

const CACHE_MS = 5000;

export class AccessService {
  /**
   * Every request checks its key and its subject's grants. Both change only
   * through this service (one process owns a data directory), so caching
   * them is exact: any change clears the caches.
   */
  private readonly keyCache = new Map<string, { who: AccessIdentity; expiresAt: TimeNs | null; at: number }>();
  private readonly grantCache = new Map<string, { grants: GrantRecord[]; at: number }>();

  constructor(private readonly store: AccessStore) {}

  private changed(): void {
    this.keyCache.clear();
    this.grantCache.clear();
  }

  private grantsOf(who: AccessIdentity): GrantRecord[] {
    const k = `${who.subjectType}:${who.subjectId}`;
    const now = Date.now();
    const hit = this.grantCache.get(k);
    if (hit && now - hit.at < CACHE_MS) return hit.grants;
    const grants = this.store.grantsOf(who.subjectType, who.subjectId);
    if (this.grantCache.size > 10_000) this.grantCache.clear();
    this.grantCache.set(k, { grants, at: now });
    return grants;
  }

  // ---------------------------------------------------------------- keys

  async createKey(opts: { subject: string; admin?: boolean; expiresIn?: string }): Promise<CreatedKey> {
    const { subjectType, subjectId } = parseSubject(opts.subject);
    const keyId = randomBytes(8).toString('hex');
    const secret = randomBytes(24).toString('hex');
    const createdAt = nowNs();
    const expiresAt = opts.expiresIn ? createdAt + BigInt(parseDuration(opts.expiresIn)) * 1_000_000n : null;
    await this.store.createKey({
      keyId, keyHash: hashSecret(secret).toString('hex'), subjectType, subjectId, isAdmin: !!opts.admin, createdAt, expiresAt,
    });
    return {
      api_key: `nx_${keyId}_${secret}`, key_id: keyId, subject: opts.subject, admin: !!opts.admin,
      created_at: nsToIso(createdAt), expires_at: expiresAt === null ? null : nsToIso(expiresAt), revoked_at: null,
    };
  }

  async listKeys(): Promise<ApiKeyInfo[]> {
    return (await this.store.listKeys()).map((k) => ({
      key_id: k.keyId, subject: `${k.subjectType}:${k.subjectId}`, admin: k.isAdmin, created_at: nsToIso(k.createdAt),
      expires_at: k.expiresAt === null ? null : nsToIso(k.expiresAt), revoked_at: k.revokedAt === null ? null : nsToIso(k.revokedAt),
    }));
  }

  async revokeKey(keyId: string): Promise<void> {
    const id = keyId.startsWith('nx_') ? (KEY_RE.exec(keyId)?.[1] ?? keyId) : keyId;
    await this.store.revokeKey(id, nowNs());
    this.changed();
  }

  /** Who holds this key. Unknown, malformed, revoked and expired keys all get the same answer. */
  authenticate(apiKey: string | undefined): AccessIdentity {
    const fail = () => new NexusError('UNAUTHENTICATED', 'Missing or invalid API key');
    const cached = apiKey ? this.keyCache.get(apiKey) : undefined;
    if (cached && Date.now() - cached.at < CACHE_MS && (cached.expiresAt === null || cached.expiresAt > nowNs())) return cached.who;
    const m = apiKey ? KEY_RE.exec(apiKey) : null;
    if (!m) throw fail();
    const rec = this.store.getKey(m[1]!);
    // Compare hashes in constant time even when the key id is unknown.
    const want = rec ? Buffer.from(rec.keyHash, 'hex') : Buffer.alloc(32);
    const ok = timingSafeEqual(hashSecret(m[2]!), want) && rec !== undefined;
    if (!ok || !rec || rec.revokedAt !== null || (rec.expiresAt !== null && rec.expiresAt <= nowNs())) throw fail();
    const who = { subjectType: rec.subjectType, subjectId: rec.subjectId, isAdmin: rec.isAdmin };
    if (this.keyCache.size > 10_000) this.keyCache.clear();
    this.keyCache.set(apiKey!, { who, expiresAt: rec.expiresAt, at: Date.now() });
    return who;
  }

  // ---------------------------------------------------------------- grants

  /** The strongest relation `who` holds on `path` through any grant on it or a directory above it. */
  relationOn(who: AccessIdentity, path: string): Relation | null {
    let best: Relation | null = null;
    for (const g of this.grantsOf(who)) {
      if (g.objectType !== 'file' || !isWithin(path, g.objectId)) continue;
      const r = g.relation as Relation;
      if (RANK[r] && (!best || RANK[r] > RANK[best])) best = r;
    }
    return best;
  }

  /** relationOn for a call: trusted local callers and admins own everything. */
  relationOn2(ctx: OpContext, path: string): Relation | null {
    if (!ctx.access || ctx.access.isAdmin) return 'owner';
    return this.relationOn(ctx.access, path);
  }

  /** Throw PermissionError unless the caller holds `need` on `path` (trusted local callers and admins always do). */
  require(ctx: OpContext, path: string, need: Relation): void {
    const who = ctx.access;
    if (!who || who.isAdmin) return;
    const have = this.relationOn(who, path);
    if (!have || RANK[have] < RANK[need]) {
      throw new NexusError('PERMISSION_DENIED', `Permission denied: ${path} (${who.subjectType}:${who.subjectId} needs ${need})`);
    }
  }

  /** May the caller see `path` in a listing: it holds a grant there, or the path leads to one of its grants. */
  canSee(ctx: OpContext, path: string): boolean {
    const who = ctx.access;
    if (!who || who.isAdmin) return true;
    return this.grantsOf(who).some(
      (g) => g.objectType === 'file' && (isWithin(path, g.objectId) || isWithin(g.objectId, path)),
    );
  }

  /** Only an admin key (or a trusted local caller). */
  requireAdmin(ctx: OpContext, what: string): void {
    if (ctx.access && !ctx.access.isAdmin) throw new NexusError('PERMISSION_DENIED', `Permission denied: ${what} needs an admin key`);
  }

  async createGrant(t: GrantTuple, ctx: OpContext): Promise<Grant> {
    const tuple = checkTuple(t);
    // Granting needs owner on the object.
    if (tuple.objectType === 'file') this.require(ctx, tuple.objectId, 'owner');
    else this.requireAdmin(ctx, 'granting on non-file objects');
    const at = nowNs();
    await this.store.addGrant(tuple, at);
    this.changed();
    return toGrant({ ...tuple, createdAt: at });
  }

  async deleteGrant(t: GrantTuple, ctx: OpContext): Promise<void> {
    const tuple = checkTuple(t);
    if (tuple.objectType === 'file') this.require(ctx, tuple.objectId, 'owner');
    else this.requireAdmin(ctx, 'revoking grants on non-file objects');
    if (!(await this.store.deleteGrant(tuple))) throw new NexusError('NOT_FOUND', 'No such grant');
    this.changed();
  }

  async listGrants(filter: { subjectType?: string; subjectId?: string; objectType?: string; objectId?: string }, ctx: OpContext): Promise<Grant[]> {
    const all = await this.store.listGrants(filter.objectId ? { ...filter, objectId: normalizePath(filter.objectId) } : filter);
    // A restricted caller sees grants on what it owns, and its own.
    const who = ctx.access;
    const visible = !who || who.isAdmin
      ? all
      : all.filter((g) => (g.subjectType === who.subjectType && g.subjectId === who.subjectId) ||
          (g.objectType === 'file' && this.relationOn(who, g.objectId) === 'owner'));
    return visible.map(toGrant);
  }
}

function checkTuple(t: GrantTuple): GrantTuple {
  for (const [k, v] of Object.entries(t)) {
    if (typeof v !== 'string' || v.length === 0 || v.length > 4096) throw new NexusError('INVALID_ARGUMENT', `Grant field ${k} must be a non-empty string`);
  }
  if (!(RELATIONS as readonly string[]).includes(t.relation)) throw new NexusError('INVALID_ARGUMENT', `Relation must be one of ${RELATIONS.join(', ')}`);
  parseSubject(`${t.subjectType}:${t.subjectId}`);
  return { ...t, objectId: t.objectType === 'file' ? normalizePath(t.objectId) : t.objectId };
}

function toGrant(g: GrantRecord | (GrantTuple & { createdAt: TimeNs })): Grant {
  return {
    subject_type: g.subjectType, subject_id: g.subjectId, relation: g.relation, object_type: g.objectType, object_id: g.objectId,
    created_at: nsToIso(g.createdAt),
  };
}

/** Who is calling: the Unix identity used for permission checks, plus what a commit is tagged with. */
export interface Cred {
  uid: number;
  gid: number;
  /** Supplementary groups (the primary gid need not be repeated). */
  groups: readonly number[];
}

export interface OpContext {
  cred: Cred;
  /** Applied to modes of new nodes when the caller did not apply it already (FUSE does). */
  umask: number;
  /** Principal recorded on committed versions (API key subject, or `uid:<n>` at the mount). */
  principal: string | null;
  /** Agent session the write belongs to. */
  sessionId: string | null;
  /**
   * The authenticated principal whose ReBAC grants limit this call (an API
   * key's subject). Absent: a trusted local caller (embedded SDK, the CLI on
   * its own data directory, a mount without --api-key), limited by Unix
   * permissions only. The engine ignores it; the services layer enforces it.
   */
  access?: AccessIdentity;
}

export interface AccessIdentity {
  subjectType: string;
  subjectId: string;
  /** An admin key may do everything, across tenants. */
  isAdmin: boolean;
}

export const ROOT_CRED: Cred = { uid: 0, gid: 0, groups: [] };

export function contextFor(cred: Cred, extra: Partial<Omit<OpContext, 'cred'>> = {}): OpContext {
  const ctx: OpContext = { cred, umask: extra.umask ?? 0o022, principal: extra.principal ?? null, sessionId: extra.sessionId ?? null };
  if (extra.access) ctx.access = extra.access;
  return ctx;
}

export const ROOT_CONTEXT: OpContext = contextFor(ROOT_CRED);

export function inGroup(cred: Cred, gid: number): boolean {
  return cred.gid === gid || cred.groups.includes(gid);
}

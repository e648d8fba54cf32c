/** API keys (stored hashed) and ReBAC grant tuples on SQLite. */
import type Database from 'better-sqlite3';
import { NexusError } from '../errors.js';
import type { TimeNs } from '../util/time.js';
import type { GrantRecord, GrantTuple, KeyRecord } from './types.js';
import type { AccessStore } from './sub-stores.js';

type Row = Record<string, bigint | string | Buffer | null>;

export class SqliteAccessStore implements AccessStore {
  private readonly s;

  constructor(db: Database.Database) {
    this.s = {
      insertKey: db.prepare(
        'INSERT INTO api_keys (key_id, key_hash, subject_type, subject_id, is_admin, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      getKey: db.prepare('SELECT * FROM api_keys WHERE key_id = ?'),
      listKeys: db.prepare('SELECT * FROM api_keys ORDER BY created_at, key_id'),
      revokeKey: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL'),
      insertGrant: db.prepare(
        `INSERT INTO grants (subject_type, subject_id, relation, object_type, object_id, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING`),
      deleteGrant: db.prepare(
        'DELETE FROM grants WHERE subject_type = ? AND subject_id = ? AND relation = ? AND object_type = ? AND object_id = ?'),
      grantsOf: db.prepare('SELECT * FROM grants WHERE subject_type = ? AND subject_id = ? ORDER BY object_id'),
      allGrants: db.prepare('SELECT * FROM grants ORDER BY object_id, subject_type, subject_id, relation'),
      grantsOn: db.prepare('SELECT * FROM grants WHERE object_type = ? AND object_id = ? ORDER BY subject_type, subject_id, relation'),
    };
  }

  async createKey(k: Omit<KeyRecord, 'revokedAt'>): Promise<void> {
    this.s.insertKey.run(k.keyId, k.keyHash, k.subjectType, k.subjectId, k.isAdmin ? 1 : 0, k.createdAt, k.expiresAt);
  }

  /** Synchronous: every authenticated request asks. */
  getKey(keyId: string): KeyRecord | undefined {
    const r = this.s.getKey.get(keyId) as Row | undefined;
    return r && toKey(r);
  }

  async listKeys(): Promise<KeyRecord[]> {
    return (this.s.listKeys.all() as Row[]).map(toKey);
  }

  async revokeKey(keyId: string, at: TimeNs): Promise<void> {
    if (!this.getKey(keyId)) throw new NexusError('NOT_FOUND', `No such key: ${keyId}`);
    this.s.revokeKey.run(at, keyId);
  }

  async addGrant(g: GrantTuple, at: TimeNs): Promise<void> {
    this.s.insertGrant.run(g.subjectType, g.subjectId, g.relation, g.objectType, g.objectId, at);
  }

  async deleteGrant(g: GrantTuple): Promise<boolean> {
    return this.s.deleteGrant.run(g.subjectType, g.subjectId, g.relation, g.objectType, g.objectId).changes > 0;
  }

  /** Synchronous: checked on every operation of a restricted caller. */
  grantsOf(subjectType: string, subjectId: string): GrantRecord[] {
    return (this.s.grantsOf.all(subjectType, subjectId) as Row[]).map(toGrant);
  }

  async listGrants(filter: { subjectType?: string; subjectId?: string; objectType?: string; objectId?: string } = {}): Promise<GrantRecord[]> {
    let rows: GrantRecord[];
    if (filter.subjectType && filter.subjectId) rows = this.grantsOf(filter.subjectType, filter.subjectId);
    else if (filter.objectType && filter.objectId) rows = (this.s.grantsOn.all(filter.objectType, filter.objectId) as Row[]).map(toGrant);
    else rows = (this.s.allGrants.all() as Row[]).map(toGrant);
    return rows.filter((g) =>
      (!filter.subjectType || g.subjectType === filter.subjectType) && (!filter.subjectId || g.subjectId === filter.subjectId) &&
      (!filter.objectType || g.objectType === filter.objectType) && (!filter.objectId || g.objectId === filter.objectId));
  }
}

function toKey(r: Row): KeyRecord {
  return {
    keyId: r.key_id as string,
    keyHash: r.key_hash as string,
    subjectType: r.subject_type as string,
    subjectId: r.subject_id as string,
    isAdmin: Number(r.is_admin) === 1,
    createdAt: r.created_at as bigint,
    expiresAt: r.expires_at as bigint | null,
    revokedAt: r.revoked_at as bigint | null,
  };
}

function toGrant(r: Row): GrantRecord {
  return {
    subjectType: r.subject_type as string,
    subjectId: r.subject_id as string,
    relation: r.relation as string,
    objectType: r.object_type as string,
    objectId: r.object_id as string,
    createdAt: r.created_at as bigint,
  };
}

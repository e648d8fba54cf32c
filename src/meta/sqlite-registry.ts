/**
 * Workspaces, sessions and session events on SQLite: plain records the
 * services layer names, kept apart from the file tree's tables.
 */
import type Database from 'better-sqlite3';
import { NexusError } from '../errors.js';
import type { TimeNs } from '../util/time.js';
import type { EventAction, SessionEvent, SessionRecord, WorkspaceRecord } from './types.js';
import type { Registry } from './sub-stores.js';

type Row = Record<string, bigint | string | Buffer | null>;

export class SqliteRegistry implements Registry {
  private readonly s;

  constructor(db: Database.Database) {
    this.s = {
      insertWs: db.prepare('INSERT INTO workspaces (path, metadata, created_by, created_at) VALUES (?, ?, ?, ?)'),
      getWs: db.prepare('SELECT * FROM workspaces WHERE path = ?'),
      listWs: db.prepare('SELECT * FROM workspaces ORDER BY path'),
      deleteWs: db.prepare('DELETE FROM workspaces WHERE path = ?'),
      insertSess: db.prepare('INSERT INTO sessions (session_id, agent_id, metadata, created_by, created_at) VALUES (?, ?, ?, ?, ?)'),
      getSess: db.prepare(`SELECT s.*, (SELECT count(DISTINCT ino) FROM events e WHERE e.session_id = s.session_id) AS file_count FROM sessions s WHERE session_id = ?`),
      listSess: db.prepare(`SELECT s.*, (SELECT count(DISTINCT ino) FROM events e WHERE e.session_id = s.session_id) AS file_count FROM sessions s ORDER BY created_at, session_id`),
      listSessAgent: db.prepare(`SELECT s.*, (SELECT count(DISTINCT ino) FROM events e WHERE e.session_id = s.session_id) AS file_count FROM sessions s WHERE agent_id = ? ORDER BY created_at, session_id`),
      activeSess: db.prepare('SELECT 1 FROM sessions WHERE session_id = ? AND ended_at IS NULL'),
      endSess: db.prepare('UPDATE sessions SET ended_at = ? WHERE session_id = ? AND ended_at IS NULL'),
      insertEvent: db.prepare('INSERT INTO events (at, session_id, action, ino, path, path2, vid_before, vid_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      events: db.prepare('SELECT * FROM events WHERE session_id = ? ORDER BY id'),
      lastEventFor: db.prepare('SELECT * FROM events WHERE ino = ? ORDER BY id DESC LIMIT 1'),
    };
  }

  async createWorkspace(rec: WorkspaceRecord): Promise<WorkspaceRecord> {
    try {
      this.s.insertWs.run(rec.path, JSON.stringify(rec.metadata), rec.createdBy, rec.createdAt);
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new NexusError('ALREADY_EXISTS', `Already a workspace: ${rec.path}`);
      throw e;
    }
    return rec;
  }

  async getWorkspace(path: string): Promise<WorkspaceRecord | undefined> {
    const r = this.s.getWs.get(path) as Row | undefined;
    return r && toWorkspace(r);
  }

  async listWorkspaces(): Promise<WorkspaceRecord[]> {
    return (this.s.listWs.all() as Row[]).map(toWorkspace);
  }

  async deleteWorkspace(path: string): Promise<void> {
    if (this.s.deleteWs.run(path).changes === 0) throw new NexusError('NOT_FOUND', `Not a workspace: ${path}`);
  }

  async createSession(rec: Omit<SessionRecord, 'endedAt' | 'fileCount'>): Promise<SessionRecord> {
    this.s.insertSess.run(rec.sessionId, rec.agentId, JSON.stringify(rec.metadata), rec.createdBy, rec.createdAt);
    return { ...rec, endedAt: null, fileCount: 0 };
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const r = this.s.getSess.get(id) as Row | undefined;
    return r && toSession(r);
  }

  async listSessions(agentId?: string): Promise<SessionRecord[]> {
    const rows = (agentId === undefined ? this.s.listSess.all() : this.s.listSessAgent.all(agentId)) as Row[];
    return rows.map(toSession);
  }

  /** Synchronous: the mount asks on its hot path (cached there). */
  sessionActive(id: string): boolean {
    return this.s.activeSess.get(id) !== undefined;
  }

  async endSession(id: string, at: TimeNs): Promise<void> {
    this.s.endSess.run(at, id);
  }

  /** Synchronous on purpose: the engine records events inside its own transactions' neighbourhood. */
  recordEvent(e: Omit<SessionEvent, 'id'>): void {
    this.s.insertEvent.run(e.at, e.sessionId, e.action, e.ino, e.path, e.path2, e.vidBefore, e.vidAfter);
  }

  async sessionEvents(id: string): Promise<SessionEvent[]> {
    return (this.s.events.all(id) as Row[]).map(toEvent);
  }

  async lastEventFor(ino: number): Promise<SessionEvent | undefined> {
    const r = this.s.lastEventFor.get(ino) as Row | undefined;
    return r && toEvent(r);
  }
}

function toWorkspace(r: Row): WorkspaceRecord {
  return { path: r.path as string, metadata: JSON.parse(r.metadata as string), createdBy: r.created_by as string | null, createdAt: r.created_at as bigint };
}

function toSession(r: Row): SessionRecord {
  return {
    sessionId: r.session_id as string,
    agentId: r.agent_id as string,
    metadata: JSON.parse(r.metadata as string),
    createdBy: r.created_by as string | null,
    createdAt: r.created_at as bigint,
    endedAt: r.ended_at as bigint | null,
    fileCount: Number(r.file_count ?? 0n),
  };
}

function toEvent(r: Row): SessionEvent {
  return {
    id: Number(r.id),
    at: r.at as bigint,
    sessionId: r.session_id as string,
    action: r.action as EventAction,
    ino: Number(r.ino),
    path: r.path as string,
    path2: r.path2 as string | null,
    vidBefore: r.vid_before === null ? null : Number(r.vid_before),
    vidAfter: r.vid_after === null ? null : Number(r.vid_after),
  };
}

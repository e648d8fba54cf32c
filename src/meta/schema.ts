/**
 * Versioned SQLite schema. PRAGMA user_version holds the version; migrations
 * run in order on open, each in its own transaction. A data directory written
 * by a newer Nexus is refused rather than guessed at.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: the file tree, content versions, and the tables later services fill.
  `
  CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

  CREATE TABLE inodes (
    ino INTEGER PRIMARY KEY AUTOINCREMENT,
    mode INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    nlink INTEGER NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    alloc INTEGER NOT NULL DEFAULT 0, -- bytes held in blobs (st_blocks)
    rdev INTEGER NOT NULL DEFAULT 0,
    atime INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    ctime INTEGER NOT NULL,
    btime INTEGER NOT NULL,
    vid INTEGER,
    target TEXT,
    jseq INTEGER NOT NULL DEFAULT 0 -- last small-write journal record included in vid
  );
  CREATE INDEX inodes_orphans ON inodes(nlink) WHERE nlink = 0;

  CREATE TABLE dentries (
    parent INTEGER NOT NULL,
    name TEXT NOT NULL,
    ino INTEGER NOT NULL,
    PRIMARY KEY (parent, name)
  ) WITHOUT ROWID;
  CREATE INDEX dentries_ino ON dentries(ino);

  -- One row per committed content of a file. chunks: packed (32-byte sha256, u32 len) entries.
  CREATE TABLE versions (
    vid INTEGER PRIMARY KEY AUTOINCREMENT,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    chunks BLOB NOT NULL,
    created INTEGER NOT NULL,
    principal TEXT,
    session_id TEXT,
    prev_vid INTEGER -- the version this one replaced (session revert)
  );
  CREATE INDEX versions_ino ON versions(ino, vid);
  CREATE INDEX versions_session ON versions(session_id) WHERE session_id IS NOT NULL;

  CREATE TABLE xattrs (
    ino INTEGER NOT NULL,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (ino, name)
  ) WITHOUT ROWID;

  CREATE TABLE workspaces (
    path TEXT PRIMARY KEY,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_by TEXT,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE snapshots (
    snapshot_id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    name TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_by TEXT,
    created_at INTEGER NOT NULL,
    file_count INTEGER NOT NULL,
    total_bytes INTEGER NOT NULL,
    kind TEXT NOT NULL DEFAULT 'manual'
  ) WITHOUT ROWID;
  CREATE INDEX snapshots_path ON snapshots(path, created_at);

  -- The frozen tree: one row per entry, relative path under the snapshot root.
  CREATE TABLE snapshot_entries (
    snapshot_id TEXT NOT NULL,
    rel_path TEXT NOT NULL,
    mode INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    gid INTEGER NOT NULL,
    size INTEGER NOT NULL,
    alloc INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    vid INTEGER,
    target TEXT,
    src_ino INTEGER NOT NULL,
    PRIMARY KEY (snapshot_id, rel_path)
  ) WITHOUT ROWID;

  CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_by TEXT,
    created_at INTEGER NOT NULL,
    ended_at INTEGER
  ) WITHOUT ROWID;

  CREATE TABLE principals (
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (subject_type, subject_id)
  ) WITHOUT ROWID;

  CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
  ) WITHOUT ROWID;

  CREATE TABLE grants (
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    relation TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (subject_type, subject_id, relation, object_type, object_id)
  ) WITHOUT ROWID;
  CREATE INDEX grants_object ON grants(object_type, object_id);

  -- What each agent session did to the tree (only writes made inside a session are recorded).
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    action TEXT NOT NULL, -- create | write | delete | rename
    ino INTEGER NOT NULL,
    path TEXT NOT NULL,
    path2 TEXT,           -- rename destination
    vid_before INTEGER,
    vid_after INTEGER
  );
  CREATE INDEX events_session ON events(session_id, id);

  CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    principal TEXT,
    session_id TEXT,
    action TEXT NOT NULL,
    path TEXT,
    detail TEXT
  );
  `,
  // 2: which attribute names are in use at all. The kernel asks for
  // security.capability before every write(2) at the mount; when no file has
  // one, the answer needs no path walk (src/fuse/adapter.ts).
  `
  CREATE INDEX xattrs_name ON xattrs(name);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * The reserved `/.nexus` tree at the root of every mount: Nexus driven from a
 * plain shell. The adapter routes every path under it here; nothing in the
 * engine knows it exists. It is never part of a snapshot, and it can be
 * written only through its control files:
 *
 *   README        this protocol, for people
 *   ctl           one command per write; read the JSON result on the same descriptor
 *   session       read: the caller's session; write an id: bind the caller and its children
 *   workspaces    JSON lines
 *   sessions      JSON lines
 *   snapshots/    one read-only directory per snapshot
 */
import { NexusError } from '../errors.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, isDir, type TreeEntry } from '../meta/types.js';
import type { Stat } from '../engine/engine.js';
import type { OpContext } from '../engine/credentials.js';
import { normalizePath } from '../engine/names.js';
import type { Services } from '../services/services.js';
import { RESERVED_ROOT } from '../services/reserved.js';
import { SNAPSHOT_ID_RE } from '../services/ids.js';
import { nowNs } from '../util/time.js';
import type { SessionResolver } from './session-resolver.js';

export const CONTROL_ROOT = RESERVED_ROOT;
/** Control nodes get inode numbers far above the store's (glibc hides d_ino 0 entries). */
const CONTROL_INO_BASE = 2 ** 48;
/** Control handles live above engine handles so one number space serves both. */
export const CONTROL_FH_BASE = 0x40000000;
export const MAX_COMMAND_BYTES = 4096;

export const CONTROL_README = `Nexus control files
===================

This directory drives Nexus from a plain shell. It is not part of your files:
it is never in a snapshot, and it cannot be removed, renamed or written except
as below. Paths are absolute paths inside the mount (a path that starts with
the mount point itself is accepted too).

  README        this text
  ctl           write one command; read its JSON result on the same descriptor:
                  exec 3<>/mnt/.nexus/ctl; echo "snapshot /workspace/acme daily" >&3; cat <&3
                A failed command fails the write (EINVAL, ENOENT, EACCES...); the
                reason is what the next read returns (on that descriptor, or on a
                fresh open of ctl by the same user).
                Commands:
                  snapshot <path> [name]            -> {"snapshot_id": ...}
                  restore <path> <snapshot_id>      -> {"pre_restore_snapshot_id": ...}
                  diff <snapshot_id> [snapshot_id]  -> {"added": [...], "modified": [...], "deleted": [...]}
                  workspace create <path> [json]    -> the workspace
                  workspace delete <path>
                  session start <agent_id>          -> {"session_id": ...} (binds the writer)
                  session end <session_id>
  session       cat: the session your writes are tagged with (empty: none)
                echo sess_... > session: tag this shell and everything it starts
                echo none > session: stop tagging
                (NEXUS_SESSION=sess_... in a process's environment does the same)
  workspaces    one JSON object per line
  sessions      one JSON object per line
  snapshots/    snapshots/<snapshot_id>/ is that snapshot's tree, read-only
`;

type Node = 'root' | 'readme' | 'ctl' | 'session' | 'workspaces' | 'sessions' | 'snapshots';
const FILES: Record<string, Node> = {
  '': 'root', README: 'readme', ctl: 'ctl', session: 'session', workspaces: 'workspaces', sessions: 'sessions', snapshots: 'snapshots',
};

export interface ControlCaller {
  ctx: OpContext;
  /** Thread id of the request (FUSE reports threads). */
  tid: number;
}

interface Handle {
  node: Node | 'snapfile';
  /** Content served to reads (generated at open, or the last command's result). */
  data: Buffer;
  /**
   * ctl and session: reads continue from here, not from the kernel's offset
   * (after a 7-byte write, the next read arrives at offset 7); a write resets it.
   */
  cursor: number;
  entry?: { snapshotId: string; entry: TreeEntry };
}

export type Parsed =
  | { kind: 'node'; node: Node }
  | { kind: 'snap'; snapshotId: string; rel: string };

export class ControlFiles {
  private readonly started = nowNs();
  private readonly handles = new Map<number, Handle>();
  private nextFh = CONTROL_FH_BASE;
  /** Last ctl result per uid, for a fresh open after a failed `echo cmd > ctl`. */
  private readonly lastResult = new Map<number, Buffer>();
  /** Stable inode numbers for snapshot entries: (snapshot, path) -> ino. */
  private readonly snapInos = new Map<string, number>();

  constructor(
    private readonly services: Services,
    private readonly sessions: SessionResolver,
    private readonly mountpoint: string,
  ) {}

  static owns(path: string): boolean {
    return path === CONTROL_ROOT || path.startsWith(CONTROL_ROOT + '/');
  }

  static ownsHandle(fh: number): boolean {
    return fh >= CONTROL_FH_BASE;
  }

  parse(path: string): Parsed {
    const rest = path === CONTROL_ROOT ? '' : path.slice(CONTROL_ROOT.length + 1);
    const [head = '', id, ...tail] = rest.split('/');
    if (head === 'snapshots' && id !== undefined) {
      if (!SNAPSHOT_ID_RE.test(id)) throw new NexusError('NOT_FOUND', `No such snapshot: ${id}`);
      return { kind: 'snap', snapshotId: id, rel: tail.join('/') };
    }
    const node = FILES[head];
    if (node === undefined || id !== undefined) throw new NexusError('NOT_FOUND', `No such control file: ${path}`);
    return { kind: 'node', node };
  }

  private stat(ino: number, mode: number, size: number, t = this.started, uid = 0, gid = 0): Stat {
    return {
      ino, mode, nlink: isDir(mode) ? 2 : 1, uid, gid, rdev: 0, size, blocks: Math.ceil(size / 512), blksize: 4096,
      atimeNs: t, mtimeNs: t, ctimeNs: t, btimeNs: t,
    };
  }

  private async snapEntry(snapshotId: string, rel: string, ctx: OpContext): Promise<TreeEntry> {
    const snap = await this.services.meta.tree.getSnapshot(snapshotId);
    if (!snap) throw new NexusError('NOT_FOUND', `No such snapshot: ${snapshotId}`);
    // A snapshot's content is as private as the tree it froze.
    this.services.access.require(ctx, snap.path, 'viewer');
    const e = await this.services.meta.tree.snapshotEntry(snapshotId, rel);
    if (!e) throw new NexusError('NOT_FOUND', `No such file in snapshot ${snapshotId}: ${rel}`);
    return e;
  }

  private snapIno(snapshotId: string, rel: string): number {
    const k = `${snapshotId}/${rel}`;
    let ino = this.snapInos.get(k);
    if (ino === undefined) {
      ino = CONTROL_INO_BASE + 1024 + this.snapInos.size;
      this.snapInos.set(k, ino);
    }
    return ino;
  }

  private snapStat(snapshotId: string, e: TreeEntry): Stat {
    // Read-only view: no write bits.
    return this.stat(this.snapIno(snapshotId, e.relPath), e.mode & ~0o222, e.size, e.mtimeNs, e.uid, e.gid);
  }

  async getattr(path: string, caller: ControlCaller): Promise<Stat> {
    const p = this.parse(path);
    if (p.kind === 'snap') return this.snapStat(p.snapshotId, await this.snapEntry(p.snapshotId, p.rel, caller.ctx));
    const ino = CONTROL_INO_BASE + Object.values(FILES).indexOf(p.node);
    switch (p.node) {
      case 'root':
      case 'snapshots':
        return this.stat(ino, S_IFDIR | 0o555, 0);
      case 'ctl':
      case 'session':
        return this.stat(ino, S_IFREG | 0o666, 0, nowNs());
      case 'readme':
        return this.stat(ino, S_IFREG | 0o444, CONTROL_README.length);
      default:
        // Generated per open (direct_io): size 0, so readers read to EOF rather than stop at a stale size.
        return this.stat(ino, S_IFREG | 0o444, 0, nowNs());
    }
  }

  async readdir(path: string, caller: ControlCaller): Promise<{ names: string[]; stats: Stat[] }> {
    const p = this.parse(path);
    const self = await this.getattr(path, caller);
    const names = ['.', '..'];
    const stats = [self, self];
    if (p.kind === 'snap') {
      const dir = await this.snapEntry(p.snapshotId, p.rel, caller.ctx);
      if (!isDir(dir.mode)) throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${path}`);
      for (const e of await this.services.meta.tree.snapshotChildren(p.snapshotId, p.rel)) {
        names.push(e.relPath.slice(e.relPath.lastIndexOf('/') + 1));
        stats.push(this.snapStat(p.snapshotId, e));
      }
    } else if (p.node === 'root') {
      for (const name of Object.keys(FILES).filter((n) => n !== '')) {
        names.push(name);
        stats.push(await this.getattr(`${CONTROL_ROOT}/${name}`, caller));
      }
    } else if (p.node === 'snapshots') {
      for (const s of await this.services.snapshots.list(undefined, caller.ctx)) {
        names.push(s.snapshot_id);
        stats.push(this.stat(this.snapIno(s.snapshot_id, ''), S_IFDIR | 0o555, 0, nowNs()));
      }
    } else {
      throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${path}`);
    }
    return { names, stats };
  }

  async readlink(path: string, caller: ControlCaller): Promise<string> {
    const p = this.parse(path);
    if (p.kind !== 'snap') throw new NexusError('INVALID_ARGUMENT', 'Not a symbolic link');
    const e = await this.snapEntry(p.snapshotId, p.rel, caller.ctx);
    if ((e.mode & S_IFMT) !== S_IFLNK) throw new NexusError('INVALID_ARGUMENT', 'Not a symbolic link');
    return e.target ?? '';
  }

  private async content(node: Node, caller: ControlCaller): Promise<Buffer> {
    switch (node) {
      case 'readme':
        return Buffer.from(CONTROL_README);
      case 'session': {
        const id = this.sessions.resolve(caller.tid);
        return Buffer.from(id ? `${id}\n` : '');
      }
      case 'workspaces':
        return jsonLines(await this.services.workspaces.list(caller.ctx));
      case 'sessions':
        return jsonLines(await this.services.sessions.list({}, caller.ctx));
      case 'ctl':
        return this.lastResult.get(caller.ctx.cred.uid) ?? Buffer.alloc(0);
      default:
        throw new NexusError('IS_A_DIRECTORY', 'Is a directory');
    }
  }

  /** Open a control file; `directIo`: the kernel must not cache or size-limit it. */
  async open(path: string, flags: number, caller: ControlCaller): Promise<{ fh: number; directIo: boolean }> {
    const p = this.parse(path);
    const writing = (flags & 3) !== 0;
    let h: Handle;
    if (p.kind === 'snap') {
      if (writing) throw new NexusError('READ_ONLY', 'Snapshots are read-only');
      const e = await this.snapEntry(p.snapshotId, p.rel, caller.ctx);
      if (isDir(e.mode)) throw new NexusError('IS_A_DIRECTORY', `Is a directory: ${path}`);
      h = { node: 'snapfile', data: Buffer.alloc(0), cursor: 0, entry: { snapshotId: p.snapshotId, entry: e } };
    } else {
      if (p.node === 'root' || p.node === 'snapshots') {
        if (writing) throw new NexusError('IS_A_DIRECTORY', `Is a directory: ${path}`);
        h = { node: p.node, data: Buffer.alloc(0), cursor: 0 };
      } else {
        if (writing && p.node !== 'ctl' && p.node !== 'session') throw new NexusError('PERMISSION_DENIED', `${path} is read-only`);
        h = { node: p.node, data: await this.content(p.node, caller), cursor: 0 };
      }
    }
    const fh = this.nextFh++;
    this.handles.set(fh, h);
    return { fh, directIo: p.kind === 'node' };
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw new NexusError('BAD_HANDLE');
    return h;
  }

  async read(fh: number, length: number, position: number): Promise<Buffer> {
    const h = this.handle(fh);
    if (h.node === 'snapfile') {
      const e = h.entry!.entry;
      return this.services.engine.readVersion(e.vid, e.size, position, length);
    }
    if (h.node === 'ctl' || h.node === 'session') {
      const out = h.data.subarray(h.cursor, h.cursor + length);
      h.cursor += out.length;
      return out;
    }
    return h.data.subarray(position, position + length);
  }

  async write(fh: number, data: Buffer, caller: ControlCaller): Promise<number> {
    const h = this.handle(fh);
    if (h.node === 'snapfile') throw new NexusError('READ_ONLY', 'Snapshots are read-only');
    if (h.node !== 'ctl' && h.node !== 'session') throw new NexusError('PERMISSION_DENIED', 'Read-only control file');
    try {
      // A refused command (bad bytes, too long) is a result too: readable on this descriptor.
      const text = decodeCommand(data);
      const result = h.node === 'ctl' ? await this.command(text, caller) : await this.bindSession(text, caller);
      h.data = Buffer.from(JSON.stringify({ ok: true, ...result }) + '\n');
    } catch (e) {
      const err = e instanceof NexusError ? e : new NexusError('INTERNAL', String((e as Error)?.message ?? e));
      h.data = Buffer.from(JSON.stringify({ ok: false, error: { code: err.code, message: err.message } }) + '\n');
      h.cursor = 0;
      if (h.node === 'ctl') this.lastResult.set(caller.ctx.cred.uid, h.data);
      throw err;
    }
    if (h.node === 'ctl') this.lastResult.set(caller.ctx.cred.uid, h.data);
    h.cursor = 0;
    return data.length;
  }

  release(fh: number): void {
    this.handles.delete(fh);
  }

  /** Mount paths: absolute inside the mount; a path under the mount point itself is accepted too. */
  private mountPath(p: string | undefined): string {
    if (!p) throw new NexusError('INVALID_ARGUMENT', 'Missing path');
    let path = p;
    if (path === this.mountpoint) path = '/';
    else if (path.startsWith(this.mountpoint + '/')) path = path.slice(this.mountpoint.length);
    if (!path.startsWith('/')) throw new NexusError('INVALID_ARGUMENT', `Paths must be absolute: ${p}`);
    return normalizePath(path);
  }

  private async command(line: string, caller: ControlCaller): Promise<Record<string, unknown>> {
    const words = line.split(/\s+/).filter(Boolean);
    const [verb, ...args] = words;
    const s = this.services;
    const ctx = caller.ctx;
    switch (verb) {
      case 'snapshot': {
        const snap = await s.snapshots.create(this.mountPath(args[0]), { name: args.slice(1).join(' ') || null }, ctx);
        return { snapshot_id: snap.snapshot_id, snapshot: snap };
      }
      case 'restore': {
        if (!args[1]) throw new NexusError('INVALID_ARGUMENT', 'Usage: restore <path> <snapshot_id>');
        const r = await s.snapshots.restore(this.mountPath(args[0]), args[1], ctx);
        return { ...r };
      }
      case 'diff': {
        if (!args[0]) throw new NexusError('INVALID_ARGUMENT', 'Usage: diff <snapshot_id> [snapshot_id]');
        return { ...(await s.snapshots.diff(args[0], args[1], ctx)) };
      }
      case 'workspace': {
        if (args[0] === 'create') {
          const raw = line.slice(line.indexOf(args[1] ?? '\0') + (args[1]?.length ?? 0)).trim();
          let metadata: Record<string, unknown> = {};
          if (raw) {
            try {
              metadata = JSON.parse(raw) as Record<string, unknown>;
            } catch {
              throw new NexusError('INVALID_ARGUMENT', 'workspace create: metadata must be a JSON object');
            }
          }
          return { workspace: await s.workspaces.create(this.mountPath(args[1]), metadata, ctx) };
        }
        if (args[0] === 'delete') {
          await s.workspaces.delete(this.mountPath(args[1]), ctx);
          return { deleted: this.mountPath(args[1]) };
        }
        throw new NexusError('INVALID_ARGUMENT', 'Usage: workspace create <path> [json] | workspace delete <path>');
      }
      case 'session': {
        if (args[0] === 'start') {
          if (!args[1]) throw new NexusError('INVALID_ARGUMENT', 'Usage: session start <agent_id>');
          const sess = await s.sessions.create(args[1], {}, ctx);
          this.sessions.bind(caller.tid, sess.session_id);
          return { session_id: sess.session_id, session: sess };
        }
        if (args[0] === 'end') {
          if (!args[1]) throw new NexusError('INVALID_ARGUMENT', 'Usage: session end <session_id>');
          const sess = await s.sessions.end(args[1], ctx);
          return { session: sess };
        }
        throw new NexusError('INVALID_ARGUMENT', 'Usage: session start <agent_id> | session end <session_id>');
      }
      case undefined:
        throw new NexusError('INVALID_ARGUMENT', 'Empty command (see /.nexus/README)');
      default:
        throw new NexusError('INVALID_ARGUMENT', `Unknown command '${verb}' (see /.nexus/README)`);
    }
  }

  private async bindSession(text: string, caller: ControlCaller): Promise<Record<string, unknown>> {
    const id = text.trim();
    if (id === '' || id === 'none') {
      this.sessions.bind(caller.tid, null);
      return { session_id: null };
    }
    await this.services.sessions.requireActive(id, caller.ctx);
    this.sessions.bind(caller.tid, id);
    return { session_id: id };
  }

  /** Every other mutation of the reserved tree is refused. */
  refuse(path: string): never {
    if (path.startsWith(`${CONTROL_ROOT}/snapshots/`)) throw new NexusError('READ_ONLY', 'Snapshots are read-only');
    throw new NexusError('NOT_PERMITTED', `${path} is reserved for Nexus control files`);
  }

  /** `>` redirection truncates before writing: allowed (a no-op) on the writable control files. */
  truncate(path: string): void {
    const p = this.parse(path);
    if (p.kind === 'node' && (p.node === 'ctl' || p.node === 'session')) return;
    this.refuse(path);
  }
}

function jsonLines(rows: unknown[]): Buffer {
  return Buffer.from(rows.map((r) => JSON.stringify(r) + '\n').join(''));
}

/** One command: UTF-8 text, at most 4 KiB, no control characters but tabs and a final newline. */
function decodeCommand(data: Buffer): string {
  if (data.length > MAX_COMMAND_BYTES) throw new NexusError('INVALID_ARGUMENT', `Command longer than ${MAX_COMMAND_BYTES} bytes`);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(data);
  if (text.includes('\uFFFD') || /[\x00-\x08\x0b-\x1f\x7f]/.test(text)) throw new NexusError('INVALID_ARGUMENT', 'Commands are UTF-8 text');
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length > 1) throw new NexusError('INVALID_ARGUMENT', 'One command per write');
  return lines[0] ?? '';
}

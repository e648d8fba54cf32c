/**
 * The reserved `/.nexus` tree at the root of every mount. The adapter routes
 * every path under it here; nothing in the engine knows it exists. It can be
 * read, never removed, renamed or written except through its control files.
 */
import { NexusError } from '../errors.js';
import { S_IFDIR, S_IFREG } from '../meta/types.js';
import type { Stat } from '../engine/engine.js';
import { nowNs } from '../util/time.js';

import { RESERVED_ROOT } from '../services/reserved.js';

export const CONTROL_ROOT = RESERVED_ROOT;
/** Control nodes get inode numbers far above the store's (glibc hides d_ino 0 entries). */
const CONTROL_INO_BASE = 2 ** 48;
/** Control handles live above engine handles so one number space serves both. */
export const CONTROL_FH_BASE = 0x40000000;

export const CONTROL_README = `Nexus control files
===================

This directory is Nexus's control surface inside the mount. It is not part of
your files: it is never snapshotted, and it cannot be removed or renamed.

  README      this text

More control files (ctl, session, workspaces, sessions, snapshots/) arrive
with workspaces, snapshots and sessions.
`;

interface ControlNode {
  ino: number;
  kind: 'dir' | 'file';
  content?: () => Buffer;
}

export class ControlFiles {
  private readonly started = nowNs();
  private readonly nodes = new Map<string, ControlNode>([
    [CONTROL_ROOT, { ino: CONTROL_INO_BASE, kind: 'dir' }],
    [`${CONTROL_ROOT}/README`, { ino: CONTROL_INO_BASE + 1, kind: 'file', content: () => Buffer.from(CONTROL_README) }],
  ]);
  private readonly open = new Map<number, { path: string; data: Buffer }>();
  private nextFh = CONTROL_FH_BASE;

  static owns(path: string): boolean {
    return path === CONTROL_ROOT || path.startsWith(CONTROL_ROOT + '/');
  }

  static ownsHandle(fh: number): boolean {
    return fh >= CONTROL_FH_BASE;
  }

  private node(path: string): ControlNode {
    const n = this.nodes.get(path);
    if (!n) throw new NexusError('NOT_FOUND', `No such control file: ${path}`);
    return n;
  }

  getattr(path: string): Stat {
    const n = this.node(path);
    const size = n.kind === 'file' ? n.content!().length : 0;
    return {
      ino: n.ino,
      mode: n.kind === 'dir' ? S_IFDIR | 0o555 : S_IFREG | 0o444,
      nlink: n.kind === 'dir' ? 2 : 1,
      uid: 0, gid: 0, rdev: 0, size, blocks: Math.ceil(size / 512), blksize: 4096,
      atimeNs: this.started, mtimeNs: this.started, ctimeNs: this.started, btimeNs: this.started,
    };
  }

  readdir(path: string): string[] {
    if (this.node(path).kind !== 'dir') throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${path}`);
    const prefix = path + '/';
    return [...this.nodes.keys()].filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/')).map((p) => p.slice(prefix.length));
  }

  openFile(path: string, flags: number): number {
    const n = this.node(path);
    if (n.kind === 'dir') throw new NexusError('IS_A_DIRECTORY', `Is a directory: ${path}`);
    if ((flags & 3) !== 0) throw new NexusError('PERMISSION_DENIED', `${path} is read-only`);
    const fh = this.nextFh++;
    this.open.set(fh, { path, data: n.content!() });
    return fh;
  }

  read(fh: number, length: number, position: number): Buffer {
    const h = this.open.get(fh);
    if (!h) throw new NexusError('BAD_HANDLE');
    return h.data.subarray(position, position + length);
  }

  release(fh: number): void {
    this.open.delete(fh);
  }

  /** Every mutation of the reserved tree, other than through a control file, is refused. */
  refuse(path: string): never {
    throw new NexusError('NOT_PERMITTED', `${path} is reserved for Nexus control files`);
  }
}

/**
 * An in-memory model of a POSIX tree (directories, regular files, hard links,
 * open descriptors, unlinked-but-open files), used by the randomized model
 * test to predict what the engine must show, errno included.
 */

export interface MFile {
  kind: 'file';
  data: Buffer;
  nlink: number;
}
export interface MDir {
  kind: 'dir';
  entries: Map<string, number>;
  parent: number;
}
export type MNode = MFile | MDir;

export interface MHandle {
  ino: number;
  writable: boolean;
  readable: boolean;
  append: boolean;
}

export const ROOT = 1;

export class ModelFs {
  readonly nodes = new Map<number, MNode>([[ROOT, { kind: 'dir', entries: new Map(), parent: ROOT }]]);
  readonly handles = new Map<number, MHandle>();
  private nextIno = 2;

  static split(path: string): string[] {
    return path.split('/').filter(Boolean);
  }

  lookup(path: string): number | undefined {
    let cur = ROOT;
    for (const part of ModelFs.split(path)) {
      const n = this.nodes.get(cur);
      if (!n || n.kind !== 'dir') return undefined;
      const next = n.entries.get(part);
      if (next === undefined) return undefined;
      cur = next;
    }
    return cur;
  }

  node(path: string): MNode | undefined {
    const ino = this.lookup(path);
    return ino === undefined ? undefined : this.nodes.get(ino);
  }

  file(ino: number): MFile {
    const n = this.nodes.get(ino);
    if (!n || n.kind !== 'file') throw new Error(`model: ${ino} is not a file`);
    return n;
  }

  dir(ino: number): MDir {
    const n = this.nodes.get(ino);
    if (!n || n.kind !== 'dir') throw new Error(`model: ${ino} is not a dir`);
    return n;
  }

  parentOf(path: string): { dir: MDir; dirIno: number; name: string } {
    const parts = ModelFs.split(path);
    const name = parts.pop()!;
    const dirIno = this.lookup('/' + parts.join('/'))!;
    return { dir: this.dir(dirIno), dirIno, name };
  }

  /** Every path in the tree (directories first, then their content), root excluded. */
  walk(): { path: string; ino: number; node: MNode }[] {
    const out: { path: string; ino: number; node: MNode }[] = [];
    const rec = (dirPath: string, ino: number) => {
      for (const [name, child] of [...this.dir(ino).entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        const p = `${dirPath === '/' ? '' : dirPath}/${name}`;
        const node = this.nodes.get(child)!;
        out.push({ path: p, ino: child, node });
        if (node.kind === 'dir') rec(p, child);
      }
    };
    rec('/', ROOT);
    return out;
  }

  dirNlink(ino: number): number {
    let n = 2;
    for (const c of this.dir(ino).entries.values()) if (this.nodes.get(c)!.kind === 'dir') n++;
    return n;
  }

  /** Is `anc` the directory `ino` or one of its ancestors? */
  isAncestor(anc: number, ino: number): boolean {
    let cur = ino;
    for (;;) {
      if (cur === anc) return true;
      if (cur === ROOT) return false;
      cur = this.dir(cur).parent;
    }
  }

  // ---------------------------------------------------------------- operations (return an errno or null)

  create(path: string): number {
    const { dir, name } = this.parentOf(path);
    if (dir.entries.has(name)) throw new Error('model: create over an existing name');
    const ino = this.nextIno++;
    this.nodes.set(ino, { kind: 'file', data: Buffer.alloc(0), nlink: 1 });
    dir.entries.set(name, ino);
    return ino;
  }

  mkdir(path: string): string | null {
    const { dir, dirIno, name } = this.parentOf(path);
    if (dir.entries.has(name)) return 'EEXIST';
    const ino = this.nextIno++;
    this.nodes.set(ino, { kind: 'dir', entries: new Map(), parent: dirIno });
    dir.entries.set(name, ino);
    return null;
  }

  rmdir(path: string): string | null {
    const { dir, name } = this.parentOf(path);
    const ino = dir.entries.get(name);
    if (ino === undefined) return 'ENOENT';
    const n = this.nodes.get(ino)!;
    if (n.kind !== 'dir') return 'ENOTDIR';
    if (n.entries.size) return 'ENOTEMPTY';
    dir.entries.delete(name);
    this.nodes.delete(ino);
    return null;
  }

  unlink(path: string): string | null {
    const { dir, name } = this.parentOf(path);
    const ino = dir.entries.get(name);
    if (ino === undefined) return 'ENOENT';
    const n = this.nodes.get(ino)!;
    if (n.kind === 'dir') return 'EISDIR';
    dir.entries.delete(name);
    n.nlink--;
    this.maybeDrop(ino);
    return null;
  }

  link(from: string, to: string): string | null {
    const ino = this.lookup(from);
    if (ino === undefined) return 'ENOENT';
    const n = this.nodes.get(ino)!;
    if (n.kind === 'dir') return 'EPERM';
    const { dir, name } = this.parentOf(to);
    if (dir.entries.has(name)) return 'EEXIST';
    dir.entries.set(name, ino);
    n.nlink++;
    return null;
  }

  rename(from: string, to: string): string | null {
    const src = this.parentOf(from);
    const srcIno = src.dir.entries.get(src.name);
    if (srcIno === undefined) return 'ENOENT';
    const dst = this.parentOf(to);
    const srcNode = this.nodes.get(srcIno)!;
    if (srcNode.kind === 'dir' && this.isAncestor(srcIno, dst.dirIno)) return 'EINVAL';
    const dstIno = dst.dir.entries.get(dst.name);
    if (dstIno !== undefined) {
      if (dstIno === srcIno) return null;
      const dstNode = this.nodes.get(dstIno)!;
      if (srcNode.kind === 'dir' && dstNode.kind !== 'dir') return 'ENOTDIR';
      if (srcNode.kind !== 'dir' && dstNode.kind === 'dir') return 'EISDIR';
      if (dstNode.kind === 'dir') {
        if (dstNode.entries.size) return 'ENOTEMPTY';
        this.nodes.delete(dstIno);
      } else {
        dstNode.nlink--;
        dst.dir.entries.delete(dst.name);
        this.maybeDrop(dstIno);
      }
    }
    src.dir.entries.delete(src.name);
    dst.dir.entries.set(dst.name, srcIno);
    if (srcNode.kind === 'dir') srcNode.parent = dst.dirIno;
    return null;
  }

  open(fd: number, ino: number, h: Omit<MHandle, 'ino'>): void {
    this.handles.set(fd, { ino, ...h });
  }

  close(fd: number): void {
    const h = this.handles.get(fd)!;
    this.handles.delete(fd);
    this.maybeDrop(h.ino);
  }

  write(ino: number, at: number, data: Buffer): void {
    const f = this.file(ino);
    const end = at + data.length;
    if (end > f.data.length) {
      const grown = Buffer.alloc(end);
      f.data.copy(grown);
      f.data = grown;
    }
    data.copy(f.data, at);
  }

  truncate(ino: number, size: number): void {
    const f = this.file(ino);
    if (size <= f.data.length) f.data = Buffer.from(f.data.subarray(0, size));
    else {
      const grown = Buffer.alloc(size);
      f.data.copy(grown);
      f.data = grown;
    }
  }

  private maybeDrop(ino: number): void {
    const n = this.nodes.get(ino);
    if (!n || n.kind !== 'file' || n.nlink > 0) return;
    for (const h of this.handles.values()) if (h.ino === ino) return;
    this.nodes.delete(ino);
  }
}

/** mulberry32: small, seedable, good enough for test inputs. */
export function rng(seed: number): { next(): number; int(lo: number, hi: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    /** Integer in [lo, hi] inclusive. */
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}

/** Whole-file operations the SDK, CLI and server name: write, read, list, mkdir, delete, rename, stat. */
import { NexusError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { OpContext } from '../engine/credentials.js';
import { dirname, normalizePath } from '../engine/names.js';
import { isDir } from '../meta/types.js';
import type { MetaStore } from '../meta/meta-store.js';
import { toFileInfo, type FileInfo } from './records.js';
import { refuseReserved } from './reserved.js';
import type { AccessService, Relation } from './access.js';

export interface ListOptions {
  recursive?: boolean;
  /** Only files this agent session created or wrote. */
  sessionId?: string;
}

const PAGE = 1000;

export class FileService {
  constructor(
    private readonly engine: Engine,
    private readonly meta: MetaStore,
    private readonly access: AccessService,
  ) {}

  /**
   * The access check for a path: the caller needs `need` on the path as
   * written and on where it really leads (symlinks followed; for a path that
   * does not exist yet, its parent's real path). Returns the normalized path.
   */
  async guard(path: string, ctx: OpContext, need: Relation, opts: { followLast?: boolean } = {}): Promise<string> {
    const p = normalizePath(path);
    if (!ctx.access || ctx.access.isAdmin) return p;
    this.access.require(ctx, p, need);
    const real = await this.realpathOf(p, ctx, opts.followLast ?? true);
    if (real !== p) this.access.require(ctx, real, need);
    return p;
  }

  /**
   * Where a path really leads: the nearest existing ancestor's realpath with
   * the missing rest appended (so `mkdir -p` through a link is seen for what
   * it is). `followLast: false` for operations on the name itself (unlink,
   * rename): a link is removed or moved, never its target.
   */
  private async realpathOf(p: string, ctx: OpContext, followLast: boolean): Promise<string> {
    const parts = p.split('/').filter(Boolean);
    const last = followLast ? [] : parts.splice(-1);
    for (let keep = parts.length; keep >= 0; keep--) {
      const head = '/' + parts.slice(0, keep).join('/');
      try {
        const real = await this.engine.realpath(head, ctx);
        const rest = [...parts.slice(keep), ...last];
        return rest.length ? `${real === '/' ? '' : real}/${rest.join('/')}` : real;
      } catch (e) {
        if (!(e instanceof NexusError) || e.code !== 'NOT_FOUND') throw e;
      }
    }
    return p;
  }

  async write(path: string, data: Uint8Array, ctx: OpContext, opts: { parents?: boolean } = {}): Promise<FileInfo> {
    const p = await this.guard(path, ctx, 'editor');
    refuseReserved(p);
    if (opts.parents) await this.engine.mkdir(dirname(p), 0o777, ctx, { parents: true });
    return toFileInfo(p, await this.engine.writeFile(p, data, ctx));
  }

  async read(path: string, ctx: OpContext): Promise<Buffer> {
    return this.engine.readFile(await this.guard(path, ctx, 'viewer'), ctx);
  }

  async mkdir(path: string, ctx: OpContext, opts: { parents?: boolean } = {}): Promise<FileInfo> {
    const p = await this.guard(path, ctx, 'editor');
    refuseReserved(p);
    return toFileInfo(p, await this.engine.mkdir(p, 0o777, ctx, { parents: !!opts.parents }));
  }

  async stat(path: string, ctx: OpContext): Promise<FileInfo> {
    const p = await this.guard(path, ctx, 'viewer');
    return toFileInfo(p, await this.engine.getattr(p, ctx));
  }

  async exists(path: string, ctx: OpContext): Promise<boolean> {
    try {
      await this.engine.getattr(await this.guard(path, ctx, 'viewer'), ctx);
      return true;
    } catch (e) {
      if (e instanceof NexusError && e.code === 'NOT_FOUND') return false;
      throw e;
    }
  }

  async rename(from: string, to: string, ctx: OpContext): Promise<void> {
    const src = await this.guard(from, ctx, 'editor', { followLast: false });
    const dst = await this.guard(to, ctx, 'editor', { followLast: false });
    refuseReserved(src);
    refuseReserved(dst);
    await this.engine.rename(src, dst, ctx);
  }

  /** Delete a file or symlink; a directory needs `recursive` unless it is empty. */
  async delete(path: string, ctx: OpContext, opts: { recursive?: boolean } = {}): Promise<void> {
    const p = await this.guard(path, ctx, 'editor', { followLast: false });
    const st = await this.engine.getattr(p, ctx);
    if (!isDir(st.mode)) return void (await this.engine.unlink(p, ctx));
    if (opts.recursive) {
      for (;;) {
        const page = await this.engine.readdir(p, ctx, { limit: PAGE });
        if (page.length === 0) break;
        for (const e of page) await this.delete(`${p === '/' ? '' : p}/${e.name}`, ctx, opts);
      }
    }
    if (p !== '/') await this.engine.rmdir(p, ctx);
  }

  async list(path: string, ctx: OpContext, opts: ListOptions = {}): Promise<FileInfo[]> {
    const root = normalizePath(path);
    // A restricted caller lists what it holds a grant on, and the directories leading to its grants.
    const restricted = !!ctx.access && !ctx.access.isAdmin;
    const full = !restricted || this.access.relationOn(ctx.access!, root) !== null;
    if (full) await this.guard(root, ctx, 'viewer');
    else if (!this.access.canSee(ctx, root)) this.access.require(ctx, root, 'viewer');
    const st = await this.engine.getattr(root, ctx, true);
    if (!isDir(st.mode)) throw new NexusError('NOT_A_DIRECTORY', `Not a directory: ${root}`);
    let only: Set<number> | undefined;
    if (opts.sessionId) {
      only = new Set((await this.meta.registry.sessionEvents(opts.sessionId)).filter((e) => e.action === 'create' || e.action === 'write').map((e) => e.ino));
    }
    const out: FileInfo[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (let after: string | undefined; ; ) {
        const page = await this.engine.readdir(dir, ctx, { after, limit: PAGE });
        for (const e of page) {
          const p = `${dir === '/' ? '' : dir}/${e.name}`;
          const dirEntry = isDir(e.stat.mode);
          if (restricted && !this.access.canSee(ctx, p)) continue;
          if (!only || (!dirEntry && only.has(e.stat.ino))) out.push(toFileInfo(p, e.stat));
          if (dirEntry && opts.recursive) await walk(p);
        }
        if (page.length < PAGE) break;
        after = page[page.length - 1]!.name;
      }
    };
    await walk(root);
    return out;
  }
}

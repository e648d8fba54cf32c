/** Shared pieces of the conformance suite: per-test file systems, tree snapshots, errno checks. */
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { CHUNK_SIZE } from '../../src/engine/dirty-file.js';
import type { FsAdapter, FsUnderTest } from './fs-under-test.js';

export { CHUNK_SIZE };
export const MiB = 1 << 20;

/**
 * A file system of `adapter` for every test; returns a getter. By default each
 * test gets a fresh one. `reuse`: one per describe block, emptied before each
 * test (for many small cases, where creating a data directory would dominate);
 * if emptying fails, a fresh one replaces it.
 */
export function useFs(adapter: FsAdapter, opts: { reuse?: boolean } = {}): () => FsUnderTest {
  let fs: FsUnderTest | undefined;
  if (opts.reuse) {
    beforeAll(async () => {
      fs = await adapter.create();
    });
    beforeEach(async () => {
      try {
        await emptyTree(fs!);
      } catch {
        await fs?.dispose().catch(() => {});
        fs = await adapter.create();
      }
    });
    afterAll(async () => {
      await fs?.dispose();
      fs = undefined;
    });
  } else {
    beforeEach(async () => {
      fs = await adapter.create();
    });
    afterEach(async () => {
      await fs?.dispose();
      fs = undefined;
    });
  }
  return () => {
    if (!fs) throw new Error('no file system (outside a test?)');
    return fs;
  };
}

/** Remove everything under the root. */
export async function emptyTree(fs: FsUnderTest, dir = '/'): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
    const st = await fs.lstat(p);
    if (st.type === 'dir') {
      await fs.chmod(p, 0o755);
      await emptyTree(fs, p);
      await fs.rmdir(p);
    } else {
      await fs.unlink(p);
    }
  }
  if ((await fs.readdir(dir)).length) throw new Error(`could not empty ${dir}`);
}

/** Expect `p` to fail with errno `code`. */
export async function expectErrno(p: Promise<unknown>, code: string): Promise<void> {
  let result: unknown;
  try {
    result = await p;
  } catch (e) {
    const got = (e as { code?: unknown }).code;
    if (got !== code) {
      throw new Error(`expected ${code}, got ${String(got)} (${(e as Error)?.message ?? String(e)})`);
    }
    return;
  }
  throw new Error(`expected ${code}, but the call succeeded${result === undefined ? '' : ` with ${inspect(result, { breakLength: Infinity })}`}`);
}

/** Deterministic, position-dependent bytes (so misplaced data shows). */
export function pattern(len: number, seed = 1): Buffer {
  const b = Buffer.alloc(len);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

export function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex').slice(0, 16);
}

/** Compare buffers without dumping megabytes on failure. */
export function expectBytes(got: Buffer, want: Buffer, what = 'content'): void {
  if (got.equals(want)) return;
  let i = 0;
  while (i < Math.min(got.length, want.length) && got[i] === want[i]) i++;
  throw new Error(`${what} differs: length ${got.length} vs expected ${want.length}; first difference at byte ${i} (got ${got[i]}, want ${want[i]})`);
}

export interface TreeEntry {
  type: string;
  perm: number;
  nlink: number;
  uid: number;
  gid: number;
  size?: number;
  content?: string;
  target?: string;
  entries?: string[];
}

/** Everything observable about a tree except times and inode numbers (and directory sizes, which differ by design). */
export async function snapshotTree(fs: FsUnderTest, dir = '/'): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  const walk = async (path: string) => {
    const st = await fs.lstat(path);
    const e: TreeEntry = { type: st.type, perm: st.perm, nlink: st.nlink, uid: st.uid, gid: st.gid };
    if (st.type === 'file') {
      e.size = st.size;
      e.content = sha(await fs.readFile(path));
    } else if (st.type === 'symlink') {
      e.size = st.size;
      e.target = await fs.readlink(path);
    } else if (st.type === 'dir') {
      e.entries = await fs.readdir(path);
      for (const name of e.entries) await walk(path === '/' ? `/${name}` : `${path}/${name}`);
    }
    out[path] = e;
  };
  await walk(dir);
  return out;
}

/** Run an op that must fail with `code` and must leave the tree exactly as it was. */
export async function expectFailsCleanly(fs: FsUnderTest, op: () => Promise<unknown>, code: string, label = ''): Promise<void> {
  const before = await snapshotTree(fs);
  try {
    await expectErrno(op(), code);
  } catch (e) {
    throw new Error(`${label}: ${(e as Error).message}`);
  }
  const after = await snapshotTree(fs);
  expect(after, `${label}: tree changed by a failed op`).toEqual(before);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

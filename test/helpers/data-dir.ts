/** Helpers for tests that work on a data directory directly. */
import { afterEach, beforeEach } from 'vitest';
import { mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT_CONTEXT } from '../../src/engine/credentials.js';
import { openDataDir, type OpenedDataDir } from '../../src/engine/data-dir.js';
import { openServices } from '../../src/services/services.js';
import type { ChunkRef } from '../../src/meta/types.js';

export async function tempDir(prefix = 'nx-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * A temporary directory for each test of the calling file (registers
 * beforeEach/afterEach), opened with `openIn`: `path` is fresh for every test;
 * `open()` opens it (closing an earlier opening first), `close()` closes it;
 * after each test whatever is open is closed and the directory removed.
 */
function openedPerTest<T extends { close(): Promise<void> }>(prefix: string, openIn: (dir: string) => Promise<T>): { readonly path: string; open(): Promise<T>; close(): Promise<void> } {
  let dir = '';
  let opened: T | undefined;
  const close = async () => {
    const o = opened;
    opened = undefined;
    await o?.close();
  };
  beforeEach(async () => {
    dir = await tempDir(prefix);
  });
  afterEach(async () => {
    await close();
    await removeDir(dir);
  });
  return {
    get path() {
      return dir;
    },
    async open() {
      await close();
      opened = await openIn(dir);
      return opened;
    },
    close,
  };
}

/** A data directory (the engine and its stores) for each test: see openedPerTest. */
export const dataDirPerTest = (prefix: string) => openedPerTest(prefix, (dir) => openDataDir(dir));

/** The services over a data directory for each test: see openedPerTest. */
export const servicesPerTest = (prefix: string) => openedPerTest(prefix, (dir) => openServices(dir));

/** Open a fresh data directory; the caller closes it and removes `dataDir`. */
export async function freshDataDir(): Promise<OpenedDataDir> {
  return openDataDir(await tempDir('nx-dd-'));
}

export async function blobIds(d: OpenedDataDir): Promise<string[]> {
  const ids: string[] = [];
  for await (const id of d.blobs.list()) ids.push(id);
  return ids.sort();
}

/** The committed chunk list of the file at `path`. */
export async function chunksOf(d: OpenedDataDir, path: string): Promise<ChunkRef[]> {
  const st = await d.engine.getattr(path, ROOT_CONTEXT, true);
  const node = await d.meta.getInode(st.ino);
  if (!node || node.vid === null) return [];
  const v = await d.meta.getVersion(node.vid);
  return v?.chunks ?? [];
}

/** Open file descriptors of this process (Linux): fd -> what it points at. */
export async function openFds(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const fd of await readdir('/proc/self/fd')) {
    out.set(fd, await readlink(`/proc/self/fd/${fd}`).catch(() => '?'));
  }
  return out;
}

/** Descriptors open now that were not in `before`, as their targets (the readdir's own fd excluded). */
export async function newFds(before: Map<string, string>): Promise<string[]> {
  const now = await openFds();
  return [...now]
    .filter(([fd, target]) => before.get(fd) !== target && !target.startsWith('/proc/'))
    .map(([fd, target]) => `${fd} -> ${target}`);
}

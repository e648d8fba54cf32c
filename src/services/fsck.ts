/**
 * `nexus fsck`: meta.db passes SQLite's own check; every referenced blob
 * exists and matches its hash; the tree is a tree (no dangling entries, no
 * unreachable inodes, right link counts); snapshots and files name versions
 * that exist. Each finding names the files it concerns (path and workspace).
 * `repair` fixes counts and dangling rows, and moves what cannot be fixed
 * (unreachable inodes, files whose content is damaged or gone) into
 * /lost+found rather than deleting it or leaving it looking sound in place.
 */
import type { Engine } from '../engine/engine.js';
import { ROOT_CONTEXT } from '../engine/credentials.js';
import type { BlobStore } from '../blobs/blob-store.js';
import type { MetaStore } from '../meta/meta-store.js';
import type { TreeProblem } from '../meta/types.js';

/** A file a finding concerns. */
export interface FileRef {
  ino: number;
  /** Undefined when the inode has no name left in the tree. */
  path?: string;
  /** The workspace holding `path`, if any. */
  workspace?: string;
}

/** A missing or corrupt blob and who uses it. */
export interface DamagedBlob {
  blob: string;
  state: 'missing' | 'corrupt';
  /** Files whose current content needs it. */
  files: FileRef[];
  /** Snapshot entries that need it (the path is the file's path in the snapshot). */
  snapshots: { snapshot_id: string; path: string }[];
}

export interface FsckReport {
  referencedBlobs: number;
  storedBlobs: number;
  missing: string[];
  corrupt: string[];
  /** The files and snapshots each missing or corrupt blob belongs to. */
  damaged: DamagedBlob[];
  /** Stored but referenced by nothing: harmless, reclaimed by gc. */
  unreferenced: number;
  problems: TreeProblem[];
  /** What --repair did. */
  repaired: string[];
  ok: boolean;
}

export const LOST_FOUND = '/lost+found';

/** Path and workspace of inodes, looked up once per report. */
async function locator(meta: MetaStore): Promise<(ino: number) => Promise<FileRef>> {
  const workspaces = (await meta.registry.listWorkspaces()).map((w) => w.path).sort((a, b) => b.length - a.length);
  return async (ino) => {
    let path: string | undefined;
    try {
      path = await meta.pathOf(ino);
    } catch {
      path = undefined; // a cycle: the tree report says so
    }
    const workspace = path === undefined ? undefined : workspaces.find((w) => path === w || path!.startsWith(w === '/' ? '/' : `${w}/`));
    return { ino, ...(path !== undefined ? { path } : {}), ...(workspace !== undefined ? { workspace } : {}) };
  };
}

export async function fsck(
  meta: MetaStore, blobs: BlobStore, onProgress?: (done: number, total: number) => void,
  opts: { repair?: boolean; engine?: Engine } = {},
): Promise<FsckReport> {
  const check = async () => {
    // Rows read from damaged pages cannot be trusted: SQLite's check comes first.
    const dbProblems = await meta.fsck.checkDatabase();
    const referenced = await meta.referencedBlobs();
    const missing: string[] = [];
    const corrupt: string[] = [];
    let done = 0;
    for (const id of referenced) {
      const r = await blobs.verify(id);
      if (r === 'missing') missing.push(id);
      else if (r === 'corrupt') corrupt.push(id);
      onProgress?.(++done, referenced.size);
    }
    let stored = 0;
    let unreferenced = 0;
    for await (const id of blobs.list()) {
      stored++;
      if (!referenced.has(id)) unreferenced++;
    }
    const locate = await locator(meta);
    const damaged: DamagedBlob[] = [];
    if (missing.length || corrupt.length) {
      const users = await meta.fsck.blobUsers(new Set([...missing, ...corrupt]));
      for (const [ids, state] of [[missing, 'missing'], [corrupt, 'corrupt']] as const) {
        for (const blob of ids) {
          const u = users.get(blob)!;
          damaged.push({ blob, state, files: await Promise.all(u.inodes.map(locate)), snapshots: u.snapshots });
        }
      }
    }
    const problems: TreeProblem[] = [...dbProblems];
    for (const p of await meta.fsck.checkTree()) {
      // An orphan has no path by definition; a dangling entry's is the entry's own.
      const { ino: _, ...where } = p.ino === undefined || p.kind === 'orphan' ? { ino: 0 } : await locate(p.ino);
      problems.push({ ...p, ...where });
    }
    return { referencedBlobs: referenced.size, storedBlobs: stored, missing, corrupt, damaged, unreferenced, problems };
  };

  const first = await check();
  const repaired: string[] = [];
  // Repairs trust the rows; on damaged pages they could move sound files aside.
  const dbDamaged = first.problems.some((p) => p.kind === 'database');
  if (opts.repair && !dbDamaged && (first.missing.length || first.corrupt.length || first.problems.length)) {
    if (!opts.engine) throw new Error('fsck --repair needs the engine');
    const engine = opts.engine;
    // What is cut off from the root, and what names a lost version, found
    // before counts change (a recount can zero a detached file's nlink and
    // drops the dangling version reference).
    const orphans = await meta.fsck.orphans();
    const versionless = await meta.fsck.inodesWithMissingVersion();
    const versionlessPaths = new Map(await Promise.all(versionless.map(async (ino) => [ino, await meta.pathOf(ino).catch(() => undefined)] as const)));
    await meta.fsck.repairCounts();
    repaired.push('link counts recomputed; dangling entries and version references dropped');
    const lostFound = await engine.mkdir(LOST_FOUND, 0o700, ROOT_CONTEXT, { parents: true });
    for (const ino of orphans) {
      if (ino === lostFound.ino) continue;
      await meta.fsck.linkInto(lostFound.ino, ino, `#${ino}`);
      repaired.push(`unreachable inode ${ino} -> ${LOST_FOUND}/#${ino}`);
    }
    const moved = new Set<number>();
    // Left in place, a file whose content is gone would pass for a sound (empty) one.
    for (const ino of versionless) {
      const was = versionlessPaths.get(ino) ?? (await meta.pathOf(ino)) ?? `inode ${ino}`;
      await meta.fsck.linkInto(lostFound.ino, ino, `#${ino}-damaged`);
      moved.add(ino);
      repaired.push(`${was} has lost its content (its version row is gone) -> ${LOST_FOUND}/#${ino}-damaged`);
    }
    const damaged = await meta.fsck.inodesUsingBlobs(new Set([...first.missing, ...first.corrupt]));
    for (const ino of damaged) {
      if (moved.has(ino)) continue;
      const was = (await meta.pathOf(ino)) ?? `inode ${ino}`;
      await meta.fsck.linkInto(lostFound.ino, ino, `#${ino}-damaged`);
      repaired.push(`${was} has missing or corrupt content -> ${LOST_FOUND}/#${ino}-damaged`);
    }
    await meta.fsck.repairCounts();
  }
  const final = repaired.length ? await check() : first;
  // Damage that was moved aside is still damage in the blobs' sense, but the tree is sound.
  const ok = final.problems.length === 0 && (repaired.length ? true : final.missing.length === 0 && final.corrupt.length === 0);
  return { ...final, repaired, ok };
}

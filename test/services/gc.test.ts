/**
 * collectGarbage at the service level: a dry run predicts the real run, bad
 * retention options are refused, a session-style restore of a version a
 * running collection has just pruned keeps its blobs, and the full-disk
 * reclaimer coalesces calls made during a run.
 */
import { describe, it, expect, beforeEach } from 'vitest';
import type { OpenedServices } from '../../src/services/services.js';
import { servicesPerTest } from '../helpers/data-dir.js';
import { ROOT_CONTEXT } from '../../src/engine/credentials.js';
import { coalescedCollector, collectGarbage } from '../../src/services/gc.js';

let d: OpenedServices;
const ctx = ROOT_CONTEXT;
const eager = { keepVersions: 0, keepAge: '0s' };

const services = servicesPerTest('nx-gcsvc-');
beforeEach(async () => {
  d = await services.open();
});

const fill = (tag: string, n: number) => Buffer.alloc(n, tag);

async function inoOf(path: string): Promise<number> {
  return (await d.engine.getattr(path, ctx, true)).ino;
}

describe('collectGarbage', () => {
  it('a dry run reports what the real run then does, deleted files and shared blobs included, and changes nothing', async () => {
    await d.engine.mkdir('/a', 0o755, ctx);
    for (let v = 1; v <= 3; v++) await d.engine.writeFile('/a/f', fill(`f${v}`, 10_000 * v), ctx);
    await d.engine.writeFile('/a/gone', fill('g', 7_000), ctx);
    await d.engine.writeFile('/a/shared-1', fill('s', 9_000), ctx);
    await d.engine.writeFile('/a/shared-2', fill('s', 9_000), ctx);
    await d.engine.unlink('/a/gone', ctx);
    await d.engine.unlink('/a/shared-1', ctx);
    const dry = await collectGarbage(d.engine, d.meta, d.blobs, { ...eager, dryRun: true });
    const again = await collectGarbage(d.engine, d.meta, d.blobs, { ...eager, dryRun: true });
    const real = await collectGarbage(d.engine, d.meta, d.blobs, eager);
    expect(again).toEqual(dry);
    expect({ ...dry, dry_run: false }).toEqual(real);
    expect(real).toMatchObject({ pruned_versions: 4, deleted_blobs: 3, freed_bytes: 10_000 + 20_000 + 7_000 });
    expect((await d.engine.readFile('/a/shared-2', ctx)).equals(fill('s', 9_000))).toBe(true);
  });

  it('refuses a --keep-versions that is not a whole number of 0 or more, and a bad --keep-age', async () => {
    for (const keepVersions of [-1, 1.5, Number.NaN]) {
      await expect(collectGarbage(d.engine, d.meta, d.blobs, { keepVersions })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    await expect(collectGarbage(d.engine, d.meta, d.blobs, { keepAge: 'soon' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('a restore of a version the running collection has just pruned keeps its blobs', async () => {
    await d.engine.writeFile('/f', fill('1', 30_000), ctx);
    const ino = await inoOf('/f');
    const v1 = (await d.meta.getInode(ino))!.vid!;
    await d.engine.writeFile('/f', fill('2', 31_000), ctx);
    // The collection begins, then waits before pruning ...
    let letPrune!: () => void;
    const prune = d.meta.pruneVersions.bind(d.meta);
    d.meta.pruneVersions = async (o) => {
      await new Promise<void>((r) => (letPrune = r));
      return prune(o);
    };
    let marked!: () => void;
    const atList = new Promise<void>((r) => (marked = r));
    const list = d.blobs.list.bind(d.blobs);
    d.blobs.list = async function* () {
      marked();
      yield* list();
    };
    const gc = collectGarbage(d.engine, d.meta, d.blobs, eager);
    while (!letPrune) await new Promise((r) => setTimeout(r, 5));
    // ... the restore reads version 1, then the collection prunes it and marks, then the restore commits.
    const commit = d.meta.commitContent.bind(d.meta);
    d.meta.commitContent = async (i, c, o) => {
      letPrune();
      await atList;
      return commit(i, c, o);
    };
    await d.engine.restoreContent(ino, v1, ctx);
    d.meta.commitContent = commit;
    const r = await gc;
    expect(r.pruned_versions).toBeGreaterThan(0);
    expect((await d.engine.readFile('/f', ctx)).equals(fill('1', 30_000))).toBe(true);
  });
});

describe('coalescedCollector (the full-disk reclaimer)', () => {
  it('runs one collection at a time; calls made during a run share the one next run', async () => {
    let running = 0;
    let most = 0;
    let runs = 0;
    const list = d.blobs.list.bind(d.blobs);
    d.blobs.list = async function* () {
      runs++;
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 20));
      try {
        yield* list();
      } finally {
        running--;
      }
    };
    const reclaim = coalescedCollector(d.engine, d.meta, d.blobs);
    const first = reclaim();
    const during = [reclaim(), reclaim(), reclaim()];
    await Promise.all([first, ...during]);
    expect({ runs, most }).toEqual({ runs: 2, most: 1 });
    expect(during[0]).toBe(during[2]);
  });
});

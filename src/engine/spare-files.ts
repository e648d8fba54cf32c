/**
 * Empty files made ahead of need in the staging directory, so a writer that
 * starts a new chunk renames one into place (~20 µs) instead of creating a
 * file on its critical path (~300-400 µs on the development VM's ext4, see
 * native-notes/benchmarks.md).
 *
 * A spare is named `spare.<random>`: recovery removes every staging file it
 * does not recognise, so a spare left by a crash is dropped, never mistaken
 * for staged data. A spare renamed to a chunk's name is exactly an empty,
 * freshly created staging file.
 */
import { promises as fsp, renameSync, rmSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Enough for a sequential writer (one chunk at a time) and a little more. */
const KEEP = 2;

interface Spare {
  path: string;
  fh: FileHandle;
}

export class SpareFiles {
  private readonly ready: Spare[] = [];
  private making: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly dir: string) {}

  /**
   * An empty file at `path` (replacing any file there), open read-write.
   * Spares are made only once this is first called: recovery, which removes
   * unknown staging files, has run by then.
   */
  async take(path: string): Promise<FileHandle> {
    const spare = this.ready.pop();
    this.refill();
    if (spare) {
      try {
        // Synchronous: a rename within one directory costs less than a threadpool round trip.
        renameSync(spare.path, path);
        return spare.fh;
      } catch {
        await spare.fh.close().catch(() => {});
        rmSync(spare.path, { force: true });
      }
    }
    return fsp.open(path, 'w+', 0o600);
  }

  private refill(): void {
    if (this.making || this.closed || this.ready.length >= KEEP) return;
    this.making = (async () => {
      while (!this.closed && this.ready.length < KEEP) {
        const path = join(this.dir, `spare.${randomBytes(6).toString('hex')}`);
        const fh = await fsp.open(path, 'wx+', 0o600);
        if (this.closed) {
          await fh.close();
          await fsp.rm(path, { force: true });
          return;
        }
        this.ready.push({ path, fh });
      }
    })()
      // A full disk or a missing directory: writers create their files themselves and see the error.
      .catch(() => {})
      .finally(() => {
        this.making = null;
      });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.making;
    for (const s of this.ready.splice(0)) {
      await s.fh.close().catch(() => {});
      await fsp.rm(s.path, { force: true });
    }
  }
}

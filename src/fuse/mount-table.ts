/** Reading /proc/mounts and cleaning up FUSE mounts (fusermount from Debian's fuse3). */
import { readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { resolve } from 'node:path';

const execFileP = promisify(execFile);

export interface MountEntry {
  source: string;
  target: string;
  fstype: string;
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

export function readMounts(): MountEntry[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [source = '', target = '', fstype = ''] = line.split(' ');
      return { source: unescape(source), target: unescape(target), fstype };
    });
}

export function mountAt(dir: string): MountEntry | undefined {
  const target = resolve(dir);
  return readMounts().reverse().find((m) => m.target === target);
}

export const NEXUS_FSNAME_PREFIX = 'nexus:';

export function isNexusMount(m: MountEntry): boolean {
  return m.fstype.startsWith('fuse') && m.source.startsWith(NEXUS_FSNAME_PREFIX);
}

/** The data directory a Nexus mount serves, from its fsname. */
export function dataDirOfMount(m: MountEntry): string {
  return m.source.slice(NEXUS_FSNAME_PREFIX.length);
}

/** Detach a FUSE mount; `lazy` also works when the daemon is dead (ENOTCONN). */
export async function fusermountUnmount(dir: string, lazy = false): Promise<void> {
  const args = lazy ? ['-u', '-z', dir] : ['-u', dir];
  let lastErr: unknown;
  for (const bin of ['fusermount3', 'fusermount']) {
    try {
      await execFileP(bin, args);
      return;
    } catch (e) {
      lastErr = e;
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') break;
    }
  }
  throw lastErr;
}

export async function waitUntil(pred: () => boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return pred();
}

/** Reading /proc/mounts and cleaning up FUSE mounts (fusermount from Debian's fuse3). */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { execFile, execFileSync } from 'node:child_process';
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

/**
 * The device number ("major:minor") of the file system mounted at `dir`, from
 * /proc/self/mountinfo (id parent major:minor root mountpoint ...): never a
 * stat of the mount itself, which a daemon must not do to its own mount.
 */
export function deviceOfMount(dir: string): string | undefined {
  const target = resolve(dir);
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').findLast((l) => unescape(l.split(' ')[4] ?? '') === target);
  const dev = line?.split(' ')[2];
  return dev && /^\d+:\d+$/.test(dev) ? dev : undefined;
}

/**
 * Set how far the kernel reads ahead of a sequential reader of the mount at
 * `dir` (its backing device's read_ahead_kb; root only). A FUSE mount starts
 * at 128 KiB: one READ request at a time. Best effort: false when it could
 * not be set.
 */
export function setMountReadahead(dir: string, kb: number): boolean {
  const dev = deviceOfMount(dir);
  if (!dev) return false;
  try {
    writeFileSync(`/sys/class/bdi/${dev}/read_ahead_kb`, String(kb));
    return true;
  } catch {
    return false;
  }
}

/** Detach a FUSE mount; `lazy` also works when the daemon is dead (ENOTCONN). */
const FUSECTL = '/sys/fs/fuse/connections';

/**
 * Abort the FUSE connection behind the mount at `dir` (fusectl; root only).
 * A killed daemon can leave a thread stuck in the kernel dropping a page that
 * a writer's request holds locked: the dying daemon then never closes
 * /dev/fuse, the writer waits forever, and so does anything touching the
 * mount (native-notes/fuse-options.md). Aborting ends every request at once.
 * Best effort: false when it could not be done.
 */
export function abortFuseConnection(dir: string): boolean {
  // A FUSE connection is named by its device's minor number.
  const minor = deviceOfMount(dir)?.split(':')[1];
  if (!minor) return false;
  try {
    if (!existsSync(`${FUSECTL}/${minor}`)) execFileSync('mount', ['-t', 'fusectl', 'fusectl', FUSECTL], { stdio: 'ignore' });
    writeFileSync(`${FUSECTL}/${minor}/abort`, '1');
    return true;
  } catch {
    return false;
  }
}

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

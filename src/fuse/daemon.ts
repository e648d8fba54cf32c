/**
 * The mount daemon: owns a data directory, serves it at a mount point through
 * fuse-native, and on SIGINT/SIGTERM (or `nexus unmount`) commits every dirty
 * file, then unmounts cleanly. It never touches its own mount (that deadlocks
 * the single JavaScript thread that serves it) and logs into the data directory.
 */
import { existsSync, promises as fsp, statSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { NexusError } from '../errors.js';
import { openDataDir, processStartTime, type OpenedDataDir } from '../engine/data-dir.js';
import { logger } from '../util/logger.js';
import { buildOps } from './adapter.js';
import { ControlFiles } from './control-files.js';
import { SessionResolver } from './session-resolver.js';
import { CACHE_TIMEOUT_S, KernelCache, kernelHasEpochs } from './kernel-cache.js';
import { Services } from '../services/services.js';
import type { AccessIdentity } from '../engine/credentials.js';
import {
  NEXUS_FSNAME_PREFIX, abortFuseConnection, dataDirOfMount, fusermountUnmount, isNexusMount, mountAt, setMountReadahead,
} from './mount-table.js';
import { readLock } from '../engine/data-dir.js';

/** Read-ahead of the mount's device, in KiB (the kernel's FUSE default is 128). */
const READAHEAD_KB = 4096;

export interface MountOptions {
  mountpoint: string;
  dataDir: string;
  nonempty?: boolean;
  allowOther?: boolean;
  /** Act as this API key's subject: its grants limit everything done through the mount. */
  apiKey?: string;
  /**
   * Serves the data directory to the CLI and the SDK while mounted (the local
   * socket). Passed in by the composer (the CLI), so the FUSE layer does not
   * depend on the server layer.
   */
  serveLocally(services: Services, dataDir: string, hooks: { afterChange(): Promise<void> }): Promise<{ close(): Promise<void> }>;
}

export interface DaemonInfo {
  pid: number;
  start: string;
  mountpoint: string;
  startedAt: string;
}

export const DAEMON_FILE = 'daemon.json';

/** Load the patched fuse-native, turning a missing libfuse into an actionable error. */
function loadFuse(): typeof import('fuse-native') {
  try {
    const require = createRequire(import.meta.url);
    return require('fuse-native') as typeof import('fuse-native');
  } catch (e) {
    const msg = (e as Error).message;
    if (/libfuse\.so/.test(msg)) throw new NexusError('NOT_SUPPORTED', 'libfuse.so.2 is missing: install the Debian package libfuse2 (scripts/setup.sh does)');
    throw new NexusError('NOT_SUPPORTED', `fuse-native does not load (${msg}); rerun scripts/setup.sh`);
  }
}

/** Checks that give the one-line errors `nexus mount` promises. Cleans a stale mount left by a killed daemon. */
export async function preflight(opts: Pick<MountOptions, 'mountpoint' | 'dataDir' | 'nonempty'>): Promise<{ cleanedStale: boolean }> {
  const mp = resolve(opts.mountpoint);
  if (!existsSync('/dev/fuse')) throw new NexusError('NOT_SUPPORTED', '/dev/fuse is missing: load the fuse kernel module (modprobe fuse) or give the container --device /dev/fuse');
  let cleanedStale = false;
  const existing = mountAt(mp);
  if (existing) {
    const owner = isNexusMount(existing) ? await readLock(dataDirOfMount(existing)) : undefined;
    if (isNexusMount(existing) && !owner) {
      abortFuseConnection(mp); // requests left waiting on the dead daemon end now
      await fusermountUnmount(mp, true); // stale: its daemon died
      cleanedStale = true;
    } else {
      throw new NexusError('BUSY', `${mp} is already mounted${owner ? ` (nexus pid ${owner.pid})` : ` (${existing.fstype})`}`);
    }
  }
  let st;
  try {
    st = statSync(mp);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NexusError('NOT_FOUND', `Mount point ${mp} does not exist`);
    throw new NexusError('INVALID_ARGUMENT', `Mount point ${mp} is not usable (${code})`);
  }
  if (!st.isDirectory()) throw new NexusError('NOT_A_DIRECTORY', `Mount point ${mp} is not a directory`);
  if (!opts.nonempty && readdirSync(mp).length > 0) throw new NexusError('NOT_EMPTY', `Mount point ${mp} is not empty (use --nonempty to mount over it)`);
  return { cleanedStale };
}

export interface RunningMount {
  mountpoint: string;
  data: OpenedDataDir;
  /** Resolves when the mount is gone and the data directory is closed. */
  finished: Promise<void>;
  stop(): Promise<void>;
}

export async function startMount(opts: MountOptions): Promise<RunningMount> {
  const log = logger('daemon');
  const mp = resolve(opts.mountpoint);
  const dataDir = resolve(opts.dataDir);
  const { cleanedStale } = await preflight({ ...opts, mountpoint: mp });
  if (cleanedStale) log.warn({ mountpoint: mp }, 'cleaned a stale mount left by a dead daemon');
  const Fuse = loadFuse();
  const data = await openDataDir(dataDir, { role: `nexus mount ${mp}` });
  const services = new Services(data.engine, data.meta);
  const sessions = new SessionResolver((id) => data.meta.registry.sessionActive(id));
  const control = new ControlFiles(services, sessions, mp);
  const isRoot = process.getuid?.() === 0;
  let identity: AccessIdentity | undefined;
  if (opts.apiKey) {
    try {
      identity = services.access.authenticate(opts.apiKey);
    } catch (e) {
      await data.close();
      throw e;
    }
  }
  // The kernel caches attributes, names and pages (timeouts above 0) when it
  // can be told to drop them: kernel 6.16+ (FUSE_NOTIFY_INC_EPOCH). Every
  // change that does not come through the kernel then calls cache.changed()
  // before it answers (native-notes/fuse-options.md). NEXUS_FUSE_CACHE=0 turns
  // it off; NEXUS_FUSE_ATTR_TIMEOUT overrides the timeout.
  const caching = process.env.NEXUS_FUSE_CACHE !== '0' && kernelHasEpochs();
  const timeoutFor = (on: boolean) => Number(process.env.NEXUS_FUSE_ATTR_TIMEOUT ?? (on ? CACHE_TIMEOUT_S : 0));
  const cache = new KernelCache(caching);
  const ops = buildOps(services, control, sessions, cache, identity);
  const makeFuse = (timeout: number) => new Fuse(mp, ops, {
    fsname: `${NEXUS_FSNAME_PREFIX}${dataDir}`,
    // Other users reach the mount (files they create are theirs); the kernel
    // applies mode checks first (default_permissions), the engine again.
    allowOther: opts.allowOther ?? isRoot,
    defaultPermissions: true,
    useIno: true,
    attrTimeout: timeout,
    entryTimeout: timeout,
    negativeTimeout: timeout,
    // No auto_cache: it keeps a file's pages while mtime and size look the
    // same, and a restore can bring back exactly the old mtime at the same size
    // (stale pages were served: test/differential). Pages are dropped at open
    // unless KernelCache says nothing changed behind the kernel since (keepCache).
    autoCache: false,
    // A file deleted while open really goes (no .fuse_hidden name in listings,
    // rm -rf of its directory works); its handle keeps working by fh.
    hardRemove: true,
    nullPathOk: true,
    // 1 MiB WRITE requests (patch version 13: FUSE_MAX_PAGES in the INIT reply):
    // a chunk arrives in one round trip instead of eight.
    bigWrites: true,
    maxWrite: 1 << 20,
    // open(O_TRUNC) arrives as one OPEN with O_TRUNC instead of a truncate by
    // path then an OPEN: the truncate then happens with the handle open, so it
    // is not committed (nor seen by a snapshot) before the rewrite closes.
    extraOptions: ['atomic_o_trunc', ...(opts.nonempty ? ['nonempty'] : [])],
    timeout: 120_000,
  });
  let fuse = makeFuse(timeoutFor(caching));
  try {
    await promisify(fuse.mount.bind(fuse))();
    cache.attach(fuse);
    if (caching && !(await cache.probe())) {
      // The kernel refused the epoch notification: it cannot be told, so it must not cache.
      log.error('the kernel refused FUSE_NOTIFY_INC_EPOCH: remounting without attribute and name caching');
      await promisify(fuse.unmount.bind(fuse))();
      cache.disable();
      fuse = makeFuse(timeoutFor(false));
      await promisify(fuse.mount.bind(fuse))();
    }
  } catch (e) {
    await data.close();
    throw new NexusError('NOT_SUPPORTED', `Mount failed: ${(e as Error).message}`);
  }
  // Sequential reads: 4 MiB of read-ahead keeps four 1 MiB READs in flight
  // instead of one 128 KiB one (cold 512 MiB read 334 -> 793 MB/s; native-notes/fuse-options.md).
  if (!setMountReadahead(mp, READAHEAD_KB)) log.debug({ mountpoint: mp }, 'could not raise the read-ahead (not root?)');
  // The CLI and the SDK reach this data directory through the daemon's socket while it is mounted.
  const socket = await opts.serveLocally(services, dataDir, { afterChange: () => cache.changed() });
  const info: DaemonInfo = { pid: process.pid, start: processStartTime(process.pid) ?? '?', mountpoint: mp, startedAt: new Date().toISOString() };
  await fsp.writeFile(join(dataDir, DAEMON_FILE), JSON.stringify(info));
  log.info({ mountpoint: mp, dataDir }, 'mounted');

  let stopping: Promise<void> | undefined;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));
  // Someone ran fusermount -u behind our back: shut down too.
  const watch = setInterval(() => {
    if (!mountAt(mp)) void stop();
  }, 1000);
  watch.unref();

  async function stop(): Promise<void> {
    stopping ??= (async () => {
      clearInterval(watch);
      log.info({ mountpoint: mp }, 'unmounting');
      try {
        await data.engine.flushAll();
      } catch (e) {
        log.error({ err: e }, 'flush before unmount failed');
      }
      if (mountAt(mp)) {
        try {
          await promisify(fuse.unmount.bind(fuse))();
        } catch (e) {
          log.warn({ err: e }, 'clean unmount failed; detaching lazily');
          await fusermountUnmount(mp, true).catch(() => {});
        }
      }
      try {
        await fsp.rm(join(dataDir, DAEMON_FILE), { force: true });
        await socket.close().catch((e) => log.error({ err: e }, 'closing the local socket failed'));
        await data.close();
        log.info({ mountpoint: mp }, 'stopped');
      } finally {
        resolveFinished();
        // fuse-native releases its libuv handle only in its own unmount, after
        // fusermount succeeded. When the mount went away underneath us
        // (`fusermount -u` by someone else, or a failed clean unmount), that
        // never runs and the handle would keep this process alive for good:
        // exit once everything else is done.
        setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
      }
    })();
    return stopping;
  }

  return { mountpoint: mp, data, finished, stop };
}

export async function readDaemonInfo(dataDir: string): Promise<DaemonInfo | undefined> {
  try {
    const info = JSON.parse(await fsp.readFile(join(dataDir, DAEMON_FILE), 'utf8')) as DaemonInfo;
    return processStartTime(info.pid) === info.start ? info : undefined;
  } catch {
    return undefined;
  }
}

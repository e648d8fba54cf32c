/**
 * The daemon's local socket: the HTTP API on `<dataDir>/nexus.sock`, so the
 * CLI and the SDK reach a data directory that a running daemon holds.
 *
 * Local trust: the socket is mode 0600 (in a 0700 data directory), so only
 * the daemon's own user (and root) can connect, and every caller acts as that
 * user: principal `local:<uid>`, the daemon's uid, gid and groups.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { NexusError } from '../errors.js';
import { contextFor, type OpContext } from '../engine/credentials.js';
import type { Services } from '../services/services.js';
import type { Logger } from '../util/logger.js';
import { buildApp, type Authenticate } from './app.js';

export const SOCKET_NAME = 'nexus.sock';

/** sun_path holds 108 bytes with its NUL on Linux. */
const SUN_PATH_MAX = 107;

export function socketPath(dataDir: string): string {
  return join(dataDir, SOCKET_NAME);
}

/** The identity of this process's user, as the embedded SDK uses it. */
export function localContext(): OpContext {
  const uid = process.getuid?.() ?? 0;
  return contextFor(
    { uid, gid: process.getgid?.() ?? 0, groups: process.getgroups?.() ?? [] },
    { principal: `local:${uid}`, umask: process.umask() },
  );
}

/** Every caller is this process's user. Only for transports that only that user can reach. */
export function localTrust(): Authenticate {
  const ctx = localContext();
  return () => ({ ctx });
}

async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) throw new NexusError('ALREADY_EXISTS', `${path} exists and is not a socket; not replacing it`, { path });
  await fsp.rm(path, { force: true });
}

export interface LocalSocket {
  path: string;
  close(): Promise<void>;
}

export interface LocalSocketOptions {
  logger?: Logger | false;
  /**
   * Awaited after every request that may change something (any method but
   * GET/HEAD/OPTIONS), before its answer is sent: the mount daemon drops the
   * kernel's caches there, so a CLI or SDK change shows at the mount at once.
   */
  afterChange?: () => Promise<void>;
}

/**
 * Serve the API on `<dataDir>/nexus.sock`. The caller holds the data
 * directory's lock, so a socket already there is a dead daemon's: it is
 * replaced. The socket is bound under a temporary name, made 0600, then
 * renamed into place, so it is never reachable with looser permissions.
 */
export async function startLocalSocket(services: Services, dataDir: string, opts: LocalSocketOptions = {}): Promise<LocalSocket> {
  const path = socketPath(dataDir);
  const tmp = join(dataDir, `.nexus.sock.${process.pid}`);
  for (const p of [path, tmp]) {
    if (Buffer.byteLength(p) > SUN_PATH_MAX) {
      throw new NexusError('NAME_TOO_LONG', `Socket path ${p} is longer than ${SUN_PATH_MAX} bytes, the limit of a unix socket address`, { path: p });
    }
  }
  await removeStaleSocket(path);
  await removeStaleSocket(tmp);

  const app = await buildApp({ services, authenticate: localTrust(), ...(opts.logger !== undefined ? { logger: opts.logger } : {}) });
  const afterChange = opts.afterChange;
  if (afterChange) {
    app.addHook('onSend', async (req, _reply, payload) => {
      if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS') await afterChange();
      return payload;
    });
  }
  let ino: number;
  try {
    await app.listen({ path: tmp });
    await fsp.chmod(tmp, 0o600);
    await fsp.rename(tmp, path);
    ino = (await fsp.lstat(path)).ino;
  } catch (e) {
    await app.close().catch(() => {});
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw e;
  }

  let closing: Promise<void> | undefined;
  return {
    path,
    close() {
      closing ??= (async () => {
        await app.close();
        // Remove the socket unless another daemon has put its own there since.
        const st = await fsp.lstat(path).catch(() => undefined);
        if (st && st.ino === ino) await fsp.rm(path, { force: true });
      })();
      return closing;
    },
  };
}

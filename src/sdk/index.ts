/**
 * `import { connect } from 'nexus'`.
 *   connect({ dataDir })              embedded: this process opens the data directory;
 *                                     when a daemon holds it, through its socket (<dataDir>/nexus.sock)
 *   connect({ remoteUrl, apiKey })    a Nexus server over HTTP
 * Options fall back to NEXUS_URL / NEXUS_API_KEY / NEXUS_DATA_DIR.
 */
import { promises as fsp } from 'node:fs';
import { join, resolve } from 'node:path';
import { NexusError, typed } from '../errors.js';
import { contextFor } from '../engine/credentials.js';
import { defaultDataDir, readLock } from '../engine/data-dir.js';
import { openServices } from '../services/services.js';
import { LocalApi } from './local-api.js';
import { HttpApi } from './http-api.js';
import { NexusClient } from './client.js';

/** The daemon's socket in a data directory (src/server/local-socket.ts serves it). */
const SOCKET_NAME = 'nexus.sock';

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await fsp.stat(path)).isSocket();
  } catch {
    return false;
  }
}

/** An HttpApi over the socket of the daemon that holds `dataDir`, if one serves it. */
async function daemonApi(dataDir: string): Promise<HttpApi | undefined> {
  const owner = await readLock(dataDir);
  const path = join(dataDir, SOCKET_NAME);
  if (!owner || !(await isSocket(path))) return undefined;
  const api = new HttpApi({ socketPath: path });
  try {
    await api.health();
  } catch (e) {
    await api.close();
    throw new NexusError('LOCKED', `Data directory ${dataDir} is in use by ${owner.role} (pid ${owner.pid}), whose socket ${path} does not answer: ${(e as Error).message}`, { pid: owner.pid });
  }
  return api;
}

export interface ConnectOptions {
  /** Embedded mode: the data directory to open. */
  dataDir?: string;
  /** Remote mode: the server's base URL, e.g. http://localhost:8080. */
  remoteUrl?: string;
  apiKey?: string;
  /** Tag every write of this connection with an agent session (unless overridden per call). */
  sessionId?: string;
}

export async function connect(opts: ConnectOptions = {}): Promise<NexusClient> {
  const remoteUrl = opts.remoteUrl ?? (opts.dataDir ? undefined : process.env.NEXUS_URL);
  if (remoteUrl) {
    try {
      return new NexusClient(new HttpApi({ baseUrl: remoteUrl, apiKey: opts.apiKey ?? process.env.NEXUS_API_KEY }), opts.sessionId ?? null);
    } catch (e) {
      throw typed(e);
    }
  }
  const dataDir = resolve(opts.dataDir ?? defaultDataDir());
  try {
    const viaDaemon = await daemonApi(dataDir);
    if (viaDaemon) return new NexusClient(viaDaemon, opts.sessionId ?? null);
    let opened;
    try {
      opened = await openServices(dataDir, { role: 'nexus sdk' });
    } catch (e) {
      // A daemon may have taken the directory between the two looks.
      const late = e instanceof NexusError && e.code === 'LOCKED' ? await daemonApi(dataDir) : undefined;
      if (late) return new NexusClient(late, opts.sessionId ?? null);
      throw e;
    }
    const uid = process.getuid?.() ?? 0;
    const cred = { uid, gid: process.getgid?.() ?? 0, groups: process.getgroups?.() ?? [] };
    let ctx = contextFor(cred, { principal: `local:${uid}`, umask: process.umask() });
    if (opts.apiKey) {
      // Embedded, but acting as a key's subject: its grants limit this connection.
      try {
        const who = opened.services.access.authenticate(opts.apiKey);
        ctx = contextFor(cred, { principal: `${who.subjectType}:${who.subjectId}`, access: who, umask: process.umask() });
      } catch (e) {
        await opened.close();
        throw e;
      }
    }
    return new NexusClient(new LocalApi(opened.services, ctx, () => opened.close()), opts.sessionId ?? null);
  } catch (e) {
    throw typed(e);
  }
}

export { HttpApi, type HttpApiOptions } from './http-api.js';
export type { Api, CallContext } from './api.js';
export { NexusClient, WorkspaceClient, SessionClient, KeyClient, type SessionHandle, type OpOptions, type WriteContext } from './client.js';
export {
  NexusError, PermissionError, AuthenticationError, NotFoundError, ConflictError, InvalidArgumentError, type ErrorCode,
} from '../errors.js';
export type { Grant, ApiKeyInfo, CreatedKey } from '../services/access.js';
export type {
  Workspace, Snapshot, Session, FileInfo, FileType, Diff, RestoreReport, RevertReport, SessionChanges,
} from '../services/records.js';

/**
 * `import { connect } from 'nexus'`.
 *   connect({ dataDir })              embedded: this process opens the data directory
 *   connect({ remoteUrl, apiKey })    a Nexus server over HTTP
 * Options fall back to NEXUS_URL / NEXUS_API_KEY / NEXUS_DATA_DIR.
 */
import { resolve } from 'node:path';
import { NexusError, typed } from '../errors.js';
import { contextFor } from '../engine/credentials.js';
import { defaultDataDir } from '../engine/data-dir.js';
import { openServices } from '../services/services.js';
import { LocalApi } from './local-api.js';
import { NexusClient } from './client.js';

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
    throw typed(new NexusError('NOT_SUPPORTED', 'Remote connections are not available in this build yet'));
  }
  const dataDir = resolve(opts.dataDir ?? defaultDataDir());
  try {
    const opened = await openServices(dataDir, { role: 'nexus sdk' });
    const uid = process.getuid?.() ?? 0;
    const ctx = contextFor({ uid, gid: process.getgid?.() ?? 0, groups: process.getgroups?.() ?? [] }, { principal: `local:${uid}`, umask: process.umask() });
    return new NexusClient(new LocalApi(opened.services, ctx, () => opened.close()), opts.sessionId ?? null);
  } catch (e) {
    throw typed(e);
  }
}

export { NexusClient, WorkspaceClient, SessionClient, type SessionHandle, type OpOptions, type WriteContext } from './client.js';
export {
  NexusError, PermissionError, AuthenticationError, NotFoundError, ConflictError, InvalidArgumentError, type ErrorCode,
} from '../errors.js';
export type {
  Workspace, Snapshot, Session, FileInfo, FileType, Diff, RestoreReport, RevertReport, SessionChanges,
} from '../services/records.js';

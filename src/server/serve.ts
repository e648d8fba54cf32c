/**
 * `nexus serve`: the HTTP API on TCP over one data directory, plus the local
 * socket in that directory (so the CLI and `connect({ dataDir })` on this
 * machine keep working while the server holds the directory).
 *
 * TCP callers authenticate with an API key (`Authorization: Bearer nx_...`)
 * and are limited by their grants; the local socket (mode 0600) is local trust.
 */
import type { FastifyInstance } from 'fastify';
import { NexusError } from '../errors.js';
import { openServices, type OpenedServices } from '../services/services.js';
import { logger as projectLogger, type Logger } from '../util/logger.js';
import { buildApp } from './app.js';
import { localContext, startLocalSocket, type LocalSocket } from './local-socket.js';
import { contextFor } from '../engine/credentials.js';
import type { Services } from '../services/services.js';
import type { Authenticate } from './app.js';

export interface ServeOptions {
  dataDir: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port (the chosen one is in `url`). */
  port?: number;
  /** Also serve `<dataDir>/nexus.sock` (default true). */
  localSocket?: boolean;
  bodyLimit?: number;
  maxFileBytes?: number;
  /** Requests per second per principal (burst = 2 seconds' worth); default unlimited. */
  rateLimit?: number;
  /**
   * Drop a TCP request whose body stops arriving for this long (default 60 s;
   * 0: never). A client that stalls in the middle of an upload would
   * otherwise hold its connection, and the file's upload turn, for ever.
   */
  bodyIdleTimeoutMs?: number;
  logger?: Logger | false;
}

export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 60_000;

/** TCP callers: an API key, whose subject's grants limit everything it does. */
export function apiKeyAuth(services: Services): Authenticate {
  const base = localContext();
  return (req) => {
    const h = req.headers.authorization;
    const key = typeof h === 'string' && /^Bearer\s+/i.test(h) ? h.replace(/^Bearer\s+/i, '').trim() : undefined;
    const who = services.access.authenticate(key);
    return { ctx: contextFor(base.cred, { principal: `${who.subjectType}:${who.subjectId}`, access: who, umask: 0o022 }) };
  };
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  /** The local socket path, when served. */
  socketPath?: string;
  /** Stop accepting, finish requests in flight, commit and flush, release the data directory. */
  close(): Promise<void>;
}


export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new NexusError('INVALID_ARGUMENT', `Not a TCP port: ${port}`);
  const log = opts.logger === undefined ? projectLogger('server') : opts.logger;

  const opened: OpenedServices = await openServices(opts.dataDir, { role: 'nexus serve' });
  let app: FastifyInstance | undefined;
  let sock: LocalSocket | undefined;
  try {
    app = await buildApp({
      services: opened.services,
      authenticate: apiKeyAuth(opened.services),
      rateLimit: opts.rateLimit,
      bodyIdleTimeoutMs: opts.bodyIdleTimeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS,
      bodyLimit: opts.bodyLimit,
      maxFileBytes: opts.maxFileBytes,
      logger: log,
    });
    await app.listen({ host, port });
    if (opts.localSocket ?? true) sock = await startLocalSocket(opened.services, opened.dataDir, { logger: log });
  } catch (e) {
    await app?.close().catch(() => {});
    await opened.close();
    throw e;
  }

  const addr = app.server.address();
  if (!addr || typeof addr === 'string') throw new NexusError('INTERNAL', 'Server has no TCP address');
  const urlHost = addr.family === 'IPv6' || addr.family as unknown === 6 ? `[${addr.address}]` : addr.address;
  const url = `http://${urlHost}:${addr.port}`;
  const server = app;
  let closing: Promise<void> | undefined;
  return {
    url,
    host: addr.address,
    port: addr.port,
    socketPath: sock?.path,
    close() {
      closing ??= (async () => {
        try {
          await Promise.all([server.close(), sock?.close()]);
        } finally {
          await opened.close();
        }
      })();
      return closing;
    },
  };
}

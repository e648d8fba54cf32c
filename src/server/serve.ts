/**
 * `nexus serve`: the HTTP API on TCP over one data directory, plus the local
 * socket in that directory (so the CLI and `connect({ dataDir })` on this
 * machine keep working while the server holds the directory).
 *
 * TEMPORARY: until API keys arrive, TCP callers are authenticated by local
 * trust, i.e. every client acts as the server's own user. To keep that from
 * being a remote hole, startServer only listens on loopback addresses.
 * Replace `localTrust()` below with API-key authentication and lift the
 * loopback restriction together.
 */
import { isIP } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { NexusError } from '../errors.js';
import { openServices, type OpenedServices } from '../services/services.js';
import { logger as projectLogger, type Logger } from '../util/logger.js';
import { buildApp } from './app.js';
import { localTrust, startLocalSocket, type LocalSocket } from './local-socket.js';

export interface ServeOptions {
  dataDir: string;
  /** Default 127.0.0.1. Loopback only until API keys exist. */
  host?: string;
  /** Default 0: any free port (the chosen one is in `url`). */
  port?: number;
  /** Also serve `<dataDir>/nexus.sock` (default true). */
  localSocket?: boolean;
  bodyLimit?: number;
  maxFileBytes?: number;
  logger?: Logger | false;
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

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 0;
  if (!isLoopback(host)) {
    throw new NexusError(
      'NOT_SUPPORTED',
      `nexus serve listens on loopback only (127.0.0.1, ::1, localhost) until API keys are available; ${host} would give every client on the network this user's access`,
    );
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new NexusError('INVALID_ARGUMENT', `Not a TCP port: ${port}`);
  const log = opts.logger === undefined ? projectLogger('server') : opts.logger;

  const opened: OpenedServices = await openServices(opts.dataDir, { role: 'nexus serve' });
  let app: FastifyInstance | undefined;
  let sock: LocalSocket | undefined;
  try {
    app = await buildApp({
      services: opened.services,
      authenticate: localTrust(), // TEMPORARY: API keys replace this.
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

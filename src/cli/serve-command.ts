/**
 * `nexus serve`: run the HTTP API over a data directory until SIGINT or
 * SIGTERM, then shut down gracefully (stop accepting, finish requests in
 * flight, commit pending writes, release the data directory). A second
 * signal exits at once.
 *
 * Register in src/cli/main.ts, e.g.
 *   .command('serve', 'Serve the HTTP API', (y) => common(y)
 *       .option('host', { type: 'string', default: '127.0.0.1' })
 *       .option('port', { type: 'number', default: 8080 }),
 *     (a) => serveCommand(a as unknown as ServeArgs))
 */
import { resolve } from 'node:path';
import { configureLogger, logger } from '../util/logger.js';
import { startServer } from '../server/serve.js';

export interface ServeArgs {
  dataDir: string;
  host: string;
  port: number;
  rateLimit?: number;
  bodyLimit?: number;
}

export async function serveCommand(args: ServeArgs): Promise<void> {
  // A server's access log is worth seeing: info unless NEXUS_LOG_LEVEL says otherwise.
  configureLogger({ level: process.env.NEXUS_LOG_LEVEL ?? 'info', destination: 2 });
  const log = logger('serve');
  const server = await startServer({ dataDir: resolve(args.dataDir), host: args.host, port: args.port, rateLimit: args.rateLimit, bodyLimit: args.bodyLimit });
  process.stdout.write(`nexus serving ${resolve(args.dataDir)} at ${server.url}${server.socketPath ? ` and ${server.socketPath}` : ''}\n`);

  const signal = await new Promise<NodeJS.Signals>((res) => {
    process.once('SIGINT', res);
    process.once('SIGTERM', res);
  });
  const force = (s: NodeJS.Signals) => {
    process.stderr.write(`nexus: ${s} again, exiting without a clean shutdown\n`);
    process.exit(130);
  };
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  log.info({ signal }, 'shutting down');
  await server.close();
  process.off('SIGINT', force);
  process.off('SIGTERM', force);
  process.stdout.write('nexus server stopped\n');
}

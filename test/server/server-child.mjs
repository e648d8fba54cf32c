#!/usr/bin/env node
// A Nexus server process for the SDK and HTTP tests: runs startServer (from
// the compiled dist/) on 127.0.0.1, port 0, and prints one JSON line on stdout
// with the chosen URL. Access logs (pino, info) go to stderr. SIGTERM or
// SIGINT closes it cleanly (exit 0).
//
//   node test/server/server-child.mjs <dataDir> [bodyLimit] [maxFileBytes]
const [dataDir, bodyLimit, maxFileBytes] = process.argv.slice(2);
if (!dataDir) {
  process.stderr.write('usage: server-child.mjs <dataDir> [bodyLimit] [maxFileBytes]\n');
  process.exit(2);
}
const dist = new URL('../../dist/src/', import.meta.url);
const { startServer } = await import(new URL('server/serve.js', dist).href);
const { configureLogger, logger } = await import(new URL('util/logger.js', dist).href);

configureLogger({ level: process.env.NEXUS_LOG_LEVEL ?? 'info', destination: 2 });
const server = await startServer({
  dataDir,
  host: '127.0.0.1',
  port: 0,
  logger: logger('server'),
  ...(bodyLimit ? { bodyLimit: Number(bodyLimit) } : {}),
  ...(maxFileBytes ? { maxFileBytes: Number(maxFileBytes) } : {}),
});
process.stdout.write(JSON.stringify({ url: server.url, port: server.port, socketPath: server.socketPath ?? null }) + '\n');

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

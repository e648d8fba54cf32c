#!/usr/bin/env node
// A Nexus server process for the SDK, HTTP, attack and example tests: runs
// startServer (from the compiled dist/) on 127.0.0.1, port 0, and prints one
// JSON line on stdout: { url, port, socketPath, adminKey }. Access logs
// (pino, info) go to stderr. SIGTERM or SIGINT closes it cleanly (exit 0).
//
// TCP callers need an API key, so before serving it opens the data directory
// itself, creates an admin key (subject user:admin) and closes it again: the
// key it prints can do everything, and is how the tests create the others.
//
//   node test/server/server-child.mjs <dataDir> [options JSON]
//   options: { bodyLimit, maxFileBytes, rateLimit, bodyIdleTimeoutMs, adminKey: false }
const [dataDir, optionsJson] = process.argv.slice(2);
if (!dataDir) {
  process.stderr.write('usage: server-child.mjs <dataDir> [options JSON]\n');
  process.exit(2);
}
const opts = optionsJson ? JSON.parse(optionsJson) : {};
const dist = new URL('../../dist/src/', import.meta.url);
const { startServer } = await import(new URL('server/serve.js', dist).href);
const { openServices } = await import(new URL('services/services.js', dist).href);
const { configureLogger, logger } = await import(new URL('util/logger.js', dist).href);

configureLogger({ level: process.env.NEXUS_LOG_LEVEL ?? 'info', destination: 2 });

let adminKey = null;
if (opts.adminKey !== false) {
  const opened = await openServices(dataDir, { role: 'test server setup' });
  try {
    adminKey = (await opened.services.access.createKey({ subject: 'user:admin', admin: true })).api_key;
  } finally {
    await opened.close();
  }
}

const server = await startServer({
  dataDir,
  host: '127.0.0.1',
  port: 0,
  logger: logger('server'),
  ...(opts.bodyLimit ? { bodyLimit: Number(opts.bodyLimit) } : {}),
  ...(opts.maxFileBytes ? { maxFileBytes: Number(opts.maxFileBytes) } : {}),
  ...(opts.rateLimit ? { rateLimit: Number(opts.rateLimit) } : {}),
  ...(opts.bodyIdleTimeoutMs ? { bodyIdleTimeoutMs: Number(opts.bodyIdleTimeoutMs) } : {}),
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Ready only once the handlers are in place (see socket-child.mjs).
process.stdout.write(JSON.stringify({ url: server.url, port: server.port, socketPath: server.socketPath ?? null, adminKey }) + '\n');

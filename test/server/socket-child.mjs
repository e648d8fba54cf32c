#!/usr/bin/env node
// A process that holds a data directory the way the mount daemon does, for
// the SDK tests: opens it (taking its lock) and, unless told "nosocket",
// serves the API on <dataDir>/nexus.sock with startLocalSocket. Prints one
// JSON line when ready; SIGTERM closes the socket and the directory (exit 0).
//
//   node test/server/socket-child.mjs <dataDir> [nosocket]
const [dataDir, mode] = process.argv.slice(2);
if (!dataDir) {
  process.stderr.write('usage: socket-child.mjs <dataDir> [nosocket]\n');
  process.exit(2);
}
const dist = new URL('../../dist/src/', import.meta.url);
const { openServices } = await import(new URL('services/services.js', dist).href);
const { startLocalSocket } = await import(new URL('server/local-socket.js', dist).href);

const opened = await openServices(dataDir, { role: 'test daemon' });
const sock = mode === 'nosocket' ? undefined : await startLocalSocket(opened.services, opened.dataDir, { logger: false });

// Hold the directory until told to stop, socket or not.
const keepAlive = setInterval(() => {}, 1 << 30);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await sock?.close();
  await opened.close();
  clearInterval(keepAlive);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Ready only now: a SIGTERM sent as soon as this line is read must find the handler
// (printed before it, a loaded machine once killed the child with the default action).
process.stdout.write(JSON.stringify({ pid: process.pid, socketPath: sock?.path ?? null }) + '\n');

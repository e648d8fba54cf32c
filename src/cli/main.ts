/** `nexus`: the command line. Config comes from flags, then env (NEXUS_DATA_DIR...), then defaults. */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { readFileSync } from 'node:fs';
import { defaultDataDir, openDataDir, readLock } from '../engine/data-dir.js';
import { failAndExit, printJson, printTable } from './output.js';
// The FUSE daemon and the HTTP server load only for the commands that need them (CLI start-up time).
import type { MountArgs } from './mount-commands.js';
import { fileCommands, keyCommands, maintenanceCommands, rebacCommands, sessionCommands, workspaceCommands } from './data-commands.js';
import type { ServeArgs } from './serve-command.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

interface Common {
  dataDir: string;
  json: boolean;
}

function common<T>(y: Argv<T>) {
  return y
    .option('data-dir', { type: 'string', default: defaultDataDir(), describe: 'Data directory (env NEXUS_DATA_DIR)', defaultDescription: '$NEXUS_DATA_DIR or ~/.nexus/data' })
    .option('json', { type: 'boolean', default: false, describe: 'Machine-readable output' });
}

async function status(a: Common): Promise<void> {
  const owner = await readLock(a.dataDir);
  if (owner) {
    const { readDaemonInfo } = await import('../fuse/daemon.js');
    const daemon = await readDaemonInfo(a.dataDir);
    const s = { dataDir: a.dataDir, servedBy: { pid: owner.pid, role: owner.role }, mounts: daemon ? [daemon.mountpoint] : [] };
    if (a.json) printJson(s);
    else {
      process.stdout.write(`data directory ${a.dataDir} is served by ${owner.role} (pid ${owner.pid})\n`);
      if (daemon) process.stdout.write(`mounted at ${daemon.mountpoint} since ${daemon.startedAt}\n`);
    }
    return;
  }
  const d = await openDataDir(a.dataDir, { role: 'nexus status' });
  try {
    const stats = await d.meta.stats();
    let blobCount = 0;
    let blobBytes = 0;
    for await (const id of d.blobs.list()) {
      blobCount++;
      blobBytes += (await d.blobs.size(id)) ?? 0;
    }
    const s = { dataDir: a.dataDir, schemaVersion: Number(d.meta.database.pragma('user_version', { simple: true })), ...stats, blobs: blobCount, storedBytes: blobBytes };
    if (a.json) printJson(s);
    else {
      process.stdout.write(`Nexus ${pkg.version} — data directory ${a.dataDir} (not mounted)\n`);
      printTable([s], ['schemaVersion', 'files', 'directories', 'logicalBytes', 'blobs', 'storedBytes']);
    }
  } finally {
    await d.close();
  }
}

export async function main(argv: string[]): Promise<void> {
  await fileCommands(yargs(argv))
    .scriptName('nexus')
    .usage('$0 <command> [options]')
    .command('mount <dir>', 'Mount Nexus at <dir> (detaches unless --foreground)', (y) =>
      common(y)
        .positional('dir', { type: 'string', demandOption: true, describe: 'Mount point (an empty directory)' })
        .option('foreground', { type: 'boolean', default: false, describe: 'Stay in the foreground; Ctrl-C unmounts' })
        .option('nonempty', { type: 'boolean', default: false, describe: 'Allow mounting over a non-empty directory' })
        .option('allow-other', { type: 'boolean', describe: 'Let other users use the mount (default: when run as root)' })
        .option('api-key', { type: 'string', describe: 'Act as this API key: its grants limit the mount (EACCES elsewhere)' }),
      async (a) => (await import('./mount-commands.js')).mountCommand(a as unknown as MountArgs))
    .command('unmount <dir>', 'Commit pending writes and unmount <dir>', (y) =>
      y.positional('dir', { type: 'string', demandOption: true }),
      async (a) => (await import('./mount-commands.js')).unmountCommand({ dir: a.dir as string }))
    .command('serve', 'Serve the HTTP API over a data directory', (y) => common(y)
        .option('host', { type: 'string', default: '127.0.0.1', describe: 'Address to listen on' })
        .option('port', { type: 'number', default: 8080, describe: 'TCP port' })
        .option('rate-limit', { type: 'number', describe: 'Requests per second per API key (default: unlimited)' })
        .option('body-limit', { type: 'number', describe: 'Largest JSON request body in bytes (default 1 MiB)' }),
      async (a) => (await import('./serve-command.js')).serveCommand(a as unknown as ServeArgs))
    .command('workspace', 'Workspaces and their snapshots: create|list|info|delete|snapshot|snapshots|diff|restore', (y) => workspaceCommands(y))
    .command('session', 'Agent sessions: create|list|show|end|files|diff|revert', (y) => sessionCommands(y))
    .command('key', 'API keys: create|list|revoke', (y) => keyCommands(y))
    .command('rebac', 'Access grants: create|list|delete', (y) => rebacCommands(y))
    .command('status', 'Show what a data directory holds and who serves it', (y) => common(y), (a) => status(a as unknown as Common))
    .command(maintenanceCommands())
    .demandCommand(1, 'Name a command (see --help)')
    .strict()
    .version(pkg.version)
    .help()
    .fail((msg, err, y) => {
      if (err) failAndExit(err);
      process.stderr.write(`nexus: ${msg}\n`);
      process.stderr.write(`Try 'nexus --help'.\n`);
      void y;
      process.exit(2);
    })
    .parseAsync();
}

main(hideBin(process.argv)).catch(failAndExit);

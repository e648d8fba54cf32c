/** `nexus mount` / `nexus unmount`: start the daemon (detached unless --foreground) and stop it cleanly. */
import { spawn } from 'node:child_process';
import { openSync, closeSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NexusError, fromSystemError } from '../errors.js';
import { configureLogger } from '../util/logger.js';
import { preflight, readDaemonInfo, startMount } from '../fuse/daemon.js';
import { startLocalSocket } from '../server/local-socket.js';
import { abortFuseConnection, dataDirOfMount, fusermountUnmount, isNexusMount, mountAt, waitUntil } from '../fuse/mount-table.js';

export interface MountArgs {
  dir: string;
  dataDir: string;
  foreground: boolean;
  nonempty: boolean;
  allowOther?: boolean;
  apiKey?: string;
}

type ParentMessage = { type: 'ready'; mountpoint: string } | { type: 'error'; message: string; code: string };

export async function mountCommand(a: MountArgs): Promise<void> {
  const dataDir = resolve(a.dataDir);
  const mountpoint = resolve(a.dir);
  if (a.foreground) return runForeground({ ...a, dataDir, dir: mountpoint });
  // Fail fast in the parent with the same one-line errors the daemon would give.
  const { cleanedStale } = await preflight({ mountpoint, dataDir, nonempty: a.nonempty });
  if (cleanedStale) process.stdout.write(`cleaned a stale mount at ${mountpoint} (its daemon had died)\n`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logFd = openSync(join(dataDir, 'daemon.log'), 'a');
  const bin = fileURLToPath(new URL('../../../bin/nexus', import.meta.url));
  const args = [bin, 'mount', mountpoint, '--foreground', '--data-dir', dataDir];
  if (a.nonempty) args.push('--nonempty');
  if (a.allowOther !== undefined) args.push(a.allowOther ? '--allow-other' : '--no-allow-other');
  // The key travels in the environment, not argv (argv is world-readable in /proc).
  const env = a.apiKey ? { ...process.env, NEXUS_MOUNT_API_KEY: a.apiKey } : process.env;
  // cwd '/': the daemon must never hold its own mount busy, nor sit inside it.
  const child = spawn(process.execPath, args, { cwd: '/', detached: true, env, stdio: ['ignore', logFd, logFd, 'ipc'] });
  closeSync(logFd);
  const msg = await new Promise<ParentMessage>((res) => {
    child.once('message', (m) => res(m as ParentMessage));
    child.once('exit', (code) => res({ type: 'error', code: 'INTERNAL', message: `daemon exited (code ${code}) before mounting; see ${join(dataDir, 'daemon.log')}` }));
  });
  if (msg.type === 'error') throw new NexusError((msg.code as NexusError['code']) ?? 'INTERNAL', msg.message);
  child.disconnect();
  child.unref();
  process.stdout.write(`mounted ${msg.mountpoint} (data ${dataDir}, pid ${child.pid})\n`);
}

async function runForeground(a: MountArgs): Promise<void> {
  configureLogger({ destination: process.send ? 1 : 2 });
  let running;
  try {
    const apiKey = a.apiKey ?? process.env.NEXUS_MOUNT_API_KEY;
    delete process.env.NEXUS_MOUNT_API_KEY;
    running = await startMount({ mountpoint: a.dir, dataDir: a.dataDir, nonempty: a.nonempty, allowOther: a.allowOther, apiKey, serveLocally: startLocalSocket });
  } catch (e) {
    if (process.send) {
      const mapped = fromSystemError(e);
      const err = mapped.code === 'INTERNAL' && !(e instanceof NexusError) ? new NexusError('INTERNAL', (e as Error).message) : mapped;
      process.send({ type: 'error', message: err.message, code: err.code } satisfies ParentMessage);
      process.disconnect?.();
      process.exitCode = 1;
      return;
    }
    throw e;
  }
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void running.stop());
  if (process.send) {
    process.send({ type: 'ready', mountpoint: running.mountpoint } satisfies ParentMessage);
    process.disconnect?.();
  } else {
    process.stderr.write(`mounted ${running.mountpoint}; Ctrl-C to unmount\n`);
  }
  await running.finished;
}

export async function unmountCommand(a: { dir: string; timeoutMs?: number }): Promise<void> {
  const mountpoint = resolve(a.dir);
  const m = mountAt(mountpoint);
  if (!m) throw new NexusError('NOT_FOUND', `${mountpoint} is not mounted`);
  if (!isNexusMount(m)) throw new NexusError('INVALID_ARGUMENT', `${mountpoint} is not a Nexus mount (${m.fstype})`);
  const info = await readDaemonInfo(dataDirOfMount(m));
  if (info && info.mountpoint === mountpoint) {
    // The daemon commits dirty files, then unmounts itself.
    process.kill(info.pid, 'SIGTERM');
    const gone = await waitUntil(() => !mountAt(mountpoint), a.timeoutMs ?? 60_000);
    if (!gone) throw new NexusError('BUSY', `${mountpoint} is still mounted after SIGTERM to pid ${info.pid} (files open inside it?)`);
  } else {
    abortFuseConnection(mountpoint); // no live daemon: end what waits on it, then drop the stale mount
    await fusermountUnmount(mountpoint, true);
  }
  process.stdout.write(`unmounted ${mountpoint}\n`);
}

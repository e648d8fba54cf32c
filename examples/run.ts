/**
 * What every example shares when it is run directly
 * (`node dist/examples/<name>.js` after `npm run build`): connection options
 * from the environment, and a runner that turns a failure into one line on
 * stderr and exit code 1.
 *
 *   NEXUS_URL + NEXUS_API_KEY   a Nexus server (`nexus serve`)
 *   NEXUS_DATA_DIR              an embedded data directory
 *   otherwise                   ./nexus-data, as in the seed document
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConflictError, type ConnectOptions } from 'nexus';

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): ConnectOptions {
  if (env.NEXUS_URL) return { remoteUrl: env.NEXUS_URL, ...(env.NEXUS_API_KEY ? { apiKey: env.NEXUS_API_KEY } : {}) };
  return { dataDir: env.NEXUS_DATA_DIR || './nexus-data' };
}

function isEntryPoint(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(resolve(entry)) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}

/**
 * Run `main` when the module at `moduleUrl` is the program Node was started
 * with; do nothing when it is imported (by the tests, or by another example).
 */
export function runIfMain<O extends ConnectOptions>(moduleUrl: string, main: (options: O) => Promise<unknown>, extra: Partial<O> = {}): void {
  if (!isEntryPoint(moduleUrl)) return;
  const name = fileURLToPath(moduleUrl).replace(/^.*\//, '').replace(/\.[jt]s$/, '');
  main({ ...optionsFromEnv(), ...extra } as O).then(
    () => {
      process.exitCode = 0;
    },
    (e: unknown) => {
      const err = e as Error;
      process.stderr.write(`${name}: ${err?.message ?? String(e)}\n`);
      if (e instanceof ConflictError) {
        process.stderr.write(`${name}: the example creates fixed paths; run it against a fresh data directory (NEXUS_DATA_DIR=...)\n`);
      }
      process.exitCode = 1;
    },
  );
}

/** `datetime.now().strftime('%Y%m%d')`, in local time like the seed's. */
export function yyyymmdd(d: Date = new Date()): string {
  return `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}`;
}

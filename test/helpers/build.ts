/**
 * Child processes run the compiled engine (dist/), since tsx is not a
 * dependency. `npm test` builds first; a direct `vitest run` builds here when
 * dist/ is missing or older than src/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const DIST_SRC = join(REPO, 'dist', 'src');

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Which compiled files are missing or older than their source. */
export function staleOutputs(): string[] {
  const stale: string[] = [];
  for (const ts of tsFiles(join(REPO, 'src'))) {
    const js = join(DIST_SRC, relative(join(REPO, 'src'), ts)).replace(/\.ts$/, '.js');
    if (!existsSync(js) || statSync(js).mtimeMs < statSync(ts).mtimeMs) stale.push(relative(REPO, ts));
  }
  return stale;
}

export function ensureBuilt(): void {
  if (staleOutputs().length === 0) return;
  const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: REPO, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build failed (tsc -p tsconfig.json):\n${r.stdout}\n${r.stderr}`);
  const still = staleOutputs();
  if (still.length) throw new Error(`dist/ still stale after a build: ${still.join(', ')}`);
}

#!/usr/bin/env node
/**
 * Long differential runs: Nexus mount vs a native directory.
 *
 *   node scripts/differential.mjs --seed 7 --ops 2000          one long seed
 *   node scripts/differential.mjs --seed 1 --seeds 20 --ops 500 seeds 1..20
 *   node scripts/differential.mjs --replay /tmp/differential-seed-7.json
 *   node scripts/differential.mjs --replay saved.json --minimize    shrink a saved sequence
 *
 * Options: --no-shrink, --shrink-budget <seconds> (default 600),
 * --out <dir> (where shortest sequences are saved, default the OS temp dir),
 * --verbose (print every op), --stats (outcome counts per op),
 * --fresh-mounts (shrink on a new mount per candidate, not a fresh run
 * directory of one mount), --compare-probability P (compare trees after a step with probability P
 * only; results are always compared: the comparison reads through the mount
 * and can mask stale-cache bugs), --avoid restore-open,unlink-open,links (exploration
 * only: step around known bugs to find others; see Generator in
 * test/helpers/diff-core.mjs). Build first (npx tsc -p tsconfig.json): the
 * daemon runs from dist/. Exit status 1 when any seed fails.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { Lab, checkSeed, formatReport, formatStats, formatFailure, formatOps, replay, shrink } from '../test/helpers/diff-core.mjs';
import { fuseAvailable } from '../test/helpers/mount-launcher.mjs';

const { values: a } = parseArgs({
  options: {
    seed: { type: 'string' },
    seeds: { type: 'string', default: '1' },
    ops: { type: 'string', default: '1000' },
    replay: { type: 'string' },
    'no-shrink': { type: 'boolean', default: false },
    'shrink-budget': { type: 'string', default: '600' },
    out: { type: 'string', default: tmpdir() },
    verbose: { type: 'boolean', default: false },
    stats: { type: 'boolean', default: false },
    minimize: { type: 'boolean', default: false },
    'compare-probability': { type: 'string', default: '1' },
    'fresh-mounts': { type: 'boolean', default: false },
    avoid: { type: 'string', default: '' },
  },
});

if (!fuseAvailable) {
  console.error('differential: /dev/fuse or dist/ is missing (build with npx tsc -p tsconfig.json)');
  process.exit(2);
}

const lab = new Lab();
const log = (m) => console.log(m);
const onStep = a.verbose ? (i, op, f) => console.log(`${String(i).padStart(5)} ${JSON.stringify(op)}${f ? '  <-- FAIL' : ''}`) : undefined;
let failed = 0;
const cleanup = async () => {
  await lab.dispose().catch((e) => console.error(e));
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  if (a.replay) {
    const ops = JSON.parse(readFileSync(a.replay, 'utf8'));
    console.log(`replaying ${ops.length} ops from ${a.replay}`);
    const f = await replay(lab, ops, { onStep, freshMount: true });
    if (f) {
      failed++;
      console.log(`FAILED\n${formatFailure(f)}`);
      if (a.minimize) {
        const s = await shrink(lab, ops, f, { budgetMs: Number(a['shrink-budget']) * 1000, log, freshMounts: a['fresh-mounts'] });
        const file = join(a.out, `differential-minimized-${Date.now()}.json`);
        writeFileSync(file, JSON.stringify(s.ops, null, 1));
        console.log(`shortest failing sequence (${s.ops.length} ops; ${s.replays} replays${s.timedOut ? ', budget ran out' : ''}):\n${formatOps(s.ops)}\n${formatFailure(s.failure)}\nsaved to ${file}`);
      }
    } else console.log('replay passed');
  } else {
    const first = a.seed !== undefined ? Number(a.seed) : Math.floor(Math.random() * 2 ** 31);
    const nseeds = Number(a.seeds);
    const nops = Number(a.ops);
    for (let s = first; s < first + nseeds; s++) {
      const r = await checkSeed(lab, s, nops, {
        log, onStep, freshMounts: a['fresh-mounts'], compareProbability: Number(a['compare-probability']), generator: { avoid: a.avoid.split(',').filter(Boolean) }, shrink: !a['no-shrink'], shrinkBudgetMs: Number(a['shrink-budget']) * 1000, saveDir: a.out,
      });
      console.log(formatReport(r));
      if (a.verbose || a.stats) console.log(`  outcomes: ${formatStats(r.stats)}`);
      if (!r.ok) {
        failed++;
        if (!r.minimal) console.log(formatOps(r.ops));
      }
    }
    console.log(`${nseeds - failed}/${nseeds} seeds passed (${nops} ops each; ${lab.mountsStarted} mounts started)`);
  }
  for (const d of lab.deaths) console.log(`a daemon died: ${JSON.stringify(d.exit)}\n${d.output}`);
} finally {
  await cleanup();
}
process.exit(failed ? 1 : 0);

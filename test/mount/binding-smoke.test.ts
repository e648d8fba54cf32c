/**
 * The patched fuse-native's contract: scripts/fuse-smoke.mjs mounts four
 * in-memory filesystems with the patched module and checks each behaviour
 * the daemon relies on with real syscalls (caller identity, nanosecond times,
 * paged readdir, per-open flags, 1 MiB writes, fstat of nameless files,
 * handler errors...). Run here so CI checks the binding, not only the daemon.
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO, fuseAvailable, isRoot } from '../helpers/mount.js';

describe.skipIf(!fuseAvailable || !isRoot)('patched fuse-native (scripts/fuse-smoke.mjs)', () => {
  it('passes every check and leaves no mount behind', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'scripts/fuse-smoke.mjs')], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
    const failed = r.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
    expect(failed, r.stderr).toEqual([]);
    expect(r.status, r.stdout.slice(-2000) + r.stderr).toBe(0);
    expect(r.stdout).toContain('fuse-smoke: all checks passed');
    expect(r.stdout).toContain('PASS maxWrite 1048576');
  });
});

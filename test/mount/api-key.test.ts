/** A mount acting as one principal (--api-key): its grants limit what shows and what works, EACCES elsewhere. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuseAvailable, startMount, sh, NEXUS_BIN, type TestMount } from '../helpers/mount.js';

const nexus = (dataDir: string, ...args: string[]) =>
  execFileSync(process.execPath, [NEXUS_BIN, ...args, '--data-dir', dataDir], { encoding: 'utf8', cwd: '/' }).trim();

describe.skipIf(!fuseAvailable)('mount: --api-key acts as that principal', () => {
  let base: string;
  let m: TestMount;
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'nexus-key-'));
    const dataDir = join(base, 'data');
    nexus(dataDir, 'workspace', 'create', '/tenants/acme');
    nexus(dataDir, 'workspace', 'create', '/tenants/beta');
    execFileSync('sh', ['-c', `echo secret | "${process.execPath}" "${NEXUS_BIN}" write /tenants/beta/s.txt --data-dir "${dataDir}"`]);
    nexus(dataDir, 'rebac', 'create', 'user', 'alice', 'owner', 'file', '/tenants/acme');
    const key = nexus(dataDir, 'key', 'create', '--subject', 'user:alice');
    mkdirSync(join(base, 'mnt'));
    m = await startMount({ dataDir, mountpoint: join(base, 'mnt'), extraArgs: ['--api-key', key] });
  });
  afterAll(async () => {
    await m?.cleanup();
    rmSync(base, { recursive: true, force: true });
  });

  it('works inside the grant and shows only the way to it', () => {
    expect(sh(m.mountpoint, 'echo hi > tenants/acme/a.txt && cat tenants/acme/a.txt && ls tenants').stdout).toBe('hi\nacme\n');
  });

  it('refuses everything outside the grant with EACCES, and links cannot carry it out', () => {
    const cases = [
      'cat tenants/beta/s.txt',
      'ls tenants/beta',
      'echo x > tenants/x',
      'mkdir tenants/gamma',
      'mv tenants/acme/a.txt tenants/beta/',
      'ln tenants/beta/s.txt tenants/acme/hard',
      'ln -s ../beta/s.txt tenants/acme/soft && cat tenants/acme/soft',
      'printf "snapshot /tenants/beta\\n" > .nexus/ctl',
    ];
    for (const cmd of cases) {
      const r = sh(m.mountpoint, cmd);
      expect(r.code, cmd).not.toBe(0);
      expect(r.stderr, cmd).toMatch(/Permission denied/);
    }
    expect(sh(m.mountpoint, 'cat .nexus/workspaces').stdout).not.toContain('/tenants/beta');
    expect(sh(m.mountpoint, 'cat tenants/acme/a.txt').stdout).toBe('hi\n');
  });
});

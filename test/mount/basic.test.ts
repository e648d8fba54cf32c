import { describe, it, expect, afterEach, afterAll } from 'vitest';
import { fuseAvailable, startMount, sh, isMounted, expectNoMountsLeft, type TestMount } from '../helpers/mount.js';

describe.skipIf(!fuseAvailable)('mount: basics', () => {
  let m: TestMount | undefined;
  afterEach(async () => {
    await m?.cleanup();
    m = undefined;
  });
  afterAll(() => expectNoMountsLeft());

  it('mounts, serves files and /.nexus, and unmounts on SIGTERM', async () => {
    m = await startMount();
    expect(isMounted(m.mountpoint)).toBe(true);
    const r = sh(m.mountpoint, 'echo hello > a.txt && cat a.txt && ls -a && cat .nexus/README | head -1');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('hello');
    expect(r.stdout).toContain('.nexus');
    expect(r.stdout).toContain('Nexus control files');
    await m.stop();
    expect(isMounted(m.mountpoint)).toBe(false);
  });
});

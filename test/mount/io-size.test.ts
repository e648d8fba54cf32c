/**
 * Request sizes at the mount: a 1 MiB write(2) is one WRITE (fuse-native patch
 * version 13 negotiates FUSE_MAX_PAGES), and the daemon raises its mount's
 * read-ahead so sequential readers keep several 1 MiB READs in flight
 * (native-notes/fuse-options.md).
 */
import { describe, it, expect, afterEach, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { deviceOfMount } from '../../src/fuse/mount-table.js';
import { fuseAvailable, isRoot, startMount, shOk, expectNoMountsLeft, type TestMount } from '../helpers/mount.js';

interface OpProfile { ops: Record<string, { n: number; avgUs: number }> }

/** The op profile a daemon started with NEXUS_FUSE_PROFILE=1 logs when it stops. */
function opProfile(output: string): OpProfile['ops'] {
  const line = output.split('\n').find((l) => l.includes('fuse op profile'));
  if (!line) throw new Error(`no op profile in the daemon's output:\n${output}`);
  return (JSON.parse(line) as OpProfile).ops;
}

/** read_ahead_kb of the device mounted at `dir`. */
function readaheadOf(dir: string): string {
  const dev = deviceOfMount(dir);
  if (!dev) throw new Error(`${dir} is not in /proc/self/mountinfo`);
  return readFileSync(`/sys/class/bdi/${dev}/read_ahead_kb`, 'utf8').trim();
}

describe.skipIf(!fuseAvailable)('mount: request sizes', () => {
  let m: TestMount | undefined;
  afterEach(async () => {
    await m?.cleanup();
    m = undefined;
  });
  afterAll(() => expectNoMountsLeft());

  it('a 1 MiB write(2) reaches the daemon as one WRITE request, and the content is intact', async () => {
    m = await startMount({ env: { NEXUS_FUSE_PROFILE: '1' } });
    const sums = shOk(m.base, `
      head -c ${16 << 20} /dev/urandom > src
      dd if=src of=mnt/f bs=1M status=none
      sha256sum < src; sha256sum < mnt/f`).trim().split('\n');
    expect(sums).toHaveLength(2);
    expect(sums[1]).toBe(sums[0]);
    await m.stop();
    const ops = opProfile(m.output());
    expect(ops.write?.n, '16 MiB written with bs=1M: one WRITE per MiB (128 KiB requests would make 128)').toBe(16);
  });

  it.skipIf(!isRoot)("raises its mount's read-ahead to 4 MiB, and a sequential read after a page-cache drop returns the content", async () => {
    m = await startMount();
    expect(readaheadOf(m.mountpoint)).toBe('4096');
    const sums = shOk(m.base, `
      head -c ${32 << 20} /dev/urandom > src
      cp src mnt/f
      echo 1 > /proc/sys/vm/drop_caches
      sha256sum < src; sha256sum < mnt/f`).trim().split('\n');
    expect(sums[1]).toBe(sums[0]);
  });

  it.skipIf(!isRoot)('keeps the 4 MiB read-ahead whichever comes first, its write or the INIT reply (caching off: the mount answers soonest)', async () => {
    // Before patch version 14 the kernel applied libfuse's 128 KiB max_readahead
    // after the daemon's write now and then (2 of 20 mounts pinned to one CPU).
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      m = await startMount({ env: { NEXUS_FUSE_CACHE: '0' } });
      seen.push(readaheadOf(m.mountpoint));
      await m.cleanup();
      m = undefined;
    }
    expect(seen).toEqual(['4096', '4096', '4096', '4096', '4096']);
  });
});

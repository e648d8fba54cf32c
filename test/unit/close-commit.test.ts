/**
 * close(2) through the mount is FLUSH (synchronous) then RELEASE (after close
 * returned). A file must be committed when close returns, even when the same
 * writer reopens it with O_TRUNC before the RELEASE arrives.
 */
import { describe, expect, it } from 'vitest';
import { constants as C } from 'node:fs';
import type { OpenedDataDir } from '../../src/engine/data-dir.js';
import { ROOT_CONTEXT } from '../../src/engine/credentials.js';
import { pattern } from '../conformance/harness.js';
import { dataDirPerTest } from '../helpers/data-dir.js';

const ctx = ROOT_CONTEXT;
const dataDir = dataDirPerTest('nx-close-');
let d: OpenedDataDir;

/** The committed content of `path` (what a snapshot would take). */
async function committed(o: OpenedDataDir, path: string): Promise<Buffer> {
  const st = await o.engine.getattr(path, ctx);
  const node = (await o.meta.getInode(st.ino))!;
  return o.engine.readVersion(node.vid, node.size, 0, node.size);
}

describe('commit at close', () => {
  for (const size of [3000, 2_500_000]) {
    it(`a flushed version is committed although the next open(O_TRUNC) comes before its release (${size} bytes)`, async () => {
      d = await dataDir.open();
      const e = d.engine;
      const v1 = pattern(size, 1);
      const v2 = pattern(size + 17, 2);
      const { fh: f0 } = await e.create('/f', C.O_WRONLY | C.O_CREAT, 0o644, ctx);
      await e.write(f0, v1, 0);
      await e.flush(f0);
      await e.release(f0);
      expect((await committed(d, '/f')).equals(v1)).toBe(true);

      const f1 = await e.open('/f', C.O_WRONLY | C.O_TRUNC, ctx);
      await e.write(f1, v2, 0);
      await e.flush(f1); // close(2) returned here
      const f2 = await e.open('/f', C.O_WRONLY | C.O_TRUNC, ctx); // reopened before the RELEASE of f1
      await e.release(f1);
      await e.write(f2, pattern(1000, 3), 0); // a rewrite in progress: never committed halfway
      expect((await committed(d, '/f')).equals(v2)).toBe(true);
      await e.release(f2);
    });
  }

  it('flush does not commit while another writer has the file open', async () => {
    d = await dataDir.open();
    const e = d.engine;
    const { fh: a } = await e.create('/g', C.O_WRONLY | C.O_CREAT, 0o644, ctx);
    const b = await e.open('/g', C.O_WRONLY, ctx);
    await e.write(a, pattern(5000, 1), 0);
    await e.flush(a);
    expect((await committed(d, '/g')).length).toBe(0);
    await e.release(a);
    await e.release(b);
    expect((await committed(d, '/g')).equals(pattern(5000, 1))).toBe(true);
  });
});

import { describe, it, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDataDir } from '../../src/engine/data-dir.js';
import { ROOT_CONTEXT } from '../../src/engine/credentials.js';

describe('engine smoke', () => {
  it('writes, reads, renames, dedups', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nx-'));
    const d = await openDataDir(dir);
    const e = d.engine;
    await e.mkdir('/a/b', 0o755, ROOT_CONTEXT, { parents: true });
    await e.writeFile('/a/b/f.txt', Buffer.from('hello'), ROOT_CONTEXT);
    expect((await e.readFile('/a/b/f.txt', ROOT_CONTEXT)).toString()).toBe('hello');
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    await e.writeFile('/a/big', big, ROOT_CONTEXT);
    expect((await e.readFile('/a/big', ROOT_CONTEXT)).equals(big)).toBe(true);
    await e.rename('/a/big', '/a/b/big2', ROOT_CONTEXT);
    expect((await e.getattr('/a/b/big2', ROOT_CONTEXT)).size).toBe(big.length);
    await d.close();
    const d2 = await openDataDir(dir);
    expect((await d2.engine.readFile('/a/b/big2', ROOT_CONTEXT)).equals(big)).toBe(true);
    await d2.close();
  });
});

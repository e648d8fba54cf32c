#!/usr/bin/env node
// Child process of test/crash/crash-points.test.ts: works on a data directory
// through the compiled engine and services (dist/), and kills itself with
// SIGKILL at one precise point, so a crash window that a random kill hits only
// now and then is hit every time.
//
//   node test/helpers/crash-point-child.mjs <dataDir> <scenario> <phase>
//
// phase 'prepare' sets the scene and closes the directory cleanly; phase
// 'crash' does the work and dies at the point. Lines on stdout report ids.
import { constants as C, promises as fsp } from 'node:fs';

const [dataDir, scenario, phase] = process.argv.slice(2);
const dist = new URL('../../dist/src/', import.meta.url);
const { openServices } = await import(new URL('services/services.js', dist).href);
const { ROOT_CONTEXT } = await import(new URL('engine/credentials.js', dist).href);

const say = (line) => process.stdout.write(line + '\n');
const die = () => process.kill(process.pid, 'SIGKILL');
const { pattern } = await import('./pattern.mjs');

const d = await openServices(dataDir, { role: `crash-point ${scenario} ${phase}` });
const e = d.engine;
const s = d.services;
const ctx = ROOT_CONTEXT;
const inSession = (sessionId) => ({ ...ctx, sessionId });

/** open, write, and either close (commit) or leave open (staged only). */
async function put(path, data, c, { close = true, flags = C.O_WRONLY | C.O_CREAT | C.O_TRUNC } = {}) {
  const { fh } = await e.create(path, flags, 0o644, c);
  if (data.length) await e.write(fh, data, 0);
  if (close) await e.release(fh);
  return fh;
}

switch (`${scenario}/${phase}`) {
  // A kill between creating a staging meta file and writing it.
  case 'staging-meta/prepare':
    await e.mkdir('/m', 0o755, ctx);
    await put('/m/big', pattern('/m/big', 1, 2_500_000), ctx);
    break;
  case 'staging-meta/crash': {
    const writeFile = fsp.writeFile;
    fsp.writeFile = async (path, ...rest) => {
      // The meta file is written aside (<ino>.meta.tmp) and renamed into place.
      if (/\.meta(\.tmp)?$/.test(String(path))) {
        await (await fsp.open(path, 'w')).close(); // created (truncated), not yet written
        die();
        await new Promise(() => {});
      }
      return writeFile.call(fsp, path, ...rest);
    };
    // open(O_TRUNC) of a large file: the truncate writes staging/<ino>.meta.
    await e.open('/m/big', C.O_RDWR | C.O_TRUNC, ctx);
    break;
  }

  // A session's writes staged (not committed) when the daemon dies.
  case 'session-staged/prepare': {
    await e.mkdir('/s', 0o755, ctx);
    await put('/s/small', pattern('/s/small', 0, 100_000), ctx);
    await put('/s/large', pattern('/s/large', 0, 1_500_000), ctx);
    const sess = await s.sessions.create('crash-agent', {}, ctx);
    say(`session ${sess.session_id}`);
    break;
  }
  case 'session-staged/crash': {
    const c = inSession(process.argv[5]);
    await put('/s/small', pattern('/s/small', 1, 120_000), c, { close: false });
    await put('/s/large', pattern('/s/large', 1, 1_700_000), c, { close: false });
    await put('/s/new', pattern('/s/new', 1, 5_000), c, { close: false });
    die();
    break;
  }

  // A session wrote and closed a file (tagged commit), then rewrote it; killed before the second close.
  case 'session-rewrite/prepare': {
    await e.mkdir('/s', 0o755, ctx);
    await put('/s/doc', pattern('/s/doc', 0, 50_000), ctx);
    const sess = await s.sessions.create('crash-agent', {}, ctx);
    say(`session ${sess.session_id}`);
    break;
  }
  case 'session-rewrite/crash': {
    const c = inSession(process.argv[5]);
    await put('/s/doc', pattern('/s/doc', 1, 60_000), c);
    await put('/s/doc', pattern('/s/doc', 2, 70_000), c, { close: false });
    die();
    break;
  }

  // A power cut: metadata reached the disk, some blobs it names did not.
  // The crash phase stops the background sync, so nothing it writes is
  // synced; the test then removes or tears blobs as a power cut would.
  case 'power-cut/prepare':
    await e.mkdir('/p', 0o755, ctx);
    await put('/p/a', pattern('/p/a', 1, 300_000), ctx);
    await put('/p/b', pattern('/p/b', 1, 2_500_000), ctx);
    break;
  case 'power-cut/crash': {
    clearInterval(e.syncTimer);
    await put('/p/a', pattern('/p/a', 2, 310_000), ctx);
    await put('/p/b', pattern('/p/b', 2, 2_600_000), ctx);
    await put('/p/c', pattern('/p/c', 1, 50_000), ctx);
    const snap = await s.snapshots.create('/p', {}, ctx);
    const blobsOf = async (path) => {
      const node = await e.resolve(path, ctx);
      return (await d.meta.getVersion(node.vid)).chunks.map((c) => c.id).filter(Boolean);
    };
    say(`snapshot ${snap.snapshot_id}`);
    for (const p of ['/p/a', '/p/b', '/p/c']) say(`blobs ${p} ${(await blobsOf(p)).join(' ')}`);
    die();
    break;
  }

  // A session revert killed half way (after the first file it restored).
  case 'revert-midway/prepare': {
    await e.mkdir('/r', 0o755, ctx);
    for (const n of ['a', 'b', 'c']) await put(`/r/${n}`, pattern(`/r/${n}`, 0, 30_000), ctx);
    const sess = await s.sessions.create('crash-agent', {}, ctx);
    const c = inSession(sess.session_id);
    for (const n of ['a', 'b', 'c']) await put(`/r/${n}`, pattern(`/r/${n}`, 1, 40_000), c);
    await put('/r/n', pattern('/r/n', 1, 10), c);
    say(`session ${sess.session_id}`);
    break;
  }
  case 'revert-midway/crash': {
    let calls = 0;
    const restore = e.restoreContent.bind(e);
    e.restoreContent = async (...args) => {
      if (++calls === 2) die();
      return restore(...args);
    };
    await s.sessions.revert(process.argv[5], {}, ctx);
    say('revert finished without the kill');
    break;
  }
  // A restore replaces files that a writer has open with writes pending (in place, no O_TRUNC).
  case 'restore-under-writer/prepare': {
    await e.mkdir('/t', 0o755, ctx);
    await put('/t/small', pattern('/t/small', 1, 100_000), ctx);
    await put('/t/large', pattern('/t/large', 1, 2_500_000), ctx);
    const snap = await s.snapshots.create('/t', {}, ctx);
    await put('/t/small', pattern('/t/small', 2, 100_000), ctx);
    await put('/t/large', pattern('/t/large', 2, 2_500_000), ctx);
    say(`snapshot ${snap.snapshot_id}`);
    break;
  }
  case 'restore-under-writer/crash': {
    // Overwrite 100 bytes at offset 0 of each (pending: journal / staging), keep them open.
    for (const p of ['/t/small', '/t/large']) {
      const fh = await e.open(p, C.O_RDWR, ctx);
      await e.write(fh, Buffer.alloc(100, 0x21), 0);
    }
    await s.snapshots.restore('/t', process.argv[5], ctx);
    say('restored');
    die();
    break;
  }
  default:
    process.stderr.write(`unknown scenario/phase ${scenario}/${phase}\n`);
    process.exit(2);
}
await d.close();

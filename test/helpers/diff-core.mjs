/**
 * The differential tester's core: seeded random operation sequences applied
 * to a Nexus mount and to a native directory side by side, comparing every
 * result (same value or same errno), and after every step the whole tree
 * (listings, types, sizes, link counts, SHA-256 of contents) and every open
 * descriptor (size, link count, content). A failure is shrunk by delta
 * debugging (removing operations, then simplifying sizes) and replaying each
 * candidate on a fresh run directory, remounting whenever the daemon died;
 * the result is confirmed on a brand-new mount and printed as a replayable
 * JSON list.
 *
 * Plain ESM JavaScript so that both vitest (test/differential) and
 * `node scripts/differential.mjs` run it without a build step. The daemon
 * under test runs from dist/ (build first).
 *
 * Snapshot and restore go through /.nexus/ctl on the mount. The native side
 * models them: `snapshot` records the tree (content by hash in a store
 * outside the run directory), `restore` makes the directory equal to it with
 * the semantics Nexus documents (src/meta/sqlite-tree-ops.ts): a path whose
 * type and content are unchanged since the snapshot keeps its live inode,
 * anything else is removed and made again as a new inode, and the paths of a
 * hard-link group in the snapshot are links to one inode afterwards. "Content
 * unchanged" is tracked per native inode with a token that changes on every
 * write or truncate (Nexus: a new version on every commit). Before a
 * snapshot both sides fsync every descriptor open for writing (Nexus
 * documents that a file still open for writing is captured as of its last
 * commit; fsync commits), so the captured state is well defined.
 */
import { constants as C, promises as fsp } from 'node:fs';
import * as fsCb from 'node:fs';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchMount, isMounted } from './mount-launcher.mjs';

export const KiB = 1024;
export const MiB = 1024 * 1024;
/** The engine's chunk size (src/engine/dirty-file.ts CHUNK_SIZE). */
export const CHUNK = MiB;
/** The engine's small-file limit (src/engine/memory-file.ts SMALL_FILE_MAX). */
export const SMALL = 256 * KiB;
export const MAX_SPAN = 3 * MiB;
export const NSLOTS = 4;
const NAMES = ['f0', 'f1', 'f2', 'a', 'b', 'c'];
const MAX_DEPTH = 3;

// ------------------------------------------------------------------ PRNG and data

/** sfc32 seeded through splitmix32: small, fast, reproducible across platforms. */
export function prng(seed) {
  let s = (Number(seed) >>> 0) ^ 0x5bd1e995;
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split(), b = split(), c = split(), d = split();
  const next = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) next();
  const r = {
    next,
    float: () => next() / 4294967296,
    int: (n) => Math.floor(r.float() * n),
    chance: (p) => r.float() < p,
    pick: (arr) => arr[r.int(arr.length)],
    weighted(table) {
      let total = 0;
      for (const [, w] of table) total += w;
      let x = r.float() * total;
      for (const [v, w] of table) if ((x -= w) < 0) return v;
      return table[table.length - 1][0];
    },
  };
  return r;
}

/** Deterministic bytes: 'rand:<seed>', 'pat:<seed>' (a 4 KiB block repeated), 'zero', 'byte:<n>'. */
export function makeData(len, spec) {
  const [kind, arg] = String(spec).split(':');
  const seed = Number(arg ?? 0) >>> 0;
  if (kind === 'zero') return Buffer.alloc(len);
  if (kind === 'byte') return Buffer.alloc(len, (seed % 255) + 1);
  const fill = (n, s) => {
    const ab = new ArrayBuffer((n + 3) & ~3);
    const u = new Uint32Array(ab);
    let x = s || 0x9e3779b9;
    for (let i = 0; i < u.length; i++) {
      x ^= x << 13; x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5; x >>>= 0;
      u[i] = x;
    }
    return Buffer.from(ab, 0, n);
  };
  if (kind === 'pat') {
    const block = fill(4096, seed);
    const out = Buffer.allocUnsafe(len);
    for (let o = 0; o < len; o += 4096) block.copy(out, o, 0, Math.min(4096, len - o));
    return out;
  }
  return fill(len, seed);
}

const sha = (buf) => createHash('sha256').update(buf).digest('hex').slice(0, 16);

// ------------------------------------------------------------------ fs plumbing

const p = {
  open: promisify(fsCb.open),
  read: promisify(fsCb.read),
  write: promisify(fsCb.write),
  close: promisify(fsCb.close),
  fstat: promisify(fsCb.fstat),
  fsync: promisify(fsCb.fsync),
  ftruncate: promisify(fsCb.ftruncate),
};

const OPEN_MODES = {
  r: C.O_RDONLY,
  rw: C.O_RDWR,
  w: C.O_WRONLY,
  append: C.O_WRONLY | C.O_APPEND,
  rappend: C.O_RDWR | C.O_APPEND,
  rwtrunc: C.O_RDWR | C.O_TRUNC,
};

class OpError extends Error {
  constructor(code, msg) {
    super(`${code}: ${msg}`);
    this.code = code;
  }
}

async function preadAll(fd, len, pos) {
  const buf = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await p.read(fd, buf, got, len - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

async function pwriteAll(fd, buf, pos) {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await p.write(fd, buf, done, buf.length - done, pos + done);
    if (bytesWritten === 0) throw new OpError('ESHORT', 'write returned 0');
    done += bytesWritten;
  }
  return done;
}

const depthOf = (rel) => (rel === '/' ? 0 : rel.split('/').length - 1);
const parentOf = (rel) => (rel.lastIndexOf('/') <= 0 ? '/' : rel.slice(0, rel.lastIndexOf('/')));
const joinRel = (dir, name) => (dir === '/' ? `/${name}` : `${dir}/${name}`);

/** Walk a tree: [{ rel, type, size, nlink, ino, sha }], depth first, names sorted. */
async function walkTree(abs, rel = '/', out = [], opts = {}) {
  const names = (await fsp.readdir(abs)).sort();
  for (const name of names) {
    const r = joinRel(rel, name);
    const a = join(abs, name);
    const st = await fsp.lstat(a, { bigint: true });
    const type = st.isDirectory() ? 'd' : st.isFile() ? 'f' : 'o';
    const e = { rel: r, type, size: Number(st.size), nlink: Number(st.nlink), ino: String(st.ino) };
    if (type === 'f' && opts.content !== false) {
      const key = opts.cache ? `${st.ino}:${st.size}:${st.ctimeNs}:${st.mtimeNs}` : undefined;
      const hit = key ? opts.cache.get(key) : undefined;
      if (hit) e.sha = hit;
      else {
        e.sha = sha(await fsp.readFile(a));
        if (key) opts.cache.set(key, e.sha);
      }
    }
    out.push(e);
    if (type === 'd') await walkTree(a, r, out, opts);
  }
  return out;
}

function treeLines(entries) {
  return entries.map((e) => (e.type === 'f' ? `${e.rel} f size=${e.size} nlink=${e.nlink} sha=${e.sha}` : `${e.rel} ${e.type} nlink=${e.nlink}`));
}

// ------------------------------------------------------------------ the two sides

/** node:fs on one side (a directory on ext4 or on the mount); `hooks` lets the native side keep its model. */
class Side {
  constructor(name, root) {
    this.name = name;
    this.root = root;
    /** slot -> { fd, flags, path } */
    this.slots = new Array(NSLOTS).fill(null);
  }

  at(rel) {
    return rel === '/' ? this.root : this.root + rel;
  }

  // hooks (native model)
  async created(_fd) {}
  async changed(_fd) {}
  async changedPath(_path) {}

  async apply(op) {
    try {
      const v = await this.run(op);
      return v === undefined ? { ok: true } : { ok: true, v };
    } catch (e) {
      if (e && typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code)) return { err: e.code };
      if (e instanceof OpError) return { err: e.code };
      throw e;
    }
  }

  slot(i) {
    const s = this.slots[i];
    if (!s) throw new OpError('NOSLOT', `slot ${i} is not open`);
    return s;
  }

  async closeSlot(i) {
    const s = this.slots[i];
    if (!s) return undefined;
    this.slots[i] = null;
    try {
      await p.close(s.fd);
      return 'closed';
    } catch (e) {
      return `close:${e.code}`;
    }
  }

  async exists(path) {
    try {
      await fsp.lstat(this.at(path));
      return true;
    } catch {
      return false;
    }
  }

  async openSlot(i, path, flags, mode) {
    const prior = await this.closeSlot(i);
    const existed = flags & C.O_CREAT ? await this.exists(path) : true;
    const fd = await p.open(this.at(path), flags, mode);
    this.slots[i] = { fd, flags, path };
    if (!existed) await this.created(fd);
    else if (flags & C.O_TRUNC) await this.changed(fd);
    return prior;
  }

  async run(op) {
    switch (op.op) {
      case 'create':
        return this.openSlot(op.slot, op.path, C.O_CREAT | C.O_RDWR | (op.excl ? C.O_EXCL : 0) | (op.trunc ? C.O_TRUNC : 0), 0o644);
      case 'open':
        return this.openSlot(op.slot, op.path, OPEN_MODES[op.mode], 0o644);
      case 'close':
        this.slot(op.slot);
        return this.closeSlot(op.slot);
      case 'write': {
        const s = this.slot(op.slot);
        const n = await pwriteAll(s.fd, makeData(op.len, op.data), op.off);
        if (op.len > 0) await this.changed(s.fd);
        return n;
      }
      case 'read': {
        const s = this.slot(op.slot);
        const b = await preadAll(s.fd, op.len, op.off);
        return `${b.length}:${sha(b)}`;
      }
      case 'ftruncate': {
        const s = this.slot(op.slot);
        await p.ftruncate(s.fd, op.len);
        await this.changed(s.fd);
        return undefined;
      }
      case 'fsync':
        await p.fsync(this.slot(op.slot).fd);
        return undefined;
      case 'pwrite': {
        const fd = await p.open(this.at(op.path), C.O_RDWR);
        try {
          await pwriteAll(fd, makeData(op.len, op.data), op.off);
          if (op.len > 0) await this.changed(fd);
        } finally {
          await p.close(fd);
        }
        return undefined;
      }
      case 'writeFile': {
        const existed = await this.exists(op.path);
        const fd = await p.open(this.at(op.path), C.O_WRONLY | C.O_CREAT | C.O_TRUNC, 0o644);
        try {
          if (!existed) await this.created(fd);
          else await this.changed(fd);
          await pwriteAll(fd, makeData(op.len, op.data), 0);
          if (op.len > 0) await this.changed(fd);
        } finally {
          await p.close(fd);
        }
        return undefined;
      }
      case 'truncate':
        await fsp.truncate(this.at(op.path), op.len);
        await this.changedPath(op.path);
        return undefined;
      case 'rename':
        await fsp.rename(this.at(op.from), this.at(op.to));
        return undefined;
      case 'link':
        await fsp.link(this.at(op.from), this.at(op.to));
        return undefined;
      case 'unlink':
        await fsp.unlink(this.at(op.path));
        return undefined;
      case 'mkdir':
        await fsp.mkdir(this.at(op.path), 0o755);
        return undefined;
      case 'rmdir':
        await fsp.rmdir(this.at(op.path));
        return undefined;
      case 'snapshot': {
        const synced = await this.fsyncWriters();
        await this.snapshot(op.path, op.k);
        return synced || undefined;
      }
      case 'restore': {
        // closeAll (set by Generator option avoidRestoreWithOpenFiles): close every descriptor first.
        if (op.closeAll) for (let i = 0; i < NSLOTS; i++) await this.closeSlot(i);
        return this.restore(op.path, op.k);
      }
      default:
        throw new Error(`unknown op ${op.op}`);
    }
  }

  /** fsync every descriptor open for writing (before a snapshot). */
  async fsyncWriters() {
    const out = [];
    for (const [i, s] of this.slots.entries()) {
      if (!s || (s.flags & 3) === C.O_RDONLY) continue;
      try {
        await p.fsync(s.fd);
      } catch (e) {
        out.push(`fsync#${i}:${e.code}`);
      }
    }
    return out.join(',');
  }

  /** The state compared after every step: the tree and every open descriptor. */
  async state(cache) {
    const tree = treeLines(await walkTree(this.root, '/', [], { cache }));
    const slots = [];
    for (const [i, s] of this.slots.entries()) {
      if (!s) continue;
      let line;
      try {
        const st = await p.fstat(s.fd);
        line = `#${i} size=${st.size} nlink=${st.nlink}`;
        if ((s.flags & 3) !== C.O_WRONLY) {
          const b = await preadAll(s.fd, st.size + 1, 0);
          line += ` read=${b.length}:${sha(b)}`;
        }
      } catch (e) {
        line = `#${i} ${e.code ?? e.message}`;
      }
      slots.push(line);
    }
    return { tree, slots };
  }

  async dispose() {
    for (let i = 0; i < NSLOTS; i++) await this.closeSlot(i);
  }
}

/** The reference: a native directory, with a model of snapshot and restore. */
export class NativeSide extends Side {
  constructor(root, storeDir) {
    super('native', root);
    this.storeDir = storeDir;
    /** native inode -> content token ('null': never written, as a new Nexus file has no version) */
    this.tokens = new Map();
    this.tokenSeq = 0;
    /** k -> { path, entries: Map(rel -> { type, sha, src, token, size }) } */
    this.snaps = new Map();
    this.cache = new Map();
  }

  async inoOf(fd) {
    return String((await p.fstat(fd, { bigint: true })).ino);
  }

  async created(fd) {
    this.tokens.set(await this.inoOf(fd), 'null');
  }

  async changed(fd) {
    this.tokens.set(await this.inoOf(fd), `t${++this.tokenSeq}`);
  }

  async changedPath(path) {
    this.tokens.set(String((await fsp.stat(this.at(path), { bigint: true })).ino), `t${++this.tokenSeq}`);
  }

  tokenOf(ino) {
    return this.tokens.get(ino) ?? 'null';
  }

  async requireDir(path) {
    const st = await fsp.stat(this.at(path)); // ENOENT / ENOTDIR from the walk
    if (!st.isDirectory()) throw new OpError('ENOTDIR', `${path} is not a directory`);
  }

  async snapshot(path, k) {
    await this.requireDir(path);
    const entries = new Map();
    for (const e of await walkTree(this.at(path), '/', [], { content: false })) {
      const rec = { type: e.type, size: e.size, src: e.ino, token: this.tokenOf(e.ino) };
      if (e.type === 'f') {
        const buf = await fsp.readFile(join(this.at(path), e.rel));
        rec.sha = createHash('sha256').update(buf).digest('hex');
        await fsp.writeFile(join(this.storeDir, rec.sha), buf, { flag: 'wx' }).catch((err) => {
          if (err.code !== 'EEXIST') throw err;
        });
      }
      entries.set(e.rel, rec);
    }
    this.snaps.set(k, { path, entries });
  }

  async restore(path, k) {
    const snap = this.snaps.get(k);
    if (!snap) throw new OpError('NOSNAP', `no snapshot ${k}`);
    if (snap.path !== path) throw new OpError('EINVAL', `snapshot ${k} is of ${snap.path}, not ${path}`);
    try {
      await this.requireDir(path);
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
      await fsp.mkdir(this.at(path), { recursive: true, mode: 0o755 });
    }
    const base = this.at(path);
    const live = new Map((await walkTree(base, '/', [], { content: false })).map((e) => [e.rel, e]));
    const same = (l, s) => l.type === s.type && (l.type === 'd' || (this.tokenOf(l.ino) === s.token && l.size === s.size));
    const doomed = [...live.values()].filter((l) => !snap.entries.has(l.rel) || !same(l, snap.entries.get(l.rel)));
    doomed.sort((x, y) => depthOf(y.rel) - depthOf(x.rel));
    for (const l of doomed) {
      if (l.type === 'd') await fsp.rmdir(join(base, l.rel));
      else await fsp.unlink(join(base, l.rel));
      live.delete(l.rel);
    }
    // One inode per hard-link group of the snapshot: a kept member's, or the first made.
    const groupPath = new Map();
    for (const [rel, s] of snap.entries) if (s.type === 'f' && live.has(rel)) groupPath.set(s.src, rel);
    const todo = [...snap.entries].filter(([rel]) => !live.has(rel)).sort(([a], [b]) => depthOf(a) - depthOf(b) || (a < b ? -1 : 1));
    for (const [rel, s] of todo) {
      const abs = join(base, rel);
      if (s.type === 'd') {
        await fsp.mkdir(abs, 0o755);
        continue;
      }
      const linkTo = groupPath.get(s.src);
      if (linkTo !== undefined) {
        await fsp.link(join(base, linkTo), abs);
        continue;
      }
      await fsp.copyFile(join(this.storeDir, s.sha), abs);
      this.tokens.set(String((await fsp.stat(abs, { bigint: true })).ino), s.token);
      groupPath.set(s.src, rel);
    }
    return undefined;
  }

  async state() {
    return super.state(this.cache);
  }
}

/** The Nexus mount: the run directory `runRel` inside `mountpoint`; snapshot/restore through /.nexus/ctl. */
export class MountSide extends Side {
  constructor(mount, runRel, fault) {
    super('nexus', join(mount.mountpoint, runRel));
    this.mount = mount;
    this.runRel = runRel;
    this.snapIds = new Map();
    /** Self-test only: (op) => errno to answer instead of running op. */
    this.fault = fault;
  }

  async apply(op) {
    const planted = this.fault?.(op);
    if (planted) return { err: planted };
    return super.apply(op);
  }

  mountPath(rel) {
    return rel === '/' ? this.runRel : this.runRel + rel;
  }

  /** One command on a fresh ctl descriptor: the parsed JSON result, or an OpError with the write's errno. */
  async ctl(cmd) {
    const fd = await p.open(join(this.mount.mountpoint, '.nexus/ctl'), C.O_RDWR);
    try {
      let writeErr;
      try {
        await p.write(fd, Buffer.from(cmd + '\n'), 0, Buffer.byteLength(cmd) + 1, null);
      } catch (e) {
        writeErr = e;
      }
      const text = (await preadAll(fd, 1 << 20, 0)).toString('utf8');
      if (writeErr) throw new OpError(writeErr.code ?? 'EIO', `${cmd}: ${text.trim()}`);
      const res = JSON.parse(text);
      if (!res.ok) throw new OpError('EBADRESULT', `${cmd}: ${text.trim()}`);
      return res;
    } finally {
      await p.close(fd);
    }
  }

  async snapshot(path, k) {
    const res = await this.ctl(`snapshot ${this.mountPath(path)} k${k}`);
    this.snapIds.set(k, res.snapshot_id);
  }

  async restore(path, k) {
    const id = this.snapIds.get(k);
    if (!id) throw new OpError('NOSNAP', `no snapshot ${k}`);
    await this.ctl(`restore ${this.mountPath(path)} ${id}`);
    return undefined;
  }
}

// ------------------------------------------------------------------ the generator

/** A random size: mostly small, often across the 256 KiB and 1 MiB limits, up to 3 MiB. */
function genLen(rng) {
  const r = rng.float();
  if (r < 0.3) return rng.int(4097);
  if (r < 0.5) return rng.int(300 * KiB);
  if (r < 0.8) return Math.max(0, rng.pick([SMALL, CHUNK, 2 * CHUNK, 3 * CHUNK, 64 * KiB]) + rng.int(8193) - 4096);
  return rng.int(MAX_SPAN + 1);
}

function genOff(rng, size) {
  const r = rng.float();
  if (r < 0.2) return 0;
  if (r < 0.4) return size;
  if (r < 0.5) return Math.max(0, size - rng.int(8193));
  if (r < 0.8) return Math.max(0, rng.pick([SMALL, CHUNK, 2 * CHUNK, 3 * CHUNK]) + rng.int(8193) - 4096);
  return rng.int(MAX_SPAN + 1);
}

function genData(rng, pool) {
  const r = rng.float();
  if (r < 0.08) return 'zero';
  if (r < 0.15) return `byte:${rng.int(255)}`;
  if (r < 0.3) return `pat:${rng.pick(pool)}`;
  if (r < 0.45) return `rand:${rng.pick(pool)}`; // shared content across files and writes: dedup
  return `rand:${rng.next()}`;
}

/** What the generator knows: the native tree after the last step. */
async function viewOf(native, entries) {
  const openInos = new Set();
  for (const sl of native.slots) if (sl) openInos.add(String((await p.fstat(sl.fd, { bigint: true })).ino));
  const dirs = ['/', ...entries.filter((e) => e.type === 'd').map((e) => e.rel)];
  const files = entries.filter((e) => e.type === 'f');
  return { dirs, files, sizes: new Map(files.map((e) => [e.rel, e.size])), total: files.reduce((n, e) => n + e.size, 0), slots: native.slots, snaps: native.snaps,
    openInos, inoOf: new Map(entries.map((e) => [e.rel, e.ino])) };
}

export class Generator {
  /**
   * opts.avoid (exploration only, off by default: it steps around known bugs
   * to find others): 'restore-open' makes restores close every descriptor
   * first; 'unlink-open' never unlinks or renames over a name whose inode is
   * open (libfuse's .fuse_hidden names); 'links' makes no hard links (the
   * kernel caches each name of a hard-linked file apart).
   */
  constructor(seed, opts = {}) {
    this.opts = opts;
    this.avoid = new Set(opts.avoid ?? []);
    this.rng = prng(seed);
    this.nextK = 0;
    this.pool = [1, 2, 3, 4].map(() => this.rng.next());
  }

  newPath(v) {
    const rng = this.rng;
    if (rng.chance(0.08)) return `/${rng.pick(NAMES)}/${rng.pick(NAMES)}`; // maybe a missing parent
    const parents = v.dirs.filter((d) => depthOf(d) < MAX_DEPTH);
    return joinRel(rng.pick(parents), rng.pick(NAMES));
  }

  filePath(v, p = 0.8) {
    if (v.files.length && this.rng.chance(p)) return this.rng.pick(v.files).rel;
    return this.newPath(v);
  }

  dirPath(v, p = 0.8, root = false) {
    const dirs = root ? v.dirs : v.dirs.filter((d) => d !== '/');
    if (dirs.length && this.rng.chance(p)) return this.rng.pick(dirs);
    return this.newPath(v);
  }

  anyPath(v) {
    const r = this.rng.float();
    if (r < 0.45) return this.filePath(v, 1);
    if (r < 0.65) return this.dirPath(v, 1);
    return this.newPath(v);
  }

  openSlot(v) {
    const free = v.slots.map((s, i) => (s ? -1 : i)).filter((i) => i >= 0);
    return free.length ? this.rng.pick(free) : this.rng.int(NSLOTS);
  }

  usedSlot(v, pred = () => true) {
    const used = v.slots.map((s, i) => (s && pred(s) ? i : -1)).filter((i) => i >= 0);
    return used.length && this.rng.chance(0.95) ? this.rng.pick(used) : this.rng.int(NSLOTS);
  }

  next(v) {
    if (!this.avoid.has('unlink-open')) return this.next1(v);
    for (let i = 0; ; i++) {
      const op = this.next1(v);
      const victim = op.op === 'unlink' ? op.path : op.op === 'rename' ? op.to : undefined;
      const ino = victim !== undefined ? v.inoOf.get(victim) : undefined;
      if (i > 20 || ino === undefined || !v.openInos.has(ino)) return op;
    }
  }

  next1(v) {
    const rng = this.rng;
    const open = v.slots.filter(Boolean).length;
    const big = v.total > 24 * MiB;
    const kind = rng.weighted([
      ['create', open < NSLOTS ? 9 : 2],
      ['open', open < NSLOTS ? 6 : 2],
      ['write', open ? 22 : 1],
      ['read', open ? 6 : 1],
      ['ftruncate', open ? 4 : 0.5],
      ['fsync', open ? 4 : 0.5],
      ['close', open ? 9 : 0.5],
      ['pwrite', 4],
      ['writeFile', 5],
      ['truncate', big ? 12 : 4],
      ['rename', 7],
      ['link', this.avoid.has('links') ? 0 : 4],
      ['unlink', big ? 12 : 5],
      ['mkdir', 4],
      ['rmdir', 3],
      ['snapshot', 2.5],
      ['restore', v.snaps.size ? 2.5 : 0.2],
    ]);
    const size = (path) => v.sizes.get(path) ?? 0;
    switch (kind) {
      case 'create':
        return { op: 'create', slot: this.openSlot(v), path: rng.chance(0.6) ? this.newPath(v) : this.filePath(v, 1), excl: rng.chance(0.25), trunc: rng.chance(0.25) };
      case 'open':
        return { op: 'open', slot: this.openSlot(v), path: rng.chance(0.9) ? this.filePath(v, 1) : this.anyPath(v), mode: rng.pick(['r', 'rw', 'rw', 'rw', 'w', 'append', 'rappend', 'rwtrunc']) };
      case 'write': {
        const slot = this.usedSlot(v, (s) => (s.flags & 3) !== C.O_RDONLY);
        const len = big ? rng.int(64 * KiB) : genLen(rng);
        return { op: 'write', slot, off: genOff(rng, size(v.slots[slot]?.path)), len, data: genData(rng, this.pool) };
      }
      case 'read': {
        const slot = this.usedSlot(v);
        return { op: 'read', slot, off: genOff(rng, size(v.slots[slot]?.path)), len: genLen(rng) };
      }
      case 'ftruncate': {
        const slot = this.usedSlot(v);
        return { op: 'ftruncate', slot, len: big ? rng.int(SMALL) : genOff(rng, size(v.slots[slot]?.path)) };
      }
      case 'fsync':
        return { op: 'fsync', slot: this.usedSlot(v) };
      case 'close':
        return { op: 'close', slot: this.usedSlot(v) };
      case 'pwrite': {
        const path = this.filePath(v, 0.9);
        return { op: 'pwrite', path, off: genOff(rng, size(path)), len: big ? rng.int(64 * KiB) : genLen(rng), data: genData(rng, this.pool) };
      }
      case 'writeFile':
        return { op: 'writeFile', path: this.filePath(v, 0.5), len: big ? rng.int(64 * KiB) : genLen(rng), data: genData(rng, this.pool) };
      case 'truncate': {
        const path = rng.chance(0.9) ? this.filePath(v, 0.95) : this.anyPath(v);
        return { op: 'truncate', path, len: big ? rng.int(SMALL) : rng.chance(0.5) ? rng.int(size(path) + 1) : genOff(rng, size(path)) };
      }
      case 'rename': {
        const from = rng.chance(0.6) ? this.filePath(v, 0.9) : this.dirPath(v, 0.85);
        const r = rng.float();
        const to = r < 0.55 ? this.newPath(v) : r < 0.8 ? this.filePath(v, 1) : r < 0.95 ? this.dirPath(v, 1) : rng.chance(0.5) ? `${from}/x` : from;
        return { op: 'rename', from, to };
      }
      case 'link':
        return { op: 'link', from: rng.chance(0.9) ? this.filePath(v, 0.95) : this.anyPath(v), to: rng.chance(0.85) ? this.newPath(v) : this.anyPath(v) };
      case 'unlink':
        return { op: 'unlink', path: rng.chance(0.85) ? this.filePath(v, 0.9) : this.anyPath(v) };
      case 'mkdir':
        return { op: 'mkdir', path: rng.chance(0.85) ? this.newPath(v) : this.anyPath(v) };
      case 'rmdir': {
        const empty = v.dirs.filter((d) => d !== '/' && !v.dirs.some((x) => x.startsWith(d + '/')) && !v.files.some((f) => f.rel.startsWith(d + '/')));
        if (empty.length && rng.chance(0.6)) return { op: 'rmdir', path: rng.pick(empty) };
        return { op: 'rmdir', path: rng.chance(0.85) ? this.dirPath(v, 0.9) : this.anyPath(v) };
      }
      case 'snapshot':
        return { op: 'snapshot', path: rng.chance(0.9) ? this.dirPath(v, 0.95, true) : this.anyPath(v), k: this.nextK++ };
      case 'restore': {
        const ks = [...v.snaps.keys()];
        // Mostly the latest snapshot (a tree close to the live one: kept and replaced files mixed), else any.
        const k = !ks.length || rng.chance(0.05) ? this.nextK + 7 : rng.chance(0.6) ? ks[ks.length - 1] : rng.pick(ks);
        const path = v.snaps.get(k) && rng.chance(0.93) ? v.snaps.get(k).path : this.dirPath(v, 0.9, true);
        return this.avoid.has('restore-open') ? { op: 'restore', path, k, closeAll: true } : { op: 'restore', path, k };
      }
    }
    throw new Error(`generator: ${kind}`);
  }
}

// ------------------------------------------------------------------ running and comparing

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function lineDiff(a, b) {
  const sa = new Set(a);
  const sb = new Set(b);
  return { onlyNative: a.filter((l) => !sb.has(l)), onlyNexus: b.filter((l) => !sa.has(l)) };
}

export function signature(f) {
  return f.category === 'crash' ? 'crash' : `${f.op.op}/${f.category}`;
}

/** One run: a native directory and a run directory on the mount, compared step by step. */
export class Run {
  constructor(native, mount, lab) {
    this.native = native;
    this.nexus = mount;
    this.lab = lab;
    this.lastNative = [];
  }

  /**
   * Apply one op to both sides and compare; returns a failure or null.
   * `compareState: false` compares the results only (the shrinker's replays
   * look at the trees only after ops of the failing kind).
   */
  async step(op, index, compareState = true) {
    const fail = (category, detail) => ({ step: index, op, category, detail });
    const rn = await this.native.apply(op);
    let rm;
    try {
      rm = await this.nexus.apply(op);
    } catch (e) {
      return fail('crash', `${e.message}`);
    }
    const dead = () => !this.nexus.mount.alive() || !isMounted(this.nexus.mount.mountpoint);
    if (dead() || rm.err === 'ENOTCONN') return fail('crash', `daemon gone (${JSON.stringify(this.nexus.mount.exitInfo())}) after ${JSON.stringify(op)}: ${this.nexus.mount.output().slice(-3000)}`);
    this.lastResult = rn;
    if (!same(rn, rm)) return fail('result', { native: rn, nexus: rm });
    if (!compareState) return null;
    const sn = await this.native.state();
    let sm;
    try {
      sm = await this.nexus.state();
    } catch (e) {
      if (dead() || e.code === 'ENOTCONN') return fail('crash', `daemon gone while reading the tree: ${this.nexus.mount.output().slice(-3000)}`);
      return fail('tree', `reading the Nexus tree failed: ${e.code ?? ''} ${e.message}`);
    }
    this.lastNative = sn.tree;
    if (!same(sn.tree, sm.tree)) return fail('tree', lineDiff(sn.tree, sm.tree));
    if (!same(sn.slots, sm.slots)) return fail('slots', lineDiff(sn.slots, sm.slots));
    return null;
  }

  async entriesNative() {
    return walkTree(this.native.root, '/', [], { content: false });
  }

  async replay(ops, onStep, stateAfter) {
    for (let i = 0; i < ops.length; i++) {
      const check = !ops[i].nocheck && (!stateAfter || stateAfter(ops[i]));
      const f = await this.step(ops[i], i, check || i === ops.length - 1);
      onStep?.(i, ops[i], f);
      if (f) return f;
    }
    return null;
  }

  async dispose() {
    await this.native.dispose();
    await this.nexus.dispose().catch(() => {});
    rmSync(this.native.root, { recursive: true, force: true });
    rmSync(this.native.storeDir, { recursive: true, force: true });
    if (this.nexus.mount.alive()) await fsp.rm(this.nexus.root, { recursive: true, force: true }).catch(() => {});
  }
}

/**
 * Owns a mount (restarted when its daemon dies) and a native base directory;
 * hands out fresh runs.
 */
export class Lab {
  constructor(opts = {}) {
    this.opts = opts;
    this.mount = null;
    this.n = 0;
    this.nativeBase = mkdtempSync(join(tmpdir(), 'nexus-diff-native-'));
    /** Output of daemons that died during the lab's life. */
    this.deaths = [];
    this.mountsStarted = 0;
  }

  async ensureMount(fresh = false) {
    if (this.mount && (fresh || !this.mount.alive() || !isMounted(this.mount.mountpoint))) {
      if (!this.mount.alive()) this.deaths.push({ exit: this.mount.exitInfo(), output: this.mount.output().slice(-5000) });
      await this.mount.cleanup();
      this.mount = null;
    }
    if (!this.mount) {
      this.mount = await launchMount(this.opts.mountOptions);
      this.mountsStarted++;
    }
    return this.mount;
  }

  async newRun(opts = {}) {
    const mount = await this.ensureMount(opts.freshMount);
    const name = `run-${++this.n}`;
    await fsp.mkdir(join(mount.mountpoint, name));
    const root = join(this.nativeBase, name);
    const store = join(this.nativeBase, `${name}.store`);
    await fsp.mkdir(root);
    await fsp.mkdir(store);
    return new Run(new NativeSide(root, store), new MountSide(mount, `/${name}`, this.opts.fault), this);
  }

  async dispose() {
    if (this.mount) await this.mount.cleanup();
    this.mount = null;
    rmSync(this.nativeBase, { recursive: true, force: true });
  }
}

/** Generate and run `nops` random ops from `seed`; returns { ops, failure, ms }. */
export async function randomRun(lab, seed, nops, opts = {}) {
  const t0 = Date.now();
  const gen = new Generator(seed, opts.generator);
  const checkRng = prng(Number(seed) ^ 0x2545f491);
  const run = await lab.newRun(opts);
  const ops = [];
  const stats = {};
  let failure = null;
  try {
    let entries = [];
    for (let i = 0; i < nops; i++) {
      const op = gen.next(await viewOf(run.native, entries));
      // Sparse mode: skip the tree comparison after some steps (recorded in the op, so replays do the same).
      if (opts.compareProbability !== undefined && opts.compareProbability < 1 && checkRng.float() >= opts.compareProbability) op.nocheck = true;
      ops.push(op);
      failure = await run.step(op, i, !op.nocheck);
      const res = run.lastResult;
      const key = `${op.op}:${res?.err ?? 'ok'}`;
      stats[key] = (stats[key] ?? 0) + 1;
      opts.onStep?.(i, op, failure);
      if (failure) break;
      entries = await run.entriesNative();
    }
  } finally {
    await run.dispose();
  }
  return { seed, ops, failure, ms: Date.now() - t0, stats };
}

/** Replay `ops` on a fresh run; the failure (or null). */
export async function replay(lab, ops, opts = {}) {
  const run = await lab.newRun(opts);
  try {
    return await run.replay(ops, opts.onStep, opts.stateAfter);
  } finally {
    await run.dispose();
  }
}

/**
 * Delta debugging: the shortest op list found (within `budgetMs`) that still
 * fails with the same signature, then sizes and offsets made smaller. Each
 * candidate replays on a fresh run directory of the lab's mount (a new mount
 * when the daemon died; `freshMounts`: a new mount for every candidate).
 */
export async function shrink(lab, ops, failure, opts = {}) {
  const deadline = Date.now() + (opts.budgetMs ?? 120_000);
  const sig = signature(failure);
  const log = opts.log ?? (() => {});
  let replays = 0;
  let cur = ops.slice(0, failure.step + 1);
  let curFailure = failure;
  // Faster: trees compared only after ops of the failing kind (and at the end). Comparing reads files
  // through the mount, which can mask a bug (a stat refreshes the kernel's cached size), so when the
  // failure does not reproduce that way, every step is compared, as in the original run.
  let mode = { stateAfter: (op) => op.op === failure.op.op };
  let freshMounts = !!opts.freshMounts;
  const attempt = async (cand) => {
    replays++;
    const f = await replay(lab, cand, { ...mode, freshMount: freshMounts });
    if (f && signature(f) === sig) {
      cur = cand.slice(0, f.step + 1);
      curFailure = f;
      return true;
    }
    return false;
  };
  const timeUp = () => Date.now() > deadline;

  // Does it replay at all? Fastest way first; then comparing every step; then on a new mount each time
  // (some failures depend on the mount's history: earlier runs, the kernel's caches).
  let reproduced = await attempt(cur);
  if (!reproduced) {
    mode = {};
    reproduced = await attempt(cur);
  }
  if (!reproduced && !freshMounts) {
    freshMounts = true;
    reproduced = await attempt(cur);
    if (reproduced) log('shrink: reproduces only on a new mount; shrinking with a new mount per candidate');
  }
  if (!reproduced) {
    return { ops: cur, failure, reproduced: false, replays, note: 'the failure did not reproduce on replay, not even on a new mount (timing-dependent?)' };
  }
  let n = 2;
  while (cur.length >= 2 && !timeUp()) {
    const size = Math.ceil(cur.length / n);
    let reduced = false;
    for (let i = 0; i < n && !timeUp(); i++) {
      const cand = [...cur.slice(0, i * size), ...cur.slice((i + 1) * size)];
      if (cand.length === 0) continue;
      if (await attempt(cand)) {
        log(`shrink: ${cur.length} ops`);
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= cur.length) break;
      n = Math.min(n * 2, cur.length);
    }
  }
  // Simpler values: smaller lengths and offsets, plainer data.
  for (let i = 0; i < cur.length && !timeUp(); i++) {
    for (const field of ['len', 'off']) {
      for (;;) {
        const v = cur[i]?.[field];
        if (typeof v !== 'number' || v === 0 || timeUp()) break;
        let ok = false;
        for (const smaller of [0, 1, Math.floor(v / 2)]) {
          if (smaller >= v) continue;
          const cand = cur.map((o, j) => (j === i ? { ...o, [field]: smaller } : o));
          if (await attempt(cand)) {
            ok = true;
            break;
          }
        }
        if (!ok) break;
      }
    }
    if (cur[i]?.data && cur[i].data !== 'zero' && !timeUp()) {
      await attempt(cur.map((o, j) => (j === i ? { ...o, data: 'byte:0' } : o)));
    }
  }
  return { ops: cur, failure: curFailure, reproduced: true, replays, timedOut: timeUp() };
}

/** A replayable listing of ops: a JSON array, one op per line. */
export function formatOps(ops) {
  return '[\n' + ops.map((o) => '  ' + JSON.stringify(o)).join(',\n') + '\n]';
}

export function formatFailure(f) {
  return `step ${f.step}: ${JSON.stringify(f.op)}\n  category: ${f.category}\n  detail: ${typeof f.detail === 'string' ? f.detail : JSON.stringify(f.detail, null, 2)}`;
}

/**
 * The whole procedure for one seed: run, and on failure shrink and confirm
 * the shortest sequence on a brand-new mount. Returns a report.
 */
export async function checkSeed(lab, seed, nops, opts = {}) {
  const log = opts.log ?? (() => {});
  const r = await randomRun(lab, seed, nops, opts);
  if (!r.failure) return { seed, ok: true, ops: r.ops.length, ms: r.ms, stats: r.stats };
  log(`seed ${seed}: FAILED at step ${r.failure.step} (${signature(r.failure)}); shrinking...`);
  const report = { seed, ok: false, ops: r.ops.length, ms: r.ms, stats: r.stats, failure: r.failure, signature: signature(r.failure) };
  if (opts.shrink === false) return { ...report, minimal: r.ops.slice(0, r.failure.step + 1) };
  const s = await shrink(lab, r.ops, r.failure, { budgetMs: opts.shrinkBudgetMs, log, freshMounts: opts.freshMounts });
  const confirm = s.reproduced ? await replay(lab, s.ops, { freshMount: true }) : null;
  const out = {
    ...report,
    minimal: s.ops,
    minimalFailure: s.failure,
    reproduced: s.reproduced,
    confirmedOnFreshMount: !!confirm && signature(confirm) === signature(r.failure),
    replays: s.replays,
    shrinkTimedOut: !!s.timedOut,
    note: s.note,
  };
  if (opts.saveDir) {
    const file = join(opts.saveDir, `differential-seed-${seed}.json`);
    writeFileSync(file, JSON.stringify(s.ops, null, 1));
    out.savedTo = file;
  }
  return out;
}

export function formatStats(stats) {
  const byOp = {};
  for (const [k, n] of Object.entries(stats ?? {})) {
    const [op, res] = k.split(':');
    (byOp[op] ??= []).push(`${res} ${n}`);
  }
  return Object.entries(byOp).sort().map(([op, l]) => `${op}: ${l.join(', ')}`).join('; ');
}

export function formatReport(r) {
  if (r.ok) return `seed ${r.seed}: ${r.ops} ops OK (${(r.ms / 1000).toFixed(1)} s)`;
  const lines = [
    `seed ${r.seed}: FAILED at step ${r.failure.step} of ${r.ops} (${r.signature})`,
    formatFailure(r.failure),
  ];
  if (r.minimal) {
    lines.push(`shortest failing sequence (${r.minimal.length} ops${r.reproduced === false ? ', NOT reproduced on replay' : ''}${r.shrinkTimedOut ? ', shrink budget ran out' : ''}; ${r.replays ?? 0} replays; confirmed on a fresh mount: ${r.confirmedOnFreshMount ?? 'n/a'}):`);
    lines.push(formatOps(r.minimal));
    if (r.minimalFailure) lines.push(formatFailure(r.minimalFailure));
    if (r.note) lines.push(r.note);
    if (r.savedTo) lines.push(`replay: node scripts/differential.mjs --replay ${r.savedTo}`);
  }
  return lines.join('\n');
}

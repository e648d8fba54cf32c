#!/usr/bin/env node
// An experiment, not product code: the floor of a FUSE filesystem that speaks
// the kernel protocol itself from the JavaScript thread (no libfuse, no
// fuse-native thread hop), next to scripts/fuse-floor.mjs's fuse-native floor.
// An in-memory filesystem whose handlers do almost nothing, driven by the same
// python loops (create 4 KiB files, stat, read, unlink).
//
//   node scripts/raw-fuse-floor.mjs [files=2000] [--timeout S] [--writeback] [--killpriv2] [--readers N] [--minor M]
//   node scripts/raw-fuse-floor.mjs [MiB] --dd [--minor M]   dd bs=1M of MiB instead, with the largest WRITE seen
//
// Needs root (it mounts with mount(2) through `mount -i -t fuse -o fd=3`, the
// /dev/fuse descriptor inherited by the mount command, as fusermount does).
// Requests are read by libuv's threadpool (fs.read, several in flight) and
// answered with a synchronous write on the JavaScript thread: three thread
// wakeups per request instead of fuse-native's four.
// Findings: native-notes/fuse-options.md ("A raw-protocol floor").

import { fork, execFileSync, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { PY } from './floor-loops.mjs'

const SELF = fileURLToPath(import.meta.url)

const argv = process.argv.slice(2)
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt)

function parent () {
  const files = Number(argv.find((a) => /^\d+$/.test(a)) ?? 2000)
  const conf = { timeout: Number(opt('--timeout', 1)), writeback: argv.includes('--writeback'), killpriv2: argv.includes('--killpriv2'), readers: Number(opt('--readers', 2)), minor: Number(opt('--minor', 34)), dd: argv.includes('--dd') }
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'raw-fuse-floor-'))
  const mnt = path.join(base, 'mnt')
  fs.mkdirSync(mnt)
  const c = fork(SELF, ['--child', mnt, JSON.stringify(conf)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const PHASES = conf.dd ? ['dd'] : ['create', 'stat', 'read', 'unlink']
  const lines = []
  const done = () => { c.send('exit') }
  c.on('exit', () => {
    spawnSync('umount', ['-l', mnt])
    fs.rmSync(base, { recursive: true, force: true })
  })
  c.once('message', (m) => {
    if (m !== 'mounted') return
    const next = (i) => {
      if (i === PHASES.length) {
        console.log(`raw memfs (timeouts ${conf.timeout} s${conf.writeback ? ', writeback cache' : ''}${conf.killpriv2 ? ', killpriv v2' : ''}, ${conf.readers} readers): ${lines.join(', ')} (files/s)`)
        return done()
      }
      let line
      try {
        line = PHASES[i] === 'dd'
          ? 'dd ' + execFileSync('bash', ['-c', `dd if=/dev/zero of=${mnt}/big bs=1M count=${files} 2>&1 | tail -1`], { encoding: 'utf8', timeout: 120000 }).trim()
          : execFileSync('python3', ['-c', PY, path.join(mnt, 'd'), String(files), PHASES[i]], { encoding: 'utf8', timeout: 120000 }).trim()
      } catch (e) {
        console.error(e.message)
        return done()
      }
      c.send('counts')
      c.once('message', (counts) => {
        console.log(`  ${PHASES[i]}: requests per file: ${Object.entries(counts).map(([k, v]) => k === 'maxWriteKiB' ? `(largest WRITE ${v} KiB)` : `${k} ${(v / files).toFixed(2)}`).join(' ')}`)
        lines.push(line)
        next(i + 1)
      })
    }
    next(0)
  })
}

// ------------------------------------------------------------------ protocol

const OP = { LOOKUP: 1, FORGET: 2, GETATTR: 3, SETATTR: 4, MKDIR: 9, UNLINK: 10, OPEN: 14, READ: 15, WRITE: 16, STATFS: 17, RELEASE: 18, FSYNC: 20, GETXATTR: 22, FLUSH: 25, INIT: 26, OPENDIR: 27, READDIR: 28, RELEASEDIR: 29, ACCESS: 34, CREATE: 35, INTERRUPT: 36, DESTROY: 38, BATCH_FORGET: 42 }
const NAMES = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k.toLowerCase()]))
const ENOENT = 2; const ENOSYS = 38; const ENODATA = 61
const FUSE_ASYNC_READ = 1 << 0; const FUSE_ATOMIC_O_TRUNC = 1 << 3; const FUSE_BIG_WRITES = 1 << 5
const FUSE_WRITEBACK_CACHE = 1 << 16; const FUSE_PARALLEL_DIROPS = 1 << 18; const FUSE_MAX_PAGES = 1 << 22
const FUSE_HANDLE_KILLPRIV_V2 = 1 << 28
const MAX_WRITE = 1 << 20
const IN_HEADER = 40

function child (mnt, conf) {
  const counts = {}
  const now = BigInt(Math.floor(Date.now() / 1000))
  const nodes = new Map() // nodeid -> node
  const mk = (ino, mode) => ({ ino, mode, nlink: mode & 0o40000 ? 2 : 1, size: 0, data: Buffer.alloc(0), kids: new Map(), lookups: 0 })
  nodes.set(1n, mk(1n, 0o40755))
  let nextIno = 2n
  const dev = fs.openSync('/dev/fuse', 'r+')
  const r = spawnSync('mount', ['-i', '-t', 'fuse.rawfloor', '-o', `fd=3,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions,max_read=${MAX_WRITE}`, 'rawfloor', mnt], { stdio: ['ignore', 'inherit', 'inherit', dev] })
  if (r.status !== 0) { console.error('mount failed'); process.exit(1) }

  const tout = BigInt(conf.timeout)
  const putAttr = (b, o, n) => {
    b.writeBigUInt64LE(n.ino, o); b.writeBigUInt64LE(BigInt(n.size), o + 8); b.writeBigUInt64LE(BigInt(Math.ceil(n.size / 512)), o + 16)
    b.writeBigUInt64LE(now, o + 24); b.writeBigUInt64LE(now, o + 32); b.writeBigUInt64LE(now, o + 40)
    b.writeUInt32LE(0, o + 48); b.writeUInt32LE(0, o + 52); b.writeUInt32LE(0, o + 56)
    b.writeUInt32LE(n.mode, o + 60); b.writeUInt32LE(n.nlink, o + 64); b.writeUInt32LE(0, o + 68); b.writeUInt32LE(0, o + 72)
    b.writeUInt32LE(0, o + 76); b.writeUInt32LE(4096, o + 80); b.writeUInt32LE(0, o + 84)
  }
  const out = Buffer.alloc(16 + MAX_WRITE)
  const reply = (unique, err, len = 0) => {
    out.writeUInt32LE(16 + len, 0); out.writeInt32LE(-err, 4); out.writeBigUInt64LE(unique, 8)
    try { fs.writeSync(dev, out, 0, 16 + len) } catch (e) { if (e.code !== 'ENOENT') throw e } // ENOENT: interrupted
  }
  const entry = (unique, n) => {
    n.lookups++
    const b = out; const o = 16
    b.writeBigUInt64LE(n.ino, o); b.writeBigUInt64LE(0n, o + 8); b.writeBigUInt64LE(tout, o + 16); b.writeBigUInt64LE(tout, o + 24)
    b.writeUInt32LE(0, o + 32); b.writeUInt32LE(0, o + 36); putAttr(b, o + 40, n)
    return 128
  }
  const fhs = new Map(); let nextFh = 1n
  const cstr = (b, o) => b.toString('utf8', o, b.indexOf(0, o))

  const handle = (b, n) => {
    const len = b.readUInt32LE(0); const opcode = b.readUInt32LE(4); const unique = b.readBigUInt64LE(8); const nodeid = b.readBigUInt64LE(16)
    if (len !== n) throw new Error(`short request ${n} of ${len}`)
    const name = NAMES[opcode] ?? `op${opcode}`
    counts[name] = (counts[name] ?? 0) + 1
    const a = IN_HEADER
    const node = nodes.get(nodeid)
    switch (opcode) {
      case OP.INIT: {
        const major = b.readUInt32LE(a); const flags = b.readUInt32LE(a + 12)
        let want = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES
        if (conf.writeback) want |= FUSE_WRITEBACK_CACHE
        if (conf.killpriv2) want |= FUSE_HANDLE_KILLPRIV_V2
        out.fill(0, 16, 16 + 64)
        out.writeUInt32LE(major, 16); out.writeUInt32LE(conf.minor, 20); out.writeUInt32LE(MAX_WRITE, 24); out.writeUInt32LE(flags & want, 28)
        out.writeUInt16LE(64, 32); out.writeUInt16LE(48, 34); out.writeUInt32LE(MAX_WRITE, 36); out.writeUInt32LE(1, 40); out.writeUInt16LE(MAX_WRITE / 4096, 44)
        return reply(unique, 0, 64)
      }
      case OP.LOOKUP: {
        const kid = node?.kids.get(cstr(b, a))
        if (!kid) { // negative entry with a timeout: nodeid 0
          out.fill(0, 16, 16 + 128); out.writeBigUInt64LE(tout, 16 + 16)
          return reply(unique, 0, 128)
        }
        return reply(unique, 0, entry(unique, kid))
      }
      case OP.FORGET: { if (node && (node.lookups -= Number(b.readBigUInt64LE(a))) <= 0 && node.nlink === 0) nodes.delete(nodeid); return }
      case OP.BATCH_FORGET: {
        const count = b.readUInt32LE(a)
        for (let i = 0; i < count; i++) {
          const id = b.readBigUInt64LE(a + 8 + 16 * i); const m = nodes.get(id)
          if (m && (m.lookups -= Number(b.readBigUInt64LE(a + 16 + 16 * i))) <= 0 && m.nlink === 0) nodes.delete(id)
        }
        return
      }
      case OP.GETATTR: case OP.SETATTR: {
        if (!node) return reply(unique, ENOENT)
        if (opcode === OP.SETATTR && (b.readUInt32LE(a) & (1 << 3))) { node.size = Number(b.readBigUInt64LE(a + 16)); node.data = Buffer.alloc(node.size) }
        out.writeBigUInt64LE(tout, 16); out.writeUInt32LE(0, 24); out.writeUInt32LE(0, 28); putAttr(out, 32, node)
        return reply(unique, 0, 104)
      }
      case OP.CREATE: case OP.MKDIR: {
        const mode = b.readUInt32LE(a)
        const nm = cstr(b, a + (opcode === OP.CREATE ? 16 : 8))
        const kid = mk(nextIno, opcode === OP.MKDIR ? 0o40000 | (mode & 0o7777) : mode)
        nodes.set(nextIno++, kid); node.kids.set(nm, kid)
        const l = entry(unique, kid)
        if (opcode === OP.MKDIR) return reply(unique, 0, l)
        const fh = nextFh++; fhs.set(fh, kid)
        out.writeBigUInt64LE(fh, 16 + l); out.writeUInt32LE(0, 16 + l + 8); out.writeUInt32LE(0, 16 + l + 12)
        return reply(unique, 0, l + 16)
      }
      case OP.OPEN: case OP.OPENDIR: {
        if (!node) return reply(unique, ENOENT)
        const fh = nextFh++; fhs.set(fh, node)
        out.writeBigUInt64LE(fh, 16); out.writeUInt32LE(opcode === OP.OPEN ? 2 /* FOPEN_KEEP_CACHE */ : 0, 24); out.writeUInt32LE(0, 28)
        return reply(unique, 0, 16)
      }
      case OP.READ: {
        const f = fhs.get(b.readBigUInt64LE(a)); const off = Number(b.readBigUInt64LE(a + 8)); const size = b.readUInt32LE(a + 16)
        const k = off >= f.size ? 0 : f.data.copy(out, 16, off, Math.min(f.size, off + size))
        return reply(unique, 0, k)
      }
      case OP.WRITE: {
        const f = fhs.get(b.readBigUInt64LE(a)) ?? node; const off = Number(b.readBigUInt64LE(a + 8)); const size = b.readUInt32LE(a + 16)
        if (f.data.length < off + size) { const nb = Buffer.alloc(off + size); f.data.copy(nb); f.data = nb }
        b.copy(f.data, off, a + 40, a + 40 + size); f.size = Math.max(f.size, off + size)
        counts.maxWriteKiB = Math.max(counts.maxWriteKiB ?? 0, size / 1024)
        out.writeUInt32LE(size, 16); out.writeUInt32LE(0, 20)
        return reply(unique, 0, 8)
      }
      case OP.FLUSH: case OP.FSYNC: return reply(unique, 0)
      case OP.RELEASE: case OP.RELEASEDIR: fhs.delete(b.readBigUInt64LE(a)); return reply(unique, 0)
      case OP.UNLINK: {
        const nm = cstr(b, a); const kid = node.kids.get(nm)
        if (!kid) return reply(unique, ENOENT)
        node.kids.delete(nm); kid.nlink = 0
        return reply(unique, 0)
      }
      case OP.GETXATTR: return reply(unique, ENODATA)
      case OP.STATFS: out.fill(0, 16, 16 + 80); out.writeUInt32LE(4096, 16 + 40); out.writeUInt32LE(255, 16 + 44); return reply(unique, 0, 80)
      case OP.READDIR: return reply(unique, 0, 0)
      case OP.INTERRUPT: return
      case OP.DESTROY: return reply(unique, 0)
      default: return reply(unique, ENOSYS)
    }
  }

  let stopping = false
  const read = () => {
    const buf = Buffer.allocUnsafe(IN_HEADER + 4096 + MAX_WRITE)
    const again = () => fs.read(dev, buf, 0, buf.length, null, (err, n) => {
      if (err) {
        if (err.code === 'ENODEV' || stopping) return // unmounted
        if (err.code === 'EINTR' || err.code === 'EAGAIN' || err.code === 'ENOENT') return again()
        throw err
      }
      handle(buf, n)
      again()
    })
    again()
  }
  for (let i = 0; i < conf.readers; i++) read()
  process.send('mounted')
  process.on('message', (m) => {
    if (m === 'counts') { process.send(counts); for (const k in counts) delete counts[k] }
    // Unmount asynchronously: the JavaScript thread must stay free to answer what the unmount sends.
    if (m === 'exit') { stopping = true; spawn('umount', [mnt], { stdio: 'inherit' }).on('exit', (code) => process.exit(code ?? 1)) }
  })
}

if (argv[0] === '--child') child(argv[1], JSON.parse(argv[2]))
else parent()

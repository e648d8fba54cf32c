#!/usr/bin/env node
// The floor of a fuse-native mount: an in-memory filesystem whose handlers do
// almost nothing, mounted with the Nexus daemon's options, driven by the same
// python loops as bench/mount (create 4 KiB files, stat, unlink). Whatever a
// Nexus mount spends above these figures is ours (adapter, engine); these
// figures themselves are the kernel, libfuse and the binding's thread hop.
//
//   node scripts/fuse-floor.mjs [files=2000] [--attr-timeout S] [--module DIR]
//   node scripts/fuse-floor.mjs --nexus [files]   the same loops on a `nexus mount`
//
// Prints files/s per phase and, for the in-memory mount, how many requests of
// each kind one file cost.

import { fork, spawn, execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { PY } from './floor-loops.mjs'

const SELF = fileURLToPath(import.meta.url)
const REPO = path.resolve(path.dirname(SELF), '..')


const argv = process.argv.slice(2)
const opt = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined)
if (argv[0] === '--child') child(argv[1], JSON.parse(argv[2]))
else parent()

function parent () {
  const files = Number(argv.find((a) => /^\d+$/.test(a)) ?? 2000)
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'fuse-floor-'))
  const mnt = path.join(base, 'mnt')
  fs.mkdirSync(mnt)
  const PHASES = ['create', 'stat', 'read', 'unlink']
  const phase = (p) => execFileSync('python3', ['-c', PY, path.join(mnt, 'd'), String(files), p], { encoding: 'utf8' }).trim()
  const run = (label) => console.log(`${label}: ${PHASES.map(phase).join(', ')} (files/s)`)
  if (argv.includes('--nexus')) {
    // The daemon in the foreground, so its log (NEXUS_FUSE_PROFILE=1: per-op counts
    // and times at exit) and a --cpu-prof (NODE_OPTIONS) come out when it stops.
    const nexus = path.join(REPO, 'bin/nexus')
    const logPath = path.join(base, 'daemon.log')
    const logFd = fs.openSync(logPath, 'a')
    const nodeArgs = (process.env.FUSE_FLOOR_NODE_ARGS ?? '').split(' ').filter(Boolean) // e.g. --cpu-prof
    const d = spawn(process.execPath, [...nodeArgs, nexus, 'mount', mnt, '--foreground', '--data-dir', path.join(base, 'data')], { stdio: ['ignore', logFd, logFd] })
    const mounted = () => fs.readFileSync('/proc/mounts', 'utf8').includes(' ' + mnt + ' ')
    const until = Date.now() + 20000
    while (!mounted() && Date.now() < until) execFileSync('sleep', ['0.1'])
    try {
      run('nexus')
    } finally {
      d.kill('SIGTERM')
      d.once('exit', () => {
        for (const l of fs.readFileSync(logPath, 'utf8').split('\n')) {
          if (l.includes('fuse op profile')) console.log(JSON.stringify(JSON.parse(l).ops))
          else if (/"level":(5|6)0/.test(l)) console.log(l)
        }
        fs.rmSync(base, { recursive: true, force: true })
      })
    }
    return
  }
  const conf = {
    module: opt('--module') ?? path.join(REPO, 'node_modules', 'fuse-native'),
    attrTimeout: Number(opt('--attr-timeout') ?? 0),
    entryTimeout: opt('--entry-timeout') === undefined ? undefined : Number(opt('--entry-timeout'))
  }
  const c = fork(SELF, ['--child', mnt, JSON.stringify(conf)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  c.once('message', (m) => {
    if (m !== 'mounted') return
    const PHASES = ['create', 'stat', 'read', 'unlink']
    const lines = []
    const next = (i) => {
      if (i === PHASES.length) {
        console.log(`memfs (attr/entry timeout ${conf.attrTimeout}): ${lines.join(', ')} (files/s)`)
        c.send('exit')
        return
      }
      let line
      try {
        line = phase(PHASES[i])
      } catch (e) {
        console.error(e.message)
        c.send('exit')
        return
      }
      c.send('counts')
      c.once('message', (counts) => {
        const per = Object.entries(counts).map(([k, v]) => `${k} ${(v / files).toFixed(2)}`).join(' ')
        console.log(`  ${PHASES[i]}: requests per file: ${per}`)
        lines.push(line)
        next(i + 1)
      })
    }
    next(0)
  })
  c.on('exit', () => fs.rmSync(base, { recursive: true, force: true }))
}

function child (mnt, conf) {
  const Fuse = createRequire(path.join(conf.module, 'index.js'))(conf.module)
  const counts = {}
  const nodes = new Map()
  const now = Date.now()
  const mk = (mode, ino) => ({ mode, uid: 0, gid: 0, size: 0, nlink: 1, ino, mtime: now, atime: now, ctime: now, data: Buffer.alloc(0) })
  let nextIno = 2
  nodes.set('/', mk(0o40755, 1))
  const fds = new Map()
  let nextFd = 1
  const count = (op) => { counts[op] = (counts[op] ?? 0) + 1 }
  const ops = {
    getattr (p, cb) { count('getattr'); const n = nodes.get(p); n ? cb(0, n) : cb(Fuse.ENOENT) },
    fgetattr (p, fd, cb) { count('fgetattr'); cb(0, fds.get(fd)) },
    access (p, mode, cb) { count('access'); cb(0) },
    create (p, mode, flags, cb) { count('create'); const n = mk(mode, nextIno++); nodes.set(p, n); fds.set(nextFd, n); cb(0, nextFd++) },
    open (p, flags, cb) { count('open'); const n = nodes.get(p); if (!n) return cb(Fuse.ENOENT); fds.set(nextFd, n); cb(0, nextFd++) },
    read (p, fd, buf, len, pos, cb) { count('read'); const n = fds.get(fd); const k = n.data.copy(buf, 0, pos, Math.min(n.data.length, pos + len)); cb(k) },
    write (p, fd, buf, len, pos, cb) {
      count('write'); const n = fds.get(fd)
      if (n.data.length < pos + len) { const b = Buffer.alloc(pos + len); n.data.copy(b); n.data = b }
      buf.copy(n.data, pos, 0, len); n.size = n.data.length; cb(len)
    },
    flush (p, fd, cb) { count('flush'); cb(0) },
    release (p, fd, cb) { count('release'); fds.delete(fd); cb(0) },
    truncate (p, size, cb) { count('truncate'); const n = nodes.get(p); n.data = Buffer.alloc(size); n.size = size; cb(0) },
    ftruncate (p, fd, size, cb) { count('ftruncate'); const n = fds.get(fd); n.data = Buffer.alloc(size); n.size = size; cb(0) },
    utimens (p, a, m, cb) { count('utimens'); cb(0) },
    chmod (p, mode, cb) { count('chmod'); cb(0) },
    getxattr (p, name, pos, cb) { count('getxattr'); cb(-61) },
    unlink (p, cb) { count('unlink'); nodes.delete(p); cb(0) },
    mkdir (p, mode, cb) { count('mkdir'); nodes.set(p, mk(0o40000 | mode, nextIno++)); cb(0) },
    opendir (p, flags, cb) { count('opendir'); cb(0, 0) },
    releasedir (p, fd, cb) { count('releasedir'); cb(0) },
    readdir (p, cb) { count('readdir'); cb(0, ['.', '..'], [nodes.get(p), nodes.get(p)]) }
  }
  const fuse = new Fuse(mnt, ops, {
    defaultPermissions: true, allowOther: true, useIno: true,
    attrTimeout: conf.attrTimeout, entryTimeout: conf.entryTimeout ?? conf.attrTimeout, negativeTimeout: conf.entryTimeout ?? 0,
    hardRemove: true, nullPathOk: true, bigWrites: true, maxWrite: 131072, timeout: 120000
  })
  fuse.mount((err) => {
    if (err) { console.error(err); process.exit(1) }
    process.send('mounted')
  })
  process.on('message', (m) => {
    if (m === 'counts') { process.send(counts); for (const k in counts) delete counts[k] }
    if (m === 'exit') fuse.unmount(() => process.exit(0))
  })
}

#!/usr/bin/env node
// Smoke check of Nexus's patched fuse-native (patches/fuse-native+2.2.6.patch,
// native-notes/fuse-native.md). A child process mounts a tiny in-memory
// filesystem; this process (never the daemon itself: that deadlocks) drives it
// with real syscalls and prints one PASS/FAIL/INFO line per behaviour.
//
//   node scripts/fuse-smoke.mjs                  run the checks (exit 1 on any FAIL)
//   node scripts/fuse-smoke.mjs --no-utime-omit  mount without flag_utime_omit_ok, to
//                                                measure stock libfuse 2.9 (touch -m is dropped)
//   node scripts/fuse-smoke.mjs --module DIR     use another fuse-native checkout
//
// Exit codes: 0 all passed, 1 a check failed, 77 skipped (no /dev/fuse or not root).
// Every mount is unmounted in `finally` and /proc/mounts is checked at the end.

import { fork, spawnSync, execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const SELF = fileURLToPath(import.meta.url)
const REPO = path.resolve(path.dirname(SELF), '..')
const GiB = 1024 ** 3

const argv = process.argv.slice(2)
if (argv[0] === '--child') {
  child(argv[1], argv[2], JSON.parse(argv[3]))
} else {
  const moduleDir = argv.includes('--module') ? path.resolve(argv[argv.indexOf('--module') + 1]) : path.join(REPO, 'node_modules', 'fuse-native')
  parent(moduleDir, { utimeOmit: !argv.includes('--no-utime-omit') }).then(
    code => process.exit(code),
    err => { console.error('FAIL smoke crashed:', err); process.exit(1) }
  )
}

// ---------------------------------------------------------------- parent

async function parent (moduleDir, opts) {
  if (!fs.existsSync('/dev/fuse') || process.getuid() !== 0) {
    console.error('SKIP fuse-smoke: needs /dev/fuse and root (to mount with allow_other and act as uid 65534); NOTHING WAS CHECKED')
    return 77
  }
  let failed = 0
  const check = (ok, what, detail = '') => {
    if (!ok) failed++
    console.log(`${ok ? 'PASS' : 'FAIL'} ${what}${detail ? ' — ' + detail : ''}`)
  }
  const info = (what, detail) => console.log(`INFO ${what} — ${detail}`)

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nexus-fuse-smoke-'))
  fs.chmodSync(tmp, 0o755) // uid 65534 must be able to reach the mount point
  const mnt = path.join(tmp, 'mnt')
  fs.mkdirSync(mnt)
  const p = name => path.join(mnt, name)

  const daemon = fork(SELF, ['--child', mnt, moduleDir, JSON.stringify(opts)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced' // BigInt in messages
  })
  const replies = []
  let waiter = null
  let childGone = null
  daemon.on('message', m => { replies.push(m); if (waiter) waiter() })
  daemon.on('error', e => { childGone = e; if (waiter) waiter() }) // e.g. EPIPE: never crash before `finally`
  const exited = new Promise(resolve => daemon.on('exit', code => { childGone = childGone || new Error('FUSE child exited with ' + code); if (waiter) waiter(); resolve(code) }))
  const next = (ms = 10000) => new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(t); waiter = null
      if (replies.length) resolve(replies.shift()); else reject(childGone)
    }
    const t = setTimeout(() => { waiter = null; reject(new Error('no answer from the FUSE child in ' + ms + ' ms')) }, ms)
    if (replies.length || childGone) done(); else waiter = done
  })
  const send = m => { if (daemon.connected) daemon.send(m, e => { if (e) childGone = childGone || e }) }
  // Events the child recorded since the last call (it clears them).
  const events = async () => { send({ cmd: 'events' }); return (await next()).events }
  const sh = (cmd, args, extra = {}) => spawnSync(cmd, args, { encoding: 'utf8', ...extra })

  try {
    const ready = await next(15000)
    if (ready.error) throw new Error('mount failed: ' + ready.error)

    // 0. Patched module, built from source, loaded.
    check(ready.patchVersion >= 1 && /build\/Release\/fuse\.node$/.test(ready.binaryPath),
      'patched native module loaded', `nexus_patch_version=${ready.patchVersion} from ${ready.binaryPath}`)
    check(ready.contextOutside === null, 'Fuse.context() is null outside a handler')

    // 1. Mount options: escaped comma in fsname, allow_other reached the kernel.
    const line = fs.readFileSync('/proc/mounts', 'utf8').split('\n').find(l => l.split(' ')[1] === mnt) || ''
    check(line.startsWith('nexus,smoke ') && /\ballow_other\b/.test(line),
      'mount options: fsname with an escaped comma, allow_other', line.trim())
    await events()

    // 2. Caller identity.
    const touch = sh('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'touch', p('by-nobody')])
    let ev = await events()
    const create = ev.find(e => e.op === 'create' && e.path === '/by-nobody')
    check(touch.status === 0 && create && create.ctx.uid === 65534 && create.ctx.gid === 65534 && create.ctx.pid === touch.pid,
      'caller identity: create by uid 65534 sees Fuse.context()', create ? JSON.stringify(create.ctx) + ` (touch pid ${touch.pid})` : touch.stderr)
    check(fs.statSync(p('by-nobody')).uid === 65534, 'file created by uid 65534 is owned by 65534 (the FS used the context)')
    await events()
    const asNobodyStat = sh('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'stat', '-c', '%u', p('by-nobody')])
    ev = await events()
    const ga = ev.filter(e => e.op === 'getattr' && e.path === '/by-nobody')
    check(asNobodyStat.status === 0 && ga.length > 0 && ga.every(e => e.ctx.uid === 65534 && e.ctx.pid === asNobodyStat.pid),
      'caller identity: getattr from uid 65534', JSON.stringify(ga.map(e => e.ctx)))
    fs.writeFileSync(p('by-root'), 'x')
    ev = await events()
    const rootCreate = ev.find(e => e.op === 'create' && e.path === '/by-root')
    check(rootCreate && rootCreate.ctx.uid === 0 && rootCreate.ctx.pid === process.pid, 'caller identity: create by this root process', JSON.stringify(rootCreate && rootCreate.ctx))
    await fs.promises.writeFile(p('by-root-async'), 'x') // async fs runs on a libuv pool thread
    ev = await events()
    const asyncCreate = ev.find(e => e.op === 'create' && e.path === '/by-root-async')
    const tgid = asyncCreate && asyncCreate.ctx.pid && Number((/^Tgid:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${asyncCreate.ctx.pid}/status`, 'utf8')) || [])[1])
    info('caller pid is a thread id', `async fs.writeFile from pid ${process.pid}: context pid ${asyncCreate && asyncCreate.ctx.pid}, whose Tgid is ${tgid}`)
    info('create arguments', `create(${rootCreate && rootCreate.argTypes.join(', ')}, cb): no open flags reach create; ` +
      `writeFile under umask ${(rootCreate?.ctx.umask ?? 0).toString(8)} passed mode ${rootCreate?.mode.toString(8)} (umask already applied by the kernel)`)

    // 3. Nanosecond times, utimens argument order, UTIME_OMIT.
    const f = p('times')
    fs.writeFileSync(f, '')
    await events()
    const t1 = BigInt(Date.UTC(2001, 1, 3, 4, 5, 6)) * 1000000n + 123456789n
    const td = sh('touch', ['-d', '2001-02-03 04:05:06.123456789', f], { env: { ...process.env, TZ: 'UTC' } })
    let st = fs.statSync(f, { bigint: true })
    ev = await events()
    const ut = ev.find(e => e.op === 'utimens')
    check(td.status === 0 && st.atimeNs === t1 && st.mtimeNs === t1,
      "touch -d '2001-02-03 04:05:06.123456789' round-trips atime and mtime with nanoseconds",
      `atimeNs=${st.atimeNs} mtimeNs=${st.mtimeNs} expected ${t1}`)
    check(ut && ut.atime === t1 && ut.mtime === t1, 'utimens(path, atime, mtime) gets BigInt nanoseconds',
      ut ? `atime=${ut.atime} mtime=${ut.mtime}` : 'utimens not called')
    fs.utimesSync(f, 1000000000.5, 1200000000.25) // distinct atime and mtime (stock passed atime as mtime)
    st = fs.statSync(f, { bigint: true })
    check(st.atimeNs === 1000000000500000000n && st.mtimeNs === 1200000000250000000n,
      'utimens keeps atime and mtime apart', `atimeNs=${st.atimeNs} mtimeNs=${st.mtimeNs}`)
    await events()

    const t2 = BigInt(Date.UTC(2002, 2, 4, 5, 6, 7)) * 1000000n + 987654321n
    const touchM = sh('touch', ['-m', '-d', '2002-03-04 05:06:07.987654321', f], { env: { ...process.env, TZ: 'UTC' } })
    st = fs.statSync(f, { bigint: true })
    ev = await events()
    const mOnly = ev.find(e => e.op === 'utimens')
    const mOk = st.mtimeNs === t2 && st.atimeNs === 1000000000500000000n
    const mDetail = `utimens ${mOnly ? `called with atime=${mOnly.atime} mtime=${mOnly.mtime}` : 'NOT called'}; mtimeNs=${st.mtimeNs}`
    if (opts.utimeOmit) check(mOk && mOnly && mOnly.atime === null, 'touch -m sets only mtime (flag_utime_omit_ok, atime arrives as null)', mDetail)
    else info('touch -m without flag_utime_omit_ok (stock libfuse 2.9)', mDetail + (mOk ? '' : ` — dropped, yet touch exited ${touchM.status}`))
    sh('touch', ['-a', '-d', '2002-03-04 05:06:07.5', f], { env: { ...process.env, TZ: 'UTC' } })
    st = fs.statSync(f, { bigint: true })
    const aOk = st.atimeNs === BigInt(Date.UTC(2002, 2, 4, 5, 6, 7)) * 1000000n + 500000000n
    if (opts.utimeOmit) check(aOk, 'touch -a sets only atime', `atimeNs=${st.atimeNs}`)
    else info('touch -a without flag_utime_omit_ok', aOk ? 'applied' : `dropped (atimeNs=${st.atimeNs})`)
    const before = BigInt(Date.now()) * 1000000n
    sh('touch', [f])
    st = fs.statSync(f, { bigint: true })
    check(st.mtimeNs >= before - 1000000000n && st.mtimeNs <= BigInt(Date.now()) * 1000000n + 1000000000n, 'plain touch sets mtime to now', `mtimeNs=${st.mtimeNs}`)
    // tar -x restores mtimes with atime = UTIME_OMIT.
    const src = path.join(tmp, 'tar-src')
    fs.mkdirSync(src)
    fs.writeFileSync(path.join(src, 'old'), 'old\n')
    fs.utimesSync(path.join(src, 'old'), 1e9, 1e9)
    execFileSync('tar', ['-cf', path.join(tmp, 't.tar'), '-C', src, 'old'])
    fs.mkdirSync(p('untar'))
    execFileSync('tar', ['-xf', path.join(tmp, 't.tar'), '-C', p('untar')])
    const tarM = fs.statSync(p('untar/old')).mtimeMs
    if (opts.utimeOmit) check(tarM === 1e12, 'tar -x restores the archived mtime', `mtime=${new Date(tarM).toISOString()}`)
    else info('tar -x without flag_utime_omit_ok', `mtime=${new Date(tarM).toISOString()} (archived 2001-09-09T01:46:40.000Z)`)
    await events()

    // 4. 64-bit stat fields and offsets.
    sh('truncate', ['-s', '5G', p('big')])
    st = fs.statSync(p('big'), { bigint: true })
    check(st.size === 5368709120n, 'truncate -s 5G stats as 5368709120 bytes', `size=${st.size} blocks=${st.blocks}`)
    ev = await events()
    const created = ev.find(e => e.op === 'create' && e.path === '/big')
    check(created && st.ino === created.ino && st.ino > 0xffffffffn, 'st_ino above 2^32 survives (use_ino)', `ino=${st.ino} expected ${created && created.ino}`)
    sh('truncate', ['-s', '3T', p('huge')])
    st = fs.statSync(p('huge'), { bigint: true })
    check(st.size === 3n * 2n ** 40n && st.blocks === 3n * 2n ** 40n / 512n, 'a 3 TiB file stats with st_blocks above 2^32', `size=${st.size} blocks=${st.blocks}`)
    const off = 5 * GiB + 12345
    const payload = Buffer.from('beyond four gibibytes')
    const fd = fs.openSync(p('big'), 'r+')
    fs.writeSync(fd, payload, 0, payload.length, off)
    const back = Buffer.alloc(payload.length)
    fs.readSync(fd, back, 0, back.length, off)
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    ev = await events()
    const w = ev.find(e => e.op === 'write')
    const r = ev.find(e => e.op === 'read' && e.offset <= off && e.offset + e.len > off)
    check(w && w.offset === off && r && back.equals(payload), 'read/write offsets above 4 GiB', `write offset ${w && w.offset}, read offset ${r && r.offset}, data ${back.equals(payload) ? 'matches' : 'differs'}`)
    const fsync = ev.find(e => e.op === 'fsync')
    info('fsync arguments', fsync ? `fsync(${fsync.argTypes.join(', ')}, cb)` : 'fsync not called')
    info('write Buffer after its callback', `length ${ev.find(e => e.op === 'detached')?.length} (it points into libfuse memory and is detached: copy what you keep)`)

    // 5. big_writes: a 1 MiB dd write arrives in 128 KiB writes.
    sh('dd', ['if=/dev/zero', `of=${p('dd')}`, 'bs=1M', 'count=1', 'status=none'])
    ev = await events()
    const sizes = ev.filter(e => e.op === 'write').map(e => e.len)
    check(sizes.length === 8 && sizes.every(s => s === 131072), '1 MiB dd write arrives as 128 KiB writes (big_writes, max_write=131072)', `${sizes.length} writes: ${[...new Set(sizes)].join(', ')} bytes`)

    // 6. Zero-valued option: attr_timeout=0 means every stat asks the daemon.
    fs.statSync(p('dd')); fs.statSync(p('dd'))
    ev = await events()
    check(ev.filter(e => e.op === 'getattr' && e.path === '/dd').length >= 2, 'attrTimeout: 0 reaches libfuse (two stats, two getattr)', `${ev.filter(e => e.op === 'getattr' && e.path === '/dd').length} getattr`)

    // 7. Gotchas, measured (INFO only).
    const names = fs.readdirSync(mnt)
    const lsa = sh('ls', ['-a', mnt]).stdout.split('\n').filter(Boolean)
    info('readdir', `ls -a shows . and ..: ${lsa.includes('.') && lsa.includes('..') ? 'yes' : 'no (readdir must add them)'}; ${names.length} names`)
    const t0 = Date.now()
    let err = null
    try { fs.readlinkSync(p('slow-link')) } catch (e) { err = e }
    check(err && err.code === 'ETIMEDOUT', 'a handler that never answers fails with ETIMEDOUT after the timeout option', `${err && err.code} after ${Date.now() - t0} ms (timeout.readlink=500; default 15000 for every op)`)
  } catch (e) {
    check(false, 'smoke ran to the end', e.stack)
  } finally {
    // Always unmount: ask the daemon, then make sure with fusermount / umount -l.
    send({ cmd: 'unmount' })
    await Promise.race([exited, new Promise(resolve => setTimeout(resolve, 5000))])
    if (daemon.exitCode === null) daemon.kill('SIGKILL')
    const mounted = () => fs.readFileSync('/proc/mounts', 'utf8').split('\n').some(l => l.split(' ')[1] === mnt)
    for (const cmd of [['fusermount', '-u', mnt], ['fusermount3', '-u', mnt], ['fusermount', '-uz', mnt], ['umount', '-l', mnt]]) {
      if (!mounted()) break
      spawnSync(cmd[0], cmd.slice(1), { stdio: 'ignore' })
    }
    check(!mounted(), 'unmounted: the mount point is gone from /proc/mounts')
    if (!mounted()) fs.rmSync(tmp, { recursive: true, force: true })
    const leftovers = fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter(l => l.includes('nexus-fuse-smoke-'))
    check(leftovers.length === 0, 'no nexus-fuse-smoke mount left in /proc/mounts', leftovers.join('; '))
  }
  console.log(failed ? `fuse-smoke: ${failed} check(s) FAILED` : 'fuse-smoke: all checks passed')
  return failed ? 1 : 0
}

// ---------------------------------------------------------------- child: the FUSE daemon

function child (mnt, moduleDir, opts) {
  const require = createRequire(path.join(moduleDir, 'index.js'))
  let Fuse
  try {
    Fuse = require(moduleDir)
  } catch (e) {
    process.send({ error: e.message })
    return
  }
  const hasContext = typeof Fuse.context === 'function'
  const ctx = () => (hasContext ? Fuse.context() : null) || {}
  const CHUNK = 65536
  let nextIno = 2n ** 40n // inode numbers above 2^32 exercise 64-bit st_ino
  const nowNs = () => BigInt(Date.now()) * 1000000n
  const nodes = new Map() // path -> { ino, mode, uid, gid, size, chunks, atimeNs, mtimeNs, ctimeNs }
  const mk = (mode, c) => {
    const t = nowNs()
    return { ino: nextIno++, mode, uid: c.uid || 0, gid: c.gid || 0, size: 0, chunks: new Map(), atimeNs: t, mtimeNs: t, ctimeNs: t }
  }
  nodes.set('/', mk(0o40777, {}))
  nodes.set('/slow-link', { ...mk(0o120777, {}), size: 6 })
  let log = []
  const ev = (op, pathname, extra = {}) => log.push({ op, path: pathname, ctx: { ...ctx() }, ...extra })
  const stat = n => ({
    mode: n.mode, uid: n.uid, gid: n.gid, size: n.size, ino: Fuse.NEXUS_PATCH_VERSION ? n.ino : Number(n.ino), nlink: n.mode & 0o40000 ? 2 : 1,
    blocks: Math.ceil(n.size / 512), blksize: 4096, atimeNs: n.atimeNs, mtimeNs: n.mtimeNs, ctimeNs: n.ctimeNs,
    // stock fuse-native reads only these:
    atime: new Date(Number(n.atimeNs / 1000000n)), mtime: new Date(Number(n.mtimeNs / 1000000n)), ctime: new Date(Number(n.ctimeNs / 1000000n))
  })
  const children = dir => [...nodes.keys()].filter(k => k !== '/' && path.posix.dirname(k) === dir).map(k => path.posix.basename(k))
  const truncate = (n, size) => {
    for (const i of n.chunks.keys()) if (i * CHUNK >= size) n.chunks.delete(i)
    n.size = size
    n.mtimeNs = n.ctimeNs = nowNs()
  }
  const toTime = (t, fallback) => t === null ? fallback : typeof t === 'bigint' ? t : BigInt(Math.round(t)) * 1000000n

  const ops = {
    getattr (p, cb) {
      ev('getattr', p)
      const n = nodes.get(p)
      if (!n) return cb(Fuse.ENOENT)
      cb(0, stat(n))
    },
    readdir (p, cb) {
      ev('readdir', p)
      const names = children(p)
      cb(0, names, names.map(name => stat(nodes.get(path.posix.join(p, name)))))
    },
    create (p, mode, cb) {
      const n = mk(mode, ctx())
      nodes.set(p, n)
      ev('create', p, { ino: n.ino, mode, argTypes: ['path', 'mode'] })
      cb(0, 42)
    },
    open (p, flags, cb) { ev('open', p, { flags }); cb(nodes.has(p) ? 0 : Fuse.ENOENT, 42) },
    release (p, fd, cb) { cb(0) },
    flush (p, fd, cb) { cb(0) },
    fsync (...args) {
      ev('fsync', args[0], { argTypes: ['path', `datasync=${args[1]}`, `fd=${args[2]}`] })
      args[args.length - 1](0)
    },
    read (p, fd, buf, len, pos, cb) {
      ev('read', p, { len, offset: pos })
      const n = nodes.get(p)
      const end = Math.min(n.size, pos + len)
      buf.fill(0, 0, Math.max(0, end - pos))
      for (let at = pos; at < end;) {
        const i = Math.floor(at / CHUNK); const o = at - i * CHUNK; const take = Math.min(CHUNK - o, end - at)
        const c = n.chunks.get(i)
        if (c) c.copy(buf, at - pos, o, o + take)
        at += take
      }
      cb(Math.max(0, end - pos))
    },
    write (p, fd, buf, len, pos, cb) {
      ev('write', p, { len, offset: pos })
      const n = nodes.get(p)
      for (let at = 0; at < len;) {
        const i = Math.floor((pos + at) / CHUNK); const o = pos + at - i * CHUNK; const take = Math.min(CHUNK - o, len - at)
        let c = n.chunks.get(i)
        if (!c) n.chunks.set(i, c = Buffer.alloc(CHUNK))
        buf.copy(c, o, at, at + take) // copy: buf points into libfuse memory
        at += take
      }
      n.size = Math.max(n.size, pos + len)
      n.mtimeNs = n.ctimeNs = nowNs()
      cb(len)
      setImmediate(() => log.push({ op: 'detached', length: buf.length })) // a Buffer kept past its callback
    },
    truncate (p, size, cb) { ev('truncate', p, { size }); truncate(nodes.get(p), size); cb(0) },
    ftruncate (p, fd, size, cb) { ev('ftruncate', p, { size }); truncate(nodes.get(p), size); cb(0) },
    utimens (p, atime, mtime, cb) {
      ev('utimens', p, { atime, mtime })
      const n = nodes.get(p)
      if (!n) return cb(Fuse.ENOENT)
      n.atimeNs = toTime(atime, n.atimeNs)
      n.mtimeNs = toTime(mtime, n.mtimeNs)
      n.ctimeNs = nowNs()
      cb(0)
    },
    chmod (p, mode, cb) { const n = nodes.get(p); n.mode = (n.mode & ~0o7777) | (mode & 0o7777); cb(0) },
    chown (p, uid, gid, cb) { cb(0) },
    mkdir (p, mode, cb) { ev('mkdir', p); nodes.set(p, mk(0o40000 | mode, ctx())); cb(0) },
    readlink (p, cb) { ev('readlink', p) /* never answers: shows the op timeout */ },
    unlink (p, cb) { nodes.delete(p); cb(0) },
    rmdir (p, cb) { nodes.delete(p); cb(0) }
  }

  const fuse = new Fuse(mnt, ops, {
    fsname: Fuse.NEXUS_PATCH_VERSION ? 'nexus,smoke' : 'nexus', // the patched option builder escapes the comma; stock cannot
    allowOther: true,
    useIno: true,
    attrTimeout: 0,
    entryTimeout: 0,
    negativeTimeout: 0,
    utimeOmit: opts.utimeOmit,
    timeout: { default: 15000, readlink: 500 },
    ...opts.fuseOptions // used by ad-hoc measurements
  })
  fuse.mount(err => {
    if (err) return process.send({ error: err.message })
    process.send({
      ready: true,
      patchVersion: Fuse.NEXUS_PATCH_VERSION,
      binaryPath: require('node-gyp-build').path(moduleDir),
      contextOutside: hasContext ? Fuse.context() : 'missing'
    })
  })
  process.on('message', m => {
    if (m.cmd === 'events') { process.send({ events: log }); log = [] }
    if (m.cmd === 'unmount') fuse.unmount(() => process.exit(0))
  })
  process.on('disconnect', () => fuse.unmount(() => process.exit(0)))
}

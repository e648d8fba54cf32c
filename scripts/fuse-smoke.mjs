#!/usr/bin/env node
// Smoke check of Nexus's patched fuse-native (patches/fuse-native+2.2.6.patch,
// native-notes/fuse-native.md). A child process mounts a tiny in-memory
// filesystem, a second one (mnt-paged) that serves readdirPaged (100,000
// entries), create(path, mode, flags, cb) and statfs counts above 2^32, and a
// third one (mnt-direct, mounted like the Nexus daemon: auto_cache, attr and
// entry timeout 0) whose open/create/opendir answer per-open flags
// (cb(0, fh, { directIo, keepCache, nonSeekable })): generated files of size 0
// and a command/result control file, and a fourth one (mnt-hard, mounted
// like the Nexus daemon plus hardRemove and nullPathOk) that passes through to
// a backing directory and serves open files by their handle (a descriptor of
// the backing file): files unlinked while open, xattrs (in memory) and
// handlers that throw. This process (never the daemon itself: that
// deadlocks) drives them with real syscalls and prints one PASS/FAIL/INFO
// line per behaviour.
//
//   node scripts/fuse-smoke.mjs                  run the checks (exit 1 on any FAIL)
//   node scripts/fuse-smoke.mjs --no-utime-omit  mount without flag_utime_omit_ok, to
//                                                measure stock libfuse 2.9 (touch -m is dropped)
//   node scripts/fuse-smoke.mjs --module DIR     use another fuse-native checkout
//
// Exit codes: 0 all passed, 1 a check failed, 77 skipped (no /dev/fuse or not root).
// All four mounts are unmounted in `finally` and /proc/mounts is checked at the end.

import { fork, spawnSync, execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const SELF = fileURLToPath(import.meta.url)
const REPO = path.resolve(path.dirname(SELF), '..')
const GiB = 1024 ** 3

// The paged mount (mnt2): /big has BIG entries with short names, /long LONG
// entries with 200-byte names (a page of those overflows the kernel's buffer),
// each served by readdirPaged in pages of at most PAGE entries.
const BIG = 100000
const LONG = 3000
const PAGE = 256
const bigName = i => 'f' + String(i).padStart(6, '0')
const longName = i => 'L' + String(i).padStart(5, '0') + '-'.repeat(194)
const STATFS = { // served by the paged mount's statfs: six counts above 2^32, as numbers and BigInts
  bsize: 4096, frsize: 4096, blocks: 2 ** 33 + 12345, bfree: 2n ** 32n + 77n, bavail: 2 ** 32 + 5,
  files: 2n ** 40n + 7n, ffree: 2 ** 36 + 3, favail: 2n ** 36n, namemax: 255
}
// The direct mount (mnt3): generated content, the same bytes for the same fh
// (the first line names it), so the parent can check what it read.
const GEN_LEN = 300000 // more than two 128 KiB reads
const TRICKLE_LEN = 5000 // served at most TRICKLE_STEP bytes per read
const TRICKLE_STEP = 1000
const genContent = (fh, len = GEN_LEN) => {
  const b = Buffer.alloc(len)
  for (let i = 0; i < len; i++) b[i] = 97 + (i % 26)
  Buffer.from(`generated for fh ${fh}\n`).copy(b)
  b[len - 1] = 10
  return b
}
const ctlResult = cmd => Buffer.concat([Buffer.from(`ok ${JSON.stringify(cmd)}\n`), Buffer.alloc(140000, 'r'), Buffer.from('\n')]) // > 128 KiB
const O = fs.constants
const O_LARGEFILE = 0o100000 // x86-64 value; not in fs.constants
const flagNames = f => {
  const names = [['O_WRONLY', O.O_WRONLY], ['O_RDWR', O.O_RDWR]].filter(([, v]) => (f & 3) === v).map(([n]) => n)
  if ((f & 3) === 0) names.push('O_RDONLY')
  let rest = f & ~3
  for (const [n, v] of [['O_CREAT', O.O_CREAT], ['O_EXCL', O.O_EXCL], ['O_NOCTTY', O.O_NOCTTY], ['O_TRUNC', O.O_TRUNC], ['O_APPEND', O.O_APPEND], ['O_LARGEFILE', O_LARGEFILE]]) {
    if (rest & v) { names.push(n); rest &= ~v }
  }
  if (rest) names.push('0o' + rest.toString(8))
  return `0o${f.toString(8)} = ${names.join('|')}`
}

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
  const mnt2 = path.join(tmp, 'mnt-paged') // second mount, served by readdirPaged, create(path, mode, flags, cb), 64-bit statfs
  fs.mkdirSync(mnt2)
  const q = name => path.join(mnt2, name)
  const mnt3 = path.join(tmp, 'mnt-direct') // third mount: per-open flags (directIo, keepCache, nonSeekable), mounted like the Nexus daemon
  fs.mkdirSync(mnt3)
  const d3 = name => path.join(mnt3, name)
  const mnt4 = path.join(tmp, 'mnt-hard') // fourth mount: hardRemove + nullPathOk, a passthrough of backing4 by file handle
  fs.mkdirSync(mnt4)
  const backing4 = path.join(tmp, 'hard-backing')
  fs.mkdirSync(backing4)
  const h4 = name => path.join(mnt4, name)
  const mounts = [mnt, mnt2, mnt3, mnt4]

  const daemon = fork(SELF, ['--child', mnt, moduleDir, JSON.stringify({ ...opts, mnt2, mnt3, mnt4, backing4 })], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--no-warnings'], // the child records process warnings as events instead
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
    check(ready.patchVersion >= 4 && /build\/Release\/fuse\.node$/.test(ready.binaryPath),
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
    check(rootCreate && rootCreate.cbType === 'function', 'a create handler with three parameters still gets create(path, mode, cb)',
      `create(${rootCreate && rootCreate.argTypes.join(', ')}, ${rootCreate && rootCreate.cbType}); ` +
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

    // 6b. Version 6: a setattr op that answers the resulting stat saves libfuse's getattr after it.
    if (ready.patchVersion >= 6) {
      fs.writeFileSync(p('hinted'), 'x'); fs.writeFileSync(p('not-hinted'), 'x')
      await events()
      fs.chmodSync(p('hinted'), 0o600)
      const hinted = (await events()).filter(e => e.op === 'getattr' && e.path === '/hinted').length
      fs.chmodSync(p('not-hinted'), 0o600)
      const plain = (await events()).filter(e => e.op === 'getattr' && e.path === '/not-hinted').length
      check(hinted === plain - 1 && (fs.statSync(p('hinted')).mode & 0o7777) === 0o600,
        'stat hint: chmod answering cb(0, stat) spares the getattr libfuse sends after it', `getattr calls during chmod: ${hinted} with a stat answered, ${plain} without; stat shows mode ${(fs.statSync(p('hinted')).mode & 0o7777).toString(8)}`)
    }

    // 6c. Version 5: fuse.invalidate (the Nexus daemon's test/mount/kernel-cache.test.ts checks its effect).
    if (ready.patchVersion >= 5) {
      send({ cmd: 'invalidate' })
      const inv = (await next()).invalidated
      const [maj, min] = os.release().split('.').map(Number)
      if (maj > 6 || (maj === 6 && min >= 16)) check(inv && inv.epoch === 0 && inv.inodeErrors === 0, 'invalidate({ epoch, nodeids: [1] }): the kernel takes FUSE_NOTIFY_INC_EPOCH', JSON.stringify(inv))
      else info('invalidate', `kernel ${os.release()} predates FUSE_NOTIFY_INC_EPOCH: ${JSON.stringify(inv)} (expected epoch -22)`)
    }

    // 7. Gotchas, measured (INFO only).
    const names = fs.readdirSync(mnt)
    const lsa = sh('ls', ['-a', mnt]).stdout.split('\n').filter(Boolean)
    info('readdir', `ls -a shows . and ..: ${lsa.includes('.') && lsa.includes('..') ? 'yes' : 'no (readdir must add them)'}; ${names.length} names`)
    const t0 = Date.now()
    let err = null
    try { fs.readlinkSync(p('slow-link')) } catch (e) { err = e }
    check(err && err.code === 'ETIMEDOUT', 'a handler that never answers fails with ETIMEDOUT after the timeout option', `${err && err.code} after ${Date.now() - t0} ms (timeout.readlink=500; default 15000 for every op)`)

    // 8. Paged readdir: mnt2 serves every directory through readdirPaged.
    const lsList = dir => { // `ls -f DIR | wc -l`, keeping the listing (tee) to check the order
      const out = path.join(tmp, 'ls-f.out')
      const t0 = process.hrtime.bigint()
      const r = sh('sh', ['-c', 'ls -f "$1" | tee "$2" | wc -l', 'sh', dir, out])
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      const lines = fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n') : []
      if (lines[lines.length - 1] === '') lines.pop()
      return { count: Number(r.stdout.trim()), lines, ms, err: r.stderr.trim() }
    }
    const sameList = (a, b) => a.length === b.length && a.every((x, i) => x === b[i])
    const firstDiff = (a, b) => { const i = a.findIndex((x, j) => x !== b[j]); return i < 0 ? (a.length === b.length ? 'none' : `lengths ${a.length} vs ${b.length}`) : `at ${i}: ${String(a[i]).slice(0, 20)} vs ${String(b[i]).slice(0, 20)}` }
    // What the kernel took from each page: the next call's offset tells where it stopped.
    const pages = (ev, dir) => {
      const calls = ev.filter(e => e.op === 'readdirPaged' && e.path === dir)
      const taken = []
      let continuous = calls.length > 0 && calls[0].offset === 0
      for (let i = 0; i + 1 < calls.length; i++) {
        const a = calls[i]; const b = calls[i + 1]
        if (b.offset === 0) continue // a new listing
        if (!(b.offset > a.offset && b.offset <= a.offset + a.count) || b.fh !== a.fh) continuous = false
        taken.push({ returned: a.count, taken: b.offset - a.offset })
      }
      const opened = ev.filter(e => e.op === 'opendir' && e.path === dir).map(e => e.fh)
      return {
        calls: calls.length,
        maxReturned: Math.max(0, ...calls.map(c => c.count)),
        endsEmpty: calls.length > 0 && calls[calls.length - 1].count === 0,
        continuous,
        fhOk: calls.length > 0 && calls.every(c => c.fh !== 0 && opened.includes(c.fh)),
        fhs: [...new Set(calls.map(c => c.fh))],
        taken
      }
    }
    const spread = xs => { if (!xs.length) return 'none'; const s = [...xs].sort((a, b) => a - b); return `min ${s[0]}, median ${s[s.length >> 1]}, max ${s[s.length - 1]}` }
    await events()
    const bigExpected = ['.', '..', ...Array.from({ length: BIG }, (_, i) => bigName(i))]
    const lsBig = lsList(q('big'))
    ev = await events()
    const pb = pages(ev, '/big')
    check(lsBig.count === BIG + 2 && sameList(lsBig.lines, bigExpected),
      `ls -f | wc -l of a ${BIG}-entry directory served by readdirPaged: complete and in order`,
      `${lsBig.count} lines (expected ${BIG + 2}, with . and ..), first difference: ${firstDiff(lsBig.lines, bigExpected)}; ${lsBig.ms.toFixed(0)} ms${lsBig.err ? '; ' + lsBig.err : ''}`)
    check(pb.calls >= Math.ceil(BIG / PAGE) && pb.maxReturned <= PAGE && pb.continuous && pb.endsEmpty,
      'readdirPaged is called page by page: bounded pages, each call continues at an offset handed out, an empty page ends',
      `${pb.calls} calls for one ls -f, at most ${pb.maxReturned} entries returned per call (PAGE ${PAGE}); first offset ${ev.find(e => e.op === 'readdirPaged')?.offset}; ` +
      `entries the kernel took per call: ${spread(pb.taken.map(t => t.taken))}`)
    check(pb.fhOk, 'readdirPaged gets the opendir handle (fh) as its third argument', `fh ${pb.fhs.join(', ')}; opendir returned ${ev.filter(e => e.op === 'opendir' && e.path === '/big').map(e => e.fh).join(', ')}`)
    check(!ev.some(e => e.op === 'readdir-stock'), 'with readdirPaged present, the stock readdir handler is never called')

    const findOut = sh('find', [q('big')], { maxBuffer: 256 << 20 })
    const findLines = findOut.stdout.split('\n'); findLines.pop()
    const findExpected = [q('big'), ...bigExpected.slice(2).map(n => q('big') + '/' + n)]
    ev = await events()
    check(findOut.status === 0 && sameList(findLines, findExpected), `find lists all ${BIG} entries in order`,
      `${findLines.length} lines (expected ${BIG + 1}), first difference: ${firstDiff(findLines, findExpected)}; ${pages(ev, '/big').calls} readdirPaged calls${findOut.stderr ? '; ' + findOut.stderr.trim() : ''}`)
    const nodeNames = await fs.promises.readdir(q('big'))
    const dirIter = []
    const d = fs.opendirSync(q('big'))
    for (let e; (e = d.readSync()) !== null;) dirIter.push(e.name)
    d.closeSync()
    ev = await events()
    check(sameList(nodeNames, bigExpected.slice(2)) && sameList(dirIter, bigExpected.slice(2)),
      'node fs.readdir (sorted by libuv) and fs.opendirSync (kernel order) give the same names',
      `fs.readdir ${nodeNames.length} names, first difference ${firstDiff(nodeNames, bigExpected.slice(2))}; opendirSync ${dirIter.length}, first difference ${firstDiff(dirIter, bigExpected.slice(2))}`)

    const longExpected = ['.', '..', ...Array.from({ length: LONG }, (_, i) => longName(i))]
    const lsLong = lsList(q('long'))
    ev = await events()
    const pl = pages(ev, '/long')
    const cut = pl.taken.filter(t => t.taken < t.returned)
    check(lsLong.count === LONG + 2 && sameList(lsLong.lines, longExpected) && pl.continuous && cut.length > 0,
      'pages larger than the kernel buffer (200-byte names): the rest is asked for again from the last offset taken',
      `${lsLong.count} lines, first difference ${firstDiff(lsLong.lines, longExpected)}; ${pl.calls} calls of up to ${pl.maxReturned} entries; ` +
      `${cut.length} of ${pl.taken.length} pages were cut; entries taken per call: ${spread(pl.taken.map(t => t.taken))}`)

    let e1 = null
    try { fs.readdirSync(q('bad-page')) } catch (e) { e1 = e }
    ev = await events()
    const warning = ev.find(e => e.op === 'warning')
    check(e1 && e1.code === 'EIO' && warning, 'a malformed page (offset 0) fails the readdir with EIO and a process warning',
      `${e1 && e1.code}; warning: ${warning && warning.message}`)
    let e2 = null
    try { fs.readdirSync(q('denied')) } catch (e) { e2 = e }
    check(e2 && e2.code === 'EACCES', 'readdirPaged cb(Fuse.EACCES) fails the readdir with EACCES', String(e2 && e2.code))
    const emptyNames = fs.readdirSync(q('empty'))
    check(emptyNames.length === 0, 'readdirPaged cb(0) is an empty page: an empty directory', JSON.stringify(emptyNames))
    await events()

    const lsOld = lsList(p('old-big'))
    ev = await events()
    const oldCalls = ev.filter(e => e.op === 'readdir' && e.path === '/old-big').length
    check(lsOld.count === BIG + 2, `the stock readdir(path, cb) still lists a ${BIG}-entry directory (one call, one reply)`,
      `${lsOld.count} lines, ${oldCalls} readdir call(s), ${lsOld.ms.toFixed(0)} ms (paged: ${lsBig.ms.toFixed(0)} ms)`)

    // 8b. Version 13: with maxWrite 1048576 (this mount), a 1 MiB write is one request.
    await events()
    sh('dd', ['if=/dev/zero', `of=${q('one-mib-writes')}`, 'bs=1M', 'count=2', 'status=none'])
    ev = await events()
    const bigWrites = ev.filter(e => e.op === 'write' && e.path === '/one-mib-writes').map(e => e.len)
    if (ready.patchVersion >= 13) {
      check(bigWrites.length === 2 && bigWrites.every(s => s === 1048576), 'maxWrite 1048576: a 2 MiB dd write (bs=1M) arrives as two 1 MiB writes (FUSE_MAX_PAGES in the INIT reply)', `${bigWrites.length} writes: ${[...new Set(bigWrites)].join(', ')} bytes`)
    } else info('1 MiB writes', `${bigWrites.length} writes of ${[...new Set(bigWrites)].join(', ')} bytes (stock: 128 KiB at most)`)

    // 9. create gets the open flags when the handler declares four parameters.
    await events()
    const bashAppend = sh('bash', ['-c', 'exec 3>>"$1"', 'bash', q('appended-by-bash')])
    ev = await events()
    const cb1 = ev.find(e => e.op === 'create' && e.path === '/appended-by-bash')
    check(bashAppend.status === 0 && cb1 && typeof cb1.flags === 'number' && (cb1.flags & O.O_APPEND) && (cb1.flags & 3) === O.O_WRONLY,
      'exec 3>>newfile reaches create(path, mode, flags, cb) with O_WRONLY|O_APPEND', cb1 ? `flags ${typeof cb1.flags === 'number' ? flagNames(cb1.flags) : cb1.flags}, mode 0o${cb1.mode.toString(8)}` : 'create not called')
    fs.closeSync(fs.openSync(q('appended-by-node'), O.O_CREAT | O.O_APPEND | O.O_WRONLY, 0o640))
    ev = await events()
    const cb2 = ev.find(e => e.op === 'create' && e.path === '/appended-by-node')
    check(cb2 && typeof cb2.flags === 'number' && (cb2.flags & O.O_APPEND) && (cb2.flags & 3) === O.O_WRONLY,
      'open(O_CREAT|O_APPEND|O_WRONLY) from node reaches create with O_APPEND', cb2 ? `flags ${typeof cb2.flags === 'number' ? flagNames(cb2.flags) : cb2.flags}, mode 0o${cb2.mode.toString(8)}` : 'create not called')
    fs.closeSync(fs.openSync(q('excl'), 'wx+'))
    ev = await events()
    const cb3 = ev.find(e => e.op === 'create' && e.path === '/excl')
    info("create flags of open('wx+') (O_RDWR|O_CREAT|O_EXCL|O_TRUNC)", cb3 ? (typeof cb3.flags === 'number' ? flagNames(cb3.flags) : String(cb3.flags)) : 'create not called')
    fs.closeSync(fs.openSync(q('trunc-new'), 'w'))
    ev = await events()
    const cb4 = ev.find(e => e.op === 'create' && e.path === '/trunc-new')
    info("create flags of open('w') (O_WRONLY|O_CREAT|O_TRUNC) of a new file", cb4 ? (typeof cb4.flags === 'number' ? flagNames(cb4.flags) : String(cb4.flags)) : 'create not called')

    // 10. statfs counts above 2^32.
    const sf = sh('stat', ['-f', '-c', '%S %b %f %a %c %d', mnt2])
    const sfWant = [STATFS.bsize, STATFS.blocks, STATFS.bfree, STATFS.bavail, STATFS.files, STATFS.ffree].map(String).join(' ')
    check(sf.status === 0 && sf.stdout.trim() === sfWant, 'stat -f reports statfs counts above 2^32 (blocks, bfree, bavail, files, ffree)',
      `got '${sf.stdout.trim()}', expected '${sfWant}' (%S %b %f %a %c %d)`)
    const df = sh('df', ['-B1', '--output=size,avail', mnt2])
    const dfVals = (df.stdout.trim().split('\n')[1] || '').trim().split(/\s+/)
    const dfWant = [BigInt(STATFS.blocks) * 4096n, BigInt(STATFS.bavail) * 4096n].map(String)
    check(df.status === 0 && sameList(dfVals, dfWant), 'df -B1 shows the 32 TiB size', `size, avail: ${dfVals.join(', ')}; expected ${dfWant.join(', ')}`)
    const nsf = fs.statfsSync(mnt2, { bigint: true })
    check(nsf.blocks === BigInt(STATFS.blocks) && nsf.bfree === BigInt(STATFS.bfree) && nsf.files === BigInt(STATFS.files) && nsf.ffree === BigInt(STATFS.ffree),
      'fs.statfsSync(mnt, { bigint: true }) agrees', `blocks ${nsf.blocks}, bfree ${nsf.bfree}, bavail ${nsf.bavail}, files ${nsf.files}, ffree ${nsf.ffree}`)

    // 11. Per-open flags: open/create/opendir answer cb(0, fh, { directIo, keepCache, nonSeekable }).
    //     mnt3 is mounted like the Nexus daemon (auto_cache, attr/entry timeout 0); see the child.
    await events()
    const m3 = (ev, op, p) => ev.filter(e => e.m3 && e.op === op && e.path === p)
    const readList = rs => { // offset+len->returned of each handler read; long lists are shortened
      const one = e => `${e.offset}+${e.len}->${e.returned}`
      return rs.length <= 6 ? rs.map(one).join(', ') : `${rs.length} reads: ${rs.slice(0, 2).map(one).join(', ')}, ..., ${rs.slice(-2).map(one).join(', ')}`
    }
    const catOf = (file, extra = {}) => sh('cat', [file], { encoding: 'buffer', maxBuffer: 64 << 20, ...extra })

    // 11a. directIo: a file whose getattr size is 0 gives its whole content.
    const catGen = catOf(d3('gen'))
    ev = await events()
    const genOpen = m3(ev, 'open', '/gen')[0]
    const genReads = m3(ev, 'read', '/gen')
    const genWant = genContent(genOpen && genOpen.fh)
    check(catGen.status === 0 && genOpen && catGen.stdout.equals(genWant),
      'directIo: cat of a file whose getattr size is 0 prints its whole generated content',
      `${catGen.stdout.length} bytes (expected ${GEN_LEN}); handler reads offset+len->returned: ${readList(genReads)}`)
    const lastTwo = genReads.slice(-2)
    check(lastTwo.length === 2 && lastTwo[0].returned > 0 && lastTwo[0].returned < lastTwo[0].len && lastTwo[1].returned === 0 && lastTwo[1].offset === GEN_LEN,
      'directIo: after the short read at the end, cat asks once more and stops at the 0-byte answer',
      `last reads: ${readList(lastTwo)}`)
    const catCached = catOf(d3('gen-cached'))
    ev = await events()
    check(catCached.status === 0 && catCached.stdout.length === 0 && m3(ev, 'read', '/gen-cached').length === 0,
      'without directIo the kernel stops at the getattr size: cat of the same size-0 file prints nothing, and no read reaches the handler',
      `${catCached.stdout.length} bytes, ${m3(ev, 'read', '/gen-cached').length} reads`)
    const rfSync = fs.readFileSync(d3('gen'))
    ev = await events()
    const rfSyncFh = m3(ev, 'open', '/gen')[0]?.fh
    const rfSyncReads = m3(ev, 'read', '/gen')
    const rfAsync = await fs.promises.readFile(d3('gen'))
    const ev2 = await events()
    const rfAsyncFh = m3(ev2, 'open', '/gen')[0]?.fh
    check(rfSync.equals(genContent(rfSyncFh)) && rfAsync.equals(genContent(rfAsyncFh)),
      "directIo: node's fs.readFileSync and fs.promises.readFile read the size-0 file to the end (a 0-byte read ends it)",
      `readFileSync ${rfSync.length} bytes in reads ${readList(rfSyncReads)}; readFile ${rfAsync.length} bytes in ${m3(ev2, 'read', '/gen').length} reads`)

    // 11b. Short reads: under directIo a short read is only a short read(2); the 0-byte answer is the end.
    const catTrickle = catOf(d3('trickle'))
    ev = await events()
    const trOpen = m3(ev, 'open', '/trickle')[0]
    const trickleSync = fs.readFileSync(d3('trickle'))
    const ev3 = await events()
    const trSyncFh = m3(ev3, 'open', '/trickle')[0]?.fh
    check(catTrickle.stdout.equals(genContent(trOpen && trOpen.fh, TRICKLE_LEN)) && trickleSync.equals(genContent(trSyncFh, TRICKLE_LEN)),
      `directIo: a handler answering at most ${TRICKLE_STEP} bytes per read is read to the end by cat and fs.readFileSync (a short read is not EOF)`,
      `cat ${catTrickle.stdout.length} bytes, reads ${readList(m3(ev, 'read', '/trickle'))}; readFileSync ${trickleSync.length} bytes`)
    const catTrickleCached = catOf(d3('trickle-cached'))
    ev = await events()
    const tcSize = fs.statSync(d3('trickle-cached')).size
    info('short reads without directIo (page cache)',
      `getattr size ${TRICKLE_LEN}, handler answers at most ${TRICKLE_STEP} per read: cat printed ${catTrickleCached.stdout.length} bytes; reads ${readList(m3(ev, 'read', '/trickle-cached'))}; stat afterwards ${tcSize}`)
    const catSized = catOf(d3('gen-sized'))
    const sizedSync = fs.readFileSync(d3('gen-sized'))
    const sizedAsync = await fs.promises.readFile(d3('gen-sized'))
    ev = await events()
    info('directIo file whose getattr size (1000) is smaller than its content',
      `cat ${catSized.stdout.length} bytes; fs.readFileSync ${sizedSync.length}; fs.promises.readFile ${sizedAsync.length} (node trusts st_size when it is not 0)`)
    const cpDst = path.join(tmp, 'cp-of-gen')
    const cpGen = sh('cp', [d3('gen'), cpDst])
    const cpSize = fs.existsSync(cpDst) ? fs.statSync(cpDst).size : -1
    const nodeCopyDst = path.join(tmp, 'copyFile-of-gen')
    let copyErr = ''
    try { fs.copyFileSync(d3('gen'), nodeCopyDst) } catch (e) { copyErr = e.code }
    const nodeCopySize = fs.existsSync(nodeCopyDst) ? fs.statSync(nodeCopyDst).size : -1
    ev = await events()
    info('copying a size-0 directIo file', `cp: exit ${cpGen.status}, ${cpSize} bytes; fs.copyFileSync: ${copyErr || 'ok'}, ${nodeCopySize} bytes (libuv copies st_size bytes)`)

    // 11c. Control file: write a command, read the result back on the same descriptor.
    const rw = sh('bash', ['-c', 'exec 3<>"$1"; echo status >&3; cat <&3', 'bash', d3('ctl')], { encoding: 'buffer', maxBuffer: 64 << 20 })
    ev = await events()
    const ctlOpen = m3(ev, 'open', '/ctl')[0]
    const ctlW = m3(ev, 'write', '/ctl')
    const ctlR = m3(ev, 'read', '/ctl')
    check(rw.status === 0 && rw.stdout.equals(ctlResult('status\n')) && ctlW.length === 1 && ctlW[0].answered === 7,
      "directIo control file: bash 'exec 3<>ctl; echo status >&3; cat <&3' reads the whole result back on the same descriptor",
      `${rw.stdout.length} bytes (expected ${ctlResult('status\n').length}); open flags ${ctlOpen ? flagNames(ctlOpen.flags) : '?'}; ` +
      `write ${ctlW.map(e => `${e.offset}+${e.len}->${e.answered}`).join(', ')}; reads ${readList(ctlR)}${rw.stderr.length ? '; ' + rw.stderr.toString().trim() : ''}`)
    info('control file read offsets', `the first read after a ${ctlW[0]?.len}-byte write came at offset ${ctlR[0]?.offset} (the descriptor's position): serve results from a per-descriptor cursor, not from the offset`)
    const echoCtl = sh('bash', ['-c', 'echo hello > "$1"', 'bash', d3('ctl')])
    ev = await events()
    const eo = m3(ev, 'open', '/ctl')[0]
    const etr = [...m3(ev, 'ftruncate', '/ctl'), ...m3(ev, 'truncate', '/ctl')]
    const ew = m3(ev, 'write', '/ctl')
    check(echoCtl.status === 0 && ew.length === 1 && ew[0].data === 'hello\n' && ew[0].answered === 6,
      "echo hello > ctl: one write of 6 bytes, answered 6, and echo exits 0",
      `open flags ${eo ? flagNames(eo.flags) : '?'}; then ${etr.map(e => `${e.op}(size ${e.size})`).join(', ') || 'no truncate'}; write ${ew.map(e => `${e.offset}+${e.len}->${e.answered}`).join(', ')}`)
    const echoRefused = sh('bash', ['-c', 'echo hello > "$1"', 'bash', d3('ctl-refuse-trunc')])
    ev = await events()
    info('echo > a control file whose truncate answers EPERM',
      `exit ${echoRefused.status}, ${echoRefused.stderr.trim() || 'no message'}; writes: ${m3(ev, 'write', '/ctl-refuse-trunc').length} (O_TRUNC arrives as ${[...m3(ev, 'ftruncate', '/ctl-refuse-trunc'), ...m3(ev, 'truncate', '/ctl-refuse-trunc')].map(e => e.op + '(' + e.size + ')').join(', ') || 'nothing'})`)
    const appendCtl = sh('bash', ['-c', 'echo one >> "$1"', 'bash', d3('ctl-refuse-trunc')])
    ev = await events()
    info('echo >> a control file', `exit ${appendCtl.status}; open flags ${m3(ev, 'open', '/ctl-refuse-trunc').map(e => flagNames(e.flags)).join(', ')}; writes ${m3(ev, 'write', '/ctl-refuse-trunc').map(e => `${e.offset}+${e.len}->${e.answered}`).join(', ')}; truncates ${[...m3(ev, 'ftruncate', '/ctl-refuse-trunc'), ...m3(ev, 'truncate', '/ctl-refuse-trunc')].length}`)

    // 11d. The page cache: ordinary files keep it, directIo files bypass it.
    const rereadOneFd = file => { // read the whole file, then read it again from 0 on the same descriptor
      const fd = fs.openSync(file, 'r')
      const size = fs.fstatSync(fd).size
      const buf = Buffer.alloc(Math.max(size, GEN_LEN) + 1)
      const first = fs.readSync(fd, buf, 0, buf.length, 0)
      return { fd, first, again: () => { const n = fs.readSync(fd, buf, 0, buf.length, 0); fs.closeSync(fd); return n } }
    }
    let rr = rereadOneFd(d3('plain'))
    await events()
    let again = rr.again()
    ev = await events()
    check(rr.first === GEN_LEN && again === GEN_LEN && m3(ev, 'read', '/plain').length === 0,
      'ordinary file (no options): a warm re-read on the same descriptor is served from the page cache (no read reaches the handler)',
      `first read ${rr.first} bytes, re-read ${again} bytes with ${m3(ev, 'read', '/plain').length} handler reads`)
    catOf(d3('plain'))
    ev = await events()
    const cat2 = catOf(d3('plain'))
    ev = await events()
    check(cat2.stdout.equals(genContent(0)) && m3(ev, 'read', '/plain').length === 0,
      'ordinary file on an auto_cache mount (like Nexus): a second cat, a new open, is served from the page cache',
      `second cat ${cat2.stdout.length} bytes with ${m3(ev, 'read', '/plain').length} handler reads`)
    rr = rereadOneFd(d3('gen'))
    await events()
    again = rr.again()
    ev = await events()
    check(rr.first === GEN_LEN && again === GEN_LEN && m3(ev, 'read', '/gen').length >= 2,
      'directIo file: the same re-read on one descriptor goes to the handler every time',
      `re-read ${again} bytes in ${m3(ev, 'read', '/gen').length} handler reads`)
    // keepCache on a mount without auto_cache (the first mount): every open drops the pages unless the open keeps them.
    fs.writeFileSync(p('plain-main'), genContent(0))
    fs.writeFileSync(p('keep-main'), genContent(0))
    catOf(p('plain-main')); catOf(p('keep-main'))
    await events()
    const cPlain = catOf(p('plain-main'))
    ev = await events()
    const plainReads = ev.filter(e => e.op === 'read' && e.path === '/plain-main').length
    const cKeep = catOf(p('keep-main'))
    ev = await events()
    const keepReads = ev.filter(e => e.op === 'read' && e.path === '/keep-main').length
    check(cKeep.stdout.equals(genContent(0)) && keepReads === 0,
      'keepCache: true (no auto_cache): a second cat is served from the page cache',
      `${keepReads} handler reads; the same file opened without keepCache: ${plainReads} reads (${cPlain.stdout.length} bytes) — without keep_cache or auto_cache every open drops the cached pages`)

    // 11e. nonSeekable, create with options, opendir with options, an unknown key.
    const seqCat = catOf(d3('seq'))
    ev = await events()
    const seqFh = m3(ev, 'open', '/seq')[0]?.fh
    const seqSync = fs.readFileSync(d3('seq'))
    ev = await events()
    const seqSyncFh = m3(ev, 'open', '/seq')[0]?.fh
    let preadErr = null
    const sfd = fs.openSync(d3('seq'), 'r')
    try { fs.readSync(sfd, Buffer.alloc(10), 0, 10, 5) } catch (e) { preadErr = e.code }
    fs.closeSync(sfd)
    await events()
    check(seqCat.stdout.equals(genContent(seqFh)) && seqSync.equals(genContent(seqSyncFh)) && preadErr === 'ESPIPE',
      'nonSeekable: cat and fs.readFileSync read it, pread fails with ESPIPE',
      `cat ${seqCat.stdout.length} bytes, readFileSync ${seqSync.length} bytes, pread: ${preadErr || 'succeeded'}`)
    const createdRead = name => {
      const fd = fs.openSync(d3(name), 'w+')
      const buf = Buffer.alloc(100)
      const n = fs.readSync(fd, buf, 0, 100, null)
      fs.closeSync(fd)
      return buf.toString('utf8', 0, n)
    }
    const madeDirect = createdRead('made-direct')
    const madePlain = createdRead('made-plain')
    ev = await events()
    const mdCreate = m3(ev, 'create', '/made-direct')[0]
    check(mdCreate && mdCreate.options && madeDirect === 'served by the handler\n' && madePlain === '',
      "create answering { directIo: true }: a read on the new descriptor reaches the handler (without it, the new size-0 file reads empty)",
      `made-direct read ${JSON.stringify(madeDirect)} (create flags ${mdCreate ? flagNames(mdCreate.flags) : '?'}); made-plain read ${JSON.stringify(madePlain)}`)
    const lsDir = sh('ls', ['-a', d3('dir')])
    const seekDir = sh('python3', ['-c', 'import os,sys\nfd=os.open(sys.argv[1], os.O_RDONLY|os.O_DIRECTORY)\ntry:\n  print("lseek ->", os.lseek(fd, 0, 0))\nexcept OSError as e:\n  print("lseek ->", e.strerror)', d3('dir')])
    ev = await events()
    check(lsDir.status === 0 && lsDir.stdout.split('\n').includes('a') && m3(ev, 'opendir', '/dir').length > 0,
      'opendir answering cb(0, fh, { nonSeekable: true, keepCache: true }) still lists', lsDir.stdout.trim().split('\n').join(' '))
    info('opendir options reach the kernel?', `lseek(dirfd, 0, SEEK_SET) on the nonSeekable directory: ${(seekDir.stdout || seekDir.stderr).trim()} ` +
      '(libfuse 2.9 replies to OPENDIR with its own fuse_file_info, so fi->nonseekable/keep_cache/direct_io set in opendir are dropped)')
    const typo = catOf(d3('typo'))
    ev = await events()
    const typoWarn = ev.find(e => e.op === 'warning' && /directIO/.test(e.message))
    check(typo.stdout.length === 0 && typoWarn, 'an unknown option key (directIO) is ignored with a process warning',
      `cat ${typo.stdout.length} bytes; warning: ${typoWarn && typoWarn.message}`)

    // 12. Files unlinked while open (mnt4: hardRemove + nullPathOk, a passthrough of
    //     backing4 that serves open files by handle), xattr buffer sizes, handler exceptions.
    await events()
    const m4 = (ev, op) => ev.filter(e => e.m4 && e.op === op)
    const py = (code, ...args) => {
      const r = sh('python3', ['-c', code, ...args])
      try { return JSON.parse(r.stdout.trim().split('\n').pop()) } catch { return { error: `python exit ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` } }
    }
    const unlinkedOpen = py(`
import os, sys, json, errno, subprocess
m = sys.argv[1]
out = {}
def attempt(name, f):
    try: out[name] = f()
    except OSError as e: out[name] = 'ERR ' + errno.errorcode[e.errno]
os.makedirs(m + '/dir/sub')
with open(m + '/dir/sub/f', 'wb') as f: f.write(b'hello world')
fd = os.open(m + '/dir/sub/f', os.O_RDWR)
os.unlink(m + '/dir/sub/f')
out['listdir'] = os.listdir(m + '/dir/sub')
out['ls'] = subprocess.run(['ls', '-a', m + '/dir/sub'], capture_output=True, text=True).stdout.split()
r = subprocess.run(['rm', '-rf', m + '/dir'], capture_output=True, text=True)
out['rm'] = {'exit': r.returncode, 'stderr': r.stderr.strip(), 'dirExists': os.path.exists(m + '/dir')}
attempt('pread', lambda: os.pread(fd, 100, 0).decode())
attempt('pwrite', lambda: os.pwrite(fd, b' more', 11))
attempt('fstat', lambda: os.fstat(fd).st_size)
attempt('lseekEnd', lambda: os.lseek(fd, 0, os.SEEK_END))
attempt('ftruncate', lambda: os.ftruncate(fd, 5) or 'ok')
attempt('fsync', lambda: os.fsync(fd) or 'ok')
attempt('fdatasync', lambda: os.fdatasync(fd) or 'ok')
attempt('preadAfter', lambda: os.pread(fd, 100, 0).decode())
attempt('close', lambda: os.close(fd) or 'ok')
print(json.dumps(out))
`, mnt4)
    ev = await events()
    const nullOps = [...new Set(ev.filter(e => e.m4 && e.path === null).map(e => e.op))]
    const u = unlinkedOpen
    check(Array.isArray(u.listdir) && u.listdir.length === 0 && Array.isArray(u.ls) && !u.ls.some(n => n.startsWith('.fuse_hidden')),
      'hardRemove: a file unlinked while open leaves no .fuse_hidden entry (listdir, ls -a)', `listdir ${JSON.stringify(u.listdir)}, ls -a ${JSON.stringify(u.ls)}${u.error ? '; ' + u.error : ''}`)
    check(u.rm && u.rm.exit === 0 && u.rm.dirExists === false, 'hardRemove: rm -rf of the directory that held it succeeds', JSON.stringify(u.rm))
    check(u.pread === 'hello world' && u.pwrite === 5 && u.ftruncate === 'ok' && u.fsync === 'ok' && u.fdatasync === 'ok' && u.preadAfter === 'hello' && u.close === 'ok',
      'nullPathOk: pread, pwrite, ftruncate, fsync, fdatasync and close on the open descriptor still work',
      `pread ${JSON.stringify(u.pread)}, pwrite ${u.pwrite}, ftruncate ${u.ftruncate}, fsync ${u.fsync}, fdatasync ${u.fdatasync}, pread after ftruncate(5) ${JSON.stringify(u.preadAfter)}, close ${u.close}`)
    const fgaNull = m4(ev, 'fgetattr').filter(e => e.path === null)
    check(fgaNull.length > 0 && fgaNull.every(e => e.fh > 0) && u.lseekEnd === 16,
      'nullPathOk: fgetattr(null, fh) is reached (lseek SEEK_END answers the size of the unlinked file)',
      `${fgaNull.length} fgetattr(null, fh) calls (fh ${[...new Set(fgaNull.map(e => e.fh))].join(', ')}); lseek(fd, 0, SEEK_END) = ${u.lseekEnd}`)
    const wantNull = ['read', 'write', 'fgetattr', 'ftruncate', 'fsync', 'flush', 'release']
    check(wantNull.every(op => nullOps.includes(op)) && m4(ev, 'getattr').every(e => e.path !== null),
      'nullPathOk: read, write, fgetattr, ftruncate, fsync, flush and release reach the handler with path === null', `ops called with a null path: ${nullOps.join(', ')}`)
    info('fstat of a file unlinked while open (hardRemove)', `os.fstat: ${u.fstat} — fstat(2) sends GETATTR without a file handle (kernel fuse_getattr), and libfuse 2.9 has no path left for the node, ` +
      `so it answers ENOENT without calling getattr or fgetattr; lseek SEEK_END, and reads past the cached size, send GETATTR with the handle and reach fgetattr(null, fh)`)

    const renameOver = py(`
import os, sys, json
m = sys.argv[1]
with open(m + '/target', 'wb') as f: f.write(b'old')
fd = os.open(m + '/target', os.O_RDONLY)
with open(m + '/new', 'wb') as f: f.write(b'new')
os.rename(m + '/new', m + '/target')
out = {'listing': sorted(os.listdir(m)), 'oldFd': os.pread(fd, 10, 0).decode(), 'byName': open(m + '/target').read()}
os.close(fd)
os.unlink(m + '/target')
print(json.dumps(out))
`, mnt4)
    ev = await events()
    check(renameOver.oldFd === 'old' && renameOver.byName === 'new' && Array.isArray(renameOver.listing) && !renameOver.listing.some(n => n.startsWith('.fuse_hidden')),
      'hardRemove: rename over an open file leaves no .fuse_hidden entry, and the old descriptor still reads the old content',
      `${JSON.stringify(renameOver)}; null-path ops: ${[...new Set(ev.filter(e => e.m4 && e.path === null).map(e => e.op))].join(', ')}`)

    // xattrs: a non-zero buffer that is too small answers ERANGE; size 0 asks for the size.
    fs.writeFileSync(h4('xattrs'), 'x')
    await events()
    const xa = py(`
import os, sys, json, ctypes, errno
f = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
for fn in (libc.listxattr, libc.getxattr): fn.restype = ctypes.c_ssize_t
libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
names = ['user.n%02d-' % i + 'x' * 40 for i in range(12)]
for n in names: os.setxattr(f, n, b'v')
big = bytes(range(256)) * 8
os.setxattr(f, 'user.big', big)
out = {}
def call(fn, *a):
    r = fn(*a)
    return r if r >= 0 else 'ERR ' + errno.errorcode[ctypes.get_errno()]
small = ctypes.create_string_buffer(16)
out['listSize0'] = call(libc.listxattr, f.encode(), None, 0)
out['listSmall'] = call(libc.listxattr, f.encode(), small, 16)
out['want'] = sum(len(n) + 1 for n in names + ['user.big'])
out['listxattr'] = sorted(os.listxattr(f)) == sorted(names + ['user.big'])
out['getSize0'] = call(libc.getxattr, f.encode(), b'user.big', None, 0)
out['getSmall'] = call(libc.getxattr, f.encode(), b'user.big', small, 16)
out['getxattr'] = os.getxattr(f, 'user.big') == big
exact = ctypes.create_string_buffer(len(big))
out['getExact'] = call(libc.getxattr, f.encode(), b'user.big', exact, len(big))
print(json.dumps(out))
`, h4('xattrs'))
    ev = await events()
    check(xa.listSmall === 'ERR ERANGE' && xa.listSize0 === xa.want && xa.listxattr === true,
      'listxattr with a buffer too small answers ERANGE (stock: a RangeError killed the daemon); size 0 answers the exact size; os.listxattr (256-byte first try) gets all names',
      `16-byte buffer: ${xa.listSmall}; size query ${xa.listSize0} (names need ${xa.want}); os.listxattr complete: ${xa.listxattr}${xa.error ? '; ' + xa.error : ''}`)
    check(xa.getSmall === 'ERR ERANGE' && xa.getSize0 === 2048 && xa.getExact === 2048 && xa.getxattr === true,
      'getxattr of a 2048-byte value with a 16-byte buffer answers ERANGE (stock: EIO and "fuse: writing device: Invalid argument"); size 0 answers 2048; os.getxattr (128-byte first try) gets the value',
      `16-byte buffer: ${xa.getSmall}; size query ${xa.getSize0}; exact buffer ${xa.getExact}; os.getxattr equal: ${xa.getxattr}`)

    // Handlers that throw, reject or answer garbage: EIO and a process warning, the daemon lives on.
    const boom = name => { try { fs.statSync(h4(name)); return 'ok' } catch (e) { return e.code } }
    const boomResults = {
      'boom-sync': boom('boom-sync'), // getattr throws
      'boom-async': boom('boom-async'), // answers later with a stat whose mtime is a string: packing it throws in the callback
      'boom-reject': boom('boom-reject'), // an async handler whose promise rejects
      'boom-errno': boom('boom-errno'), // cb('oops')
      'boom-null': boom('boom-null'), // cb(null, stat): success
      'boom-twice': boom('boom-twice') // cb twice: the second answer is ignored
    }
    let linkErr = null
    try { fs.readlinkSync(h4('boom-link')) } catch (e) { linkErr = e.code } // readlink answers a number: the native signal rejects it
    const touchNoErrno = sh('touch', [h4('xattrs')]) // utimens answers cb()
    ev = await events()
    const warns = ev.filter(e => e.op === 'warning').map(e => e.message)
    const wantEio = ['boom-sync', 'boom-async', 'boom-reject', 'boom-errno']
    check(wantEio.every(n => boomResults[n] === 'EIO') && linkErr === 'EIO' && boomResults['boom-null'] === 'ok' && boomResults['boom-twice'] === 'ok',
      'a handler that throws, whose callback throws, whose promise rejects, or that answers garbage fails the op with EIO (stock: the daemon died or a libfuse thread hung); cb(null, stat) is success',
      `${Object.entries(boomResults).map(([k, v]) => `${k} ${v}`).join(', ')}, readlink answering 42: ${linkErr}`)
    check(touchNoErrno.status === 0 && m4(ev, 'utimens').length > 0, 'a handler answering cb() (no errno) succeeds: touch through a utimens that calls cb()',
      `touch exit ${touchNoErrno.status}${touchNoErrno.stderr ? ', ' + touchNoErrno.stderr.trim() : ''} (stock: the native signal threw "Expected number" from process.nextTick and the daemon died)`)
    const warned = ['boom-sync', 'boom-async', 'boom-reject', 'boom-errno', 'boom-link'].filter(n => warns.some(w => w.includes(n)))
    check(warned.length === 5, 'each of them emits a process warning naming the op and the path',
      warns.filter(w => /boom/.test(w)).map(w => w.split('\n')[0]).join(' | '))
    const alive = py(`
import os, sys, json
m = sys.argv[1]
with open(m + '/after', 'w') as f: f.write('still serving')
print(json.dumps({'read': open(m + '/after').read(), 'listing': sorted(os.listdir(m))}))
`, mnt4)
    check(alive.read === 'still serving', 'the daemon still serves all its mounts afterwards',
      `mnt-hard: ${JSON.stringify(alive)}; main mount stat: ${fs.statSync(p('dd')).size} bytes`)
  } catch (e) {
    check(false, 'smoke ran to the end', e.stack)
  } finally {
    // Always unmount: ask the daemon, then make sure with fusermount / umount -l.
    send({ cmd: 'unmount' })
    await Promise.race([exited, new Promise(resolve => setTimeout(resolve, 5000))])
    if (daemon.exitCode === null) daemon.kill('SIGKILL')
    const mounted = m => fs.readFileSync('/proc/mounts', 'utf8').split('\n').some(l => l.split(' ')[1] === m)
    for (const m of mounts) {
      for (const cmd of [['fusermount', '-u', m], ['fusermount3', '-u', m], ['fusermount', '-uz', m], ['umount', '-l', m]]) {
        if (!mounted(m)) break
        spawnSync(cmd[0], cmd.slice(1), { stdio: 'ignore' })
      }
      check(!mounted(m), `unmounted: ${path.basename(m)} is gone from /proc/mounts`)
    }
    if (!mounts.some(mounted)) fs.rmSync(tmp, { recursive: true, force: true })
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
  nodes.set('/old-big', mk(0o40755, {})) // BIG entries through the stock readdir
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
      if (p === '/old-big') { // the whole directory in one reply (the stock way)
        const names = ['.', '..']
        const stats = [stat(nodes.get(p)), stat(nodes.get('/'))]
        for (let i = 0; i < BIG; i++) { names.push(bigName(i)); stats.push({ mode: 0o100644, ino: Fuse.NEXUS_PATCH_VERSION ? 2n ** 41n + BigInt(i) : 2 ** 20 + i, nlink: 1 }) }
        return cb(0, names, stats)
      }
      const names = children(p)
      cb(0, names, names.map(name => stat(nodes.get(path.posix.join(p, name)))))
    },
    create (p, mode, cb) { // three parameters: the stock create(path, mode, cb)
      const n = mk(mode, ctx())
      nodes.set(p, n)
      ev('create', p, { ino: n.ino, mode, argTypes: ['path', 'mode'], cbType: typeof cb })
      cb(0, 42)
    },
    open (p, flags, cb) { // /keep-*: per-open keep_cache (this mount has no auto_cache)
      ev('open', p, { flags })
      cb(nodes.has(p) ? 0 : Fuse.ENOENT, 42, p.startsWith('/keep-') ? { keepCache: true } : undefined)
    },
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
    chmod (p, mode, cb) {
      const n = nodes.get(p)
      n.mode = (n.mode & ~0o7777) | (mode & 0o7777)
      cb(0, p === '/hinted' ? stat(n) : undefined) // version 6: the stat serves libfuse's getattr after the setattr
    },
    chown (p, uid, gid, cb) { cb(0) },
    mkdir (p, mode, cb) { ev('mkdir', p); nodes.set(p, mk(0o40000 | mode, ctx())); cb(0) },
    readlink (p, cb) { ev('readlink', p) /* never answers: shows the op timeout */ },
    unlink (p, cb) { nodes.delete(p); cb(0) },
    rmdir (p, cb) { nodes.delete(p); cb(0) }
  }

  // Second mount (opts.mnt2): readdirPaged, create(path, mode, flags, cb), 64-bit statfs.
  // Directories: /big (BIG short names), /long (LONG 200-byte names), /bad-page
  // (answers a malformed page), /denied (answers EACCES), /empty (answers cb(0)),
  // plus created files.
  const t0 = nowNs()
  const inoOf = ino => Fuse.NEXUS_PATCH_VERSION ? ino : Number(ino) // stock fuse-native takes no BigInt
  const fileStat = (ino, mode = 0o100644) => ({ mode, ino: inoOf(ino), nlink: 1, uid: 0, gid: 0, size: 0, blksize: 4096, atimeNs: t0, mtimeNs: t0, ctimeNs: t0 })
  const bigDirs = {
    '/big': { ino: 3n, n: BIG, name: bigName, ino0: 2n ** 42n }, // inos ascend in listing order (find sorts big directories by d_ino)
    '/long': { ino: 4n, n: LONG, name: longName, ino0: 2n ** 43n }
  }
  const created = new Map() // path -> stat
  const rootStat = fileStat(1n, 0o40755)
  const dirStat = ino => fileStat(ino, 0o40755)
  const entriesOf = p => { // [name, stat] by index, or null
    const d = bigDirs[p]
    if (d) return { n: d.n + 2, at: i => i === 0 ? ['.', dirStat(d.ino)] : i === 1 ? ['..', rootStat] : [d.name(i - 2), fileStat(d.ino0 + BigInt(i - 2))] }
    if (p === '/empty') return { n: 2, at: i => [['.', dirStat(7n)], ['..', rootStat]][i] } // for the stock readdir
    if (p === '/') {
      const list = [['.', rootStat], ['..', rootStat], ['big', dirStat(3n)], ['long', dirStat(4n)], ['bad-page', dirStat(5n)], ['denied', dirStat(6n)], ['empty', dirStat(7n)],
        ...[...created].map(([k, st]) => [k.slice(1), st])]
      return { n: list.length, at: i => list[i] }
    }
    return null
  }
  const lookupB = p => {
    if (p === '/') return rootStat
    if (created.has(p)) return created.get(p)
    const parent = path.posix.dirname(p)
    const d = bigDirs[parent]
    if (d) {
      const base = path.posix.basename(p)
      const i = parseInt(base.slice(1), 10)
      return Number.isInteger(i) && i < d.n && d.name(i) === base ? fileStat(d.ino0 + BigInt(i)) : null
    }
    const top = entriesOf('/')
    for (let i = 2; i < top.n; i++) if ('/' + top.at(i)[0] === p) return top.at(i)[1]
    return null
  }
  let nextDirFh = 100
  let nextCreatedIno = 2n ** 44n
  const opsB = {
    getattr (p, cb) {
      const st = lookupB(p)
      cb(st ? 0 : Fuse.ENOENT, st || undefined)
    },
    opendir (p, flags, cb) {
      const fh = ++nextDirFh
      ev('opendir', p, { fh })
      cb(0, fh)
    },
    releasedir (p, fh, cb) { cb(0) },
    readdirPaged (p, offset, fh, cb) {
      if (p === '/bad-page') { ev('readdirPaged', p, { offset, fh, count: 1 }); return cb(0, ['x'], null, [0]) } // offset 0 is invalid
      if (p === '/denied') return cb(Fuse.EACCES)
      if (p === '/empty') return cb(0) // an empty page: end of directory
      const list = entriesOf(p)
      if (!list) return cb(Fuse.ENOTDIR)
      const names = []; const stats = []; const nextOffsets = []
      for (let i = offset; i < list.n && names.length < PAGE; i++) { // offset = index of the next entry
        const [name, st] = list.at(i)
        names.push(name); stats.push(st); nextOffsets.push(i + 1)
      }
      ev('readdirPaged', p, { offset, fh, count: names.length })
      cb(0, names, stats, nextOffsets)
    },
    readdir (p, cb) { // only for fuse-native without readdirPaged (e.g. --module with a stock copy)
      ev('readdir-stock', p)
      const list = entriesOf(p)
      if (!list) return cb(Fuse.ENOTDIR)
      const names = []; const stats = []
      for (let i = 0; i < list.n; i++) { const [name, st] = list.at(i); names.push(name); stats.push(st) }
      cb(0, names, stats)
    },
    create (p, mode, flags, cb) { // four parameters: gets the open flags
      if (typeof flags === 'function') { cb = flags; flags = 'not passed' } // a fuse-native without the flags
      ev('create', p, { mode, flags })
      created.set(p, fileStat(nextCreatedIno++, mode))
      cb(0, 7)
    },
    open (p, flags, cb) { cb(created.has(p) ? 0 : Fuse.EACCES, 7) },
    write (p, fd, buf, len, pos, cb) { ev('write', p, { len, offset: pos }); cb(len) },
    release (p, fd, cb) { cb(0) },
    flush (p, fd, cb) { cb(0) },
    truncate (p, size, cb) { cb(0) },
    ftruncate (p, fd, size, cb) { cb(0) },
    statfs (p, cb) { // stock fuse-native takes no BigInt: give it numbers (it wraps them at 2^32)
      ev('statfs', p)
      cb(0, Fuse.NEXUS_PATCH_VERSION ? STATFS : Object.fromEntries(Object.entries(STATFS).map(([k, v]) => [k, Number(v)])))
    }
  }
  // Third mount (opts.mnt3): per-open flags. Every file is generated by the
  // handler; getattr reports the sizes below. /ctl is a command/result file:
  // what is written on a descriptor is the command, and reads on the same
  // descriptor return ctlResult(command) from a per-descriptor cursor (the
  // offset is recorded, not used).
  const DIRECT = {
    '/ctl': { size: 0, mode: 0o100666, open: { directIo: true }, ctl: true },
    '/ctl-refuse-trunc': { size: 0, mode: 0o100666, open: { directIo: true }, ctl: true, refuseTruncate: true },
    '/gen': { size: 0, mode: 0o100444, open: { directIo: true } },
    '/gen-cached': { size: 0, mode: 0o100444 }, // the same content without directIo
    '/gen-sized': { size: 1000, mode: 0o100444, open: { directIo: true } }, // getattr says 1000 bytes, there are GEN_LEN
    '/seq': { size: 0, mode: 0o100444, open: { directIo: true, nonSeekable: true } },
    '/trickle': { size: 0, mode: 0o100444, open: { directIo: true }, len: TRICKLE_LEN, step: TRICKLE_STEP },
    '/trickle-cached': { size: TRICKLE_LEN, mode: 0o100444, len: TRICKLE_LEN, step: TRICKLE_STEP },
    '/plain': { size: GEN_LEN, mode: 0o100644, fixed: true }, // an ordinary file: true size, no options
    '/typo': { size: 0, mode: 0o100444, open: { directIO: true } } // the mount option's spelling: ignored with a warning
  }
  const tDate = new Date(Number(t0 / 1000000n)) // stock fuse-native reads only atime/mtime/ctime (else "now", which defeats auto_cache)
  const dStat = (mode, size, ino) => ({
    mode, size, ino, nlink: mode & 0o40000 ? 2 : 1, uid: 0, gid: 0, blksize: 4096, blocks: Math.ceil(size / 512),
    atimeNs: t0, mtimeNs: t0, ctimeNs: t0, atime: tDate, mtime: tDate, ctime: tDate
  })
  const dCreated = new Map() // path -> { direct }
  const dOpen = new Map() // fh -> { path, content, ctl: { cmd, out, at } }
  let nextFh = 1000
  const evD = (op, p, extra) => ev(op, p, { m3: true, ...extra })
  const dFile = p => DIRECT[p] || (dCreated.has(p) ? { size: 0, mode: 0o100644, created: true } : null)
  const dOpenFile = (op, p, flags, options) => {
    const fh = ++nextFh
    const f = dFile(p)
    const content = f.ctl ? null : f.created ? Buffer.from('served by the handler\n') : genContent(f.fixed ? 0 : fh, f.len || GEN_LEN)
    dOpen.set(fh, { path: p, content, ctl: f.ctl ? { cmd: '', out: null, at: 0 } : null })
    evD(op, p, { flags, fh, options })
    return fh
  }
  const opsD = {
    getattr (p, cb) {
      if (p === '/' || p === '/dir') return cb(0, dStat(0o40755, 0, p === '/' ? 1 : 2))
      if (p === '/dir/a') return cb(0, dStat(0o100644, 0, 3))
      const f = dFile(p)
      if (!f) return cb(Fuse.ENOENT)
      cb(0, dStat(f.mode, f.size, 10 + Object.keys(DIRECT).indexOf(p) + (f.created ? 100 : 0)))
    },
    readdir (p, cb) {
      if (p === '/dir') return cb(0, ['.', '..', 'a'])
      cb(0, ['.', '..', 'dir', ...Object.keys(DIRECT).map(k => k.slice(1)), ...[...dCreated.keys()].map(k => k.slice(1))])
    },
    opendir (p, flags, cb) {
      const fh = ++nextFh
      evD('opendir', p, { fh })
      cb(0, fh, p === '/dir' ? { nonSeekable: true, keepCache: true } : undefined)
    },
    releasedir (p, fh, cb) { cb(0) },
    open (p, flags, cb) {
      const f = dFile(p)
      if (!f) return cb(Fuse.ENOENT)
      cb(0, dOpenFile('open', p, flags, f.open), f.open)
    },
    create (p, mode, flags, cb) {
      if (typeof flags === 'function') { cb = flags; flags = 0 } // a fuse-native without create flags
      dCreated.set(p, {})
      const options = p === '/made-direct' ? { directIo: true } : undefined
      cb(0, dOpenFile('create', p, flags, options), options)
    },
    release (p, fh, cb) { dOpen.delete(fh); cb(0) },
    flush (p, fh, cb) { cb(0) },
    read (p, fh, buf, len, pos, cb) {
      const o = dOpen.get(fh)
      const f = dFile(p)
      let n = 0
      if (o.ctl) { // serve the result of the command written on this descriptor, from its own cursor
        if (!o.ctl.out) { o.ctl.out = ctlResult(o.ctl.cmd); o.ctl.at = 0 }
        n = o.ctl.out.copy(buf, 0, o.ctl.at, Math.min(o.ctl.out.length, o.ctl.at + len))
        o.ctl.at += n
      } else {
        const end = Math.min(o.content.length, pos + Math.min(len, f.step || len))
        n = pos < end ? o.content.copy(buf, 0, pos, end) : 0
      }
      evD('read', p, { fh, len, offset: pos, returned: n })
      cb(n)
    },
    write (p, fh, buf, len, pos, cb) {
      const o = dOpen.get(fh)
      const data = buf.toString('utf8', 0, len)
      if (o.ctl) { o.ctl.cmd += data; o.ctl.out = null }
      evD('write', p, { fh, len, offset: pos, data, answered: len })
      cb(len) // a write of N bytes answers N
    },
    truncate (p, size, cb) {
      evD('truncate', p, { size })
      cb(DIRECT[p] && DIRECT[p].refuseTruncate ? Fuse.EPERM : 0)
    },
    ftruncate (p, fh, size, cb) {
      evD('ftruncate', p, { fh, size })
      cb(DIRECT[p] && DIRECT[p].refuseTruncate ? Fuse.EPERM : 0)
    }
  }
  // Fourth mount (opts.mnt4): hardRemove + nullPathOk, otherwise mounted like
  // the Nexus daemon. A passthrough of opts.backing4 that serves open files by
  // their handle: fh is a descriptor of the backing file, so a file unlinked
  // (or renamed over) while open keeps working through it, whatever its path
  // (null once its name is gone). xattrs live in memory. The /boom-* names
  // are answered by handlers that throw, reject or answer garbage.
  const B4 = p => path.join(opts.backing4, p)
  const evH = (op, p, extra) => ev(op, p, { m4: true, ...extra })
  const attempt = (cb, f) => { try { f() } catch (e) { cb(typeof e.errno === 'number' && e.errno < 0 ? e.errno : Fuse.EIO) } }
  const hStat = s => ({ // from fs.*statSync(..., { bigint: true })
    mode: Number(s.mode), uid: Number(s.uid), gid: Number(s.gid), nlink: Number(s.nlink), blksize: Number(s.blksize),
    size: s.size, ino: s.ino, blocks: s.blocks, atimeNs: s.atimeNs, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs
  })
  const xattrs = new Map() // path -> Map(name -> Buffer)
  const boomStat = { mode: 0o100644, size: 1, nlink: 1, uid: 0, gid: 0 }
  const opsH = {
    getattr (p, cb) {
      evH('getattr', p)
      switch (p) {
        case '/boom-sync': throw new Error('boom-sync: getattr threw')
        case '/boom-async': return setImmediate(() => cb(0, { ...boomStat, mtime: 'not a date' })) // packing the stat throws
        case '/boom-reject': return (async () => { await null; throw new Error('boom-reject: getattr rejected') })()
        case '/boom-errno': return cb('oops')
        case '/boom-null': return cb(null, boomStat)
        case '/boom-twice': cb(0, boomStat); return cb(0, boomStat)
        case '/boom-link': return cb(0, { ...boomStat, mode: 0o120777 })
      }
      attempt(cb, () => cb(0, hStat(fs.lstatSync(B4(p), { bigint: true }))))
    },
    fgetattr (p, fh, cb) { evH('fgetattr', p, { fh }); attempt(cb, () => cb(0, hStat(fs.fstatSync(fh, { bigint: true })))) },
    readlink (p, cb) { evH('readlink', p); cb(0, 42) }, // only /boom-link is a symlink: a number, which the native signal cannot take
    readdir (p, cb) { evH('readdir', p); attempt(cb, () => cb(0, ['.', '..', ...fs.readdirSync(B4(p))])) },
    open (p, flags, cb) { evH('open', p, { flags }); attempt(cb, () => cb(0, fs.openSync(B4(p), flags & 3))) },
    create (p, mode, flags, cb) {
      if (typeof flags === 'function') { cb = flags; flags = O.O_RDWR } // a fuse-native without create flags
      evH('create', p, { flags })
      attempt(cb, () => cb(0, fs.openSync(B4(p), (flags & (3 | O.O_EXCL | O.O_TRUNC)) | O.O_CREAT, mode & 0o7777)))
    },
    read (p, fh, buf, len, pos, cb) { evH('read', p, { fh, len, offset: pos }); attempt(cb, () => cb(fs.readSync(fh, buf, 0, len, pos))) },
    write (p, fh, buf, len, pos, cb) { evH('write', p, { fh, len, offset: pos }); attempt(cb, () => cb(fs.writeSync(fh, buf, 0, len, pos))) },
    truncate (p, size, cb) { evH('truncate', p, { size }); attempt(cb, () => { fs.truncateSync(B4(p), size); cb(0) }) },
    ftruncate (p, fh, size, cb) { evH('ftruncate', p, { fh, size }); attempt(cb, () => { fs.ftruncateSync(fh, size); cb(0) }) },
    fsync (p, datasync, fh, cb) { evH('fsync', p, { fh, datasync }); attempt(cb, () => { (datasync ? fs.fdatasyncSync : fs.fsyncSync)(fh); cb(0) }) },
    flush (p, fh, cb) { evH('flush', p, { fh }); cb(0) },
    release (p, fh, cb) { evH('release', p, { fh }); attempt(cb, () => { fs.closeSync(fh); cb(0) }) },
    unlink (p, cb) { evH('unlink', p); attempt(cb, () => { fs.unlinkSync(B4(p)); xattrs.delete(p); cb(0) }) },
    rename (src, dest, cb) { evH('rename', src, { dest }); attempt(cb, () => { fs.renameSync(B4(src), B4(dest)); cb(0) }) },
    mkdir (p, mode, cb) { evH('mkdir', p); attempt(cb, () => { fs.mkdirSync(B4(p), mode & 0o7777); cb(0) }) },
    rmdir (p, cb) { evH('rmdir', p); attempt(cb, () => { fs.rmdirSync(B4(p)); cb(0) }) },
    utimens (p, atime, mtime, cb) { evH('utimens', p); cb() }, // no errno at all: success (stock threw in the native signal)
    setxattr (p, name, value, position, flags, cb) {
      evH('setxattr', p, { name })
      if (!xattrs.has(p)) xattrs.set(p, new Map())
      xattrs.get(p).set(name, Buffer.from(value)) // copy: value points into libfuse memory
      cb(0)
    },
    getxattr (p, name, position, cb) { evH('getxattr', p, { name }); cb(0, (xattrs.get(p) && xattrs.get(p).get(name)) || null) },
    listxattr (p, cb) { evH('listxattr', p); cb(0, [...(xattrs.get(p) || new Map()).keys()]) },
    removexattr (p, name, cb) { evH('removexattr', p, { name }); cb(xattrs.get(p) && xattrs.get(p).delete(name) ? 0 : Fuse.ENODATA) }
  }
  process.on('warning', w => log.push({ op: 'warning', message: w.message }))

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
  const fuseB = new Fuse(opts.mnt2, opsB, {
    fsname: 'nexus-paged',
    ...(Fuse.NEXUS_PATCH_VERSION >= 13 ? { bigWrites: true, maxWrite: 1048576 } : {}), // the Nexus daemon's
    useIno: true,
    attrTimeout: 0,
    entryTimeout: 0,
    negativeTimeout: 0
  })
  const fuseD = new Fuse(opts.mnt3, opsD, { // the options of the Nexus daemon (src/fuse/daemon.ts) that touch caching
    fsname: 'nexus-direct',
    useIno: true,
    attrTimeout: 0,
    entryTimeout: 0,
    negativeTimeout: 0,
    autoCache: true
  })
  const fuseH = new Fuse(opts.mnt4, opsH, {
    fsname: 'nexus-hard',
    useIno: true,
    attrTimeout: 0,
    entryTimeout: 0,
    negativeTimeout: 0,
    autoCache: true,
    hardRemove: true, // unlink an open file for real (no .fuse_hidden rename)
    nullPathOk: true // ops on it still reach us, with path null
  })
  const unmountAll = () => fuse.unmount(() => fuseB.unmount(() => fuseD.unmount(() => fuseH.unmount(() => process.exit(0)))))
  fuse.mount(err => {
    if (err) return process.send({ error: err.message })
    fuseB.mount(errB => {
      if (errB) return process.send({ error: 'second mount: ' + errB.message })
      fuseD.mount(errD => {
        if (errD) return process.send({ error: 'third mount: ' + errD.message })
        fuseH.mount(errH => {
          if (errH) return process.send({ error: 'fourth mount: ' + errH.message })
          process.send({
            ready: true,
            patchVersion: Fuse.NEXUS_PATCH_VERSION,
            binaryPath: require('node-gyp-build').path(moduleDir),
            contextOutside: hasContext ? Fuse.context() : 'missing'
          })
        })
      })
    })
  })
  process.on('message', m => {
    if (m.cmd === 'events') { process.send({ events: log }); log = [] }
    if (m.cmd === 'invalidate') fuse.invalidate({ epoch: true, nodeids: [1] }, (e, r) => process.send({ invalidated: e ? { error: e.message } : r }))
    if (m.cmd === 'unmount') unmountAll()
  })
  process.on('disconnect', unmountAll)
}

#!/usr/bin/env node
// npm postinstall for Nexus (package.json runs `node scripts/postinstall.mjs`).
//
// 1. Applies patches/ with patch-package (fuse-native+2.2.6.patch: caller
//    identity, big_writes, nanosecond times, 64-bit st_ino, paged readdir,
//    create flags, 64-bit statfs, per-open flags (direct_io, keep_cache,
//    nonseekable), hard_remove and flag_nullpath_ok, xattr ERANGE, handler
//    exceptions answered EIO; see native-notes/fuse-native.md). When
//    node_modules/fuse-native carries an older version of the patch (its
//    nexus_patch_version differs), the files the patch touches are first
//    restored from the pristine package (npm pack, normally from npm's cache).
// 2. Deletes fuse-native's stock prebuilds, so node-gyp-build can never fall
//    back to an unpatched binary, and rebuilds fuse-native from source with
//    node-gyp into build/Release/fuse.node. Skipped when build/nexus-build.json
//    says the same sources, patch file and patch version were already built
//    for this Node ABI, into the fuse.node that is there now.
// 3. Loads better-sqlite3 and the patched fuse-native in a child process and
//    checks the patch marker (binding.nexus_patch_version).
//
// Idempotent; re-running it when everything is in place takes well under a
// second and a half (patch-package's own check dominates). On failure it
// prints one line starting with "NEXUS POSTINSTALL FAILED" that names the
// Debian package to install, and exits 1.

import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const FUSE_DIR = path.join(REPO, 'node_modules', 'fuse-native')
const BINARY = path.join(FUSE_DIR, 'build', 'Release', 'fuse.node')
const STAMP = path.join(FUSE_DIR, 'build', 'nexus-build.json')
const PATCH_FILE = path.join(REPO, 'patches', 'fuse-native+2.2.6.patch')
// Must equal nexus_patch_version in the patched fuse-native.c and
// NEXUS_PATCH_VERSION in the patched index.js (bump all three together).
const EXPECTED_PATCH_VERSION = 14

const log = msg => console.log(`nexus postinstall: ${msg}`)

function fail (what, fix, detail) {
  if (detail) console.error(String(detail).trimEnd().split('\n').slice(-25).join('\n'))
  console.error(`\nNEXUS POSTINSTALL FAILED: ${what} -> ${fix}\n`)
  process.exit(1)
}

function run (cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: REPO, encoding: 'utf8', ...opts })
  return { ok: r.status === 0, out: `${r.stdout || ''}${r.stderr || ''}${r.error ? r.error.message : ''}` }
}

const has = cmd => run('sh', ['-c', `command -v ${cmd}`]).ok

// ---------------------------------------------------------------- 1. patches

if (!fs.existsSync(path.join(FUSE_DIR, 'package.json'))) fail('node_modules/fuse-native is missing', 'run npm install')
const patchPackage = path.join(REPO, 'node_modules', 'patch-package', 'index.js')
if (!fs.existsSync(patchPackage)) fail('patch-package is not installed (it is a devDependency)', 'run npm install without --omit=dev')
{
  let r = run(process.execPath, [patchPackage, '--error-on-fail'])
  if (!r.ok) {
    // A node_modules kept from before a patch change still carries the old
    // patch, which the new one does not apply on top of: put back the pristine
    // files, then apply again.
    const inTree = patchVersionInTree()
    if (inTree !== EXPECTED_PATCH_VERSION) {
      log(`node_modules/fuse-native carries ${inTree === null ? 'an unknown edit' : 'version ' + inTree + ' of the patch'}; ` +
        `restoring the files the patch touches from the pristine package, then applying version ${EXPECTED_PATCH_VERSION}`)
      const problem = restorePristine()
      if (problem) log(`could not restore the pristine files: ${problem}`)
      else r = run(process.execPath, [patchPackage, '--error-on-fail'])
    }
  }
  if (!r.ok) {
    fail('patch-package could not apply patches/ (node_modules/fuse-native has edits the patch does not expect)',
      'rm -rf node_modules/fuse-native && npm install', r.out)
  }
  const applied = r.out.split('\n').filter(l => /@\d/.test(l)).map(l => l.trim())
  log(`patch-package: ${applied.join(', ') || 'no patches'} (applied now or already)`)
}

// ---------------------------------------------------------------- 2. build fuse-native from source

// Never let node-gyp-build fall back to the stock, unpatched prebuilt binary.
fs.rmSync(path.join(FUSE_DIR, 'prebuilds'), { recursive: true, force: true })

const sources = ['fuse-native.c', 'binding.gyp', 'semaphore.h']
  .map(f => fs.readFileSync(path.join(FUSE_DIR, f)))
const sha256 = data => createHash('sha256').update(data).digest('hex')
// The stamp also records the binary's own hash, so a fuse.node replaced behind
// our back (e.g. an older build copied in) is rebuilt instead of failing the load check.
const stampFor = binary => JSON.stringify({
  sources: sha256(Buffer.concat(sources)),
  patch: sha256(fs.readFileSync(PATCH_FILE)), // any change to the patch rebuilds
  patchVersion: EXPECTED_PATCH_VERSION,
  node: process.versions.modules,
  napi: process.versions.napi,
  arch: process.arch,
  binary: sha256(binary)
})
const upToDate = fs.existsSync(BINARY) && fs.existsSync(STAMP) && fs.readFileSync(STAMP, 'utf8') === stampFor(fs.readFileSync(BINARY))

if (upToDate) {
  log('fuse-native already built from the patched source (build/Release/fuse.node)')
} else {
  if (process.platform !== 'linux') fail(`Nexus mounts need Linux (this is ${process.platform})`, 'use a Linux machine')
  const missing = ['cc', 'c++', 'make', 'python3'].filter(c => !has(c))
  if (missing.length) fail(`cannot build fuse-native: ${missing.join(', ')} not found`, 'apt-get install -y build-essential python3')

  const nodeGyp = findNodeGyp()
  if (!nodeGyp) fail('cannot find node-gyp (npm ships it)', 'reinstall npm, or set npm_config_node_gyp to node-gyp.js')
  const args = [nodeGyp, 'rebuild']
  const nodedir = findNodeDir()
  if (nodedir) args.push(`--nodedir=${nodedir}`)
  log(`building fuse-native from source: node ${nodeGyp} rebuild${nodedir ? ' --nodedir=' + nodedir : ''}`)
  const t0 = Date.now()
  const r = run(process.execPath, args, { cwd: FUSE_DIR })
  if (!r.ok || !fs.existsSync(BINARY)) {
    if (/fuse\.h: No such file|fuse_opt\.h: No such file|cannot find -lfuse|libfuse\.so.*(file format not recognized|wrong format|incompatible)/.test(r.out)) {
      fail('building fuse-native: libfuse headers or link library unusable (fuse-shared-library ships x86-64 ones only)', 'apt-get install -y libfuse-dev', r.out)
    }
    if (/find Python|python.*not found/i.test(r.out)) fail('building fuse-native: node-gyp found no Python', 'apt-get install -y python3', r.out)
    if (/nodedir|node_api\.h: No such file|download|ENOTFOUND|EAI_AGAIN/.test(r.out)) {
      fail('building fuse-native: no Node.js headers (node-gyp tried to download them)', 'install the headers that match this node (Debian: apt-get install -y libnode-dev, or Node.js\'s own include/node) and set npm_config_nodedir', r.out)
    }
    fail('building fuse-native from source failed', 'apt-get install -y build-essential python3 libfuse-dev libfuse2', r.out)
  }
  log(`built build/Release/fuse.node in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
}

// ---------------------------------------------------------------- 3. load both native modules

const check = run(process.execPath, ['-e', `
  const { createRequire } = require('module')
  const req = createRequire(${JSON.stringify(path.join(REPO, 'package.json'))})
  const where = req('node-gyp-build').path(${JSON.stringify(FUSE_DIR)})
  const binding = req(where)
  const Fuse = req('fuse-native')
  const db = new (req('better-sqlite3'))(':memory:')
  const one = db.prepare('select 1 as one').get().one
  db.close()
  console.log(JSON.stringify({ where, marker: binding.nexus_patch_version, jsMarker: Fuse.NEXUS_PATCH_VERSION, context: typeof Fuse.context, one }))
`])
if (!check.ok) {
  if (/libfuse\.so\.2/.test(check.out)) fail('fuse-native cannot load libfuse.so.2', 'apt-get install -y libfuse2 fuse3', check.out)
  if (/better-sqlite3|better_sqlite3/.test(check.out)) fail('better-sqlite3 does not load', 'npm rebuild better-sqlite3 (needs apt-get install -y build-essential python3)', check.out)
  fail('loading the native modules failed', 'rm -rf node_modules/fuse-native && npm install', check.out)
}
const got = JSON.parse(check.out.trim().split('\n').pop())
if (got.where !== BINARY || got.marker !== EXPECTED_PATCH_VERSION || got.jsMarker !== EXPECTED_PATCH_VERSION || got.context !== 'function' || got.one !== 1) {
  fail(`fuse-native loads ${got.where} with nexus_patch_version ${got.marker} (index.js ${got.jsMarker}); expected ${BINARY} with ${EXPECTED_PATCH_VERSION}`,
    'rm -rf node_modules/fuse-native && npm install')
}
fs.writeFileSync(STAMP, stampFor(fs.readFileSync(BINARY)))
if (!has('fusermount') && !has('fusermount3')) {
  console.error('nexus postinstall: WARNING: no fusermount: unmounting will fail -> apt-get install -y fuse3')
}
log(`ok: better-sqlite3 and patched fuse-native (nexus_patch_version ${got.marker}, ${path.relative(REPO, got.where)}) load`)

// ---------------------------------------------------------------- helpers

function patchVersionInTree () {
  const m = /nexus_patch_version = (\d+);/.exec(fs.readFileSync(path.join(FUSE_DIR, 'fuse-native.c'), 'utf8'))
  return m ? Number(m[1]) : null
}

// Copies the files that the patch touches from the pristine package
// (`npm pack fuse-native@<installed version>`) over node_modules/fuse-native.
// Returns null, or what went wrong.
function restorePristine () {
  const version = JSON.parse(fs.readFileSync(path.join(FUSE_DIR, 'package.json'), 'utf8')).version
  const files = [...fs.readFileSync(PATCH_FILE, 'utf8').matchAll(/^diff --git a\/node_modules\/fuse-native\/(\S+) /gm)].map(m => m[1])
  if (!files.length) return `no node_modules/fuse-native files named in ${path.relative(REPO, PATCH_FILE)}`
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nexus-fuse-native-'))
  try {
    const pack = spawnSync('npm', ['pack', `fuse-native@${version}`, '--json', '--pack-destination', dir], { cwd: dir, encoding: 'utf8' })
    let tgz
    try { tgz = JSON.parse(pack.stdout)[0].filename } catch { return `npm pack fuse-native@${version} failed: ${(pack.stderr || '').trim().split('\n').pop()}` }
    const untar = run('tar', ['-xzf', path.join(dir, tgz), '-C', dir, ...files.map(f => 'package/' + f)])
    if (!untar.ok) return `tar: ${untar.out.trim()}`
    for (const f of files) fs.copyFileSync(path.join(dir, 'package', f), path.join(FUSE_DIR, f))
    return null
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

function findNodeGyp () {
  const candidates = [
    process.env.npm_config_node_gyp, // set by npm for lifecycle scripts
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
  ]
  const npmRoot = run('npm', ['root', '-g'])
  if (npmRoot.ok) candidates.push(path.join(npmRoot.out.trim().split('\n')[0], 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'))
  return candidates.find(c => c && fs.existsSync(c))
}

// node-gyp downloads Node's headers unless told where they are; this machine
// kind has no network for that, and Node installs its headers next to itself.
function findNodeDir () {
  const candidates = [process.env.npm_config_nodedir, path.resolve(process.execPath, '..', '..')]
  return candidates.find(d => d && fs.existsSync(path.join(d, 'include', 'node', 'node_api.h')))
}

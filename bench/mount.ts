/**
 * bench/mount: real programs against a Nexus mount and a native directory, in
 * the same run, with the ratio mount/native. Not a test: prints figures.
 *   npm run bench:mount
 *   NEXUS_BENCH_MB=256 NEXUS_BENCH_FILES=2000 npm run bench:mount    (quick)
 *   NEXUS_BENCH_BIG_GB=4 ... also measures daemon memory while writing 4 GiB
 * Needs root for drop_caches (cold reads); otherwise cold = warm and says so.
 */
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { deviceOfMount } from '../src/fuse/mount-table.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '../..');
const NEXUS = join(REPO, 'bin/nexus');
const MB = Number(process.env.NEXUS_BENCH_MB ?? 1024);
const FILES = Number(process.env.NEXUS_BENCH_FILES ?? 10_000);
const TREE_FILES = Number(process.env.NEXUS_BENCH_TREE ?? 5_000);
const BIG_GB = Number(process.env.NEXUS_BENCH_BIG_GB ?? 4);
const DIR_ENTRIES = Number(process.env.NEXUS_BENCH_DIR_ENTRIES ?? 100_000);
const RANDREAD_S = Number(process.env.NEXUS_BENCH_RANDREAD_S ?? 20);

const sh = (cmd: string, cwd = '/') => execSync(cmd, { cwd, stdio: ['ignore', 'pipe', 'pipe'], shell: '/bin/bash', maxBuffer: 64 << 20 }).toString();
const has = (bin: string) => {
  try {
    sh(`command -v ${bin}`);
    return true;
  } catch {
    return false;
  }
};

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function dropCaches(): boolean {
  try {
    sh('sync; echo 3 > /proc/sys/vm/drop_caches');
    return true;
  } catch {
    return false;
  }
}

const PY_SMALL = `
import os, sys, time
root, n = sys.argv[1], int(sys.argv[2])
data = os.urandom(4096)
os.makedirs(root, exist_ok=True)
t = time.perf_counter()
for i in range(n):
    fd = os.open(f"{root}/f{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data); os.close(fd)
c = time.perf_counter() - t; t = time.perf_counter()
for i in range(n): os.stat(f"{root}/f{i}")
s = time.perf_counter() - t; t = time.perf_counter()
for i in range(n): os.unlink(f"{root}/f{i}")
d = time.perf_counter() - t
print(n / c, n / s, n / d)
`;

const PY_RANDREAD = `
import os, sys, time, random
path, secs = sys.argv[1], float(sys.argv[2])
fd = os.open(path, os.O_RDONLY); size = os.fstat(fd).st_size
blocks = size // 4096; n = 0; end = time.perf_counter() + secs; rnd = random.Random(1)
while time.perf_counter() < end:
    os.pread(fd, 4096, rnd.randrange(blocks) * 4096); n += 1
print(n / secs)
`;

interface Target {
  name: string;
  dir: string;
  stop?: () => void;
  pid?: number;
}

function mountNexus(base: string): Target {
  const mnt = join(base, 'nexus-mnt');
  const data = join(base, 'nexus-data');
  mkdirSync(mnt);
  const out = execFileSync(process.execPath, [NEXUS, 'mount', mnt, '--data-dir', data], { encoding: 'utf8' });
  const pid = Number(/pid (\d+)/.exec(out)?.[1]);
  return { name: 'nexus', dir: mnt, pid, stop: () => void execFileSync(process.execPath, [NEXUS, 'unmount', mnt]) };
}

function mountBindfs(base: string, native: string): Target | undefined {
  if (!has('bindfs')) return undefined;
  const mnt = join(base, 'bindfs-mnt');
  mkdirSync(mnt);
  mkdirSync(native, { recursive: true });
  sh(`bindfs ${native} ${mnt}`);
  return { name: 'bindfs', dir: mnt, stop: () => void sh(`fusermount -u ${mnt}`) };
}

/** What decides the small-request figures on this machine besides Nexus (native-notes/fuse-options.md). */
function machineNotes(): string[] {
  const notes = [`kernel caching: ${process.env.NEXUS_FUSE_CACHE === '0' ? 'off (NEXUS_FUSE_CACHE=0)' : 'on where the kernel has FUSE_NOTIFY_INC_EPOCH (6.16+)'}`];
  try {
    const ns = Number(readFileSync('/sys/module/haltpoll/parameters/guest_halt_poll_ns', 'utf8'));
    if (ns === 0) {
      notes.push('guest_halt_poll_ns=0: an idle vCPU halts at once, so every FUSE request pays vCPU wakeups');
      notes.push('(the trivial fuse-native fs: 2-3x fewer stats/creates per second than with 200000)');
    } else notes.push(`guest_halt_poll_ns=${ns}`);
  } catch {
    // not a KVM guest with the haltpoll driver
  }
  return notes;
}

/** read_ahead_kb of a device ("major:minor"), or "?" where it cannot be read. */
function readaheadKb(dev: string | undefined): string {
  try {
    return dev ? readFileSync(`/sys/class/bdi/${dev}/read_ahead_kb`, 'utf8').trim() : '?';
  } catch {
    return '?';
  }
}

/** "major:minor" of the device holding `path` (the kernel's new dev_t encoding). */
function deviceOfPath(path: string): string {
  const dev = statSync(path).dev;
  return `${(dev >> 8) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}`;
}

function peakRss(pid: number | undefined): number {
  if (!pid) return NaN;
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

type Row = Record<string, number>;

function workloads(t: Target, src: string, tarball: string, canDrop: boolean): Row {
  const r: Row = {};
  const d = t.dir;
  r['seq write MB/s'] = MB / time(() => sh(`dd if=${src} of=${d}/big bs=1M status=none && sync -f ${d}/big 2>/dev/null || true`));
  if (canDrop) dropCaches();
  r['cold seq read MB/s'] = MB / time(() => sh(`dd if=${d}/big of=/dev/null bs=1M status=none`));
  r['warm re-read MB/s'] = MB / time(() => sh(`dd if=${d}/big of=/dev/null bs=1M status=none`));
  r['4KiB rand read IOPS'] = Number(sh(`python3 -c '${PY_RANDREAD}' ${d}/big ${RANDREAD_S}`));
  sh(`rm -f ${d}/big`);
  const [c, s, del] = sh(`python3 -c '${PY_SMALL}' ${d}/small ${FILES}`).trim().split(' ').map(Number);
  r['create 4KiB files/s'] = c!;
  r['stat files/s'] = s!;
  r['delete files/s'] = del!;
  mkdirSync(`${d}/tree`);
  r['tar -x files/s'] = TREE_FILES / time(() => sh(`tar -xf ${tarball}`, `${d}/tree`));
  r['git add+commit files/s'] = TREE_FILES / time(() =>
    sh(`git init -q . && git add -A && git -c user.email=b@e -c user.name=bench commit -qm bench`, `${d}/tree`));
  sh(`rm -rf ${d}/tree ${d}/small`);
  return r;
}

function main(): void {
  const base = mkdtempSync(join(tmpdir(), 'nexus-benchmount-'));
  const shm = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/nexus-bench-') : mkdtempSync(join(base, 'src-'));
  const native = join(base, 'native');
  mkdirSync(native);
  let nexus: Target | undefined;
  let bindfs: Target | undefined;
  try {
    console.log(`bench/mount: ${MB} MiB sequential, ${FILES} small files, tree of ${TREE_FILES} files, ${RANDREAD_S}s random reads`);
    for (const line of machineNotes()) console.log(`  ${line}`);
    const src = join(shm, 'src.bin');
    sh(`head -c ${MB}M /dev/urandom > ${src}`);
    const treeSrc = join(shm, 'tree');
    sh(`mkdir -p ${treeSrc} && cd ${treeSrc} && for d in $(seq 0 49); do mkdir d$d; done`);
    sh(`python3 -c 'import os,sys
for i in range(${TREE_FILES}):
    with open(f"${treeSrc}/d{i%50}/f{i}.txt","wb") as f: f.write(os.urandom(64 + (i * 7919) % 8192))'`);
    const tarball = join(shm, 'tree.tar');
    sh(`tar -cf ${tarball} -C ${treeSrc} .`);
    const canDrop = dropCaches();
    if (!canDrop) console.log('(cannot drop the page cache here: "cold" reads are warm)');

    nexus = mountNexus(base);
    // Cold reads depend on how far each side reads ahead (native-notes/fuse-options.md).
    console.log(`  read-ahead: nexus mount ${readaheadKb(deviceOfMount(nexus.dir))} KiB, native ${readaheadKb(deviceOfPath(native))} KiB`);
    bindfs = mountBindfs(base, join(base, 'bindfs-backing'));
    const rows: Record<string, Row> = {};
    rows.native = workloads({ name: 'native', dir: native }, src, tarball, canDrop);
    rows.nexus = workloads(nexus, src, tarball, canDrop);
    if (bindfs) rows.bindfs = workloads(bindfs, src, tarball, canDrop);
    const targets: Row = {
      'seq write MB/s': 0.5, 'cold seq read MB/s': 0.5, 'warm re-read MB/s': 0.9, 'create 4KiB files/s': 0.25,
      'tar -x files/s': 0.25, 'git add+commit files/s': 0.4,
    };
    const cols = Object.keys(rows);
    console.log(['workload'.padEnd(24), ...cols.map((c) => c.padStart(10)), 'nexus/native'.padStart(13), bindfs ? 'bindfs/nat'.padStart(11) : '', '  target'].join(''));
    for (const k of Object.keys(rows.native!)) {
      const ratio = rows.nexus![k]! / rows.native![k]!;
      const t = targets[k];
      console.log([
        k.padEnd(24),
        ...cols.map((c) => rows[c]![k]!.toFixed(0).padStart(10)),
        (ratio.toFixed(2) + 'x').padStart(13),
        bindfs ? ((rows.bindfs![k]! / rows.native![k]!).toFixed(2) + 'x').padStart(11) : '',
        t === undefined ? '' : `  >= ${t}x ${ratio >= t ? 'ok' : 'MISSED'}`,
      ].join(''));
    }

    // Memory: the daemon's peak RSS while writing a big file and listing a huge directory.
    console.log(`daemon peak RSS after the workloads: ${peakRss(nexus.pid).toFixed(0)} MiB`);
    if (BIG_GB > 0) {
      sh(`for i in $(seq 1 $(( ${BIG_GB} * 1024 / ${MB} ))); do cat ${src}; done > ${nexus.dir}/huge`);
      console.log(`daemon peak RSS after writing ${BIG_GB} GiB: ${peakRss(nexus.pid).toFixed(0)} MiB (limit 300)`);
      sh(`rm -f ${nexus.dir}/huge`);
    }
    if (DIR_ENTRIES > 0) {
      sh(`python3 -c 'import os
os.makedirs("${nexus.dir}/wide")
for i in range(${DIR_ENTRIES}): os.close(os.open(f"${nexus.dir}/wide/e{i:06d}", os.O_CREAT | os.O_WRONLY, 0o644))'`);
      const n = Number(sh(`ls -f ${nexus.dir}/wide | wc -l`).trim());
      console.log(`listed ${n - 2} entries; daemon peak RSS after listing ${DIR_ENTRIES}: ${peakRss(nexus.pid).toFixed(0)} MiB (limit 300)`);
    }
  } finally {
    try {
      nexus?.stop?.();
    } catch (e) {
      console.error('unmount failed:', (e as Error).message);
    }
    try {
      bindfs?.stop?.();
    } catch {
      // best effort
    }
    rmSync(shm, { recursive: true, force: true });
    rmSync(base, { recursive: true, force: true });
  }
}

main();

/**
 * bench/server: the HTTP server under load on loopback. A real server runs
 * in a child process on 127.0.0.1 (fresh temporary data directory, an admin
 * key and a tenant key with editor on /bench); this process runs 16
 * concurrent keep-alive clients (plain node:http) against it. Not a test:
 * prints figures.
 *
 *   mixed phase   80% GET of pre-written 4 KiB files (content checked),
 *                 20% PUT of new 4 KiB content to per-client files
 *   read phase    4 KiB GETs only
 *   verify        every written file's content is the last content its
 *                 client wrote successfully (hash compare through GET), on
 *                 the live server and again after a clean restart
 *
 *   npm run bench:server                         (30 s mixed, 10 s reads)
 *   NEXUS_BENCH_SECONDS=5 npm run bench:server   (mixed phase length)
 *   NEXUS_BENCH_READ_SECONDS=5                   (read phase length)
 *   NEXUS_BENCH_CLIENTS=16                       (concurrent clients)
 *   NEXUS_BENCH_READ_FILES=512                   (distinct files the GETs read)
 *   NEXUS_BENCH_AS=admin                         (load with the admin key: no per-request access checks)
 *   NEXUS_BENCH_PROFILE=<dir>                    (server child runs with --cpu-prof into <dir>)
 *   NEXUS_LOG_LEVEL=info                         (server access log, as `nexus serve` has it, to <tmp>/server.log)
 *
 * Client and server share the machine's cores: the figures are for both
 * together, not for the server alone.
 */
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';

const SIZE = 4096;
const MIXED_S = Number(process.env.NEXUS_BENCH_SECONDS ?? 30);
const READ_S = Number(process.env.NEXUS_BENCH_READ_SECONDS ?? 10);
const WARMUP_S = 2;
const CLIENTS = Number(process.env.NEXUS_BENCH_CLIENTS ?? 16);
/** Distinct pre-written files the GETs pick from (more than the server's 64 cached blob descriptors). */
const READ_FILES = Number(process.env.NEXUS_BENCH_READ_FILES ?? 512);
/** Whose key the load runs with: the tenant (editor on /bench, checked per request) or the admin (no checks). */
const AS = process.env.NEXUS_BENCH_AS === 'admin' ? 'admin' : 'tenant';
const WRITE_FILES_PER_CLIENT = 32;
const WRITE_SHARE = 0.2;
/** Per client per phase: a bound on the loop besides the clock. */
const MAX_REQUESTS = 5_000_000;
const REQUEST_TIMEOUT_MS = 10_000;
const HOST = '127.0.0.1';
const PREFIX = '/api/v1';

const TARGET_READ_RPS = 3000;
const TARGET_P99_MS = 50;

// ================================================================== child: the server

interface ChildHello {
  port: number;
  adminKey: string;
  tenantKey: string;
}

async function child(dataDir: string, setup: boolean): Promise<void> {
  const { openServices } = await import('../src/services/services.js');
  const { startServer } = await import('../src/server/serve.js');
  const { localContext } = await import('../src/server/local-socket.js');
  const { configureLogger } = await import('../src/util/logger.js');
  const level = process.env.NEXUS_LOG_LEVEL ?? 'warn';
  // An access log (info) goes to a file, as `nexus serve` would write it to stderr.
  configureLogger({ level, destination: level === 'info' || level === 'debug' ? join(dataDir, '..', 'server.log') : 2 });

  let adminKey = '';
  let tenantKey = '';
  if (setup) {
    const d = await openServices(dataDir, { role: 'bench setup' });
    try {
      const s = d.services;
      const ctx = localContext();
      adminKey = (await s.access.createKey({ subject: 'user:bench-admin', admin: true })).api_key;
      tenantKey = (await s.access.createKey({ subject: 'user:tenant-a' })).api_key;
      await s.files.mkdir('/bench', ctx);
      await s.access.createGrant({ subjectType: 'user', subjectId: 'tenant-a', relation: 'editor', objectType: 'file', objectId: '/bench' }, ctx);
    } finally {
      await d.close();
    }
  }

  const server = await startServer({ dataDir, host: HOST, port: 0 });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= server.close().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`bench child: close failed: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The parent went away (its end of stdin closed): stop too.
  process.stdin.on('end', stop);
  process.stdin.resume();
  const hello: ChildHello = { port: server.port, adminKey, tenantKey };
  process.stdout.write(JSON.stringify(hello) + '\n');
}

// ================================================================== parent: the clients

interface Server {
  proc: ChildProcess;
  hello: ChildHello;
}

async function startChild(dataDir: string, setup: boolean): Promise<Server> {
  const self = fileURLToPath(import.meta.url);
  const execArgv: string[] = [];
  const prof = process.env.NEXUS_BENCH_PROFILE;
  if (prof) execArgv.push('--cpu-prof', `--cpu-prof-dir=${resolve(prof)}`);
  const proc = spawn(process.execPath, [...execArgv, self, '--child', dataDir, setup ? 'setup' : 'reopen'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  try {
    const hello = await new Promise<ChildHello>((res, rej) => {
      let out = '';
      const timer = setTimeout(() => rej(new Error('server child did not start within 30 s')), 30_000);
      proc.stdout!.setEncoding('utf8');
      proc.stdout!.on('data', (s: string) => {
        out += s;
        const nl = out.indexOf('\n');
        if (nl >= 0) {
          clearTimeout(timer);
          try {
            res(JSON.parse(out.slice(0, nl)) as ChildHello);
          } catch (e) {
            rej(new Error(`server child said: ${out}`));
          }
        }
      });
      proc.once('exit', (code, sig) => {
        clearTimeout(timer);
        rej(new Error(`server child exited (${code ?? sig}) before it was ready`));
      });
      proc.once('error', (e) => {
        clearTimeout(timer);
        rej(e);
      });
    });
    return { proc, hello };
  } catch (e) {
    await stopChild(proc);
    throw e;
  }
}

/** SIGTERM (clean close: commit, flush, profile written), SIGKILL after 15 s. */
async function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  try {
    await exited;
  } finally {
    clearTimeout(t);
  }
}

function procStatus(pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** user+system CPU seconds of a process so far (all its threads), or of its main thread (`mainThread`). */
function procCpu(pid: number, mainThread = false): number {
  try {
    const f = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    // utime, stime are fields 14 and 15 (1-based), i.e. 11 and 12 after "pid (comm) ".
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Busy CPU seconds of the whole machine so far (all cores), from /proc/stat. */
function machineBusy(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8');
    const v = f.slice(0, f.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return (v[0]! + v[1]! + v[2]! + v[5]! + v[6]! + v[7]!) / 100;
  } catch {
    return NaN;
  }
}

interface Res {
  status: number;
  body: Buffer;
}

class Client {
  readonly agent: http.Agent;
  /** TCP connections opened (keep-alive: about one per concurrent client). */
  connections = 0;
  constructor(
    private readonly port: number,
    private readonly key: string,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS, maxFreeSockets: CLIENTS });
  }

  request(method: 'GET' | 'PUT', path: string, body?: Buffer, query = ''): Promise<Res> {
    return new Promise<Res>((res, rej) => {
      const headers: http.OutgoingHttpHeaders = { authorization: `Bearer ${this.key}` };
      if (body) {
        headers['content-type'] = 'application/octet-stream';
        headers['content-length'] = body.length;
      }
      const req = http.request(
        {
          host: HOST,
          port: this.port,
          method,
          path: `${PREFIX}/files/content?path=${encodeURIComponent(path)}${query}`,
          headers,
          agent: this.agent,
        },
        (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (b: Buffer) => chunks.push(b));
          r.on('end', () => {
            if (!r.complete) rej(new Error('response cut short'));
            else res({ status: r.statusCode ?? 0, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
          });
          r.on('error', rej);
        },
      );
      req.once('socket', (sock) => {
        if (!(req as http.ClientRequest & { reusedSocket?: boolean }).reusedSocket && !sock.listenerCount('nexusBenchSeen')) {
          sock.on('nexusBenchSeen', () => {});
          this.connections++;
        }
      });
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer in ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', rej);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** xorshift32: cheap, deterministic per client. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

interface WrittenFile {
  path: string;
  /** Every content ever written (hash -> order), to tell a lost write (an older version) from corruption. */
  versions: Map<string, number>;
  /** The last content whose PUT was answered 200. */
  last: string;
  /** Contents whose PUT failed after `last`: the file may hold any of these too. */
  uncertain: string[];
}

class Stats {
  readonly lat: Record<string, number[]> = {};
  readonly errors: Record<string, number> = {};
  readonly errorSamples: string[] = [];
  badReads = 0;
  add(op: string, ms: number): void {
    (this.lat[op] ??= []).push(ms);
  }
  error(op: string, what: string): void {
    this.errors[op] = (this.errors[op] ?? 0) + 1;
    if (this.errorSamples.length < 5) this.errorSamples.push(`${op}: ${what}`);
  }
}

function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Workload {
  client: Client;
  readFiles: { path: string; hash: string }[];
  written: WrittenFile[][];
  /** Random bytes to cut write contents from (each also gets a unique header). */
  pool: Buffer;
  seq: { n: number };
}

async function runPhase(w: Workload, seconds: number, writeShare: number, stats: Stats | undefined): Promise<number> {
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const rand = rng(0x9e3779b9 ^ (c * 7919 + Math.floor(t0)));
      const mine = w.written[c]!;
      for (let i = 0; i < MAX_REQUESTS && performance.now() < deadline; i++) {
        if (rand() < writeShare) {
          const f = mine[Math.floor(rand() * mine.length)]!;
          const n = ++w.seq.n;
          const off = Math.floor(rand() * (w.pool.length - SIZE));
          const data = Buffer.from(w.pool.subarray(off, off + SIZE));
          data.write(`c${c} ${f.path} #${n} `, 0, 'latin1');
          const h = sha(data);
          f.versions.set(h, n);
          const s = performance.now();
          try {
            const r = await w.client.request('PUT', f.path, data);
            if (r.status !== 200) throw new Error(`HTTP ${r.status} ${r.body.toString('utf8', 0, 200)}`);
            stats?.add('write', performance.now() - s);
            f.last = h;
            f.uncertain = [];
          } catch (e) {
            f.uncertain.push(h);
            stats?.error('write', (e as Error).message);
          }
        } else {
          const f = w.readFiles[Math.floor(rand() * w.readFiles.length)]!;
          const s = performance.now();
          try {
            const r = await w.client.request('GET', f.path);
            if (r.status !== 200) throw new Error(`HTTP ${r.status} ${r.body.toString('utf8', 0, 200)}`);
            stats?.add('read', performance.now() - s);
            if (r.body.length !== SIZE || sha(r.body) !== f.hash) stats && stats.badReads++;
          } catch (e) {
            stats?.error('read', (e as Error).message);
          }
        }
      }
    }),
  );
  return (performance.now() - t0) / 1000;
}

interface Verdict {
  checked: number;
  ok: number;
  lost: number;
  corrupted: number;
  unreadable: number;
  samples: string[];
}

/** Every written file holds its last acknowledged content; the read-only files are unchanged. */
async function verify(client: Client, w: Workload): Promise<Verdict> {
  const v: Verdict = { checked: 0, ok: 0, lost: 0, corrupted: 0, unreadable: 0, samples: [] };
  const all: { path: string; accept: Set<string>; versions: Map<string, number> }[] = [
    ...w.written.flat().map((f) => ({ path: f.path, accept: new Set([f.last, ...f.uncertain]), versions: f.versions })),
    ...w.readFiles.map((f) => ({ path: f.path, accept: new Set([f.hash]), versions: new Map([[f.hash, 0]]) })),
  ];
  let next = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < all.length) {
        const f = all[next++]!;
        v.checked++;
        let r: Res;
        try {
          r = await client.request('GET', f.path);
        } catch (e) {
          v.unreadable++;
          if (v.samples.length < 5) v.samples.push(`${f.path}: ${(e as Error).message}`);
          continue;
        }
        if (r.status !== 200) {
          v.unreadable++;
          if (v.samples.length < 5) v.samples.push(`${f.path}: HTTP ${r.status}`);
          continue;
        }
        const h = sha(r.body);
        if (f.accept.has(h)) v.ok++;
        else if (f.versions.has(h)) {
          v.lost++;
          if (v.samples.length < 5) v.samples.push(`${f.path}: holds an older write (#${f.versions.get(h)})`);
        } else {
          v.corrupted++;
          if (v.samples.length < 5) v.samples.push(`${f.path}: content matches no write (${r.body.length} bytes)`);
        }
      }
    }),
  );
  return v;
}

const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const mib = (b: number | undefined) => (b === undefined ? '?' : `${(b / 2 ** 20).toFixed(1)} MiB`);

function table(rows: { name: string; n: number; secs: number; lat: number[]; errors: number }[]): void {
  console.log(
    `${'phase / op'.padEnd(16)}${'requests'.padStart(10)}${'req/s'.padStart(9)}${'p50 ms'.padStart(9)}${'p90 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'max ms'.padStart(9)}${'errors'.padStart(8)}`,
  );
  for (const r of rows) {
    const s = Float64Array.from(r.lat).sort();
    console.log(
      `${r.name.padEnd(16)}${String(r.n).padStart(10)}${fmt(r.n / r.secs).padStart(9)}${fmt(pct(s, 50), 2).padStart(9)}${fmt(pct(s, 90), 2).padStart(9)}${fmt(pct(s, 99), 2).padStart(9)}${fmt(s[s.length - 1] ?? NaN, 1).padStart(9)}${String(r.errors).padStart(8)}`,
    );
  }
}

function p99(lat: number[]): number {
  return pct(Float64Array.from(lat).sort(), 99);
}

async function main(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'nexus-benchsrv-'));
  const dataDir = join(base, 'data');
  let server: Server | undefined;
  const clients: Client[] = [];
  try {
    console.log(
      `bench/server: ${CLIENTS} keep-alive clients on loopback, ${SIZE}-byte files; mixed ${MIXED_S} s (${(1 - WRITE_SHARE) * 100}% GET / ${WRITE_SHARE * 100}% PUT), reads ${READ_S} s; ${READ_FILES} files to read; load as the ${AS}`,
    );
    console.log(`  ${cpus().length} cores (${cpus()[0]?.model.trim() ?? '?'}), shared by the clients (this process) and the server (a child); node ${process.version}; ${base}`);
    server = await startChild(dataDir, true);
    const { port, adminKey, tenantKey } = server.hello;
    const pid = server.proc.pid!;
    const tenant = new Client(port, tenantKey);
    const admin = new Client(port, adminKey);
    clients.push(tenant, admin);

    // ------------------------------------------------------------ setup: files to read, files to write
    const w: Workload = { client: AS === 'admin' ? admin : tenant, readFiles: [], written: [], pool: randomBytes(1 << 20), seq: { n: 0 } };
    const initial: { path: string; data: Buffer }[] = [];
    for (let i = 0; i < READ_FILES; i++) {
      const data = randomBytes(SIZE);
      const path = `/bench/r/d${i % 16}/f${i}`;
      w.readFiles.push({ path, hash: sha(data) });
      initial.push({ path, data });
    }
    for (let c = 0; c < CLIENTS; c++) {
      const mine: WrittenFile[] = [];
      for (let j = 0; j < WRITE_FILES_PER_CLIENT; j++) {
        const data = randomBytes(SIZE);
        const path = `/bench/w/c${c}/f${j}`;
        const h = sha(data);
        mine.push({ path, versions: new Map([[h, 0]]), last: h, uncertain: [] });
        initial.push({ path, data });
      }
      w.written.push(mine);
    }
    let next = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < initial.length) {
          const f = initial[next++]!;
          const r = await tenant.request('PUT', f.path, f.data, '&parents=true');
          if (r.status !== 200) throw new Error(`setup: PUT ${f.path}: HTTP ${r.status} ${r.body.toString()}`);
        }
      }),
    );
    console.log(`  setup: ${initial.length} files written through the API; warm-up ${WARMUP_S} s (not counted)`);
    await runPhase(w, WARMUP_S, WRITE_SHARE, undefined);

    // ------------------------------------------------------------ mixed
    const cpu0 = { server: procCpu(pid), main: procCpu(pid, true), client: process.cpuUsage(), machine: machineBusy() };
    const mixed = new Stats();
    const mixedSecs = await runPhase(w, MIXED_S, WRITE_SHARE, mixed);
    const cpu1 = { server: procCpu(pid), main: procCpu(pid, true), client: process.cpuUsage(cpu0.client), machine: machineBusy() };
    // ------------------------------------------------------------ reads only
    const reads = new Stats();
    const readSecs = await runPhase(w, READ_S, 0, reads);
    const cpu2 = { server: procCpu(pid), main: procCpu(pid, true), client: process.cpuUsage(), machine: machineBusy() };

    const mr = mixed.lat.read ?? [];
    const mw = mixed.lat.write ?? [];
    const rr = reads.lat.read ?? [];
    const mErr = (mixed.errors.read ?? 0) + (mixed.errors.write ?? 0);
    const rErr = reads.errors.read ?? 0;
    console.log('');
    table([
      { name: 'mixed: all', n: mr.length + mw.length, secs: mixedSecs, lat: [...mr, ...mw], errors: mErr },
      { name: 'mixed: GET', n: mr.length, secs: mixedSecs, lat: mr, errors: mixed.errors.read ?? 0 },
      { name: 'mixed: PUT', n: mw.length, secs: mixedSecs, lat: mw, errors: mixed.errors.write ?? 0 },
      { name: 'reads: GET', n: rr.length, secs: readSecs, lat: rr, errors: rErr },
    ]);
    for (const s of [...mixed.errorSamples, ...reads.errorSamples]) console.log(`  error: ${s}`);
    const badReads = mixed.badReads + reads.badReads;
    const clientCpuMixed = (cpu1.client.user + cpu1.client.system) / 1e6;
    const clientCpuRead = (cpu2.client.user + cpu2.client.system - cpu0.client.user - cpu0.client.system) / 1e6 - clientCpuMixed;
    // Server CPU per request is the figure least disturbed by whatever else runs on the machine.
    // The server's main thread is its bottleneck: its CPU per request bounds the rate whatever else runs.
    const cpuLine = (phase: string, secs: number, n: number, server: number, main: number, client: number, machine: number) =>
      `  CPU, ${phase}: server ${fmt((server / secs) * 100)}% of a core (${fmt((server / n) * 1e6)} us/request; ` +
      `main thread ${fmt((main / n) * 1e6)} us/request, so at most ~${fmt(n / main)} req/s), clients ${fmt((client / secs) * 100)}%, ` +
      `other processes ${fmt((Math.max(0, machine - server - client) / secs) * 100)}% (of ${cpus().length * 100}%)`;
    console.log(cpuLine('mixed phase', mixedSecs, mr.length + mw.length, cpu1.server - cpu0.server, cpu1.main - cpu0.main, clientCpuMixed, cpu1.machine - cpu0.machine));
    console.log(cpuLine('read phase ', readSecs, rr.length, cpu2.server - cpu1.server, cpu2.main - cpu1.main, clientCpuRead, cpu2.machine - cpu1.machine));
    console.log(`  connections opened by the load's client: ${w.client.connections} (keep-alive)`);
    console.log(`  GETs whose bytes differed from the file's content: ${badReads}`);

    // ------------------------------------------------------------ verify
    const live = await verify(admin, w);
    const hwm = procStatus(pid, 'VmHWM');
    const rss = procStatus(pid, 'VmRSS');
    console.log(`  server memory: peak RSS (VmHWM) ${mib(hwm)}, RSS now ${mib(rss)}`);
    const writes = w.seq.n;
    console.log(`  verify (live server): ${live.checked} files (${CLIENTS * WRITE_FILES_PER_CLIENT} written ${writes} times in all, ${READ_FILES} read-only): ` +
      `${live.ok} ok, ${live.lost} lost writes, ${live.corrupted} corrupted, ${live.unreadable} unreadable`);
    for (const s of live.samples) console.log(`    ${s}`);

    // A clean close and a fresh server on the same directory: acknowledged writes are still there.
    for (const c of clients.splice(0)) c.close();
    await stopChild(server.proc);
    const closedCode = server.proc.exitCode;
    server = await startChild(dataDir, false);
    const admin2 = new Client(server.hello.port, adminKey);
    clients.push(admin2);
    const after = await verify(admin2, w);
    console.log(`  verify (after clean close exit ${closedCode} and restart): ${after.ok} ok, ${after.lost} lost writes, ${after.corrupted} corrupted, ${after.unreadable} unreadable`);
    for (const s of after.samples) console.log(`    ${s}`);

    // ------------------------------------------------------------ targets
    const readRps = rr.length / readSecs;
    const rp99 = p99(rr);
    const bad = live.lost + live.corrupted + live.unreadable + after.lost + after.corrupted + after.unreadable;
    console.log('');
    const line = (what: string, got: string, ok?: boolean) =>
      console.log(`  ${what.padEnd(40)}${got.padStart(14)}  ${ok === undefined ? '(not a target)' : ok ? 'ok' : 'MISSED'}`);
    line(`4 KiB reads >= ${TARGET_READ_RPS} req/s`, fmt(readRps), readRps >= TARGET_READ_RPS);
    line(`4 KiB reads p99 < ${TARGET_P99_MS} ms`, `${fmt(rp99, 2)} ms`, rp99 < TARGET_P99_MS);
    line('mixed 80/20 req/s, p99', `${fmt((mr.length + mw.length) / mixedSecs)}, ${fmt(p99([...mr, ...mw]), 1)} ms`);
    line('errors = 0', String(mErr + rErr + badReads), mErr + rErr + badReads === 0);
    line('lost or corrupted writes = 0', String(bad), bad === 0);
    console.log(`  (${cpus().length} cores shared by ${CLIENTS} clients in one process and the server; loopback only)`);
  } finally {
    for (const c of clients) c.close();
    if (server) await stopChild(server.proc).catch(() => server!.proc.kill('SIGKILL'));
    rmSync(base, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3]!, process.argv[4] === 'setup');
else await main();

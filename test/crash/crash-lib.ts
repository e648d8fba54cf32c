/**
 * Shared pieces of the kill -9 tests: the workload processes
 * (test/helpers/crash-ops.py), their logs, the per-version content pattern,
 * and a model that says which contents a file may hold after a crash given
 * what its writer logged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, PYTHON, nexus, sleep } from '../helpers/mount.js';

export const CRASH_OPS = join(REPO, 'test/helpers/crash-ops.py');

/** Rounds per scenario: NEXUS_CRASH_ROUNDS=N for a longer run; the default keeps CI short. */
export function roundsFor(defaultRounds: number): number {
  const n = Number(process.env.NEXUS_CRASH_ROUNDS);
  return Number.isInteger(n) && n > 0 ? n : defaultRounds;
}

export const BASE_SEED = Number(process.env.NEXUS_CRASH_SEED ?? 20261125);

export { rng } from '../helpers/model-fs.js';

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
export const EMPTY_SHA = sha256('');

import { pattern } from '../helpers/pattern.mjs';
export { pattern };

/** What a content looks like: which version it starts as, and where (if anywhere) it stops matching it. */
export function describeContent(path: string, got: Buffer | null): string {
  if (got === null) return 'absent';
  if (got.length === 0) return 'empty';
  const m = /^([^#]{1,200})#(\d+)\|/.exec(got.subarray(0, 256).toString('latin1'));
  if (!m) return `${got.length} bytes not in any version's pattern (starts ${JSON.stringify(got.subarray(0, 24).toString('latin1'))})`;
  const want = pattern(m[1]!, Number(m[2]), got.length);
  let i = 0;
  while (i < got.length && got[i] === want[i]) i++;
  const of = m[1] === path ? '' : ` (of ${m[1]})`;
  if (i === got.length) return `${got.length} bytes of version ${m[2]}${of}`;
  const tail = /([^#|.]{1,200})#(\d+)\|/.exec(got.subarray(i, i + 256).toString('latin1'));
  return `${got.length} bytes: version ${m[2]}${of} up to offset ${i}, then ${tail ? `version ${tail[2]}` : 'other bytes'} (a MIX)`;
}

export interface LogLine {
  /** Position in the (shared, O_APPEND) log: a total order of the logged events. */
  pos: number;
  tag: string;
  ev: string;
  args: string[];
}

export function readLog(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  // A line cut by the kill has no newline; it was not logged.
  const lines = text.split('\n').slice(0, -1);
  return lines.map((l, pos) => {
    const [tag = '', ev = '', ...args] = l.split(' ');
    return { pos, tag, ev, args };
  });
}

export interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  alive(): boolean;
}

/** Start `python3 crash-ops.py <args>` (cwd '/': never inside the mount), tagged in the log. */
export function spawnOp(tag: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, CRASH_TAG: tag, NEXUS_NODE: process.execPath, NEXUS_LOG_LEVEL: 'warn', ...env };
  delete childEnv.NEXUS_SESSION;
  if (env.NEXUS_SESSION) childEnv.NEXUS_SESSION = env.NEXUS_SESSION;
  const child = spawn(PYTHON, [CRASH_OPS, ...args], { cwd: '/', stdio: ['ignore', 'ignore', 'pipe'], env: childEnv });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { name: tag, child, exited, stderr: () => err, alive: () => child.exitCode === null && child.signalCode === null };
}

/**
 * After the daemon died, every workload process must fail and exit by itself
 * (a process hung in the dead mount would show a FUSE request nobody aborted).
 * Returns the names of those that had to be killed.
 */
export async function reap(procs: Proc[], timeoutMs = 20_000): Promise<string[]> {
  const hung: string[] = [];
  await Promise.race([Promise.all(procs.map((p) => p.exited)), sleep(timeoutMs)]);
  for (const p of procs) {
    if (p.alive()) {
      const tree = processTree(p.child.pid!);
      hung.push(`${p.name} [${tree.map((t) => `${t.pid} ${t.cmd} (wchan ${t.wchan}, state ${t.state})`).join('; ')}]`);
      // Its descendants too (a CLI it started), by pid: they were started by this test.
      for (const t of tree.reverse()) {
        try {
          process.kill(t.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await p.exited;
    }
  }
  return hung;
}

/** A process and its descendants (Linux /proc), for diagnosing a hang. */
export function processTree(root: number): { pid: number; cmd: string; wchan: string; state: string }[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      // exited meanwhile
    }
  }
  const out: { pid: number; cmd: string; wchan: string; state: string }[] = [];
  const visit = (pid: number) => {
    const read = (f: string) => {
      try {
        return readFileSync(`/proc/${pid}/${f}`, 'utf8');
      } catch {
        return '?';
      }
    };
    const stat = read('stat');
    out.push({ pid, cmd: read('cmdline').split('\0').join(' ').trim().slice(0, 160), wchan: read('wchan'), state: stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) });
    for (const c of children.get(pid) ?? []) visit(c);
  };
  visit(root);
  return out;
}

/** Stop workload processes that are still running (normal end of a phase, not a crash). */
export async function stopAll(procs: Proc[]): Promise<void> {
  for (const p of procs) if (p.alive()) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
}

export function readOrNull(file: string): Buffer | null {
  try {
    return readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Files under `dir` (relative paths, sorted) with their sha256; directories listed as `dir/`. */
export function treeListing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      if (st.isDirectory()) {
        out.push(`${r}/`);
        walk(p, r);
      } else if (st.isSymbolicLink()) out.push(`${r} -> link`);
      else out.push(`${r} ${sha256(readFileSync(p))}`);
    }
  };
  walk(dir, '');
  return out;
}

export const treeHash = (dir: string) => sha256(treeListing(dir).join('\n'));

export interface FsckResult {
  code: number;
  report?: { ok: boolean; missing: string[]; corrupt: string[]; problems: { kind: string; detail: string }[]; referencedBlobs: number; storedBlobs: number };
  raw: string;
}

/** `nexus fsck --json` as a user runs it: through the daemon's socket while mounted, else on the directory. */
export function fsckCli(dataDir: string): FsckResult {
  const r = nexus(['fsck', '--json', '--data-dir', dataDir], { timeoutMs: 180_000 });
  let report: FsckResult['report'];
  try {
    report = JSON.parse(r.stdout) as FsckResult['report'];
  } catch {
    report = undefined;
  }
  return { code: r.code, report, raw: (r.stdout + r.stderr).slice(0, 2000) };
}

/** Problems an fsck run reports, as lines (empty: consistent). */
export function fsckProblems(f: FsckResult): string[] {
  if (!f.report) return [`fsck did not report (exit ${f.code}): ${f.raw}`];
  const out: string[] = [];
  if (f.code !== 0) out.push(`fsck exit ${f.code}`);
  if (!f.report.ok) out.push('fsck: not ok');
  for (const id of f.report.missing) out.push(`fsck: missing blob ${id}`);
  for (const id of f.report.corrupt) out.push(`fsck: corrupt blob ${id}`);
  for (const p of f.report.problems) out.push(`fsck: ${p.kind}: ${p.detail}`);
  return out;
}

interface Version {
  path: string;
  ver: number;
  size: number;
  sha: string;
  mode: string;
  pos: number;
}

/**
 * What a writer's files may hold after a crash. Per path, across rounds:
 * - nothing in flight: exactly the last logged (fsynced, closed, renamed) version,
 *   or, with nothing logged this round, what the file held after the last recovery;
 * - a version in flight (begun, not logged done): that, or for an O_TRUNC rewrite
 *   any prefix of the new version (its acknowledged writes, recovered from the
 *   journal or staging files), or for a tmp+rename the whole new version.
 * Anything else (a torn mix of two versions, stale content, a lost file) is a problem.
 */
export class WriterModel {
  /** Content (sha, or null: absent) of each path as checked after the last recovery. */
  readonly observed = new Map<string, string | null>();
  /** Every version ever begun, per path (snapshot checks accept any whole one). */
  readonly versions = new Map<string, Version[]>();
  /** Leftover tmp files (an interrupted tmp+rename) and their content, as found after the last recovery. */
  readonly tmpObserved = new Map<string, string>();
  /** Contents seen after recoveries (a recovered prefix is a legitimate committed state afterwards). */
  readonly recovered = new Map<string, Set<string>>();
  stats = { checked: 0, fsynced: 0, closed: 0, renamed: 0, inflight: 0, prefixes: 0, wholeInflight: 0, versions: 0 };

  constructor(
    private readonly mnt: string,
    /** The directories the writers own (relative to the mount). */
    private readonly dirs: string[],
  ) {}

  /** Check the tree against this round's log lines; remember what was found for the next round. */
  check(lines: LogLine[]): string[] {
    const problems: string[] = [];
    const inflight = new Map<string, Version>();
    const done = new Map<string, { sha: string | null; ev: string }>();
    const tmpVersions = new Map<string, Version[]>();
    for (const l of lines) {
      const [path = ''] = l.args;
      if (l.ev === 'begin') {
        const [, ver, size, digest, mode] = l.args;
        const v: Version = { path, ver: Number(ver), size: Number(size), sha: digest!, mode: mode!, pos: l.pos };
        inflight.set(path, v);
        const list = this.versions.get(path) ?? [];
        list.push(v);
        this.versions.set(path, list);
        this.stats.versions++;
        if (v.mode === 'atomic') {
          const tmp = path.replace(/\/f(\d+)$/, '/.tmp$1');
          tmpVersions.set(tmp, [...(tmpVersions.get(tmp) ?? []), v]);
        }
      } else if (l.ev === 'fsynced' || l.ev === 'closed' || l.ev === 'renamed') {
        const v = inflight.get(path);
        if (v && v.ver === Number(l.args[2])) inflight.delete(path);
        const prev = done.get(path);
        // 'closed' after 'fsynced' of the same version: the stronger claim stays.
        if (!(prev?.ev === 'fsynced' && l.ev === 'closed' && prev.sha === l.args[1])) done.set(path, { sha: l.args[1]!, ev: l.ev });
      } else if (l.ev === 'begin-delete') {
        inflight.set(path, { path, ver: -1, size: 0, sha: '', mode: 'delete', pos: l.pos });
      } else if (l.ev === 'deleted') {
        inflight.delete(path);
        done.set(path, { sha: null, ev: 'deleted' });
      }
    }
    this.stats.inflight += [...inflight.values()].filter((v) => v.mode !== 'delete').length;
    const paths = new Set<string>([...this.observed.keys(), ...done.keys(), ...inflight.keys()]);
    for (const path of [...paths].sort()) {
      const got = readOrNull(join(this.mnt, path));
      const gotSha = got === null ? null : sha256(got);
      const d = done.get(path);
      const want = d ? d.sha : (this.observed.get(path) ?? null);
      const v = inflight.get(path);
      this.stats.checked++;
      if (d && !v && d.ev !== 'deleted') this.stats[d.ev as 'fsynced' | 'closed' | 'renamed']++;
      let ok = gotSha === want;
      if (!ok && v) {
        if (v.mode === 'trunc' && got !== null && got.length <= v.size && got.equals(pattern(path, v.ver, got.length))) {
          ok = true;
          if (got.length < v.size) this.stats.prefixes++;
          else this.stats.wholeInflight++;
          const rec = this.recovered.get(path) ?? new Set();
          rec.add(gotSha!);
          this.recovered.set(path, rec);
        } else if (v.mode === 'atomic' && gotSha === v.sha) {
          ok = true;
          this.stats.wholeInflight++;
        } else if (v.mode === 'delete' && got === null) ok = true;
      }
      if (!ok) {
        const claim = d ? `${d.ev} ${want === null ? '(deleted)' : `as ${describeContent(path, readOrNullPattern(this.versions.get(path), want))}`}` : `expected ${want === null ? 'absent' : 'the content seen after the last recovery'}`;
        problems.push(`${path}: holds ${describeContent(path, got)}; ${claim}${v ? `; in flight: ${v.mode} version ${v.ver} (${v.size} bytes)` : ''}`);
      }
      this.observed.set(path, gotSha);
    }
    // Nothing else in the writers' directories but their files and in-flight tmp files.
    this.tmpObserved.clear();
    for (const dir of this.dirs) {
      let names: string[] = [];
      try {
        names = readdirSync(join(this.mnt, dir));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      for (const name of names) {
        const path = `${dir}/${name}`;
        if (paths.has(path)) continue;
        if (/^\.tmp\d+$/.test(name)) {
          const got = readFileSync(join(this.mnt, path));
          this.tmpObserved.set(path, sha256(got));
          const cands = [...(tmpVersions.get(path) ?? []), ...(this.versions.get(path.replace(/\/\.tmp(\d+)$/, '/f$1')) ?? []).filter((x) => x.mode === 'atomic')];
          if (!cands.some((c) => got.length <= c.size && got.equals(pattern(c.path, c.ver, got.length)))) {
            problems.push(`${path}: leftover tmp file holds ${describeContent(path, got)}, not a prefix of any version written to it`);
          }
          continue;
        }
        problems.push(`${path}: unexpected file in a writer's directory`);
      }
    }
    return problems;
  }

  /** Whole contents a committed state of `path` may have: any begun version, any recovered state. */
  wholeShas(path: string): Set<string> {
    const s = new Set<string>();
    for (const v of this.versions.get(path) ?? []) s.add(v.sha);
    for (const x of this.recovered.get(path) ?? []) s.add(x);
    const o = this.observed.get(path);
    if (o) s.add(o);
    return s;
  }
}

/** For messages: the logged version whose sha is `want`, as content (so describeContent can name it). */
function readOrNullPattern(versions: Version[] | undefined, want: string | null): Buffer | null {
  if (want === null) return null;
  const v = versions?.find((x) => x.sha === want);
  return v ? pattern(v.path, v.ver, v.size) : Buffer.from('(content seen after a recovery)');
}

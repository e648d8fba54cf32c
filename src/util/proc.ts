/** Facts about local processes from /proc (Linux). Every reader tolerates the process being gone. */
import { readFileSync } from 'node:fs';

/** Fields after the command name in /proc/<pid>/stat (index 0 is field 3, "state"). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Start time in clock ticks since boot (field 22): with the pid, it names one process for good. */
export function processStartTime(pid: number): string | undefined {
  const f = statFields(pid);
  // A zombie (Z) or dead (X) process has exited: it owns nothing any more.
  return f && f[0] !== 'Z' && f[0] !== 'X' ? f[19] : undefined;
}

/**
 * One process image: pid, start time and where its environment lives (fields
 * 50-51 of /proc/<pid>/stat). An exec in place keeps pid and start time but
 * lays out a new stack, so the environment addresses change with it.
 * Undefined once the process is gone. One read.
 */
export function processImageKey(pid: number): string | undefined {
  const f = statFields(pid);
  if (!f || f[0] === 'Z' || f[0] === 'X') return undefined;
  return `${pid}:${f[19]}:${f[47] ?? ''}:${f[48] ?? ''}`;
}

export function parentPid(pid: number): number | undefined {
  const f = statFields(pid);
  return f ? Number(f[1]) : undefined;
}

/** FUSE reports the calling thread; its process is the thread group leader. */
export function threadGroupOf(tid: number): number {
  try {
    const m = /^Tgid:\s*(\d+)$/m.exec(readFileSync(`/proc/${tid}/status`, 'utf8'));
    return m ? Number(m[1]) : tid;
  } catch {
    return tid;
  }
}

export function environVar(pid: number, name: string): string | undefined {
  try {
    const prefix = name + '=';
    for (const kv of readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')) if (kv.startsWith(prefix)) return kv.slice(prefix.length);
  } catch {
    // gone, or not ours to read
  }
  return undefined;
}

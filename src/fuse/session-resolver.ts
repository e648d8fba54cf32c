/**
 * Which agent session a process at the mount writes for: a binding made by
 * writing an id to /.nexus/session (the writer and its descendants; keyed by
 * pid AND start time, so a reused pid never inherits it), or NEXUS_SESSION in
 * the environment of the process or an ancestor. The nearest wins.
 */
import { environVar, parentPid, processStartTime, threadGroupOf } from '../util/proc.js';

const MAX_DEPTH = 64;

export class SessionResolver {
  /** "pid:starttime" -> session id */
  private readonly bindings = new Map<string, string>();

  constructor(private readonly isActive: (sessionId: string) => boolean) {}

  private key(pid: number): string | undefined {
    const start = processStartTime(pid);
    return start === undefined ? undefined : `${pid}:${start}`;
  }

  /** Bind the process that owns thread `tid` (and its descendants); null unbinds. */
  bind(tid: number, sessionId: string | null): void {
    const k = this.key(threadGroupOf(tid));
    if (!k) return;
    if (sessionId) this.bindings.set(k, sessionId);
    else this.bindings.delete(k);
  }

  /**
   * The session for a request from thread `tid` (pid 0: the kernel itself,
   * never tagged). Not cached: a shell's last command execs in place, keeping
   * the pid and start time with a new environment. Called only for requests
   * that change the tree.
   */
  resolve(tid: number): string | null {
    if (!tid) return null;
    let found: string | null = null;
    let pid: number | undefined = threadGroupOf(tid);
    for (let depth = 0; pid && pid > 1 && depth < MAX_DEPTH; depth++) {
      const k = this.key(pid);
      const bound = k ? this.bindings.get(k) : undefined;
      const fromEnv = bound ?? environVar(pid, 'NEXUS_SESSION');
      if (fromEnv && this.isActive(fromEnv)) {
        found = fromEnv;
        break;
      }
      pid = parentPid(pid);
    }
    // Forget bindings of processes that are gone.
    if (this.bindings.size > 256) for (const k of [...this.bindings.keys()]) if (!this.key(Number(k.split(':')[0])) || this.key(Number(k.split(':')[0])) !== k) this.bindings.delete(k);
    return found;
  }

}

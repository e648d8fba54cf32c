/**
 * Which agent session a process at the mount writes for: a binding made by
 * writing an id to /.nexus/session (the writer and its descendants; keyed by
 * pid AND start time, so a reused pid never inherits it), or NEXUS_SESSION in
 * the environment of the process or an ancestor. The nearest wins.
 */
import { environVar, parentPid, processImageKey, processStartTime, threadGroupOf } from '../util/proc.js';

const MAX_DEPTH = 64;
/**
 * How long a process's candidate list is reused. Its own image is part of the
 * key (an exec in place is a new entry), bindings clear the cache, and whether
 * a session is active is asked on every call: the TTL only bounds changes of
 * its ancestors (reparenting, an ancestor's exec).
 */
const CACHE_TTL_MS = 1000;
const CACHE_MAX = 4096;

export class SessionResolver {
  /** "pid:starttime" -> session id */
  private readonly bindings = new Map<string, string>();
  /** Process image key -> session ids along its ancestry, nearest first (active or not). */
  private readonly candidates = new Map<string, { at: number; ids: string[] }>();
  /** Thread id -> its process (tids are not reused within the TTL in practice; the image key is checked anyway). */
  private readonly tgids = new Map<number, { at: number; tgid: number }>();

  constructor(private readonly isActive: (sessionId: string) => boolean) {}

  private key(pid: number): string | undefined {
    const start = processStartTime(pid);
    return start === undefined ? undefined : `${pid}:${start}`;
  }

  /** Bind the process that owns thread `tid` (and its descendants); null unbinds. */
  bind(tid: number, sessionId: string | null): void {
    const k = this.key(threadGroupOf(tid));
    this.candidates.clear();
    if (!k) return;
    if (sessionId) this.bindings.set(k, sessionId);
    else this.bindings.delete(k);
  }

  /**
   * The session for a request from thread `tid` (pid 0: the kernel itself,
   * never tagged). A shell's last command execs in place, keeping the pid and
   * start time with a new environment: the cache key includes the image's
   * environment addresses, so that is a new entry. Called only for requests
   * that change the tree; a hit costs one /proc read (the walk costs ~3 per ancestor).
   */
  resolve(tid: number): string | null {
    if (!tid) return null;
    const now = Date.now();
    let t = this.tgids.get(tid);
    if (!t || now - t.at >= CACHE_TTL_MS) {
      if (this.tgids.size >= CACHE_MAX) this.tgids.clear();
      t = { at: now, tgid: threadGroupOf(tid) };
      this.tgids.set(tid, t);
    }
    const image = processImageKey(t.tgid);
    let c = image ? this.candidates.get(image) : undefined;
    if (!c || now - c.at >= CACHE_TTL_MS) {
      c = { at: now, ids: this.walk(t.tgid) };
      if (image) {
        if (this.candidates.size >= CACHE_MAX) this.candidates.clear();
        this.candidates.set(image, c);
      }
    }
    for (const id of c.ids) if (this.isActive(id)) return id;
    return null;
  }

  /** Every binding or NEXUS_SESSION from the process up through its ancestors. */
  private walk(start: number): string[] {
    const ids: string[] = [];
    let pid: number | undefined = start;
    for (let depth = 0; pid && pid > 1 && depth < MAX_DEPTH; depth++) {
      const k = this.key(pid);
      const bound = k ? this.bindings.get(k) : undefined;
      const id = bound ?? environVar(pid, 'NEXUS_SESSION');
      if (id && !ids.includes(id)) ids.push(id);
      pid = parentPid(pid);
    }
    // Forget bindings of processes that are gone.
    if (this.bindings.size > 256) for (const k of [...this.bindings.keys()]) if (this.key(Number(k.split(':')[0])) !== k) this.bindings.delete(k);
    return ids;
  }
}

/**
 * Who is calling at the mount. The patched fuse-native gives uid, gid and pid
 * of the request (Fuse.context()); supplementary groups come from
 * /proc/<pid>/status, cached briefly per pid+start time.
 */
import { readFileSync } from 'node:fs';
import { contextFor, type OpContext } from '../engine/credentials.js';

export interface FuseCaller {
  uid: number;
  gid: number;
  pid: number;
}

const GROUPS_TTL_MS = 1000;
const groupsCache = new Map<number, { at: number; groups: number[] }>();

function supplementaryGroups(pid: number): number[] {
  const now = Date.now();
  const hit = groupsCache.get(pid);
  if (hit && now - hit.at < GROUPS_TTL_MS) return hit.groups;
  let groups: number[] = [];
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const line = /^Groups:\s*(.*)$/m.exec(status)?.[1] ?? '';
    groups = line.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // The process is gone (or pid 0 for kernel-initiated requests): no extra groups.
  }
  if (groupsCache.size > 4096) groupsCache.clear();
  groupsCache.set(pid, { at: now, groups });
  return groups;
}

/** The kernel already applied the caller's umask to modes it sends: umask 0 here. */
export function callerContext(c: FuseCaller): OpContext {
  return contextFor({ uid: c.uid, gid: c.gid, groups: c.pid ? supplementaryGroups(c.pid) : [] }, { umask: 0, principal: `uid:${c.uid}` });
}

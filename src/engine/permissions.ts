/** The permission rules of a Unix filesystem, as Linux applies them. */
import { NexusError } from '../errors.js';
import { S_ISGID, S_ISUID, S_ISVTX, isDir, type Inode } from '../meta/types.js';
import { inGroup, type Cred } from './credentials.js';

export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;

export function mayAccess(node: Inode, cred: Cred, mask: number): boolean {
  if (mask === 0) return true;
  if (cred.uid === 0) {
    // root may read and write anything; execute needs some x bit (or a directory).
    return !(mask & X_OK) || isDir(node.mode) || (node.mode & 0o111) !== 0;
  }
  let bits: number;
  if (cred.uid === node.uid) bits = (node.mode >> 6) & 7;
  else if (inGroup(cred, node.gid)) bits = (node.mode >> 3) & 7;
  else bits = node.mode & 7;
  return (bits & mask) === mask;
}

export function requireAccess(node: Inode, cred: Cred, mask: number, what: string): void {
  if (!mayAccess(node, cred, mask)) throw new NexusError('PERMISSION_DENIED', `Permission denied: ${what}`);
}

/** Removing or renaming `victim` out of `dir`: write+search on dir, and the sticky-bit rule. */
export function requireMayDelete(dir: Inode, victim: Inode, cred: Cred, what: string): void {
  requireAccess(dir, cred, W_OK | X_OK, what);
  if ((dir.mode & S_ISVTX) && cred.uid !== 0 && cred.uid !== dir.uid && cred.uid !== victim.uid) {
    throw new NexusError('NOT_PERMITTED', `Operation not permitted (sticky directory): ${what}`);
  }
}

export function requireOwner(node: Inode, cred: Cred, what: string): void {
  if (cred.uid !== 0 && cred.uid !== node.uid) throw new NexusError('NOT_PERMITTED', `Operation not permitted: ${what}`);
}

/** New mode after chmod by `cred`: a non-root caller outside the file's group loses setgid. */
export function chmodResult(node: Inode, requested: number, cred: Cred): number {
  let perm = requested & 0o7777;
  if (cred.uid !== 0 && !isDir(node.mode) && !inGroup(cred, node.gid)) perm &= ~S_ISGID;
  return (node.mode & ~0o7777) | perm;
}

/** Mode after a chown or a write by a non-root caller: setuid goes, setgid goes when group-exec is set. */
export function dropPrivilegeBits(mode: number): number {
  let m = mode & ~S_ISUID;
  if (m & 0o010) m &= ~S_ISGID;
  return m;
}

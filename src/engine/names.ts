/** Path and name rules of a Unix filesystem (NAME_MAX 255 bytes, PATH_MAX 4096). */
import { NexusError } from '../errors.js';

export const NAME_MAX = 255;
export const PATH_MAX = 4096;

export function checkName(name: string): void {
  if (name.length === 0) throw new NexusError('NOT_FOUND', 'Empty file name');
  if (name === '.' || name === '..') throw new NexusError('INVALID_ARGUMENT', `'${name}' cannot be used as a name`);
  if (name.includes('/') || name.includes('\0')) throw new NexusError('INVALID_ARGUMENT', 'File names cannot contain "/" or NUL');
  if (Buffer.byteLength(name) > NAME_MAX) throw new NexusError('NAME_TOO_LONG', `File name longer than ${NAME_MAX} bytes`);
}

export interface ParsedPath {
  /** Components to walk: `.` dropped, `..` kept (the resolver never goes above /). */
  parts: string[];
  /** The last component as written, `.` and `..` included ('' for /). */
  last: string;
  /** Ends in `/` (or `/.`, `/..`): the path must name a directory. */
  mustBeDir: boolean;
}

export function parsePath(path: string): ParsedPath {
  const parts = splitPath(path);
  const raw = path.split('/').filter((p) => p !== '');
  const last = raw[raw.length - 1] ?? '';
  return { parts, last, mustBeDir: path.length > 1 && (path.endsWith('/') || last === '.' || last === '..') };
}

/**
 * Split an absolute path into components. `.` components are dropped; `..`
 * is kept for the resolver, which walks it within the tree (never above /).
 */
export function splitPath(path: string): string[] {
  if (path === '') throw new NexusError('NOT_FOUND', 'Empty path');
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new NexusError('INVALID_ARGUMENT', `Paths must be absolute: ${String(path)}`);
  }
  if (path.includes('\0')) throw new NexusError('INVALID_ARGUMENT', 'Paths cannot contain NUL');
  if (Buffer.byteLength(path) > PATH_MAX) throw new NexusError('NAME_TOO_LONG', `Path longer than ${PATH_MAX} bytes`);
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  for (const p of parts) if (Buffer.byteLength(p) > NAME_MAX) throw new NexusError('NAME_TOO_LONG', `File name longer than ${NAME_MAX} bytes`);
  return parts;
}

/** Normalize to a canonical absolute path (no `.`, `..` resolved lexically, no trailing slash). */
export function normalizePath(path: string): string {
  const out: string[] = [];
  for (const p of splitPath(path)) {
    if (p === '..') out.pop();
    else out.push(p);
  }
  return '/' + out.join('/');
}

export function dirname(path: string): string {
  const n = normalizePath(path);
  const i = n.lastIndexOf('/');
  return i <= 0 ? '/' : n.slice(0, i);
}

export function basename(path: string): string {
  const n = normalizePath(path);
  return n.slice(n.lastIndexOf('/') + 1);
}

/** Is `path` equal to `root` or below it? Both normalized. */
export function isWithin(path: string, root: string): boolean {
  return root === '/' || path === root || path.startsWith(root + '/');
}

import { randomBytes } from 'node:crypto';

/** Ids users type and paste: a prefix and 16 hex digits (`snap_1f2e...`, `sess_...`). */
export function newId(prefix: 'snap' | 'sess' | 'key'): string {
  return `${prefix}_${randomBytes(8).toString('hex')}`;
}

export const SNAPSHOT_ID_RE = /^snap_[0-9a-f]{16}$/;
export const SESSION_ID_RE = /^sess_[0-9a-f]{16}$/;

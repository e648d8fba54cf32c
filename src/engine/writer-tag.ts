/**
 * Who a pending change belongs to, kept durably beside the change (a journal
 * record for small files, `staging/<ino>.writer` for staged ones), so that a
 * commit made by crash recovery is still tagged with the writer's principal
 * and session: a session's revert must see its own writes as its own.
 */
import { contextFor, ROOT_CRED, type OpContext } from './credentials.js';

export interface WriterTag {
  principal: string | null;
  sessionId: string | null;
}

export function tagOf(ctx: OpContext): WriterTag {
  return { principal: ctx.principal, sessionId: ctx.sessionId };
}

/** Equal keys: the same tag (compared to skip persisting one that is already recorded). */
export function tagKey(tag: WriterTag): string {
  return JSON.stringify([tag.principal, tag.sessionId]);
}

/** The tag a recovered commit gets when none was recorded. */
export const UNTAGGED_KEY = tagKey({ principal: null, sessionId: null });

export function encodeTag(tag: WriterTag): Buffer {
  return Buffer.from(JSON.stringify(tag));
}

/** Parse a recorded tag; anything unreadable counts as untagged rather than failing recovery. */
export function decodeTag(bytes: Uint8Array | string): WriterTag | null {
  try {
    const v = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8')) as Partial<WriterTag>;
    const ok = (x: unknown) => x === null || typeof x === 'string';
    return ok(v.principal) && ok(v.sessionId) ? { principal: v.principal ?? null, sessionId: v.sessionId ?? null } : null;
  } catch {
    return null;
  }
}

/** The context a recovered commit runs under: root's rights, the writer's tag. */
export function recoveredContext(tag: WriterTag): OpContext {
  return contextFor(ROOT_CRED, { principal: tag.principal, sessionId: tag.sessionId });
}

import { describe, it, expect, beforeEach } from 'vitest';
import type { OpenedServices } from '../../src/services/services.js';
import { servicesPerTest } from '../helpers/data-dir.js';
import { ROOT_CONTEXT, contextFor } from '../../src/engine/credentials.js';
import { NexusError } from '../../src/errors.js';

let d: OpenedServices;
const ctx = ROOT_CONTEXT;
const text = async (p: string) => (await d.services.files.read(p, ctx)).toString();

const services = servicesPerTest('nx-svc-');
beforeEach(async () => {
  d = await services.open();
});

async function blobCount(): Promise<number> {
  let n = 0;
  for await (const _ of d.blobs.list()) n++;
  return n;
}

describe('workspaces', () => {
  it('creates, lists, refuses duplicates and nesting, deletes with contents', async () => {
    const s = d.services;
    const ws = await s.workspaces.create('/workspace/acme-corp', { tenant_id: 'acme-123', plan: 'enterprise' }, ctx);
    expect(ws).toMatchObject({ path: '/workspace/acme-corp', metadata: { tenant_id: 'acme-123', plan: 'enterprise' } });
    expect(Date.parse(ws.created_at)).toBeGreaterThan(0);
    await expect(s.workspaces.create('/workspace/acme-corp', {}, ctx)).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    await expect(s.workspaces.create('/workspace/acme-corp/inner', {}, ctx)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(s.workspaces.create('/workspace', {}, ctx)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(s.workspaces.create('/x', [] as unknown as Record<string, unknown>, ctx)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await s.files.write('/workspace/acme-corp/data.json', Buffer.from('{"records": 1000}'), ctx);
    expect((await s.workspaces.list(ctx)).map((w) => w.path)).toEqual(['/workspace/acme-corp']);
    await s.workspaces.delete('/workspace/acme-corp', ctx);
    expect(await s.workspaces.list(ctx)).toEqual([]);
    expect(await s.files.exists('/workspace/acme-corp', ctx)).toBe(false);
    await expect(s.workspaces.delete('/workspace/acme-corp', ctx)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('snapshots', () => {
  it('snapshot copies no data, restore brings back content, undo works', async () => {
    const s = d.services;
    await s.workspaces.create('/w', {}, ctx);
    for (let i = 0; i < 50; i++) await s.files.write(`/w/d${i % 5}/f${i}.txt`, Buffer.from(`v1 of ${i}`), ctx, { parents: true });
    const blobsBefore = await blobCount();
    const snap = await s.snapshots.create('/w', { name: 'before', metadata: { reason: 'test' } }, ctx);
    expect(await blobCount()).toBe(blobsBefore);
    expect(snap).toMatchObject({ path: '/w', name: 'before', file_count: 50, kind: 'manual' });
    expect(snap.snapshot_id).toMatch(/^snap_[0-9a-f]{16}$/);

    await s.files.write('/w/d0/f0.txt', Buffer.from('changed'), ctx);
    await s.files.delete('/w/d1/f1.txt', ctx);
    await s.files.write('/w/new.txt', Buffer.from('new'), ctx);
    await s.files.delete('/w/d2', ctx, { recursive: true });

    const diff = await s.snapshots.diff(snap.snapshot_id, undefined, ctx);
    expect(diff.modified).toEqual(['/w/d0/f0.txt']);
    expect(diff.added).toEqual(['/w/new.txt']);
    expect(diff.deleted).toContain('/w/d1/f1.txt');
    expect(diff.deleted).toContain('/w/d2');

    const r = await s.snapshots.restore('/w', snap.snapshot_id, ctx);
    expect(r.pre_restore_snapshot_id).toMatch(/^snap_/);
    // Counted in paths: f0 changed; f1, d2 and its 10 files came back; new.txt went.
    expect({ created: r.created, modified: r.modified, removed: r.removed }).toEqual({ created: 12, modified: 1, removed: 1 });
    expect(await text('/w/d0/f0.txt')).toBe('v1 of 0');
    expect(await text('/w/d1/f1.txt')).toBe('v1 of 1');
    expect(await text('/w/d2/f2.txt')).toBe('v1 of 2');
    expect(await s.files.exists('/w/new.txt', ctx)).toBe(false);
    expect(await s.snapshots.diff(snap.snapshot_id, undefined, ctx)).toEqual({ added: [], modified: [], deleted: [] });

    // Undo the restore.
    await s.snapshots.restore('/w', r.pre_restore_snapshot_id, ctx);
    expect(await text('/w/d0/f0.txt')).toBe('changed');
    expect(await text('/w/new.txt')).toBe('new');
    expect(await s.files.exists('/w/d2', ctx)).toBe(false);

    const list = await s.snapshots.list('/w', ctx);
    expect(list.map((x) => x.kind)).toEqual(['manual', 'pre-restore', 'pre-restore']);
    await expect(s.snapshots.restore('/w', 'snap_0000000000000000', ctx)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(s.snapshots.restore('/w', 'bogus', ctx)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('an open handle on a restored file keeps its old content whole', async () => {
    const s = d.services;
    const e = d.engine;
    await s.files.write('/p/a.txt', Buffer.from('original'), ctx, { parents: true });
    const snap = await s.snapshots.create('/p', {}, ctx);
    await s.files.write('/p/a.txt', Buffer.from('NEWCONTENT'), ctx);
    const fh = await e.open('/p/a.txt', 0, ctx);
    await s.snapshots.restore('/p', snap.snapshot_id, ctx);
    expect((await e.read(fh, 100, 0)).toString()).toBe('NEWCONTENT');
    await e.release(fh);
    expect(await text('/p/a.txt')).toBe('original');
  });
});

describe('sessions', () => {
  it('tags writes, lists by session, reverts, refuses conflicts unless forced', async () => {
    const s = d.services;
    await s.files.write('/agent/memory/keep.txt', Buffer.from('before'), ctx, { parents: true });
    await s.files.write('/agent/memory/gone.txt', Buffer.from('doomed'), ctx);
    const sess = await s.sessions.create('gpt-4-agent', { user_id: 'user_123' }, ctx);
    expect(sess.session_id).toMatch(/^sess_/);
    const sctx = contextFor(ctx.cred, { sessionId: sess.session_id, principal: 'agent' });
    await s.files.write('/agent/memory/conversation.json', Buffer.from('{"messages": []}'), sctx);
    await s.files.write('/agent/memory/keep.txt', Buffer.from('after'), sctx);
    await s.files.delete('/agent/memory/gone.txt', sctx);

    const mine = await s.files.list('/agent/memory', ctx, { sessionId: sess.session_id });
    expect(mine.map((f) => f.path).sort()).toEqual(['/agent/memory/conversation.json', '/agent/memory/keep.txt']);
    expect(await s.sessions.changes(sess.session_id, ctx)).toEqual({
      created: ['/agent/memory/conversation.json'], modified: ['/agent/memory/keep.txt'], deleted: ['/agent/memory/gone.txt'],
    });
    const listed = await s.sessions.list({ agentId: 'gpt-4-agent' }, ctx);
    expect(listed).toHaveLength(1);
    expect(listed[0]!.file_count).toBe(3);

    // Someone else edits keep.txt: revert refuses, changes nothing.
    await s.files.write('/agent/memory/keep.txt', Buffer.from('someone else'), ctx);
    const err = await s.sessions.revert(sess.session_id, {}, ctx).catch((e) => e);
    expect(err).toBeInstanceOf(NexusError);
    expect(err.code).toBe('CONFLICT');
    expect(err.details.conflicts).toEqual(['/agent/memory/keep.txt']);
    expect(await s.files.exists('/agent/memory/conversation.json', ctx)).toBe(true);

    const rep = await s.sessions.revert(sess.session_id, { force: true }, ctx);
    expect(rep.forced).toBe(true);
    expect(await s.files.exists('/agent/memory/conversation.json', ctx)).toBe(false);
    expect(await text('/agent/memory/keep.txt')).toBe('before');
    expect(await text('/agent/memory/gone.txt')).toBe('doomed');
  });
});

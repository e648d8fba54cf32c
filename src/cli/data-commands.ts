/**
 * `nexus workspace|session|ls|cat|write|...`: the SDK from the shell. Works on
 * a data directory directly, through its mount daemon (socket) when one runs,
 * or against a server (--url / NEXUS_URL).
 */
import type { Argv, CommandModule } from 'yargs';
import { join, resolve } from 'node:path';
import { NexusError, typed } from '../errors.js';
import { defaultDataDir, explainUnreadableMetadata } from '../engine/data-dir.js';
import type { FileRef, FsckReport } from '../services/fsck.js';
import { connect, type NexusClient } from '../sdk/index.js';
import { printJson, printTable } from './output.js';

export interface ClientArgs {
  dataDir?: string;
  url?: string;
  apiKey?: string;
  session?: string;
  json: boolean;
}

export function clientOptions<T>(y: Argv<T>) {
  return y
    .option('data-dir', { type: 'string', describe: 'Data directory (env NEXUS_DATA_DIR)', defaultDescription: '$NEXUS_DATA_DIR or ~/.nexus/data' })
    .option('url', { type: 'string', describe: 'Nexus server URL (env NEXUS_URL)' })
    .option('api-key', { type: 'string', describe: 'API key for --url (env NEXUS_API_KEY)' })
    .option('session', { type: 'string', describe: 'Tag writes with this agent session (env NEXUS_SESSION)' })
    .option('json', { type: 'boolean', default: false, describe: 'Machine-readable output' });
}

async function withClient<T>(a: ClientArgs, fn: (nx: NexusClient) => Promise<T>): Promise<T> {
  const url = a.url ?? (a.dataDir ? undefined : process.env.NEXUS_URL);
  const nx = url
    ? await connect({ remoteUrl: url, apiKey: a.apiKey ?? process.env.NEXUS_API_KEY, sessionId: a.session ?? process.env.NEXUS_SESSION })
    : await connect({ dataDir: a.dataDir ?? defaultDataDir(), sessionId: a.session ?? process.env.NEXUS_SESSION });
  try {
    return await fn(nx);
  } finally {
    await nx.close();
  }
}

function parseMetadata(raw: string | undefined): Record<string, unknown> {
  if (raw === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new NexusError('INVALID_ARGUMENT', '--metadata must be a JSON object, e.g. \'{"team":"backend"}\'');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new NexusError('INVALID_ARGUMENT', '--metadata must be a JSON object');
  return v as Record<string, unknown>;
}

function out(a: ClientArgs, value: unknown, human: () => void): void {
  if (a.json) printJson(value);
  else human();
}

type Handler<A> = (a: A & ClientArgs) => Promise<void>;
const h = <A>(fn: Handler<A>) => (a: unknown) => fn(a as A & ClientArgs);

export function workspaceCommands(y: Argv): Argv {
  return clientOptions(y)
    .command('create <path>', 'Create a workspace (and its directory)', (c) => c.positional('path', { type: 'string', demandOption: true }).option('metadata', { type: 'string', describe: 'JSON object' }),
      h<{ path: string; metadata?: string }>(async (a) => withClient(a, async (nx) => {
        const ws = await nx.workspace.create(a.path, { metadata: parseMetadata(a.metadata) });
        out(a, ws, () => process.stdout.write(`created workspace ${ws.path}\n`));
      })))
    .command('list', 'List workspaces', (c) => c, h(async (a) => withClient(a, async (nx) => {
      const list = await nx.workspace.list();
      out(a, list, () => printTable(list, ['path', 'created_at', 'created_by', 'metadata']));
    })))
    .command('info <path>', 'Show one workspace', (c) => c.positional('path', { type: 'string', demandOption: true }),
      h<{ path: string }>(async (a) => withClient(a, async (nx) => {
        const ws = await nx.workspace.info(a.path);
        out(a, ws, () => printTable([ws], ['path', 'created_at', 'created_by', 'metadata']));
      })))
    .command('delete <path>', 'Delete a workspace and all its contents (its snapshots are kept)', (c) => c.positional('path', { type: 'string', demandOption: true }),
      h<{ path: string }>(async (a) => withClient(a, async (nx) => {
        await nx.workspace.delete(a.path);
        out(a, { deleted: a.path }, () => process.stdout.write(`deleted workspace ${a.path}\n`));
      })))
    .command('snapshot <path>', 'Snapshot a workspace or any directory', (c) => c.positional('path', { type: 'string', demandOption: true })
      .option('name', { type: 'string' }).option('metadata', { type: 'string', describe: 'JSON object' }),
      h<{ path: string; name?: string; metadata?: string }>(async (a) => withClient(a, async (nx) => {
        const id = await nx.workspace.snapshot(a.path, { name: a.name, metadata: parseMetadata(a.metadata) });
        const s = await nx.workspace.getSnapshot(id);
        out(a, s, () => process.stdout.write(`${id}\n`));
      })))
    .command('snapshots [path]', 'List snapshots (of one path, or all)', (c) => c.positional('path', { type: 'string' }),
      h<{ path?: string }>(async (a) => withClient(a, async (nx) => {
        const list = await nx.workspace.listSnapshots(a.path);
        out(a, list, () => printTable(list, ['snapshot_id', 'path', 'name', 'created_at', 'file_count', 'total_bytes', 'kind']));
      })))
    .command('diff <snapshot> [to]', 'Changes from a snapshot to another one, or to the live tree', (c) => c.positional('snapshot', { type: 'string', demandOption: true }).positional('to', { type: 'string' }),
      h<{ snapshot: string; to?: string }>(async (a) => withClient(a, async (nx) => {
        const d = await nx.workspace.diff(a.snapshot, a.to);
        out(a, d, () => {
          for (const p of d.added) process.stdout.write(`A ${p}\n`);
          for (const p of d.modified) process.stdout.write(`M ${p}\n`);
          for (const p of d.deleted) process.stdout.write(`D ${p}\n`);
        });
      })))
    .command('restore <path> <snapshot>', 'Make <path> equal to a snapshot (undo with the pre-restore snapshot it prints)', (c) =>
      c.positional('path', { type: 'string', demandOption: true }).positional('snapshot', { type: 'string', demandOption: true }),
      h<{ path: string; snapshot: string }>(async (a) => withClient(a, async (nx) => {
        const r = await nx.workspace.restore(a.path, a.snapshot);
        out(a, r, () => process.stdout.write(
          `restored ${r.path} to ${r.snapshot_id}: ${r.created} created, ${r.modified} modified, ${r.removed} removed\n` +
          `undo with: nexus workspace restore ${r.path} ${r.pre_restore_snapshot_id}\n`));
      })))
    .command('delete-snapshot <snapshot>', 'Delete a snapshot', (c) => c.positional('snapshot', { type: 'string', demandOption: true }),
      h<{ snapshot: string }>(async (a) => withClient(a, async (nx) => {
        await nx.workspace.deleteSnapshot(a.snapshot);
        out(a, { deleted: a.snapshot }, () => process.stdout.write(`deleted snapshot ${a.snapshot}\n`));
      })))
    .demandCommand(1, 'Name a workspace command (see nexus workspace --help)');
}

export function sessionCommands(y: Argv): Argv {
  return clientOptions(y)
    .command('create', 'Start an agent session', (c) => c.option('agent', { type: 'string', demandOption: true, describe: 'Agent id' }).option('metadata', { type: 'string', describe: 'JSON object' }),
      h<{ agent: string; metadata?: string }>(async (a) => withClient(a, async (nx) => {
        const s = await nx.session.create({ agentId: a.agent, metadata: parseMetadata(a.metadata) });
        out(a, s, () => process.stdout.write(`${s.session_id}\n`));
      })))
    .command('list', 'List sessions', (c) => c.option('agent', { type: 'string', describe: 'Only this agent' }),
      h<{ agent?: string }>(async (a) => withClient(a, async (nx) => {
        const list = await nx.session.list({ agentId: a.agent });
        out(a, list, () => printTable(list, ['session_id', 'agent_id', 'created_at', 'ended_at', 'file_count']));
      })))
    .command('show <id>', 'Show one session', (c) => c.positional('id', { type: 'string', demandOption: true }),
      h<{ id: string }>(async (a) => withClient(a, async (nx) => {
        const s = await nx.session.get(a.id);
        out(a, s, () => printTable([s], ['session_id', 'agent_id', 'created_at', 'ended_at', 'file_count', 'metadata']));
      })))
    .command('end <id>', 'End a session', (c) => c.positional('id', { type: 'string', demandOption: true }),
      h<{ id: string }>(async (a) => withClient(a, async (nx) => {
        const s = await nx.session.end(a.id);
        out(a, s, () => process.stdout.write(`ended ${s.session_id}\n`));
      })))
    .command('files <id>', 'Files the session created or wrote', (c) => c.positional('id', { type: 'string', demandOption: true }),
      h<{ id: string }>(async (a) => withClient(a, async (nx) => {
        const list = await nx.session.files(a.id);
        out(a, list, () => printTable(list, ['path', 'size', 'mtime']));
      })))
    .command('diff <id>', 'What the session created, modified and deleted', (c) => c.positional('id', { type: 'string', demandOption: true }),
      h<{ id: string }>(async (a) => withClient(a, async (nx) => {
        const d = await nx.session.diff(a.id);
        out(a, d, () => {
          for (const p of d.created) process.stdout.write(`A ${p}\n`);
          for (const p of d.modified) process.stdout.write(`M ${p}\n`);
          for (const p of d.deleted) process.stdout.write(`D ${p}\n`);
        });
      })))
    .command('revert <id>', "Undo a session's changes (refuses files others changed since, unless --force)", (c) => c.positional('id', { type: 'string', demandOption: true }).option('force', { type: 'boolean', default: false }),
      h<{ id: string; force: boolean }>(async (a) => withClient(a, async (nx) => {
        const r = await nx.session.revert(a.id, { force: a.force });
        out(a, r, () => process.stdout.write(`reverted ${r.reverted.length} path(s)${r.forced ? `, overriding ${r.conflicts.length} conflict(s)` : ''}\n`));
      })))
    .demandCommand(1, 'Name a session command (see nexus session --help)');
}

export function keyCommands(y: Argv): Argv {
  return clientOptions(y)
    .command('create', 'Create an API key (printed once; only its hash is stored)', (c) => c
      .option('subject', { type: 'string', demandOption: true, describe: 'Who the key acts as, e.g. user:alice@acme-123.com' })
      .option('admin', { type: 'boolean', default: false, describe: 'May do everything, across tenants' })
      .option('expires', { type: 'string', describe: 'Lifetime, e.g. 90d, 12h' }),
      h<{ subject: string; admin: boolean; expires?: string }>(async (a) => withClient(a, async (nx) => {
        const k = await nx.keys.create({ subject: a.subject, admin: a.admin, expiresIn: a.expires });
        out(a, k, () => process.stdout.write(`${k.api_key}\n`));
      })))
    .command('list', 'List API keys (never their secrets)', (c) => c, h(async (a) => withClient(a, async (nx) => {
      const keys = await nx.keys.list();
      out(a, keys, () => printTable(keys, ['key_id', 'subject', 'admin', 'created_at', 'expires_at', 'revoked_at']));
    })))
    .command('revoke <key>', 'Revoke an API key (by key id or the key itself)', (c) => c.positional('key', { type: 'string', demandOption: true }),
      h<{ key: string }>(async (a) => withClient(a, async (nx) => {
        await nx.keys.revoke(a.key);
        out(a, { revoked: a.key }, () => process.stdout.write(`revoked ${a.key}\n`));
      })))
    .demandCommand(1, 'Name a key command (see nexus key --help)');
}

export function rebacCommands(y: Argv): Argv {
  const tuple = <T>(c: Argv<T>) => c
    .positional('subject_type', { type: 'string', demandOption: true, describe: 'e.g. user' })
    .positional('subject_id', { type: 'string', demandOption: true, describe: 'e.g. admin@acme-123.com' })
    .positional('relation', { type: 'string', demandOption: true, choices: ['owner', 'editor', 'viewer'] })
    .positional('object_type', { type: 'string', demandOption: true, describe: 'file' })
    .positional('object_id', { type: 'string', demandOption: true, describe: 'e.g. /tenants/acme-123' });
  type T = { subject_type: string; subject_id: string; relation: string; object_type: string; object_id: string };
  return clientOptions(y)
    .command('create <subject_type> <subject_id> <relation> <object_type> <object_id>', 'Grant a relation (owner includes editor includes viewer)', tuple,
      h<T>(async (a) => withClient(a, async (nx) => {
        const g = await nx.rebacCreate(a.subject_type, a.subject_id, a.relation, a.object_type, a.object_id);
        out(a, g, () => process.stdout.write(`granted ${g.relation} on ${g.object_type}:${g.object_id} to ${g.subject_type}:${g.subject_id}\n`));
      })))
    .command('list', 'List grants', (c) => c.option('subject', { type: 'string', describe: 'type:id' }).option('object', { type: 'string', describe: 'e.g. file:/tenants/acme-123' }),
      h<{ subject?: string; object?: string }>(async (a) => withClient(a, async (nx) => {
        const split = (v?: string) => (v ? [v.slice(0, v.indexOf(':')), v.slice(v.indexOf(':') + 1)] : [undefined, undefined]);
        const [subjectType, subjectId] = split(a.subject);
        const [objectType, objectId] = split(a.object);
        const grants = await nx.rebacList({ subjectType, subjectId, objectType, objectId });
        out(a, grants, () => printTable(grants, ['subject_type', 'subject_id', 'relation', 'object_type', 'object_id', 'created_at']));
      })))
    .command('delete <subject_type> <subject_id> <relation> <object_type> <object_id>', 'Remove a grant', tuple,
      h<T>(async (a) => withClient(a, async (nx) => {
        await nx.rebacDelete(a.subject_type, a.subject_id, a.relation, a.object_type, a.object_id);
        out(a, { deleted: true }, () => process.stdout.write('deleted\n'));
      })))
    .demandCommand(1, 'Name a rebac command (see nexus rebac --help)');
}

/** `nexus fsck` and `nexus gc`, as yargs command modules. */
export function maintenanceCommands(): CommandModule[] {
  return [
    {
      command: 'fsck',
      describe: 'Check blobs (exist, match their hash), the tree and snapshots; exit 3 on damage',
      builder: (c: Argv) => clientOptions(c).option('repair', { type: 'boolean', default: false, describe: 'Fix counts; move what cannot be fixed to /lost+found' }),
      handler: h<{ repair: boolean }>(async (a) => {
        try {
          await withClient(a, async (nx) => {
            const stop = spinner('checking the store');
            const r = await nx.admin.fsck({ repair: a.repair }).finally(stop);
            out(a, r, () => printFsck(r));
            if (!r.ok) process.exitCode = 3;
          });
        } catch (e) {
          // The damage is in meta.db itself: this is the command the other ones send the user to, so it explains.
          const err = typed(e);
          if (err.code !== 'CORRUPT' || typeof err.details?.sqlite !== 'string') throw e;
          const remote = a.url ?? (a.dataDir ? undefined : process.env.NEXUS_URL);
          const local = remote ? undefined : join(resolve(a.dataDir ?? defaultDataDir()), 'meta.db');
          const sqliteMessage = (err.cause as Error | undefined)?.message ?? err.details.sqlite;
          const why = local ? explainUnreadableMetadata(local, sqliteMessage) : err.message.replace(/; 'nexus fsck' explains the damage$/, '');
          process.stderr.write(`nexus: ${why} (CORRUPT)\n`);
          process.exitCode = 3;
        }
      }),
    },
    {
      command: 'gc',
      describe: 'Delete blobs no kept version references (safe while mounted or serving)',
      builder: (c: Argv) => clientOptions(c)
        .option('dry-run', { type: 'boolean', default: false, describe: 'Only report what would be freed' })
        .option('keep-versions', { type: 'number', default: 10, describe: 'Newest versions kept per file' })
        .option('keep-age', { type: 'string', default: '7d', describe: 'Versions and session history younger than this are kept' }),
      handler: h<{ dryRun: boolean; keepVersions: number; keepAge: string }>(async (a) => withClient(a, async (nx) => {
        const stop = spinner('collecting garbage');
        const r = await nx.admin.gc({ dryRun: a.dryRun, keepVersions: a.keepVersions, keepAge: a.keepAge }).finally(stop);
        out(a, r, () => process.stdout.write(
          `${r.dry_run ? 'would free' : 'freed'} ${r.deleted_blobs} blobs (${r.freed_bytes} bytes); ` +
          `${r.pruned_versions} old versions ${r.dry_run ? 'prunable' : 'pruned'}; ${r.referenced_blobs} blobs in use\n`));
      })),
    },
  ];
}

/** The human fsck report: each finding with the files it concerns. */
function printFsck(r: FsckReport): void {
  const file = (f: FileRef) => `${f.path ?? `inode ${f.ino} (no name)`}${f.workspace ? ` (workspace ${f.workspace})` : ''}`;
  process.stdout.write(`${r.referencedBlobs} referenced blobs, ${r.storedBlobs} stored, ${r.unreferenced} unreferenced (nexus gc reclaims them)\n`);
  for (const d of r.damaged) {
    const users = [...d.files.map(file), ...d.snapshots.map((s) => `${s.path} in snapshot ${s.snapshot_id}`)];
    const shown = users.length > 10 ? [...users.slice(0, 10), `${users.length - 10} more (see --json)`] : users;
    process.stdout.write(`${d.state} blob ${d.blob}: ${shown.length ? shown.join(', ') : 'only older versions of files use it'}\n`);
  }
  for (const p of r.problems) {
    const where = p.path ? `${p.path}${p.workspace ? ` (workspace ${p.workspace})` : ''}: ` : '';
    process.stdout.write(`${p.kind}: ${where}${p.detail}\n`);
  }
  for (const x of r.repaired) process.stdout.write(`repaired: ${x}\n`);
  process.stdout.write(r.ok ? 'store is consistent\n' : 'store is DAMAGED\n');
}

/** A live "working..." line with elapsed seconds on a TTY; nothing otherwise. Returns stop(). */
function spinner(label: string): () => void {
  if (!process.stderr.isTTY) return () => {};
  const t0 = Date.now();
  const timer = setInterval(() => process.stderr.write(`\r${label}... ${((Date.now() - t0) / 1000).toFixed(0)}s`), 250);
  return () => {
    clearInterval(timer);
    process.stderr.write('\r\x1b[K');
  };
}

/** File commands: `nexus ls|cat|write|mkdir|rm|mv|stat`. */
export function fileCommands(y: Argv): Argv {
  return y
    .command('ls [path]', 'List a directory', (c) => clientOptions(c).positional('path', { type: 'string', default: '/' }).option('recursive', { alias: 'R', type: 'boolean', default: false }),
      h<{ path: string; recursive: boolean }>(async (a) => withClient(a, async (nx) => {
        const list = await nx.list(a.path, { recursive: a.recursive });
        out(a, list, () => printTable(list, ['type', 'size', 'mtime', 'path']));
      })))
    .command('cat <path>', 'Print a file', (c) => clientOptions(c).positional('path', { type: 'string', demandOption: true }),
      h<{ path: string }>(async (a) => withClient(a, async (nx) => {
        process.stdout.write(await nx.read(a.path));
      })))
    .command('write <path>', 'Write stdin to a file', (c) => clientOptions(c).positional('path', { type: 'string', demandOption: true }).option('parents', { alias: 'p', type: 'boolean', default: false }),
      h<{ path: string; parents: boolean }>(async (a) => withClient(a, async (nx) => {
        const chunks: Buffer[] = [];
        for await (const c of process.stdin) chunks.push(c as Buffer);
        const f = await nx.write(a.path, Buffer.concat(chunks), { parents: a.parents });
        out(a, f, () => process.stdout.write(`wrote ${f.size} bytes to ${f.path}\n`));
      })))
    .command('mkdir <path>', 'Make a directory', (c) => clientOptions(c).positional('path', { type: 'string', demandOption: true }).option('parents', { alias: 'p', type: 'boolean', default: false }),
      h<{ path: string; parents: boolean }>(async (a) => withClient(a, async (nx) => {
        const f = await nx.mkdir(a.path, { parents: a.parents });
        out(a, f, () => {});
      })))
    .command('rm <path>', 'Remove a file (or a directory with -r)', (c) => clientOptions(c).positional('path', { type: 'string', demandOption: true }).option('recursive', { alias: 'r', type: 'boolean', default: false }),
      h<{ path: string; recursive: boolean }>(async (a) => withClient(a, async (nx) => {
        await nx.delete(a.path, { recursive: a.recursive });
        out(a, { deleted: a.path }, () => {});
      })))
    .command('mv <from> <to>', 'Rename or move', (c) => clientOptions(c).positional('from', { type: 'string', demandOption: true }).positional('to', { type: 'string', demandOption: true }),
      h<{ from: string; to: string }>(async (a) => withClient(a, async (nx) => {
        await nx.rename(a.from, a.to);
        out(a, { from: a.from, to: a.to }, () => {});
      })))
    .command('stat <path>', 'Show a file’s attributes', (c) => clientOptions(c).positional('path', { type: 'string', demandOption: true }),
      h<{ path: string }>(async (a) => withClient(a, async (nx) => {
        const f = await nx.stat(a.path);
        out(a, f, () => printTable([f], ['path', 'type', 'size', 'mode', 'uid', 'gid', 'nlink', 'ino', 'mtime']));
      })));
}

/**
 * Api over HTTP: a Nexus server over TCP (http:, https:) or a daemon's local
 * socket. node:http only. Errors come back as the catalog's codes and are
 * rebuilt into NexusError, so the SDK's `typed()` gives the same classes as
 * in embedded mode.
 */
import http from 'node:http';
import https from 'node:https';
import { ERRORS, NexusError, isErrorCode } from '../errors.js';
import type {
  Diff, FileInfo, RestoreReport, RevertReport, Session, SessionChanges, Snapshot, Workspace,
} from '../services/records.js';
import type { Api, CallContext, GrantFilter, GrantInput } from './api.js';
import type { ApiKeyInfo, CreatedKey, Grant } from '../services/access.js';
import type { FsckReport } from '../services/fsck.js';
import type { GcOptions, GcReport } from '../services/gc.js';

export type HttpApiOptions =
  | { baseUrl: string; apiKey?: string }
  | { socketPath: string; apiKey?: string };

const PREFIX = '/api/v1';
const SESSION_HEADER = 'X-Nexus-Session';

type Query = Record<string, string | boolean | undefined>;

interface Req {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Query;
  json?: unknown;
  bytes?: Uint8Array;
  c?: CallContext;
  /** `path` is not under /api/v1 (GET /health). */
  unprefixed?: boolean;
}

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const enc = encodeURIComponent;
/** Bodies larger than this wait for `100 Continue`. */
const EXPECT_CONTINUE_BYTES = 1 << 20;
const CONTINUE_WAIT_MS = 3000;
/** What may go into a header value as is. */
const HEADER_SAFE = /^[\x21-\x7e]+$/;

export class HttpApi implements Api {
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;
  /** For messages: where we talk to. */
  readonly where: string;
  private readonly base: { hostname?: string; port?: string; pathPrefix: string; socketPath?: string };
  private readonly apiKey: string | undefined;

  constructor(opts: HttpApiOptions) {
    const key = opts.apiKey || undefined;
    if (key !== undefined && !HEADER_SAFE.test(key)) throw new NexusError('INVALID_ARGUMENT', 'API keys are printable ASCII without spaces');
    this.apiKey = key;
    if ('socketPath' in opts) {
      this.mod = http;
      this.where = `unix:${opts.socketPath}`;
      this.base = { socketPath: opts.socketPath, pathPrefix: '' };
    } else {
      let u: URL;
      try {
        u = new URL(opts.baseUrl);
      } catch {
        throw new NexusError('INVALID_ARGUMENT', `Not a URL: ${opts.baseUrl}`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        throw new NexusError('INVALID_ARGUMENT', `Nexus server URLs are http: or https:, not ${u.protocol} (${opts.baseUrl})`);
      }
      if (u.username || u.password) throw new NexusError('INVALID_ARGUMENT', 'Give credentials as an API key, not in the URL');
      this.mod = u.protocol === 'https:' ? https : http;
      this.where = u.origin + u.pathname.replace(/\/+$/, '');
      this.base = { hostname: u.hostname.replace(/^\[|\]$/g, ''), port: u.port || undefined, pathPrefix: u.pathname.replace(/\/+$/, '') };
    }
    this.agent = new this.mod.Agent({ keepAlive: true });
  }

  // ---------------------------------------------------------------- transport

  private send(r: Req, retried = false): Promise<Res> {
    let qs = '';
    if (r.query) {
      const sp = new URLSearchParams();
      for (const [k, v] of Object.entries(r.query)) if (v !== undefined && v !== false) sp.set(k, String(v));
      const s = sp.toString();
      if (s) qs = `?${s}`;
    }
    const path = `${this.base.pathPrefix}${r.unprefixed ? '' : PREFIX}${r.path}${qs}`;
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (r.c?.sessionId) {
      if (!HEADER_SAFE.test(r.c.sessionId)) return Promise.reject(new NexusError('INVALID_ARGUMENT', `Not a session id: ${JSON.stringify(r.c.sessionId)}`));
      headers[SESSION_HEADER] = r.c.sessionId;
    }
    let payload: Buffer | Uint8Array | undefined;
    if (r.json !== undefined) {
      payload = Buffer.from(JSON.stringify(r.json));
      headers['content-type'] = 'application/json';
    } else if (r.bytes) {
      payload = r.bytes;
      headers['content-type'] = 'application/octet-stream';
    }
    if (payload) headers['content-length'] = payload.length;
    else if (r.method !== 'GET' && r.method !== 'DELETE') headers['content-length'] = 0;

    // A large body waits for the server's `100 Continue`: a refused upload
    // (limit, session, path) is answered before any of it is sent.
    const expect = payload !== undefined && payload.length > EXPECT_CONTINUE_BYTES;
    if (expect) headers.expect = '100-continue';

    return new Promise<Res>((resolve, reject) => {
      let settled = false;
      let bodySent = !expect;
      let waitTimer: NodeJS.Timeout | undefined;
      const done = (err: NexusError | undefined, res?: Res) => {
        if (settled) return;
        settled = true;
        clearTimeout(waitTimer);
        if (err) reject(err);
        else resolve(res!);
        // Answered without our body: this connection is not reusable.
        if (!bodySent) req.destroy();
      };
      const req = this.mod.request(
        {
          method: r.method,
          path,
          headers,
          agent: this.agent,
          ...(this.base.socketPath ? { socketPath: this.base.socketPath } : { hostname: this.base.hostname, port: this.base.port }),
        },
        (res) => {
          const declared = res.headers['content-length'];
          const bodiless = res.statusCode === 204 || res.statusCode === 304;
          // A file's bytes go straight into one buffer of the announced size.
          const size = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined;
          const into = size !== undefined && size > 64 * 1024 ? Buffer.allocUnsafe(size) : undefined;
          const chunks: Buffer[] = [];
          let got = 0;
          res.on('data', (b: Buffer) => {
            if (into && got + b.length <= into.length) b.copy(into, got);
            else chunks.push(b);
            got += b.length;
          });
          res.on('end', () => {
            if (!res.complete || (!bodiless && size !== undefined && size !== got)) {
              done(this.broken(`the response ended after ${got} of ${declared ?? '?'} bytes`));
              return;
            }
            const body = into ?? (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, got));
            done(undefined, { status: res.statusCode ?? 0, headers: res.headers, body });
          });
          res.on('error', (e) => done(this.broken(`the response broke off (${e.message})`)));
          res.on('close', () => {
            if (!res.complete) done(this.broken('the server closed the connection before the whole response arrived'));
          });
        },
      );
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (settled) return;
        // A kept-alive socket the server had just closed: the request never got there; send it again once.
        if (!retried && (req as http.ClientRequest & { reusedSocket?: boolean }).reusedSocket && e.code === 'ECONNRESET') {
          settled = true;
          clearTimeout(waitTimer);
          this.send(r, true).then(resolve, reject);
          return;
        }
        done(this.unreachable(e));
      });
      if (!expect) {
        req.end(payload);
        return;
      }
      const sendBody = () => {
        if (bodySent || settled) return;
        bodySent = true;
        clearTimeout(waitTimer);
        req.end(payload);
      };
      req.once('continue', sendBody);
      // A server (or proxy) that ignores Expect: send the body anyway after a while, as RFC 9110 allows.
      waitTimer = setTimeout(sendBody, CONTINUE_WAIT_MS);
      req.flushHeaders();
    });
  }

  private unreachable(e: NodeJS.ErrnoException): NexusError {
    const why = e.code === 'ECONNREFUSED' ? 'connection refused' : e.code === 'ENOENT' ? 'no such socket' : e.message;
    const err = new NexusError('INTERNAL', `Cannot reach the Nexus server at ${this.where}: ${why}`, { url: this.where, cause: e.code ?? e.message });
    err.cause = e;
    return err;
  }

  private broken(why: string): NexusError {
    return new NexusError('INTERNAL', `Request to the Nexus server at ${this.where} failed: ${why}`, { url: this.where });
  }

  /** The server's JSON error, as the catalog's NexusError. */
  private errorOf(res: Res): NexusError {
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.body.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const e = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
    if (e && typeof e === 'object') {
      const message = typeof e.message === 'string' ? e.message : undefined;
      const details = e.details && typeof e.details === 'object' && !Array.isArray(e.details) ? (e.details as Record<string, unknown>) : undefined;
      if (isErrorCode(e.code)) return new NexusError(e.code, message ?? ERRORS[e.code].message, details);
      return new NexusError('INTERNAL', `Server error ${String(e.code)} (HTTP ${res.status}): ${message ?? ''}`.trim(), { ...details, code: e.code, status: res.status });
    }
    const snippet = res.body.toString('utf8', 0, Math.min(res.body.length, 200)).replace(/\s+/g, ' ').trim();
    return new NexusError('INTERNAL', `Unexpected HTTP ${res.status} from ${this.where}${snippet ? `: ${snippet}` : ''}`, { status: res.status, url: this.where });
  }

  private async call(r: Req): Promise<Res> {
    const res = await this.send(r);
    if (res.status >= 400) throw this.errorOf(res);
    return res;
  }

  private async json<T>(r: Req): Promise<T> {
    const res = await this.call(r);
    try {
      return JSON.parse(res.body.toString('utf8')) as T;
    } catch {
      throw this.broken(`the response to ${r.method} ${r.path} is not JSON`);
    }
  }

  private async none(r: Req): Promise<void> {
    await this.call(r);
  }

  /** GET /health: whether the server answers at all. */
  async health(): Promise<{ status: string; version: string }> {
    return this.json({ method: 'GET', path: '/health', unprefixed: true });
  }

  // ---------------------------------------------------------------- files

  async write(path: string, data: Uint8Array, opts: { parents?: boolean }, c: CallContext): Promise<FileInfo> {
    return this.json({ method: 'PUT', path: '/files/content', query: { path, parents: opts.parents }, bytes: data, c });
  }
  async read(path: string, c: CallContext): Promise<Buffer> {
    return (await this.call({ method: 'GET', path: '/files/content', query: { path }, c })).body;
  }
  async mkdir(path: string, opts: { parents?: boolean }, c: CallContext): Promise<FileInfo> {
    return this.json({ method: 'POST', path: '/files/mkdir', json: { path, ...(opts.parents !== undefined ? { parents: opts.parents } : {}) }, c });
  }
  async list(path: string, opts: { recursive?: boolean; sessionId?: string }, c: CallContext): Promise<FileInfo[]> {
    const r = await this.json<{ files: FileInfo[] }>({ method: 'GET', path: '/files/list', query: { path, recursive: opts.recursive, session_id: opts.sessionId }, c });
    return r.files;
  }
  async stat(path: string, c: CallContext): Promise<FileInfo> {
    return this.json({ method: 'GET', path: '/files/stat', query: { path }, c });
  }
  async exists(path: string, c: CallContext): Promise<boolean> {
    return (await this.json<{ exists: boolean }>({ method: 'GET', path: '/files/exists', query: { path }, c })).exists;
  }
  async delete(path: string, opts: { recursive?: boolean }, c: CallContext): Promise<void> {
    return this.none({ method: 'POST', path: '/files/delete', json: { path, ...(opts.recursive !== undefined ? { recursive: opts.recursive } : {}) }, c });
  }
  async rename(from: string, to: string, c: CallContext): Promise<void> {
    return this.none({ method: 'POST', path: '/files/rename', json: { from, to }, c });
  }

  // ---------------------------------------------------------------- workspaces

  async workspaceCreate(path: string, metadata: Record<string, unknown>, c: CallContext): Promise<Workspace> {
    return this.json({ method: 'POST', path: '/workspaces', json: { path, metadata }, c });
  }
  async workspaceList(c: CallContext): Promise<Workspace[]> {
    return (await this.json<{ workspaces: Workspace[] }>({ method: 'GET', path: '/workspaces', c })).workspaces;
  }
  async workspaceInfo(path: string, c: CallContext): Promise<Workspace> {
    return this.json({ method: 'GET', path: '/workspaces/info', query: { path }, c });
  }
  async workspaceDelete(path: string, c: CallContext): Promise<void> {
    return this.none({ method: 'DELETE', path: '/workspaces', query: { path }, c });
  }

  // ---------------------------------------------------------------- snapshots

  async snapshotCreate(path: string, opts: { name?: string | null; metadata?: Record<string, unknown> }, c: CallContext): Promise<Snapshot> {
    return this.json({ method: 'POST', path: '/snapshots', json: { path, name: opts.name ?? null, metadata: opts.metadata ?? {} }, c });
  }
  async snapshotList(path: string | undefined, c: CallContext): Promise<Snapshot[]> {
    return (await this.json<{ snapshots: Snapshot[] }>({ method: 'GET', path: '/snapshots', query: { path }, c })).snapshots;
  }
  async snapshotGet(snapshotId: string, c: CallContext): Promise<Snapshot> {
    return this.json({ method: 'GET', path: `/snapshots/${enc(snapshotId)}`, c });
  }
  async snapshotDelete(snapshotId: string, c: CallContext): Promise<void> {
    return this.none({ method: 'DELETE', path: `/snapshots/${enc(snapshotId)}`, c });
  }
  async snapshotDiff(from: string, to: string | undefined, c: CallContext): Promise<Diff> {
    return this.json({ method: 'GET', path: `/snapshots/${enc(from)}/diff`, query: { to }, c });
  }
  async snapshotRestore(path: string, snapshotId: string, c: CallContext): Promise<RestoreReport> {
    return this.json({ method: 'POST', path: `/snapshots/${enc(snapshotId)}/restore`, json: { path }, c });
  }

  // ---------------------------------------------------------------- sessions

  async sessionCreate(agentId: string, metadata: Record<string, unknown>, c: CallContext): Promise<Session> {
    return this.json({ method: 'POST', path: '/sessions', json: { agent_id: agentId, metadata }, c });
  }
  async sessionGet(sessionId: string, c: CallContext): Promise<Session> {
    return this.json({ method: 'GET', path: `/sessions/${enc(sessionId)}`, c });
  }
  async sessionList(opts: { agentId?: string }, c: CallContext): Promise<Session[]> {
    return (await this.json<{ sessions: Session[] }>({ method: 'GET', path: '/sessions', query: { agent_id: opts.agentId }, c })).sessions;
  }
  async sessionEnd(sessionId: string, c: CallContext): Promise<Session> {
    return this.json({ method: 'POST', path: `/sessions/${enc(sessionId)}/end`, c });
  }
  async sessionFiles(sessionId: string, c: CallContext): Promise<FileInfo[]> {
    return (await this.json<{ files: FileInfo[] }>({ method: 'GET', path: `/sessions/${enc(sessionId)}/files`, c })).files;
  }
  async sessionChanges(sessionId: string, c: CallContext): Promise<SessionChanges> {
    return this.json({ method: 'GET', path: `/sessions/${enc(sessionId)}/diff`, c });
  }
  async sessionRevert(sessionId: string, opts: { force?: boolean }, c: CallContext): Promise<RevertReport> {
    return this.json({ method: 'POST', path: `/sessions/${enc(sessionId)}/revert`, json: { ...(opts.force !== undefined ? { force: opts.force } : {}) }, c });
  }

  // ---------------------------------------------------------------- access

  async rebacCreate(grant: GrantInput, c: CallContext): Promise<Grant> {
    return this.json({ method: 'POST', path: '/rebac', json: { ...grant }, c });
  }
  async rebacList(filter: GrantFilter, c: CallContext): Promise<Grant[]> {
    return (await this.json<{ grants: Grant[] }>({ method: 'GET', path: '/rebac', query: { ...filter }, c })).grants;
  }
  async rebacDelete(grant: GrantInput, c: CallContext): Promise<void> {
    return this.none({ method: 'POST', path: '/rebac/delete', json: { ...grant }, c });
  }
  async keyCreate(opts: { subject: string; admin?: boolean; expiresIn?: string }, c: CallContext): Promise<CreatedKey> {
    return this.json({ method: 'POST', path: '/keys', json: { subject: opts.subject, admin: !!opts.admin, ...(opts.expiresIn ? { expires_in: opts.expiresIn } : {}) }, c });
  }
  async keyList(c: CallContext): Promise<ApiKeyInfo[]> {
    return (await this.json<{ keys: ApiKeyInfo[] }>({ method: 'GET', path: '/keys', c })).keys;
  }
  async keyRevoke(keyId: string, c: CallContext): Promise<void> {
    return this.none({ method: 'DELETE', path: `/keys/${enc(keyId)}`, c });
  }

  async fsck(opts: { repair?: boolean }, c: CallContext): Promise<FsckReport> {
    return this.json({ method: 'POST', path: '/admin/fsck', json: { repair: !!opts.repair }, c });
  }
  async gc(opts: GcOptions, c: CallContext): Promise<GcReport> {
    return this.json({ method: 'POST', path: '/admin/gc', json: { ...opts }, c });
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}

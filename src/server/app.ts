/**
 * The HTTP API: one route per Api method under /api/v1, over the services of
 * one data directory. Authentication is a hook (`authenticate`), so the same
 * app serves the daemon's local socket (local trust) and, later, TCP clients
 * with API keys.
 *
 * Errors are always `{ "error": { "code", "message", "details"? } }` with the
 * catalog's HTTP status (src/errors.ts); bad input is a 400 INVALID_ARGUMENT,
 * never a 500. File bodies are streamed through engine handles in both
 * directions. Access logs (one line per request) carry no headers and no
 * bodies.
 */
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { readFileSync } from 'node:fs';
import { ERRORS, NexusError, fromSystemError, isErrorCode, type ErrorCode } from '../errors.js';
import type { OpContext } from '../engine/credentials.js';
import type { Services } from '../services/services.js';
import { openReadStream, writeFromStream } from '../services/file-streams.js';
import { LocalApi } from '../sdk/local-api.js';
import type { CallContext, GrantFilter, GrantInput } from '../sdk/api.js';
import { logger as projectLogger, type Logger } from '../util/logger.js';

/** Who is calling, as an authenticator establishes it. */
export interface Caller {
  ctx: OpContext;
}

export type Authenticate = (req: FastifyRequest) => Promise<Caller> | Caller;

export interface AppOptions {
  services: Services;
  authenticate: Authenticate;
  /** Largest JSON request body, in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Largest file upload (PUT /api/v1/files/content), in bytes (default 16 GiB). */
  maxFileBytes?: number;
  /** pino logger for access and error logs; false for none (default: the project logger, component "server"). */
  logger?: Logger | false;
  /**
   * Requests per second per principal, with a burst of two seconds' worth
   * (default: no limit). Failed authentications count against the caller's
   * address at the same rate, so guessing keys is throttled too.
   */
  rateLimit?: number;
  /**
   * Drop a request whose body stops arriving for this long while the server
   * waits for it, in ms (default: no limit; `nexus serve` sets one for TCP).
   * A stalled upload is undone and gives up its path's upload turn. Time the
   * server itself spends (waiting for that turn, a long restore) never counts.
   */
  bodyIdleTimeoutMs?: number;
}

/** A token bucket per principal: over the rate, RATE_LIMITED (429) until tokens come back. */
class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly perSecond: number) {}

  take(who: string): void {
    const now = Date.now();
    const burst = this.perSecond * 2;
    const b = this.buckets.get(who) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(who, b);
      throw new NexusError('RATE_LIMITED', `Too many requests for ${who}: the limit is ${this.perSecond} per second`);
    }
    b.tokens -= 1;
    this.buckets.set(who, b);
    if (this.buckets.size > 100_000) this.buckets.clear();
  }
}

export const API_PREFIX = '/api/v1';
export const SESSION_HEADER = 'x-nexus-session';
export const DEFAULT_BODY_LIMIT = 1 << 20;
export const DEFAULT_MAX_FILE_BYTES = 16 * 2 ** 30;

const VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

// ------------------------------------------------------------------ schemas

const str = { type: 'string' } as const;
/** Query strings are text: booleans are spelled true/false (or 1/0). */
const qbool = { type: 'string', enum: ['true', 'false', '1', '0'] } as const;
const obj = { type: 'object' } as const;

function query(props: Record<string, object>, required: string[] = []) {
  return { type: 'object', properties: props, required, additionalProperties: false } as const;
}
const body = query;

const asBool = (v: string | undefined) => v === 'true' || v === '1';

/**
 * An API key in a URL (`DELETE /keys/<the key itself>`, or a client that puts
 * one in the query string) keeps its id and loses its secret before the URL
 * is logged.
 */
const KEY_IN_TEXT = /(nx_[0-9a-fA-F]{16}_)[0-9a-fA-F]{48}/g;
export function redactKeys(text: string): string {
  return text.replace(KEY_IN_TEXT, '$1[redacted]');
}

/** JSON bodies nested deeper than this are refused (400) rather than handed to code that recurses over them. */
export const MAX_JSON_DEPTH = 64;

function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

// ------------------------------------------------------------------ errors

interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/** Any thrown value as a catalog error, and whether it is a bug to log loudly. */
export function toNexusError(err: unknown): { error: NexusError; unexpected: boolean } {
  if (err instanceof NexusError) {
    return { error: err, unexpected: err.status >= 500 && err.code !== 'NO_SPACE' && err.code !== 'NOT_SUPPORTED' };
  }
  const fe = err as Partial<FastifyError> & { validation?: { instancePath?: string; message?: string; params?: unknown }[]; validationContext?: string };
  if (fe && Array.isArray(fe.validation)) {
    return {
      error: new NexusError('INVALID_ARGUMENT', `Invalid request: ${fe.message ?? 'validation failed'}`, {
        part: fe.validationContext,
        errors: fe.validation.map((v) => ({ path: v.instancePath ?? '', message: v.message ?? '', params: v.params })),
      }),
      unexpected: false,
    };
  }
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : undefined;
  if (status !== undefined && status >= 400 && status < 500) {
    // Fastify's own refusals (body parsing, content types, URLs).
    if (status === 413) return { error: new NexusError('PAYLOAD_TOO_LARGE', fe.message || ERRORS.PAYLOAD_TOO_LARGE.message), unexpected: false };
    if (status === 404) return { error: new NexusError('NOT_FOUND', fe.message || 'Not found'), unexpected: false };
    let message = fe.message || ERRORS.INVALID_ARGUMENT.message;
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') message = 'Unsupported Content-Type: request bodies are application/json (file content: any type)';
    return { error: new NexusError('INVALID_ARGUMENT', message, fe.code ? { reason: fe.code } : undefined), unexpected: false };
  }
  // The data directory's own failures (a full disk) are not bugs.
  const mapped = fromSystemError(err);
  if (mapped.code !== 'INTERNAL') return { error: mapped, unexpected: false };
  const e = new NexusError('INTERNAL', `Internal error: ${(err as Error)?.message ?? String(err)}`);
  e.cause = err;
  return { error: e, unexpected: true };
}

function errorBody(e: NexusError, requestId: string, unexpected: boolean): ErrorBody {
  // An unexpected error's message may name server internals: the log has it, the client gets the request id.
  if (unexpected && e.code === 'INTERNAL') {
    return { error: { code: 'INTERNAL', message: `${ERRORS.INTERNAL.message} (request ${requestId})`, details: { request_id: requestId } } };
  }
  return { error: { code: isErrorCode(e.code) ? e.code : 'INTERNAL', message: e.message, ...(e.details ? { details: e.details } : {}) } };
}

function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const { error, unexpected } = toNexusError(err);
  const req = reply.request;
  if (!(err instanceof NexusError) && (req.raw.destroyed || reply.raw.destroyed) && !req.raw.complete) {
    // The client went away mid-request (an upload broken off): not a bug, and nobody to answer.
    reply.log.info({ method: req.method, url: redactKeys(req.url), reason: (err as Error)?.message }, 'client closed the connection before the request completed');
  } else if (unexpected) {
    reply.log.error({ err: (error.cause as Error) ?? error, method: req.method, url: redactKeys(req.url) }, 'unexpected error while serving a request');
  }
  settleUnreadBody(reply);
  return reply.code(error.status).type('application/json; charset=utf-8').send(errorBody(error, String(req.id), unexpected));
}

/** Bytes of a refused request body the server reads and drops so the client can read its answer. */
const DRAIN_BYTES = 16 * 2 ** 20;
const DRAIN_MS = 10_000;

/** Requests that were told `100 Continue`. */
const continued = new WeakSet<FastifyRequest['raw']>();

function expectsContinue(req: FastifyRequest): boolean {
  return String(req.headers.expect ?? '').toLowerCase() === '100-continue';
}

/** Tell a client that waits for `100 Continue` to send its body (once). */
function sendContinue(req: FastifyRequest, reply: FastifyReply): void {
  if (expectsContinue(req) && !continued.has(req.raw) && !reply.raw.headersSent) {
    continued.add(req.raw);
    reply.raw.writeContinue();
  }
}

/**
 * An error answered before the request body was read (an upload refused for
 * its size, session, path...). A client that waits for `100 Continue` never
 * got it and will not send the body: close the connection after the answer.
 * Any other client is sending it right now; closing would reset the
 * connection and lose the answer in its receive buffer, so the body is read
 * and dropped, up to DRAIN_BYTES or DRAIN_MS, and the connection closed
 * only past that.
 */
function settleUnreadBody(reply: FastifyReply): void {
  const raw = reply.request.raw;
  if (raw.complete || raw.destroyed) return;
  if (expectsContinue(reply.request) && !continued.has(raw)) {
    reply.header('connection', 'close');
    return;
  }
  let dropped = 0;
  const cut = () => raw.socket?.destroy();
  const timer = setTimeout(cut, DRAIN_MS);
  timer.unref();
  raw.on('data', (b: Buffer) => {
    dropped += b.length;
    if (dropped > DRAIN_BYTES) cut();
  });
  raw.once('end', () => clearTimeout(timer));
  raw.once('close', () => clearTimeout(timer));
  raw.resume();
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (headers or
 * URL over the size limit, a malformed request line, a NUL in the URL): the
 * catalog's JSON error shape, as everywhere else, then the connection closes.
 */
function answerClientError(this: FastifyInstance, err: NodeJS.ErrnoException, socket: import('node:net').Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const message =
    err.code === 'HPE_HEADER_OVERFLOW' ? 'Request line or headers too large (the limit is 16 KiB)'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'The request took too long to arrive'
        : `Malformed HTTP request${err.code ? ` (${err.code})` : ''}`;
  const body = JSON.stringify({ error: { code: 'INVALID_ARGUMENT', message, details: { reason: err.code ?? 'unknown' } } });
  this.log.debug({ reason: err.code }, 'refused a malformed request');
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 400 Bad Request\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** Why a stalled request is dropped (logged as the client going away). */
function stalled(ms: number): Error {
  return new Error(`no request body data for ${ms} ms: connection dropped`);
}

/** For bodies read as they come (JSON): drop the connection when no data arrives for `ms`. */
function dropIfBodyStalls(raw: FastifyRequest['raw'], ms: number): void {
  if (raw.complete || raw.destroyed) return;
  let timer: NodeJS.Timeout;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => raw.destroy(stalled(ms)), ms);
    timer.unref();
  };
  arm();
  raw.on('data', arm);
  const done = () => {
    clearTimeout(timer);
    raw.off('data', arm);
  };
  raw.once('end', done);
  raw.once('close', done);
}

/**
 * The body of an upload, read on demand: each wait for the next piece may
 * last `ms` at most, then the connection is dropped (and the upload undone
 * by the writer). Between reads, while the server writes or waits, no clock runs.
 */
function idleLimited(raw: FastifyRequest['raw'], ms: number): AsyncIterableIterator<Buffer> {
  const it = raw.iterator({ destroyOnReturn: false }) as AsyncIterableIterator<Buffer>;
  const limited: AsyncIterableIterator<Buffer> = {
    async next() {
      const timer = setTimeout(() => raw.destroy(stalled(ms)), ms);
      timer.unref();
      try {
        return await it.next();
      } finally {
        clearTimeout(timer);
      }
    },
    return: (value?: unknown) => (it.return ? it.return(value) : Promise.resolve({ done: true as const, value: undefined })),
    [Symbol.asyncIterator]: () => limited,
  };
  return limited;
}

// ------------------------------------------------------------------ app

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { services } = opts;
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const log = opts.logger === undefined ? projectLogger('server') : opts.logger;

  const app = Fastify({
    ...(log === false ? { logger: false } : { loggerInstance: log }),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    exposeHeadRoutes: false,
    // Strict input: no type coercion, unknown fields refused rather than dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, useDefaults: false } },
    frameworkErrors: (err, _req, reply) => {
      sendError(reply, err);
    },
    clientErrorHandler: answerClientError,
  }) as unknown as FastifyInstance;

  const callers = new WeakMap<FastifyRequest, Caller>();

  // `Expect: 100-continue`: Node would answer 100 at once; instead the request
  // goes through routing, authentication and validation first, and only a
  // request that will be served is asked for its body (sendContinue).
  app.server.on('checkContinue', (req, res) => app.server.emit('request', req, res));

  // Only JSON bodies on API routes (the file-content route accepts anything).
  app.removeContentTypeParser('text/plain');
  // Fastify's JSON parser (`__proto__` and `constructor.prototype` refused), plus a nesting limit.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, text, done) => {
    parseJson(req, String(text), (err: Error | null, value?: unknown) => {
      if (err) return done(err, undefined);
      if (nestedDeeperThan(value, MAX_JSON_DEPTH)) {
        return done(new NexusError('INVALID_ARGUMENT', `Invalid request: JSON nested deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      }
      done(null, value);
    });
  });

  app.setErrorHandler((err, _req, reply) => sendError(reply, err));
  app.setNotFoundHandler((req, reply) => {
    sendError(reply, new NexusError('NOT_FOUND', `No such route: ${req.method} ${req.url.split('?')[0]}`));
  });

  // One access line per request: no headers (Authorization), no bodies.
  app.addHook('onResponse', async (req, reply) => {
    const caller = callers.get(req);
    req.log.info(
      {
        method: req.method,
        url: redactKeys(req.url),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        principal: caller?.ctx.principal ?? undefined,
        session: typeof req.headers[SESSION_HEADER] === 'string' ? req.headers[SESSION_HEADER] : undefined,
        remote: req.ip,
      },
      'request',
    );
  });

  app.get('/health', async () => ({ status: 'ok', version: VERSION }));

  await app.register(
    async (api) => {
      const limiter = opts.rateLimit ? new RateLimiter(opts.rateLimit) : undefined;
      api.addHook('onRequest', async (req) => {
        let c: Caller;
        try {
          c = await opts.authenticate(req);
        } catch (e) {
          // Wrong keys are limited by where they come from: RATE_LIMITED once over the rate, else the 401.
          if (limiter && e instanceof NexusError && e.code === 'UNAUTHENTICATED') limiter.take(`address:${req.ip}`);
          throw e;
        }
        callers.set(req, c);
        limiter?.take(c.ctx.principal ?? 'anonymous');
      });
      // JSON bodies are read by the parser, after authentication: ask for them now.
      // (The file-content route asks in its handler, once the upload is accepted.)
      api.addHook('preParsing', async (req, reply) => {
        if (!(req.method === 'PUT' && req.routeOptions.url === `${API_PREFIX}/files/content`)) {
          sendContinue(req, reply);
          // The parser reads the body at once: a pause is the client's.
          if (opts.bodyIdleTimeoutMs) dropIfBodyStalls(req.raw, opts.bodyIdleTimeoutMs);
        }
      });
      routes(api, services, callers, maxFileBytes, opts.bodyIdleTimeoutMs);
    },
    { prefix: API_PREFIX },
  );

  return app;
}

function sessionOf(req: FastifyRequest): string | null {
  const h = req.headers[SESSION_HEADER];
  if (h === undefined || h === '') return null;
  if (typeof h !== 'string' || h.includes(',')) throw new NexusError('INVALID_ARGUMENT', 'Give one X-Nexus-Session header');
  return h.trim();
}

function routes(api: FastifyInstance, services: Services, callers: WeakMap<FastifyRequest, Caller>, maxFileBytes: number, bodyIdleTimeoutMs?: number): void {
  const caller = (req: FastifyRequest): Caller => {
    const c = callers.get(req);
    if (!c) throw new NexusError('UNAUTHENTICATED');
    return c;
  };
  const local = (req: FastifyRequest) => new LocalApi(services, caller(req).ctx);
  const cc = (req: FastifyRequest): CallContext => ({ sessionId: sessionOf(req) });
  /** The engine context of a streamed call: as LocalApi builds it (an active session, if named). */
  const opCtx = async (req: FastifyRequest): Promise<OpContext> => {
    const base = caller(req).ctx;
    const sessionId = sessionOf(req);
    if (!sessionId) return base;
    await services.sessions.requireActive(sessionId, base);
    return { ...base, sessionId };
  };

  type Q<T> = { Querystring: T };
  type B<T> = { Body: T };
  type P<T> = { Params: T };

  // ---------------------------------------------------------------- files

  // Raw bytes in and out, streamed. The upload route reads the request itself.
  api.register(async (content) => {
    content.removeAllContentTypeParsers();
    content.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

    content.put<Q<{ path: string; parents?: string }>>(
      '/files/content',
      { schema: { querystring: query({ path: str, parents: qbool }, ['path']) } },
      async (req, reply) => {
        const declared = req.headers['content-length'];
        if (declared !== undefined && Number(declared) > maxFileBytes) {
          throw new NexusError('PAYLOAD_TOO_LARGE', `Request body is larger than the limit of ${maxFileBytes} bytes`, { limit: maxFileBytes });
        }
        const ctx = await opCtx(req);
        // Not destroyed when the write stops early: a refused body is drained (settleUnreadBody).
        const body = bodyIdleTimeoutMs ? idleLimited(req.raw, bodyIdleTimeoutMs) : (req.raw.iterator({ destroyOnReturn: false }) as AsyncIterableIterator<Buffer>);
        const info = await writeFromStream(services, req.query.path, { [Symbol.asyncIterator]: () => body }, ctx, {
          parents: asBool(req.query.parents),
          maxBytes: maxFileBytes,
          beforeRead: () => sendContinue(req, reply),
        });
        return reply.code(200).send(info);
      },
    );

    content.route<Q<{ path: string }>>({
      method: ['GET', 'HEAD'],
      url: '/files/content',
      schema: { querystring: query({ path: str }, ['path']) },
      handler: async (req, reply) => {
        const ctx = await opCtx(req);
        if (req.method === 'HEAD') {
          const info = await services.files.stat(req.query.path, ctx);
          if (info.type === 'directory') throw new NexusError('IS_A_DIRECTORY', `Is a directory: ${info.path}`);
          return reply.header('content-type', 'application/octet-stream').header('content-length', String(info.size)).send();
        }
        const { info, stream } = await openReadStream(services, req.query.path, ctx);
        return reply
          .header('content-type', 'application/octet-stream')
          .header('content-length', String(info.size))
          .header('last-modified', new Date(info.mtime).toUTCString())
          .send(stream);
      },
    });
  });

  api.get<Q<{ path: string }>>('/files/stat', { schema: { querystring: query({ path: str }, ['path']) } }, async (req) =>
    local(req).stat(req.query.path, cc(req)),
  );
  api.get<Q<{ path: string }>>('/files/exists', { schema: { querystring: query({ path: str }, ['path']) } }, async (req) => ({
    exists: await local(req).exists(req.query.path, cc(req)),
  }));
  api.get<Q<{ path: string; recursive?: string; session_id?: string }>>(
    '/files/list',
    { schema: { querystring: query({ path: str, recursive: qbool, session_id: str }, ['path']) } },
    async (req) => ({
      files: await local(req).list(req.query.path, { recursive: asBool(req.query.recursive), sessionId: req.query.session_id }, cc(req)),
    }),
  );
  api.post<B<{ path: string; parents?: boolean }>>(
    '/files/mkdir',
    { schema: { body: body({ path: str, parents: { type: 'boolean' } }, ['path']) } },
    async (req, reply) => reply.code(201).send(await local(req).mkdir(req.body.path, { parents: req.body.parents }, cc(req))),
  );
  api.post<B<{ path: string; recursive?: boolean }>>(
    '/files/delete',
    { schema: { body: body({ path: str, recursive: { type: 'boolean' } }, ['path']) } },
    async (req, reply) => {
      await local(req).delete(req.body.path, { recursive: req.body.recursive }, cc(req));
      return reply.code(204).send();
    },
  );
  api.post<B<{ from: string; to: string }>>(
    '/files/rename',
    { schema: { body: body({ from: str, to: str }, ['from', 'to']) } },
    async (req, reply) => {
      await local(req).rename(req.body.from, req.body.to, cc(req));
      return reply.code(204).send();
    },
  );

  // ---------------------------------------------------------------- workspaces

  api.post<B<{ path: string; metadata?: Record<string, unknown> }>>(
    '/workspaces',
    { schema: { body: body({ path: str, metadata: obj }, ['path']) } },
    async (req, reply) => reply.code(201).send(await local(req).workspaceCreate(req.body.path, req.body.metadata ?? {}, cc(req))),
  );
  api.get('/workspaces', { schema: { querystring: query({}) } }, async (req) => ({ workspaces: await local(req).workspaceList(cc(req)) }));
  api.get<Q<{ path: string }>>('/workspaces/info', { schema: { querystring: query({ path: str }, ['path']) } }, async (req) =>
    local(req).workspaceInfo(req.query.path, cc(req)),
  );
  api.delete<Q<{ path: string }>>('/workspaces', { schema: { querystring: query({ path: str }, ['path']) } }, async (req, reply) => {
    await local(req).workspaceDelete(req.query.path, cc(req));
    return reply.code(204).send();
  });

  // ---------------------------------------------------------------- snapshots

  api.post<B<{ path: string; name?: string | null; metadata?: Record<string, unknown> }>>(
    '/snapshots',
    { schema: { body: body({ path: str, name: { type: ['string', 'null'] }, metadata: obj }, ['path']) } },
    async (req, reply) =>
      reply.code(201).send(await local(req).snapshotCreate(req.body.path, { name: req.body.name ?? null, metadata: req.body.metadata ?? {} }, cc(req))),
  );
  api.get<Q<{ path?: string }>>('/snapshots', { schema: { querystring: query({ path: str }) } }, async (req) => ({
    snapshots: await local(req).snapshotList(req.query.path, cc(req)),
  }));
  api.get<P<{ id: string }>>('/snapshots/:id', async (req) => local(req).snapshotGet(req.params.id, cc(req)));
  api.delete<P<{ id: string }>>('/snapshots/:id', async (req, reply) => {
    await local(req).snapshotDelete(req.params.id, cc(req));
    return reply.code(204).send();
  });
  api.get<P<{ id: string }> & Q<{ to?: string }>>('/snapshots/:id/diff', { schema: { querystring: query({ to: str }) } }, async (req) =>
    local(req).snapshotDiff(req.params.id, req.query.to, cc(req)),
  );
  api.post<P<{ id: string }> & B<{ path: string }>>(
    '/snapshots/:id/restore',
    { schema: { body: body({ path: str }, ['path']) } },
    async (req) => local(req).snapshotRestore(req.body.path, req.params.id, cc(req)),
  );

  // ---------------------------------------------------------------- access

  const grantSchema = body(
    { subject_type: str, subject_id: str, relation: str, object_type: str, object_id: str },
    ['subject_type', 'subject_id', 'relation', 'object_type', 'object_id'],
  );
  api.post<B<GrantInput>>('/rebac', { schema: { body: grantSchema } }, async (req, reply) =>
    reply.code(201).send(await local(req).rebacCreate(req.body, cc(req))),
  );
  api.get<Q<GrantFilter>>(
    '/rebac',
    { schema: { querystring: query({ subject_type: str, subject_id: str, relation: str, object_type: str, object_id: str }) } },
    async (req) => ({ grants: await local(req).rebacList(req.query, cc(req)) }),
  );
  api.post<B<GrantInput>>('/rebac/delete', { schema: { body: grantSchema } }, async (req, reply) => {
    await local(req).rebacDelete(req.body, cc(req));
    return reply.code(204).send();
  });
  api.post<B<{ subject: string; admin?: boolean; expires_in?: string }>>(
    '/keys',
    // An empty expires_in is a mistake, not "never expires".
    { schema: { body: body({ subject: str, admin: { type: 'boolean' }, expires_in: { type: 'string', minLength: 1 } }, ['subject']) } },
    async (req, reply) =>
      reply.code(201).send(await local(req).keyCreate({ subject: req.body.subject, admin: req.body.admin, expiresIn: req.body.expires_in }, cc(req))),
  );
  api.get('/keys', { schema: { querystring: query({}) } }, async (req) => ({ keys: await local(req).keyList(cc(req)) }));
  api.delete<P<{ id: string }>>('/keys/:id', async (req, reply) => {
    await local(req).keyRevoke(req.params.id, cc(req));
    return reply.code(204).send();
  });

  // ---------------------------------------------------------------- maintenance

  api.post<B<{ repair?: boolean }>>('/admin/fsck', { schema: { body: body({ repair: { type: 'boolean' } }) } }, async (req) =>
    local(req).fsck({ repair: req.body?.repair }, cc(req)),
  );
  api.post<B<{ dryRun?: boolean; keepVersions?: number; keepAge?: string }>>(
    '/admin/gc',
    { schema: { body: body({ dryRun: { type: 'boolean' }, keepVersions: { type: 'integer', minimum: 0 }, keepAge: str }) } },
    async (req) => local(req).gc(req.body ?? {}, cc(req)),
  );

  // ---------------------------------------------------------------- sessions

  api.post<B<{ agent_id: string; metadata?: Record<string, unknown> }>>(
    '/sessions',
    { schema: { body: body({ agent_id: str, metadata: obj }, ['agent_id']) } },
    async (req, reply) => reply.code(201).send(await local(req).sessionCreate(req.body.agent_id, req.body.metadata ?? {}, cc(req))),
  );
  api.get<Q<{ agent_id?: string }>>('/sessions', { schema: { querystring: query({ agent_id: str }) } }, async (req) => ({
    sessions: await local(req).sessionList({ agentId: req.query.agent_id }, cc(req)),
  }));
  api.get<P<{ id: string }>>('/sessions/:id', async (req) => local(req).sessionGet(req.params.id, cc(req)));
  api.post<P<{ id: string }>>('/sessions/:id/end', async (req) => local(req).sessionEnd(req.params.id, cc(req)));
  api.get<P<{ id: string }>>('/sessions/:id/files', async (req) => ({ files: await local(req).sessionFiles(req.params.id, cc(req)) }));
  api.get<P<{ id: string }>>('/sessions/:id/diff', async (req) => local(req).sessionChanges(req.params.id, cc(req)));
  api.post<P<{ id: string }> & B<{ force?: boolean } | undefined>>(
    '/sessions/:id/revert',
    {
      schema: { body: body({ force: { type: 'boolean' } }) },
      // No body at all means no options.
      preValidation: async (req) => {
        if (req.body === undefined) req.body = {};
      },
    },
    async (req) => local(req).sessionRevert(req.params.id, { force: req.body?.force }, cc(req)),
  );
}

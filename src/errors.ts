/**
 * The one error catalog. Every failure Nexus reports is a NexusError carrying a
 * stable code; the FUSE adapter, the HTTP server, the CLI and the SDK translate
 * from this table and nowhere else.
 */
import { constants as osConstants } from 'node:os';

export interface ErrorSpec {
  /** errno name returned at the mount (negated by the FUSE adapter). */
  readonly errno: keyof typeof osConstants.errno;
  /** HTTP status returned by the server. */
  readonly status: number;
  /** Default human message. */
  readonly message: string;
}

export const ERRORS = {
  NOT_FOUND: { errno: 'ENOENT', status: 404, message: 'No such file or directory' },
  ALREADY_EXISTS: { errno: 'EEXIST', status: 409, message: 'Already exists' },
  NOT_EMPTY: { errno: 'ENOTEMPTY', status: 409, message: 'Directory not empty' },
  NOT_A_DIRECTORY: { errno: 'ENOTDIR', status: 400, message: 'Not a directory' },
  IS_A_DIRECTORY: { errno: 'EISDIR', status: 400, message: 'Is a directory' },
  INVALID_ARGUMENT: { errno: 'EINVAL', status: 400, message: 'Invalid argument' },
  NAME_TOO_LONG: { errno: 'ENAMETOOLONG', status: 400, message: 'File name too long' },
  PERMISSION_DENIED: { errno: 'EACCES', status: 403, message: 'Permission denied' },
  NOT_PERMITTED: { errno: 'EPERM', status: 403, message: 'Operation not permitted' },
  UNAUTHENTICATED: { errno: 'EACCES', status: 401, message: 'Missing or invalid API key' },
  READ_ONLY: { errno: 'EROFS', status: 403, message: 'Read-only file system' },
  CROSS_DEVICE: { errno: 'EXDEV', status: 400, message: 'Cross-device link' },
  BAD_HANDLE: { errno: 'EBADF', status: 400, message: 'Bad file handle' },
  NO_ATTRIBUTE: { errno: 'ENODATA', status: 404, message: 'No such attribute' },
  RANGE: { errno: 'ERANGE', status: 400, message: 'Result too large for buffer' },
  TOO_MANY_LINKS: { errno: 'EMLINK', status: 409, message: 'Too many links' },
  SYMLINK_LOOP: { errno: 'ELOOP', status: 400, message: 'Too many levels of symbolic links' },
  VALUE_TOO_BIG: { errno: 'E2BIG', status: 413, message: 'Attribute value too large' },
  FILE_TOO_BIG: { errno: 'EFBIG', status: 413, message: 'File too large' },
  PAYLOAD_TOO_LARGE: { errno: 'EFBIG', status: 413, message: 'Request body too large' },
  NO_SPACE: { errno: 'ENOSPC', status: 507, message: 'No space left on device' },
  NOT_SUPPORTED: { errno: 'EOPNOTSUPP', status: 501, message: 'Operation not supported' },
  BUSY: { errno: 'EBUSY', status: 409, message: 'Resource busy' },
  CONFLICT: { errno: 'EEXIST', status: 409, message: 'Conflict' },
  RATE_LIMITED: { errno: 'EAGAIN', status: 429, message: 'Too many requests' },
  LOCKED: { errno: 'EBUSY', status: 409, message: 'Data directory is in use by another process' },
  SCHEMA_TOO_NEW: { errno: 'EINVAL', status: 500, message: 'Data directory was written by a newer Nexus' },
  CORRUPT: { errno: 'EIO', status: 500, message: 'Stored data is corrupt' },
  INTERNAL: { errno: 'EIO', status: 500, message: 'Internal error' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export class NexusError extends Error {
  readonly code: ErrorCode;
  readonly errno: ErrorSpec['errno'];
  readonly status: number;
  /** Extra machine-readable facts (the path, the conflicting files...). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>) {
    const spec: ErrorSpec = ERRORS[code];
    // Expected refusals (ENOENT on a lookup, ENODATA on getxattr) are hot at the
    // mount; capturing a stack costs more than the operation. Bugs keep theirs.
    const keepStack = code === 'INTERNAL' || code === 'CORRUPT';
    const limit = Error.stackTraceLimit;
    if (!keepStack) Error.stackTraceLimit = 0;
    super(message ?? spec.message);
    Error.stackTraceLimit = limit;
    this.name = 'NexusError';
    this.code = code;
    this.errno = spec.errno;
    this.status = spec.status;
    this.details = details;
  }

  /** Negative errno number as FUSE wants it. */
  get errnoNumber(): number {
    return osConstants.errno[this.errno];
  }
}

export function isNexusError(e: unknown): e is NexusError {
  return e instanceof NexusError;
}

/** Shorthand constructors keep call sites readable: `throw notFound(path)`. */
export const notFound = (what: string) => new NexusError('NOT_FOUND', `${ERRORS.NOT_FOUND.message}: ${what}`, { path: what });
export const exists = (what: string) => new NexusError('ALREADY_EXISTS', `${ERRORS.ALREADY_EXISTS.message}: ${what}`, { path: what });
export const denied = (what: string) => new NexusError('PERMISSION_DENIED', `${ERRORS.PERMISSION_DENIED.message}: ${what}`, { path: what });
export const invalid = (why: string) => new NexusError('INVALID_ARGUMENT', why);

/**
 * Translate a Node system error (from node:fs on the data directory) into the
 * catalog. Only errors with a meaning for the caller are mapped; anything else
 * is an INTERNAL error and is logged loudly by whoever reports it.
 */
export function fromSystemError(e: unknown): NexusError {
  if (e instanceof NexusError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (isSqliteCorruption(e)) return corruptDatabase(e);
  // SQLite reports a full disk as SQLITE_FULL (or an I/O error carrying ENOSPC).
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') return new NexusError('NO_SPACE');
  if (code === 'EROFS') return new NexusError('READ_ONLY', 'Data directory is on a read-only file system');
  const err = new NexusError('INTERNAL', `Internal error: ${(e as Error)?.message ?? String(e)}`);
  err.cause = e;
  return err;
}

/** SQLite says the database file itself is damaged (not a database, or a malformed page). */
export function isSqliteCorruption(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
}

/**
 * The metadata database is damaged: CORRUPT, naming the file. `database` is
 * its path when the caller knows it (SQLite errors come only from meta.db).
 * `nexus fsck` explains the damage in detail (details.sqlite marks this case).
 */
export function corruptDatabase(e: unknown, database = 'meta.db'): NexusError {
  const code = String((e as { code?: unknown } | undefined)?.code ?? 'SQLITE_CORRUPT');
  const why = (e as Error | undefined)?.message ?? code;
  const err = new NexusError('CORRUPT', `Metadata database ${database} is corrupt (${why}); 'nexus fsck' explains the damage`, { database, sqlite: code });
  err.cause = e;
  return err;
}

/*
 * Typed error classes, for SDK users: `catch (e) { if (e instanceof
 * PermissionError) ... }`. Each catalog code belongs to one class; `typed()`
 * turns any NexusError (local, or rebuilt from a server's JSON) into its class.
 */
export class PermissionError extends NexusError {}
export class AuthenticationError extends PermissionError {}
export class NotFoundError extends NexusError {}
export class ConflictError extends NexusError {}
export class InvalidArgumentError extends NexusError {}

const CLASS_OF: Partial<Record<ErrorCode, new (code: ErrorCode, message?: string, details?: Record<string, unknown>) => NexusError>> = {
  PERMISSION_DENIED: PermissionError,
  NOT_PERMITTED: PermissionError,
  READ_ONLY: PermissionError,
  UNAUTHENTICATED: AuthenticationError,
  NOT_FOUND: NotFoundError,
  NO_ATTRIBUTE: NotFoundError,
  ALREADY_EXISTS: ConflictError,
  CONFLICT: ConflictError,
  NOT_EMPTY: ConflictError,
  BUSY: ConflictError,
  LOCKED: ConflictError,
  INVALID_ARGUMENT: InvalidArgumentError,
  NAME_TOO_LONG: InvalidArgumentError,
  NOT_A_DIRECTORY: InvalidArgumentError,
  IS_A_DIRECTORY: InvalidArgumentError,
  SYMLINK_LOOP: InvalidArgumentError,
  RANGE: InvalidArgumentError,
  VALUE_TOO_BIG: InvalidArgumentError,
  FILE_TOO_BIG: InvalidArgumentError,
  PAYLOAD_TOO_LARGE: InvalidArgumentError,
  CROSS_DEVICE: InvalidArgumentError,
  BAD_HANDLE: InvalidArgumentError,
};

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** The typed class instance for an error (unknown errors become INTERNAL). */
export function typed(e: unknown): NexusError {
  const err = e instanceof NexusError ? e : fromSystemError(e);
  const Cls = CLASS_OF[err.code] ?? NexusError;
  if (err.constructor === Cls) return err;
  const out = new Cls(err.code, err.message, err.details);
  if (err.stack && (err.code === 'INTERNAL' || err.code === 'CORRUPT')) out.stack = err.stack;
  return out;
}

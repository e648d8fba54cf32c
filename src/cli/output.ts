/** CLI output: tables for people, JSON for scripts, one-line errors with non-zero exits. */
import { NexusError, fromSystemError, isNexusError } from '../errors.js';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
}

export function printTable<T extends object>(rows: readonly T[], columns: (keyof T & string)[]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cell = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd() + '\n';
  process.stdout.write(line(columns.map((c) => c.toUpperCase())));
  for (const r of rows) process.stdout.write(line(columns.map((c) => cell(r[c]))));
}

/** Exit codes: 1 for a failed operation, 2 for bad usage (yargs), 3 for damage found (fsck). */
export function failAndExit(e: unknown): never {
  // Failures with a meaning (a full disk, a corrupt meta.db) get their catalog code; the rest stay INTERNAL.
  const mapped = fromSystemError(e);
  const err = mapped.code === 'INTERNAL' && !isNexusError(e) ? new NexusError('INTERNAL', (e as Error)?.message ?? String(e)) : mapped;
  process.stderr.write(`nexus: ${err.message}${err.code === 'INTERNAL' ? '' : ` (${err.code})`}\n`);
  if (err.code === 'INTERNAL' && process.env.NEXUS_DEBUG) process.stderr.write(String((e as Error)?.stack) + '\n');
  process.exit(1);
}

/** Structured logging through pino: quiet by default (warn), NEXUS_LOG_LEVEL to change. */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

let root: Logger | undefined;

export function configureLogger(opts: { level?: string; destination?: DestinationStream | string | number } = {}): Logger {
  const level = opts.level ?? process.env.NEXUS_LOG_LEVEL ?? 'warn';
  const dest =
    typeof opts.destination === 'string' || typeof opts.destination === 'number'
      ? pino.destination({ dest: opts.destination, sync: true })
      : opts.destination ?? pino.destination(2);
  root = pino({ level, base: { pid: process.pid } }, dest);
  return root;
}

export function logger(component?: string): Logger {
  root ??= configureLogger();
  return component ? root.child({ component }) : root;
}

/** Times are bigint nanoseconds since the epoch everywhere inside Nexus (ext4 precision). */
export type TimeNs = bigint;

// Wall clock at start-up plus the monotonic clock since: nanosecond
// resolution, and never backwards (Date.now() and hrtime are not aligned).
const wallAtStart = BigInt(Date.now()) * 1_000_000n;
const hrAtStart = process.hrtime.bigint();
let last = 0n;

export function nowNs(): TimeNs {
  let t = wallAtStart + (process.hrtime.bigint() - hrAtStart);
  if (t <= last) t = last + 1n;
  last = t;
  return t;
}

export function nsToDate(t: TimeNs): Date {
  return new Date(Number(t / 1_000_000n));
}

export function nsToIso(t: TimeNs): string {
  return nsToDate(t).toISOString();
}

export function msToNs(ms: number): TimeNs {
  return BigInt(Math.round(ms * 1e6));
}

/** Times are bigint nanoseconds since the epoch everywhere inside Nexus (ext4 precision). */
export type TimeNs = bigint;

export function nowNs(): TimeNs {
  return BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
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

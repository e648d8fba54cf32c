import { NexusError } from '../errors.js';
import { isWithin } from '../engine/names.js';

/** The control tree at the root of every mount: never a user file, never in a snapshot. */
export const RESERVED_ROOT = '/.nexus';

export function refuseReserved(normalizedPath: string): void {
  if (isWithin(normalizedPath, RESERVED_ROOT)) throw new NexusError('NOT_PERMITTED', `${RESERVED_ROOT} is reserved for Nexus control files`);
}

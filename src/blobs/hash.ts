import { createHash } from 'node:crypto';
import type { BlobId } from './blob-store.js';

export function sha256(data: Uint8Array): BlobId {
  return createHash('sha256').update(data).digest('hex');
}

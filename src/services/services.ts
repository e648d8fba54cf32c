/** The operations users name, over one opened data directory. */
import type { Engine } from '../engine/engine.js';
import type { MetaStore } from '../meta/meta-store.js';
import { openDataDir, type OpenedDataDir } from '../engine/data-dir.js';
import { FileService } from './files.js';
import { WorkspaceService } from './workspaces.js';
import { SnapshotService } from './snapshots.js';
import { SessionService } from './sessions.js';
import { AccessService } from './access.js';
import { coalescedCollector } from './gc.js';

export class Services {
  readonly files: FileService;
  readonly workspaces: WorkspaceService;
  readonly snapshots: SnapshotService;
  readonly sessions: SessionService;
  readonly access: AccessService;

  constructor(
    readonly engine: Engine,
    readonly meta: MetaStore,
  ) {
    this.access = new AccessService(meta.access);
    this.files = new FileService(engine, meta, this.access);
    this.workspaces = new WorkspaceService(meta, this.files, this.access);
    this.snapshots = new SnapshotService(engine, meta, this.files, this.access);
    this.sessions = new SessionService(engine, meta, this.files, this.access);
    // After the disk filled up, deleting files runs the collector so the space comes back.
    engine.setReclaimer(coalescedCollector(engine, meta, engine.blobs));
  }
}

export interface OpenedServices extends OpenedDataDir {
  services: Services;
}

export async function openServices(dataDir: string, opts: { role?: string } = {}): Promise<OpenedServices> {
  const d = await openDataDir(dataDir, opts);
  return { ...d, services: new Services(d.engine, d.meta) };
}

import type { ChildProcess } from 'node:child_process';

export const REPO: string;
export const NEXUS_BIN: string;
export const fuseAvailable: boolean;
export function mountedTargets(): string[];
export function isMounted(dir: string): boolean;
export function lazyUnmount(dir: string): void;
export const startedMountpoints: Set<string>;
export const forcedUnmounts: string[];

export interface DiffMount {
  mountpoint: string;
  dataDir: string;
  base: string;
  child: ChildProcess;
  pid: number;
  alive(): boolean;
  output(): string;
  exitInfo(): { code: number | null; signal: NodeJS.Signals | null };
  stop(): Promise<void>;
  cleanup(): Promise<void>;
}

export function launchMount(opts?: {
  base?: string; mountpoint?: string; dataDir?: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv; keep?: boolean;
}): Promise<DiffMount>;

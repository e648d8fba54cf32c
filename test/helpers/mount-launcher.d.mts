import type { ChildProcess } from 'node:child_process';

export const REPO: string;
export const NEXUS_BIN: string;
export const fuseAvailable: boolean;
export function mountedTargets(): string[];
export function isMounted(dir: string): boolean;
export function lazyUnmount(dir: string): void;
export const startedMountpoints: Set<string>;
export const forcedUnmounts: string[];

export interface LaunchedMount {
  mountpoint: string;
  dataDir: string;
  base: string;
  child: ChildProcess;
  pid: number;
  alive(): boolean;
  output(): string;
  exitInfo(): { code: number | null; signal: NodeJS.Signals | null };
  /** SIGTERM the daemon (commits, unmounts) and wait for it to exit; unmounts lazily if it did not. */
  stop(): Promise<void>;
  /** kill -9 the daemon, leaving a stale mount behind (as a crash would). */
  kill(): Promise<void>;
  /** Stop, make sure nothing stays mounted, and remove the base directory if the launcher made it. */
  cleanup(): Promise<void>;
}

export function launchMount(opts?: {
  base?: string; mountpoint?: string; dataDir?: string; extraArgs?: string[]; env?: NodeJS.ProcessEnv; keep?: boolean;
}): Promise<LaunchedMount>;

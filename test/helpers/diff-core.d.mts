import type { LaunchedMount } from './mount-launcher.mjs';

export const KiB: number;
export const MiB: number;
export const CHUNK: number;
export const SMALL: number;
export const MAX_SPAN: number;
export const NSLOTS: number;

/** One operation of a sequence; fields depend on `op` (see test/helpers/diff-core.mjs). */
export interface Op {
  op: string;
  [field: string]: unknown;
}

export interface Failure {
  step: number;
  op: Op;
  category: 'result' | 'tree' | 'slots' | 'crash';
  detail: unknown;
}

export interface SeedReport {
  seed: number;
  ok: boolean;
  ops: number;
  ms: number;
  stats?: Record<string, number>;
  failure?: Failure;
  signature?: string;
  minimal?: Op[];
  minimalFailure?: Failure;
  reproduced?: boolean;
  confirmedOnFreshMount?: boolean;
  replays?: number;
  shrinkTimedOut?: boolean;
  note?: string;
  savedTo?: string;
}

export interface Prng {
  next(): number;
  float(): number;
  int(n: number): number;
  chance(p: number): boolean;
  pick<T>(arr: T[]): T;
}
export function prng(seed: number): Prng;
export function makeData(len: number, spec: string): Buffer;

export interface LabOptions {
  /** Self-test only: an errno the Nexus side answers instead of running the op. */
  fault?: (op: Op) => string | undefined;
  mountOptions?: Parameters<typeof import('./diff-mount.mjs').launchMount>[0];
}
export class Lab {
  constructor(opts?: LabOptions);
  mount: LaunchedMount | null;
  mountsStarted: number;
  deaths: { exit: unknown; output: string }[];
  dispose(): Promise<void>;
}

export interface RunOptions {
  log?: (msg: string) => void;
  onStep?: (i: number, op: Op, failure: Failure | null) => void;
  generator?: { avoid?: string[] };
  shrink?: boolean;
  shrinkBudgetMs?: number;
  saveDir?: string;
  freshMount?: boolean;
  /** checkSeed/shrink: replay every shrinking candidate on a brand-new mount (slower; default: a fresh run directory). */
  freshMounts?: boolean;
  /**
   * Random runs: compare trees and descriptors after a step with this
   * probability only (default 1: every step); skipped steps are marked
   * `nocheck` in the ops. The comparison itself reads through the mount and
   * can hide stale-cache bugs, which sparse runs find.
   */
  compareProbability?: number;
  /** replay(): compare trees only after ops for which this is true (and at the end). */
  stateAfter?: (op: Op) => boolean;
}
export function signature(f: Failure): string;
export function replay(lab: Lab, ops: Op[], opts?: RunOptions): Promise<Failure | null>;
export function checkSeed(lab: Lab, seed: number, nops: number, opts?: RunOptions): Promise<SeedReport>;
export function formatOps(ops: Op[]): string;
export function formatFailure(f: Failure): string;
export function formatReport(r: SeedReport): string;
export function formatStats(stats: Record<string, number> | undefined): string;

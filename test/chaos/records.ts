/**
 * What the chaos workers record and the orchestrator checks: critical sections, waits, stalls
 * and errors of the workers, the faults the orchestrator injected, and the run's configuration.
 * Times are monotonic milliseconds from CLOCK_MONOTONIC (`process.hrtime`), the same clock in
 * every process on Linux, so records of different processes compare directly.
 *
 * @example
 * const section: SectionRecord = { t: 'section', pid, mode: 'fair', keys: ['f0'], ... };
 */

/** The ways the workers take locks; every round runs a subset (all by default). */
export const MODES = [
  'default',
  'fair',
  'multi',
  'reentrant',
  'nest',
  'redlock',
  'semaphore',
  'rw',
] as const;
export type Mode = (typeof MODES)[number];

/** N of the `semaphore` mode's keys: at most this many of their sections may overlap. */
export const SEMAPHORE_PERMITS = 2;

/** The redis-servers of a run: `main` for every mode but Redlock, which uses r1..r3. */
export const SERVERS = ['main', 'r1', 'r2', 'r3'] as const;
export type ServerName = (typeof SERVERS)[number];

/** Monotonic milliseconds, comparable across the processes of one machine. */
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Why a holder saw `isHeld()` false before it left its critical section. */
export type LossKind = 'lost' | 'released' | 'lapsed';

/**
 * One critical section: from entering it to the last moment its holder saw `isHeld() === true`
 * (`lastHeld`, undefined when it never did).
 */
export interface SectionRecord {
  t: 'section';
  pid: number;
  mode: Mode;
  keys: string[];
  /** The fencing token, as a decimal string (a bigint does not cross IPC). */
  fence: string;
  /** Joined an enclosing call's lock (same process and fencing token) instead of taking one. */
  joined: boolean;
  autoRenew: boolean;
  ttl: number;
  /** Mode `rw`: the side of the read-write lock (readers may overlap each other, nobody else). */
  side?: 'read' | 'write';
  start: number;
  lastHeld?: number;
  end: number;
  /** `isHeld()` was true at the first check, right on entering. */
  enteredHeld: boolean;
  /** First check that saw `isHeld()` false, and what the handle's signal said then. */
  lostAt?: number;
  lossKind?: LossKind;
  /** First check that saw `isHeld()` false while `signal.aborted` was still false. */
  signalLagAt?: number;
  /** First check that saw `isHeld()` true again after a false one. */
  revivedAt?: number;
}

/** How a wait for a lock ended. */
export type WaitOutcome =
  'granted' | 'not-acquired' | 'aborted' | 'unavailable' | 'skipped' | string;

/** One call that may wait for a lock, from the call to its grant (body entered) or failure. */
export interface WaitRecord {
  t: 'wait';
  pid: number;
  mode: Mode;
  keys: string[];
  start: number;
  end: number;
  waitTimeout: number;
  outcome: WaitOutcome;
}

/** A stretch in which a worker's event loop did not run (measured by its lag monitor). */
export interface StallRecord {
  t: 'stall';
  pid: number;
  start: number;
  end: number;
}

/** An unhandled rejection, uncaught exception or unexpected error in a worker. */
export interface ErrorRecord {
  t: 'error';
  pid: number;
  kind: 'unhandledRejection' | 'uncaughtException' | 'unexpected';
  message: string;
}

export type WorkerRecord = SectionRecord | WaitRecord | StallRecord | ErrorRecord;

/** The fault kinds the orchestrator injects (see plan.ts for their parameters). */
export const FAULT_KINDS = [
  'stop-worker',
  'block',
  'stop-redis',
  'slow-script',
  'client-kill',
  'proxy-delay',
  'proxy-drop',
  'abort-waits',
  'restart',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** A planned fault: offsets in ms from the round's start. */
export interface Fault {
  kind: FaultKind;
  at: number;
  /** How long it lasts (0 for instant ones: kills, drops, aborts, restarts). */
  duration: number;
  /** Target worker index (worker faults, proxy faults, client kills). */
  worker?: number;
  server?: ServerName;
  /** Which connection of the worker: its command connections or its subscriber connections. */
  role?: 'cmd' | 'sub';
  /** proxy-delay: ms each chunk from Redis is held back while the fault lasts. */
  delay?: number;
}

/** A fault as it happened: absolute monotonic times and the pid it hit, if a worker. */
export interface InjectedFault extends Fault {
  start: number;
  end: number;
  pid?: number;
}

/** A worker that had to be killed after the exit deadline, or exited with a failure. */
export interface ExitRecord {
  pid: number;
  code: number | null;
  signal: string | null;
  killed: boolean;
}

/** A key found at the end of a round with no TTL. */
export interface LeftoverKey {
  server: ServerName;
  key: string;
}

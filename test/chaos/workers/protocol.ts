/**
 * What the orchestrator (run.ts) and a chaos worker (chaos.worker.ts) tell each other over IPC.
 *
 * Orchestrator → worker: `go`, `stop`, `block` (an event-loop block of `ms` in a holder),
 * `abort-waits` (abort every wait in flight through its AbortSignal).
 * Worker → orchestrator: `ready` once connected, `records` in batches, `done` before exiting.
 *
 * @example
 * child.send({ type: 'block', ms: 900 } satisfies ToWorker);
 */
import type { Mode, WorkerRecord } from '../records.js';

/** One worker process's part of a round, argv[2] as JSON. */
export interface WorkerConfig {
  /** Index of this process in the round (0-based). */
  index: number;
  /** Seeds this worker's choices (keys, holds, waits). */
  seed: number;
  modes: Mode[];
  /** Keys per mode group (2 or 3). */
  keys: number;
  /** Async workers per mode in this process. */
  workersPerMode: number;
  /** Lease (ms) of every lock. */
  ttl: number;
  /** The clients' fairQueueTimeout (ms): 300 makes hand-over leases short. */
  fairQueueTimeout: number;
  /**
   * Longest hold of a section (ms). acquire() (no watchdog) holds at most 75% of the ttl, so a
   * lock it passes on in the process has little lease left and is confirmed with an EXTEND.
   */
  holdMax: number;
  /** Range of waitTimeouts (ms). */
  waitMin: number;
  waitMax: number;
  /** Host and port of this worker's proxy in front of the main server. */
  main: { host: string; port: number };
  /** redis:// URLs of the three Redlock masters (direct). */
  redlock: string[];
}

export type ToWorker =
  { type: 'go' } | { type: 'stop' } | { type: 'block'; ms: number } | { type: 'abort-waits' };

export type FromWorker =
  | { type: 'ready'; pid: number }
  | { type: 'records'; records: WorkerRecord[] }
  | { type: 'done'; pid: number };

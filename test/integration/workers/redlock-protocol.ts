/**
 * What the Redlock race spec (redlock.spec.ts) and its worker (redlock-loop.worker.ts) share.
 * Imported by the spec (through ts-jest) and the worker (through tsx); it has no side effects.
 */

/** Configuration of redlock-loop.worker.ts (argv[2], JSON). */
export interface RedlockLoopConfig {
  /** The Redlock masters. */
  urls: string[];
  /** The plain Redis for the `inside` counter and the `order` list. */
  observerUrl: string;
  key: string;
  grants: number;
  ttl: number;
  nodeTimeout: number;
  /** Prefix of the `inside` counter and `order` list on the observer. */
  prefix: string;
}

/** The loop worker's final report. */
export type RedlockLoopReport =
  | {
      type: 'done';
      pid: number;
      grants: number;
      /** Highest `INCR inside` answer seen: 1 unless two holders overlapped. */
      maxInside: number;
      /** Grants whose lease had run out by the end of the critical section (should be 0). */
      expiredInside: number;
      /** Attempts that failed with LockUnavailableError (no majority answered), then retried. */
      unavailable: number;
      /** Releases that returned false or threw. */
      failedReleases: number;
      /** tryAcquire calls that found the lock busy. */
      busyTries: number;
    }
  | { type: 'error'; message: string };

/**
 * What `cluster.spec.ts` and `cluster-contend.worker.ts` share: the worker's configuration and
 * report. Imported by the spec (through ts-jest) and the worker (through tsx); no side effects.
 */

/** Configuration of `cluster-contend.worker.ts` (argv[2], JSON). */
export interface ClusterLoopConfig {
  startupNodes: { host: string; port: number }[];
  /** Plain keys (no braces): each is its own hash tag. */
  keys: string[];
  /** Waiters in the process, each with its own Cluster client and lock client. */
  waiters: number;
  /** Grants each waiter takes. */
  grants: number;
  ttl: number;
  waitTimeout: number;
  /** Prefix of the `inside:{KEY}` counters and `grants:{KEY}` lists. */
  prefix: string;
}

/** The worker's final report. */
export interface ClusterLoopDone {
  type: 'done';
  pid: number;
  grants: number;
  /** Highest `INCR inside:{KEY}` answer seen: 1 unless two holders overlapped on a key. */
  maxInside: number;
  failedReleases: number;
  /** Longest single acquire call (ms). */
  maxWait: number;
  warnings: string[];
}

export type ClusterLoopReport = ClusterLoopDone | { type: 'error'; message: string };

/**
 * What the contention specs and their workers share: message shapes, the grant log the loop
 * worker writes, and a fenced "storage" in Redis. Imported by specs (through ts-jest) and by
 * workers (through tsx); it has no side effects.
 */
import type { Redis } from 'ioredis';

/** Configuration of `contend-loop.worker.ts` (argv[2], JSON). */
export interface LoopConfig {
  url: string;
  /** Waiter `w` takes `keySets[(w + round) % keySets.length]` in each round. */
  keySets: string[][];
  /** Waiters in the process; each takes `grants` grants. */
  waiters: number;
  grants: number;
  ttl: number;
  waitTimeout: number;
  fair?: boolean;
  /** The client's `fairQueueTimeout` (its re-check period in fair mode is a third of it). */
  fairQueueTimeout?: number;
  /** Prefix of the `inside:KEY` counters and `grants:KEY` lists the worker writes. */
  prefix: string;
  /**
   * Take turns with the other processes (one waiter each; each process gets its index as
   * argv[3]): after a release, ask again only once another process got the lock. The test sets
   * `<prefix>active` to the number of processes before starting them.
   */
  alternate?: { processes: number };
}

/** The loop worker's final report. */
export interface LoopDone {
  type: 'done';
  pid: number;
  grants: number;
  /** Highest `INCR inside:KEY` answer seen: 1 unless two holders overlapped on a key. */
  maxInside: number;
  failedReleases: number;
  warnings: string[];
}

export type LoopReport = LoopDone | { type: 'error'; message: string };

/** One grant of a key, as logged by the loop worker from inside the critical section. */
export interface GrantRecord {
  fencingToken: bigint;
  /** CLOCK_MONOTONIC ms at the grant (same clock in every process). */
  at: number;
  pid: number;
}

/** The entry the loop worker appends to `grants:KEY` for each key of a grant. */
export function grantEntry(fencingToken: bigint, at: number, pid: number): string {
  return `${fencingToken} ${at.toFixed(3)} ${pid}`;
}

/** Reads the grants of `key` logged under `prefix`, in the order they happened. */
export async function grantsOf(redis: Redis, prefix: string, key: string): Promise<GrantRecord[]> {
  const entries = await redis.lrange(`${prefix}grants:${key}`, 0, -1);
  return entries.map((entry) => {
    const [token, at, pid] = entry.split(' ');
    return { fencingToken: BigInt(token), at: Number(at), pid: Number(pid) };
  });
}

/**
 * A store that accepts a write only with a fencing token above every token it accepted before
 * (the check a resource guarded by a lock does). Tokens are compared exactly as decimal strings.
 * KEYS: value, highest token. ARGV: token, value. Returns 1 if written, 0 if rejected.
 */
const FENCED_WRITE = `
local top = redis.call('get', KEYS[2])
local token = ARGV[1]
if top and (#top > #token or (#top == #token and top >= token)) then return 0 end
redis.call('set', KEYS[2], token)
redis.call('set', KEYS[1], ARGV[2])
return 1`;

/** Writes `value` to the fenced store `store` unless a token >= `fencingToken` wrote before. */
export async function fencedWrite(
  redis: Redis,
  store: string,
  fencingToken: bigint,
  value: string,
): Promise<boolean> {
  const written = await redis.eval(
    FENCED_WRITE,
    2,
    `${store}:value`,
    `${store}:token`,
    fencingToken.toString(),
    value,
  );
  return written === 1;
}

/** Commands the agent worker (`lock-agent.worker.ts`) accepts, each answered with an AgentReply. */
export type AgentCommand =
  | {
      type: 'acquire';
      id: string;
      key: string | string[];
      options: { ttl?: number; waitTimeout?: number; fair?: boolean; autoRenew?: boolean };
      /** On the grant, RPUSH `id` to this list from inside the critical section... */
      record?: string;
      /** ...and release at once. */
      releaseAtOnce?: boolean;
    }
  | { type: 'release'; id: string }
  | { type: 'write'; id: string; store: string; value: string }
  | { type: 'warnings'; id: string }
  /**
   * Blocks the event loop for `ms` (a busy loop, as a long synchronous job would), after writing
   * `marker` to Redis in the same synchronous run: once the marker is there, the agent is blocked.
   */
  | { type: 'block'; id: string; ms: number; marker: string };

export type AgentReply =
  | {
      type: 'granted';
      id: string;
      token: string;
      fencingToken: string;
      at: number;
      /** `isHeld()` right at the grant, and whether Redis then held the key under its token. */
      held: boolean;
      owns: boolean;
    }
  | { type: 'blocked'; id: string }
  | { type: 'released'; id: string; released: boolean }
  | { type: 'written'; id: string; accepted: boolean; held: boolean }
  | { type: 'warnings'; id: string; warnings: string[] }
  | { type: 'failed'; id: string; error: { name: string; message: string } };

/**
 * One process of the contended scenario: `workers` loops in this process, all on one
 * `RedisLockClient` (one connection, as an app instance would have), hammering the same key.
 *
 * argv[2]: JSON {@link WorkerConfig}. Protocol with `contended.bench.ts`:
 * sends `ready`; then for each `{ type: 'go', seconds, retry }` runs a round and answers
 * `{ type: 'done', workers }`; exits on `{ type: 'stop' }`. Any failure: `{ type: 'error' }`.
 *
 * Nest-free on purpose: tsx does not emit decorator metadata.
 */
import { Redis } from 'ioredis';
import { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import { LockNotAcquiredError } from '../../lib/errors/lock.errors.js';
import { exponentialBackoff } from '../../lib/core/retry.strategies.js';
import type { RetryStrategy } from '../../lib/interfaces/retry-strategy.interface.js';
import { nextParentMessage, sendToParent } from '../../test/support/worker-ipc.js';
import type { CriticalSectionMode } from '../bench.options.js';
import { now } from '../stats.js';

export interface WorkerConfig {
  url: string;
  key: string;
  workers: number;
  criticalSectionMs: number;
  criticalSectionMode: CriticalSectionMode;
  ttl: number;
}

/** `null`: the client's default retry strategy. */
export type RetrySpec = { base: number; cap: number } | null;

export type Command = { type: 'go'; seconds: number; retry: RetrySpec } | { type: 'stop' };

/** What one worker loop did during a round. */
export interface WorkerStats {
  grants: number;
  /** ms from calling `acquire` to holding the lock, one per grant. */
  waits: number[];
  /** Total ms spent inside critical sections. */
  heldMs: number;
  /** Acquires still waiting when the round ended (aborted, not counted in `waits`). */
  cutOff: number;
}

export type Reply =
  { type: 'ready' } | { type: 'done'; workers: WorkerStats[] } | { type: 'error'; message: string };

/** Far beyond any round: a waiter is only stopped by the end of the round. */
const WAIT_TIMEOUT = 600_000;

const config = JSON.parse(process.argv[2]) as WorkerConfig;
const redis = new Redis(config.url);
const locks = new RedisLockClient({ redis, keyPrefix: 'bench:' });

async function criticalSection(): Promise<void> {
  if (config.criticalSectionMode === 'sleep') {
    await new Promise((resolve) => setTimeout(resolve, config.criticalSectionMs));
    return;
  }
  // A spin, not a timer: exactly the configured length, and the event loop is blocked as real
  // CPU-bound work would block it.
  const end = now() + config.criticalSectionMs;
  while (now() < end);
}

async function workerLoop(signal: AbortSignal, retry: RetryStrategy | undefined) {
  const stats: WorkerStats = { grants: 0, waits: [], heldMs: 0, cutOff: 0 };
  while (!signal.aborted) {
    const asked = now();
    let lock;
    try {
      lock = await locks.acquire(config.key, {
        ttl: config.ttl,
        waitTimeout: WAIT_TIMEOUT,
        signal,
        ...(retry ? { retry } : {}),
      });
    } catch (err) {
      if (err instanceof LockNotAcquiredError && signal.aborted) {
        stats.cutOff++;
        break;
      }
      throw err;
    }
    const granted = now();
    stats.grants++;
    stats.waits.push(granted - asked);
    await criticalSection();
    stats.heldMs += now() - granted;
    await lock.release();
  }
  return stats;
}

async function round(seconds: number, retrySpec: RetrySpec): Promise<WorkerStats[]> {
  const retry = retrySpec ? exponentialBackoff(retrySpec) : undefined;
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), seconds * 1000);
  try {
    const loops = Array.from({ length: config.workers }, () => workerLoop(stop.signal, retry));
    return await Promise.all(loops);
  } finally {
    clearTimeout(timer);
  }
}

try {
  await redis.ping();
  let reply: Reply = { type: 'ready' };
  for (;;) {
    // Listen before answering: a command that arrives while nobody listens is dropped.
    const next = nextParentMessage<Command>();
    await sendToParent(reply);
    const command = await next;
    if (command.type === 'stop') break;
    reply = { type: 'done', workers: await round(command.seconds, command.retry) };
  }
  await locks.close();
  redis.disconnect();
  process.exit(0);
} catch (err) {
  await sendToParent({ type: 'error', message: String((err as Error)?.stack ?? err) }).catch(
    () => undefined,
  );
  process.exit(1);
}

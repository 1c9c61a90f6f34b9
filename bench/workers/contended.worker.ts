/**
 * One process of the contended scenario: `workers` loops in this process, all on one ioredis
 * connection (as an app instance would have), hammering the same key through the lock
 * implementation each round names (see `contenders.ts`).
 *
 * argv[2]: JSON {@link WorkerConfig}. Protocol with `contended.bench.ts`:
 * sends `ready`; then for each `{ type: 'go', seconds, impl }` runs a round on key
 * `contended:<impl>` and answers `{ type: 'done', workers, sent }` once every loop has released;
 * exits on `{ type: 'stop' }`. Any failure: `{ type: 'error' }`.
 *
 * Nest-free on purpose: tsx does not emit decorator metadata.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { nextParentMessage, sendToParent } from '../../test/support/worker-ipc.js';
import type { CriticalSectionMode } from '../bench.options.js';
import { SentCommands } from '../redis-stats.js';
import { now } from '../stats.js';
import {
  contenders,
  type Acquire,
  type Contenders,
  type Impl,
  type RoundSettings,
} from './contenders.js';

export type { Impl } from './contenders.js';

export interface WorkerConfig {
  url: string;
  /** This process, 0 .. processes - 1 (its place in the token ring). */
  index: number;
  processes: number;
  workers: number;
  criticalSectionMs: number;
  criticalSectionMode: CriticalSectionMode;
  ttl: number;
}

export type Command = { type: 'go'; seconds: number; impl: Impl } | { type: 'stop' };

/** What one worker loop did during a round. */
export interface WorkerStats {
  grants: number;
  /** ms from calling `acquire` to holding the lock, one per grant. */
  waits: number[];
  /** Total ms spent inside critical sections. */
  heldMs: number;
  /** Waits still open when the round ended, given up or granted late; not in `waits`. */
  cutOff: number;
  /** Of `cutOff`: locks granted after the round ended (released at once, not counted). */
  late: number;
}

export type Reply =
  | { type: 'ready' }
  | {
      type: 'done';
      workers: WorkerStats[];
      /** Commands this process sent during the round (its round trips), by name. */
      sent: Record<string, number>;
    }
  | { type: 'error'; message: string };

const config = JSON.parse(process.argv[2]) as WorkerConfig;
const redis = new Redis(config.url);
const sent = new SentCommands(redis);

async function criticalSection(): Promise<void> {
  if (config.criticalSectionMode === 'sleep') {
    await new Promise((resolve) => setTimeout(resolve, config.criticalSectionMs));
    return;
  }
  // A spin, not a timer: exactly the configured length, and the event loop is blocked as real
  // CPU-bound work would block it. The clock is read once per SPIN_TURNS turns: each reading
  // allocates, and reading it on every turn made a critical section allocate over a megabyte,
  // which made garbage collection pauses the largest part of every implementation's wait tail.
  const end = now() + config.criticalSectionMs;
  while (now() < end) {
    for (let i = 0; i < SPIN_TURNS; i++) _spun ^= i;
  }
}

/** Turns of the spin between clock readings: a few microseconds. */
const SPIN_TURNS = 10_000;
/** Written by the spin so that the compiler cannot drop its loop. */
let _spun = 0;

async function workerLoop(acquire: Acquire, key: string, round: RoundSettings) {
  const stats: WorkerStats = { grants: 0, waits: [], heldMs: 0, cutOff: 0, late: 0 };
  while (!round.signal.aborted) {
    const asked = now();
    const release = await acquire(key, round);
    if (!release) {
      stats.cutOff++;
      break;
    }
    if (round.signal.aborted) {
      // Granted after the round ended: outside the window, so not a grant. Released at once so
      // the next waiter's late grant (and the next row) is not held up by a critical section.
      stats.cutOff++;
      stats.late++;
      await release();
      break;
    }
    const granted = now();
    stats.grants++;
    stats.waits.push(granted - asked);
    await criticalSection();
    stats.heldMs += now() - granted;
    await release();
  }
  return stats;
}

/**
 * A full garbage collection, run before each round, so that no row pays for the garbage the rows
 * before it left behind (a major collection is several ms, all waiters stand still behind a
 * holder it stops). `--expose-gc` set from here: the worker's command line is the harness's.
 */
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

async function round(impls: Contenders, seconds: number, impl: Impl): Promise<Reply> {
  collectGarbage();
  const stop = new AbortController();
  const settings: RoundSettings = { ttl: config.ttl, roundMs: seconds * 1000, signal: stop.signal };
  // Round trips are counted up to the end of the round, as grants are; not the draining after.
  sent.reset();
  let sentInRound: Record<string, number> | undefined;
  stop.signal.addEventListener('abort', () => (sentInRound = { ...sent.calls }));
  const timer = setTimeout(() => stop.abort(), seconds * 1000);
  try {
    const key = `contended:${impl}`;
    const loops = Array.from({ length: config.workers }, () =>
      workerLoop(impls.acquire[impl], key, settings),
    );
    const workers = await Promise.all(loops);
    return { type: 'done', workers, sent: sentInRound ?? { ...sent.calls } };
  } finally {
    clearTimeout(timer);
  }
}

try {
  await redis.ping();
  const impls = await contenders(
    redis,
    {
      index: config.index,
      processes: config.processes,
      perTurn: config.workers,
    },
    sent,
  );
  let reply: Reply = { type: 'ready' };
  for (;;) {
    // Listen before answering: a command that arrives while nobody listens is dropped.
    const next = nextParentMessage<Command>();
    await sendToParent(reply);
    const command = await next;
    if (command.type === 'stop') break;
    reply = await round(impls, command.seconds, command.impl);
  }
  await impls.close();
  redis.disconnect();
  process.exit(0);
} catch (err) {
  await sendToParent({ type: 'error', message: String((err as Error)?.stack ?? err) }).catch(
    () => undefined,
  );
  process.exit(1);
}

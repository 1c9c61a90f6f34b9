/**
 * The contending loops of a chaos worker for the modes that use a `RedisLockClient` directly:
 * default, fair, multi-key, reentrant and Redlock. Each loop takes locks through `run` (watchdog
 * on), `acquire` (watchdog off, short holds) or `tryAcquire`, records its waits and sections, and
 * stops once the worker is told to.
 *
 * @example
 * await lockLoop(ctx, client, 'fair', ['f0', 'f1']);
 */
import {
  LockError,
  LockNotAcquiredError,
  LockUnavailableError,
  type LockHandle,
  type LockOptions,
  type RedisLockClient,
} from '../../../lib/index.js';
import { nowMs, type Mode, type WaitRecord, type WorkerRecord } from '../records.js';
import type { WorkerConfig } from './protocol.js';
import type { Rng } from './rng.js';
import type { SectionMeta, SectionRecorder } from './section.js';

/** What the loops of one worker share. */
export interface LoopContext {
  config: WorkerConfig;
  recorder: SectionRecorder;
  emit(record: WorkerRecord): void;
  stopping(): boolean;
  /** Waits in flight, aborted together by an `abort-waits` fault. */
  waits: Set<AbortController>;
  /** Fire-and-forget calls still running, awaited before the worker closes its clients. */
  background: Set<Promise<unknown>>;
}

/** Starts a wait record; `settle` ends it once (later calls are ignored). */
export function startWait(ctx: LoopContext, mode: Mode, keys: string[], waitTimeout: number) {
  const record: WaitRecord = {
    t: 'wait',
    pid: process.pid,
    mode,
    keys,
    start: nowMs(),
    end: 0,
    waitTimeout,
    outcome: '',
  };
  return {
    settle(outcome: string): void {
      if (record.outcome) return;
      record.end = nowMs();
      record.outcome = outcome;
      ctx.emit(record);
    },
    get settled(): boolean {
      return record.outcome !== '';
    },
  };
}

/** A failed wait's outcome; errors that are not the library's are reported as unexpected. */
export function outcomeOf(ctx: LoopContext, error: unknown): string {
  if (error instanceof LockNotAcquiredError) return error.aborted ? 'aborted' : 'not-acquired';
  if (error instanceof LockUnavailableError) return 'unavailable';
  if (!(error instanceof LockError)) {
    ctx.emit({ t: 'error', pid: process.pid, kind: 'unexpected', message: String(error) });
  }
  return (error as Error)?.constructor?.name ?? 'unknown';
}

/**
 * Share of operations on a key of the loop's own: uncontended, so its grants come straight from
 * an acquire script's reply, not from a hand-over or a pass (what a delayed grant reply needs).
 */
export const SOLO_SHARE = 0.25;

/** A key only this loop uses (its process id and a random tag keep it apart). */
export function soloKey(prefix: string, rng: Rng): string {
  return `${prefix}-solo-${process.pid}-${rng.int(0, 1e9)}`;
}

/** Runs operations on `keys` (and a key of its own) until the worker stops. */
export async function lockLoop(
  ctx: LoopContext,
  client: RedisLockClient,
  mode: Mode,
  keys: string[],
  rng: Rng,
): Promise<void> {
  const solo = soloKey(keys[0], rng);
  while (!ctx.stopping()) {
    const single = rng.chance(SOLO_SHARE) ? solo : rng.pick(keys);
    const chosen = mode === 'multi' ? pickTwo(keys, rng) : [single];
    const api = mode === 'reentrant' ? 'run' : rng.pick(['run', 'run', 'acquire', 'try'] as const);
    if (api === 'try') await tryOnce(ctx, client, mode, chosen, rng);
    else await lockOnce(ctx, client, mode, chosen, api, rng);
    await new Promise((resolve) => setTimeout(resolve, rng.int(0, 30)));
  }
}

async function lockOnce(
  ctx: LoopContext,
  client: RedisLockClient,
  mode: Mode,
  keys: string[],
  api: 'run' | 'acquire',
  rng: Rng,
): Promise<void> {
  const { ttl, waitMin, waitMax, holdMax } = ctx.config;
  const waitTimeout = rng.int(waitMin, waitMax);
  const aborter = new AbortController();
  ctx.waits.add(aborter);
  const side = rwSide(mode, rng);
  const options: LockOptions = {
    ttl,
    waitTimeout,
    signal: aborter.signal,
    fair: mode === 'fair' || (side !== undefined && rng.chance(RW_FAIR_SHARE)),
    mode: side,
  };
  const wait = startWait(ctx, mode, keys, waitTimeout);
  const meta = (autoRenew: boolean): SectionMeta => ({
    mode,
    keys,
    joined: false,
    autoRenew,
    ttl,
    side,
  });
  const entered = () => {
    wait.settle('granted');
    ctx.waits.delete(aborter);
  };
  const target = keys.length > 1 ? keys : keys[0];
  try {
    if (api === 'run') {
      await client.run(
        target,
        async (lock) => {
          entered();
          if (mode === 'reentrant') await reentrantBody(ctx, client, lock, keys[0], rng);
          else await ctx.recorder.hold(lock, meta(true), renewedHold(ctx, rng));
        },
        options,
      );
    } else {
      const lock = await client.acquire(target, options);
      entered();
      try {
        await ctx.recorder.hold(lock, meta(false), rng.int(10, Math.min(holdMax, ttl * 0.75)));
      } finally {
        await lock.release().catch(() => undefined);
      }
    }
  } catch (error) {
    if (!wait.settled) wait.settle(outcomeOf(ctx, error));
    else outcomeOf(ctx, error);
  } finally {
    ctx.waits.delete(aborter);
  }
}

async function tryOnce(
  ctx: LoopContext,
  client: RedisLockClient,
  mode: Mode,
  keys: string[],
  rng: Rng,
): Promise<void> {
  const { ttl, holdMax } = ctx.config;
  const wait = startWait(ctx, mode, keys, 0);
  const side = rwSide(mode, rng);
  try {
    const lock = await client.tryAcquire(keys.length > 1 ? keys : keys[0], {
      ttl,
      fair: mode === 'fair',
      mode: side,
    });
    wait.settle(lock ? 'granted' : 'busy');
    if (!lock) return;
    const meta = { mode, keys, joined: false, autoRenew: false, ttl, side };
    try {
      await ctx.recorder.hold(lock, meta, rng.int(10, Math.min(holdMax, ttl * 0.75)));
    } finally {
      await lock.release().catch(() => undefined);
    }
  } catch (error) {
    wait.settle(outcomeOf(ctx, error));
  }
}

/**
 * Inside `run(key)`: a nested call on the same key, awaited, fired and forgotten (still running
 * after this body returns), or started from a timer. Each records its own section.
 */
async function reentrantBody(
  ctx: LoopContext,
  client: RedisLockClient,
  outer: LockHandle,
  key: string,
  rng: Rng,
): Promise<void> {
  const { ttl, holdMax, waitMin, waitMax } = ctx.config;
  const hold = rng.int(10, holdMax);
  const meta = { mode: 'reentrant' as const, keys: [key], joined: false, autoRenew: true, ttl };
  const nested = (innerHold: number) => {
    const waitTimeout = rng.int(waitMin, waitMax);
    const wait = startWait(ctx, 'reentrant', [key], waitTimeout);
    return client
      .run(
        key,
        async (inner) => {
          wait.settle('granted');
          const joined = inner.fencingToken === outer.fencingToken;
          await ctx.recorder.hold(inner, { ...meta, joined }, innerHold);
        },
        { ttl, waitTimeout },
      )
      .catch((error: unknown) => wait.settle(outcomeOf(ctx, error)));
  };
  const choice = rng.next();
  if (choice < 0.4) {
    track(ctx, nested(hold + rng.int(50, 300)));
  } else if (choice < 0.6) {
    const late = rng.int(50, 300);
    track(
      ctx,
      new Promise<void>((resolve) => setTimeout(() => void nested(late).then(resolve), 5)),
    );
  } else {
    await Promise.all([ctx.recorder.hold(outer, meta, hold), nested(rng.int(10, hold))]);
    return;
  }
  await ctx.recorder.hold(outer, meta, hold);
}

/**
 * How long a section under the watchdog holds: mostly up to holdMax, sometimes from half the ttl
 * to one and a half, so renewals happen (and a late first renewal shows).
 */
export function renewedHold(ctx: LoopContext, rng: Rng): number {
  const { ttl, holdMax } = ctx.config;
  return rng.chance(0.15) ? rng.int(ttl / 2, ttl * 1.5) : rng.int(10, holdMax);
}

/** Share of `rw` waits that are fair. */
const RW_FAIR_SHARE = 0.3;

/** Mode `rw`: the side of the read-write lock to take (readers twice as often as writers). */
function rwSide(mode: Mode, rng: Rng): 'read' | 'write' | undefined {
  if (mode !== 'rw') return undefined;
  return rng.pick(['read', 'read', 'write'] as const);
}

function track(ctx: LoopContext, call: Promise<unknown>): void {
  ctx.background.add(call);
  void call.finally(() => ctx.background.delete(call));
}

function pickTwo(keys: string[], rng: Rng): string[] {
  const first = rng.int(0, keys.length - 1);
  const second = (first + rng.int(1, keys.length - 1)) % keys.length;
  return [keys[first], keys[second]];
}

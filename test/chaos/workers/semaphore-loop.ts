/**
 * The `semaphore` mode's loop: takes permits of its keys (N = SEMAPHORE_PERMITS) through
 * `runWithPermit` (watchdog on), `acquirePermit` (watchdog off, short holds) or
 * `tryAcquirePermit`, and records each holder's section like a lock's; the checker counts how many
 * of a key's sections overlap.
 *
 * @example
 * await semaphoreLoop(ctx, client, ['s0', 's1'], rng);
 */
import type { RedisLockClient } from '../../../lib/index.js';
import { SEMAPHORE_PERMITS } from '../records.js';
import { outcomeOf, renewedHold, startWait, type LoopContext } from './loops.js';
import type { Rng } from './rng.js';

/** Runs permit operations on `keys` until the worker stops. */
export async function semaphoreLoop(
  ctx: LoopContext,
  client: RedisLockClient,
  keys: string[],
  rng: Rng,
): Promise<void> {
  while (!ctx.stopping()) {
    await permitOnce(ctx, client, rng.pick(keys), rng.pick(['run', 'run', 'acquire', 'try']), rng);
    await new Promise((resolve) => setTimeout(resolve, rng.int(0, 30)));
  }
}

async function permitOnce(
  ctx: LoopContext,
  client: RedisLockClient,
  key: string,
  api: 'run' | 'acquire' | 'try',
  rng: Rng,
): Promise<void> {
  const { ttl, waitMin, waitMax, holdMax } = ctx.config;
  const waitTimeout = api === 'try' ? 0 : rng.int(waitMin, waitMax);
  const aborter = new AbortController();
  ctx.waits.add(aborter);
  const options = { permits: SEMAPHORE_PERMITS, ttl, waitTimeout, signal: aborter.signal };
  const wait = startWait(ctx, 'semaphore', [key], waitTimeout);
  const meta = (autoRenew: boolean) => ({
    mode: 'semaphore' as const,
    keys: [key],
    joined: false,
    autoRenew,
    ttl,
  });
  const shortHold = () => rng.int(10, Math.min(holdMax, ttl * 0.75));
  try {
    if (api === 'run') {
      await client.runWithPermit(
        key,
        async (permit) => {
          wait.settle('granted');
          ctx.waits.delete(aborter);
          await ctx.recorder.hold(permit, meta(true), renewedHold(ctx, rng));
        },
        options,
      );
      return;
    }
    const permit =
      api === 'try'
        ? await client.tryAcquirePermit(key, options)
        : await client.acquirePermit(key, options);
    wait.settle(permit ? 'granted' : 'busy');
    ctx.waits.delete(aborter);
    if (!permit) return;
    try {
      await ctx.recorder.hold(permit, meta(false), shortHold());
    } finally {
      await permit.release().catch(() => undefined);
    }
  } catch (error) {
    if (!wait.settled) wait.settle(outcomeOf(ctx, error));
    else outcomeOf(ctx, error);
  } finally {
    ctx.waits.delete(aborter);
  }
}

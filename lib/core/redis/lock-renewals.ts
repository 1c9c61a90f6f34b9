/** Renewals sent as one EXTEND script call: what each lock asks for, and what it got back. */
import { RENEWAL_BATCH } from '../../redis-lock.constants.js';
import type { LockTarget } from '../keys/lock-target.js';
import { answerWithin } from '../waiting/race-attempt.js';
import { foreignKeyError, type LuaScript } from './scripts/index.js';
import type { RedisClient } from './redis-connection.js';

/**
 * One lock to renew: every key of `target` gets a lease of `ttl` ms if `token` holds them all.
 *
 * @example
 * const renewal: Renewal = { target: handle.target, token: handle.token, ttl: 30_000 };
 */
export interface Renewal {
  readonly target: LockTarget;
  readonly token: string;
  readonly ttl: number;
}

/**
 * What one renewal came to: `true` renewed, `false` refused (the lock is no longer this token's:
 * lost), or an `Error` when it is not known (no answer in time, a failed call, a foreign key).
 *
 * @example
 * const [outcome] = await store.extend([renewal], 2_000);
 * if (outcome === false) markLost();
 */
export type RenewalOutcome = boolean | Error;

/**
 * Splits `items` into runs of at most RENEWAL_BATCH: one script call each, so no call holds
 * Redis (single-threaded) for long and no reply is larger than a few kilobytes.
 *
 * @example
 * chunks(Array.from({ length: 250 }, (_, i) => i)).map((c) => c.length); // [100, 100, 50]
 */
export function chunks<T>(items: readonly T[], size = RENEWAL_BATCH): T[][] {
  const runs: T[][] = [];
  for (let i = 0; i < items.length; i += size) runs.push(items.slice(i, i + size));
  return runs;
}

/**
 * Runs EXTEND once for up to RENEWAL_BATCH `renewals` whose keys `redis` can serve in one script
 * (one Redis, or one Cluster slot), bounded by `timeout` ms: one outcome per renewal, in order. A
 * call that fails or is not answered in time gives every renewal in it that error: whether Redis
 * ran it is not known, so none of them may count a new lease from it.
 *
 * @example
 * const outcomes = await extendBatch(LockScripts.extend, redis, renewals, 2_000);
 */
export async function extendBatch(
  script: LuaScript,
  redis: RedisClient,
  renewals: readonly Renewal[],
  timeout: number,
): Promise<RenewalOutcome[]> {
  const keys: string[] = [];
  const args: (string | number)[] = [];
  for (const { target, token, ttl } of renewals) {
    keys.push(...target.locks);
    args.push(token, ttl, target.locks.length);
  }
  try {
    const replies = (await answerWithin(script.run(redis, keys, args), timeout)) as unknown[];
    return renewals.map((_, i) => outcomeOf(replies[i]));
  } catch (err) {
    return renewals.map(() => err as Error);
  }
}

/** One lock's result in an EXTEND reply (see EXTEND in scripts/extend.script.ts). */
function outcomeOf(reply: unknown): RenewalOutcome {
  if (reply === 1) return true;
  if (reply === 0) return false;
  return foreignKeyError(String(reply));
}

/**
 * The outcome of a lock renewed in several calls (a Cluster lock over keys of several slots): lost
 * if any part was refused, unknown if any part is, renewed only if every part was.
 *
 * @example
 * combined([true, false]); // false
 */
export function combined(outcomes: readonly RenewalOutcome[]): RenewalOutcome {
  if (outcomes.includes(false)) return false;
  return outcomes.find((outcome) => outcome instanceof Error) ?? true;
}

import { from, isObservable, Observable, of } from 'rxjs';
import { LockNotAcquiredError } from './errors/lock.errors.js';
import type { LockOptions } from './interfaces/lock-options.interface.js';
import { SUBSCRIBE_GRACE } from './redis-lock.constants.js';
import type { LockKeys, LockScope, RedisLockClient } from './core/redis-lock.client.js';

/** What to do when the lock is busy: fail, or report a skip and resolve without running. */
export interface LockedCallOptions extends LockOptions {
  /** Called with the busy lock's key (several keys joined with ', '). */
  onSkip?: (key: string) => void;
  /** `@Semaphore`: the call holds one of this many permits of the key instead of its lock. */
  permits?: number;
}

/**
 * Runs `invoke` under the lock and holds the lock until its result settles: a promise until it
 * resolves or rejects. For a call whose return type is not known in advance (`@Lock` without
 * `design:returntype`), an Observable result resolves as an Observable that runs under the lock:
 * subscribed within SUBSCRIBE_GRACE ms, under the lock the call ran under, held until that
 * subscription ends; otherwise that lock is released (never held for a stream no one runs) and a
 * subscription takes the lock again for itself, as `observeLocked` does.
 *
 * `entered`: a scope already entered for `key` (a lock `LockSseGuard` took) to run in instead.
 *
 * @example
 * const result = await callLocked(client, 'order:1', {}, () => pay('1'));
 */
export async function callLocked(
  client: RedisLockClient,
  key: LockKeys,
  options: LockedCallOptions,
  invoke: () => unknown,
  entered?: LockScope,
): Promise<unknown> {
  const scope = entered ?? (await enterOrSkip(client, key, options));
  if (!scope) return undefined;
  let result: unknown;
  try {
    result = await client.runInScope(scope, invoke);
  } catch (err) {
    await client.exit(scope);
    throw err;
  }
  // A method that returned an Observable is not done until the stream is.
  if (isObservable(result)) {
    const source = result;
    return handedToSubscriber(client, scope, source, () =>
      observeLocked(client, key, options, () => source),
    );
  }
  await client.exit(scope);
  return result;
}

/**
 * Like `callLocked` for a method declared to return an Observable: the lock is taken on
 * subscription and released when the stream completes, errors or is unsubscribed. `entered`: a
 * scope already entered for `key` (a lock `LockSseGuard` took), which the first subscription runs
 * in instead of taking the lock.
 *
 * @example
 * observeLocked(client, 'feed:1', {}, () => interval(1000)).subscribe((n) => logger.log(n));
 */
export function observeLocked(
  client: RedisLockClient,
  key: LockKeys,
  options: LockedCallOptions,
  invoke: () => unknown,
  entered?: LockScope,
): Observable<unknown> {
  let unclaimed = entered;
  return new Observable((subscriber) => {
    let scope: LockScope | undefined;
    let closed = false;
    let inner: { unsubscribe(): void } | undefined;
    const claimed = unclaimed;
    unclaimed = undefined;
    (claimed ? Promise.resolve(claimed) : enterOrSkip(client, key, options)).then(
      (entered) => {
        if (!entered) return subscriber.complete();
        scope = entered;
        if (closed) return void client.exit(entered);
        // Subscribe inside the scope too: a cold Observable's work (and any reentrant lock call in
        // it) runs on subscription, not when invoke() returns.
        try {
          inner = client.runInScope(entered, () => toObservable(invoke()).subscribe(subscriber));
        } catch (err) {
          // invoke() threw synchronously: fail the stream (the teardown releases the lock).
          subscriber.error(err);
        }
      },
      (err: unknown) => subscriber.error(err),
    );
    return () => {
      closed = true;
      inner?.unsubscribe();
      if (scope) void client.exit(scope);
    };
  });
}

/**
 * `source` for the caller of a locked call: its first subscription, if it comes within
 * SUBSCRIBE_GRACE ms, runs in `scope` and exits it when it ends, so the call and its stream are
 * one critical section. Past that, `scope` is exited, and every subscription (as any after the
 * first) gets `relock()`, which takes the lock for itself.
 */
function handedToSubscriber(
  client: RedisLockClient,
  scope: LockScope,
  source: Observable<unknown>,
  relock: () => Observable<unknown>,
): Observable<unknown> {
  let unclaimed: LockScope | undefined = scope;
  // unref: a stream nobody subscribes to must not keep the process alive.
  const grace = setTimeout(() => {
    if (!unclaimed) return;
    unclaimed = undefined;
    void client.exit(scope);
  }, SUBSCRIBE_GRACE).unref();
  return new Observable((subscriber) => {
    const claimed = unclaimed;
    if (!claimed) return relock().subscribe(subscriber);
    unclaimed = undefined;
    clearTimeout(grace);
    // Lost meanwhile (Redis unreachable past the lease): the stream must not run without it.
    if (!claimed.handle.isHeld()) {
      void client.exit(claimed);
      return relock().subscribe(subscriber);
    }
    const inner = client.runInScope(claimed, () => source.subscribe(subscriber));
    return () => {
      inner.unsubscribe();
      void client.exit(claimed);
    };
  });
}

async function enterOrSkip(
  client: RedisLockClient,
  key: LockKeys,
  options: LockedCallOptions,
): Promise<LockScope | undefined> {
  const { onSkip, ...lockOptions } = options;
  try {
    const { permits } = lockOptions;
    if (permits !== undefined)
      return await client.enterPermit(key as string, { ...lockOptions, permits });
    return await client.enter(key, lockOptions);
  } catch (err) {
    if (onSkip && err instanceof LockNotAcquiredError && !err.aborted) {
      onSkip(err.key);
      return undefined;
    }
    throw err;
  }
}

/** A method's result as a stream: an Observable as is, a promise or value as one value. */
export function toObservable(result: unknown): Observable<unknown> {
  if (isObservable(result)) return result;
  return result instanceof Promise ? from(result) : of(result);
}

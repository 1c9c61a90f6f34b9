import { from, isObservable, Observable, of } from 'rxjs';
import { LockNotAcquiredError } from '../errors/lock.errors.js';
import type { LockOptions } from '../interfaces/lock-options.interface.js';
import type { LockKeys, LockScope, RedisLockClient } from './redis-lock.client.js';

/** What to do when the lock is busy: fail, or report a skip and resolve without running. */
export interface LockedCallOptions extends LockOptions {
  /** Called with the busy lock's key (several keys joined with ', '). */
  onSkip?: (key: string) => void;
}

/**
 * Runs `invoke` under the lock and holds the lock until its result settles: a promise until it
 * resolves or rejects, an Observable until it completes, errors or is unsubscribed.
 *
 * @example
 * const result = await callLocked(client, 'order:1', {}, () => pay('1'));
 */
export async function callLocked(
  client: RedisLockClient,
  key: LockKeys,
  options: LockedCallOptions,
  invoke: () => unknown,
): Promise<unknown> {
  const scope = await enterOrSkip(client, key, options);
  if (!scope) return undefined;
  let result: unknown;
  try {
    result = await client.runInScope(scope, invoke);
  } catch (err) {
    await client.exit(scope);
    throw err;
  }
  // A method that returned an Observable is not done until the stream is.
  if (isObservable(result) && scope.owned) return holdWhileSubscribed(client, scope, result);
  await client.exit(scope);
  return result;
}

/**
 * Like `callLocked` for a method declared to return an Observable: the lock is taken on
 * subscription and released when the stream completes, errors or is unsubscribed.
 *
 * @example
 * observeLocked(client, 'feed:1', {}, () => interval(1000)).subscribe((n) => logger.log(n));
 */
export function observeLocked(
  client: RedisLockClient,
  key: LockKeys,
  options: LockedCallOptions,
  invoke: () => unknown,
): Observable<unknown> {
  return new Observable((subscriber) => {
    let scope: LockScope | undefined;
    let closed = false;
    let inner: { unsubscribe(): void } | undefined;
    enterOrSkip(client, key, options).then(
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

function holdWhileSubscribed(
  client: RedisLockClient,
  scope: LockScope,
  source: Observable<unknown>,
): Observable<unknown> {
  return new Observable((subscriber) => {
    const inner = client.runInScope(scope, () => source.subscribe(subscriber));
    return () => {
      inner.unsubscribe();
      void client.exit(scope);
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
    return await client.enter(key, lockOptions);
  } catch (err) {
    if (onSkip && err instanceof LockNotAcquiredError && !err.aborted) {
      onSkip(err.key);
      return undefined;
    }
    throw err;
  }
}

function toObservable(result: unknown): Observable<unknown> {
  if (isObservable(result)) return result;
  return result instanceof Promise ? from(result) : of(result);
}

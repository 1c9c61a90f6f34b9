/** Runs a `@Lock` method through a `LockService` that has no lock client: a test's fake. */
import { Observable } from 'rxjs';
import type { LockKeys, RedisLockClient } from './core/redis-lock.client.js';
import { LockError, LockNotAcquiredError } from './errors/lock.errors.js';
import type { LockOptions } from './interfaces/lock-options.interface.js';
import type { LockedCallOptions } from './locked-call.js';
import { toObservable } from './locked-call.js';
import { fakeLockServiceMessage } from './redis-lock.messages.js';

/**
 * What `@Lock` needs of a `LockService` that a test replaced with its own object
 * (`overrideProvider(LockService).useValue(fake)`): `run`, called with the resolved key, a
 * function that runs the method (and, for a stream, resolves when it ends) and the `@Lock`
 * options. A fake that runs `fn` at once lets every call through; one that rejects with
 * `LockNotAcquiredError` acts as a busy lock (`onNotAcquired: 'skip'` then skips).
 *
 * @example
 * const fake: LockRunner = { run: (key, fn) => fn() };
 */
export interface LockRunner {
  run<T>(key: LockKeys, fn: () => T | Promise<T>, options?: LockOptions): Promise<T>;
}

/**
 * The real service's client, or undefined when the service is a fake without one.
 * @example
 * const client = clientOf(service); // undefined for { run }
 */
export function clientOf(service: object): RedisLockClient | undefined {
  const client = (service as { client?: Partial<RedisLockClient> }).client;
  return typeof client?.enter === 'function' ? (client as RedisLockClient) : undefined;
}

/**
 * The fake as a `LockRunner`.
 * @throws LockError naming what the fake lacks.
 * @example
 * const runner = runnerOf(fake, 'ReportService.build()');
 */
export function runnerOf(service: object, where: string): LockRunner {
  if (typeof (service as Partial<LockRunner>).run === 'function') return service as LockRunner;
  throw new LockError(fakeLockServiceMessage(where));
}

/**
 * Like `callLocked`, through the fake's `run`.
 * @example
 * await callThrough(fake, 'report:1', { onSkip }, () => build('1'));
 */
export async function callThrough(
  runner: LockRunner,
  key: LockKeys,
  options: LockedCallOptions,
  invoke: () => unknown,
): Promise<unknown> {
  const { onSkip, ...lockOptions } = options;
  try {
    return await runner.run(key, invoke, lockOptions);
  } catch (err) {
    if (!onSkip || !(err instanceof LockNotAcquiredError) || err.aborted) throw err;
    onSkip(err.key);
    return undefined;
  }
}

/**
 * Like `observeLocked`, through the fake's `run`: it holds its lock until the stream ends.
 * @example
 * observeThrough(fake, 'feed:1', {}, () => interval(1000)).subscribe((n) => logger.log(n));
 */
export function observeThrough(
  runner: LockRunner,
  key: LockKeys,
  options: LockedCallOptions,
  invoke: () => unknown,
): Observable<unknown> {
  return new Observable((subscriber) => {
    let ended: (() => void) | undefined;
    let inner: { unsubscribe(): void } | undefined;
    const streamed = () =>
      new Promise<void>((resolve) => {
        ended = resolve;
        inner = toObservable(invoke()).subscribe({
          next: (value) => subscriber.next(value),
          error: (err: unknown) => {
            resolve();
            subscriber.error(err);
          },
          complete: () => {
            resolve();
            subscriber.complete();
          },
        });
      });
    callThrough(runner, key, options, streamed).then(
      () => subscriber.complete(),
      (err: unknown) => subscriber.error(err),
    );
    return () => {
      inner?.unsubscribe();
      ended?.();
    };
  });
}

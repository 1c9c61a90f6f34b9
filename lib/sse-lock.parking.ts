/*
 * Locks (or refusals) the SSE guard got for a request before its response started, waiting for
 * the request's `@Lock` handler to adopt them once it runs with its piped arguments.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { sharedAcrossCopies } from './copies.shared.js';
import type { LockKeys, LockScope, RedisLockClient } from './core/redis-lock.client.js';
import type { LockError } from './errors/lock.errors.js';
import { SSE_PARKED_LOCK_TIMEOUT } from './redis-lock.constants.js';

/** What the guard got for the key it built from the raw request. */
export type ParkedOutcome =
  | { readonly scope: LockScope; readonly error?: undefined }
  | { readonly error: LockError; readonly scope?: undefined };

interface Parked {
  /** The `@Lock` metadata of the handler it is for: no other `@Lock` method adopts it. */
  readonly method: object;
  readonly client: RedisLockClient;
  readonly key: LockKeys;
  readonly outcome: ParkedOutcome;
  /** Forgets it and stops its timer and listener; exits its scope unless `adopted`. */
  settle(adopted: boolean): void;
}

/** The Node response whose end (sent or connection gone) ends the request. */
export interface RawResponse {
  destroyed?: boolean;
  writableEnded?: boolean;
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/** Shared by both builds: the guard of one and a handler of the other meet here. */
const parkedByRequest = sharedAcrossCopies(
  'REDIS_LOCK:SSE_PARKED',
  () => new WeakMap<object, Parked>(),
);
/** The request whose handler is running (set by `LockInterceptor` when a lock is parked). */
const currentRequest = sharedAcrossCopies(
  'REDIS_LOCK:SSE_REQUEST',
  () => new AsyncLocalStorage<object>(),
);

/**
 * Parks `outcome` for `request` until its handler adopts it. A parked lock never adopted is
 * released when the response ends (answered by someone else, or the client gone) or after
 * SSE_PARKED_LOCK_TIMEOUT ms, whichever comes first: it never outlives its request.
 *
 * @example
 * parkLock(request, response.raw ?? response, { method: metadata, client, key, outcome: { scope } });
 */
export function parkLock(
  request: object,
  response: RawResponse,
  parked: Omit<Parked, 'settle'>,
): void {
  const onClose = () => entry.settle(false);
  const timer = setTimeout(onClose, SSE_PARKED_LOCK_TIMEOUT).unref();
  const entry: Parked = {
    ...parked,
    settle(adopted) {
      if (parkedByRequest.get(request) !== entry) return;
      parkedByRequest.delete(request);
      clearTimeout(timer);
      response.off('close', onClose);
      if (!adopted && parked.outcome.scope) void parked.client.exit(parked.outcome.scope);
    },
  };
  parkedByRequest.get(request)?.settle(false);
  parkedByRequest.set(request, entry);
  response.once('close', onClose);
  // The client may have left while the guard waited for the lock.
  if (response.destroyed || response.writableEnded) onClose();
}

/**
 * Runs `fn` (and what it starts: the handler) as the work of `request`, if a lock is parked for
 * it, so the handler finds it.
 *
 * @example
 * return withParkedLock(request, () => next.handle());
 */
export function withParkedLock<T>(request: object | undefined, fn: () => T): T {
  return request && parkedByRequest.has(request) ? currentRequest.run(request, fn) : fn();
}

/**
 * The request whose parked lock a `@Lock` handler called now may adopt. Read when the handler is
 * called: its Observable may be subscribed outside the request's async context.
 *
 * @example
 * const request = parkedRequest();
 */
export function parkedRequest(): object | undefined {
  return currentRequest.getStore();
}

/**
 * What was parked for `request` and the handler of `method`, if it was parked for the same client
 * and `key`, the key the handler built from its piped arguments: a lock to run under (still held)
 * or the refusal to answer with. Anything else parked for that handler is let go (a pipe changed
 * the key, or the lock was lost meanwhile): the handler then locks `key` itself. Each parked
 * outcome is adopted at most once.
 *
 * @example
 * const outcome = adoptParked(request, metadata, client, key);
 * if (outcome?.error) throw outcome.error;
 */
export function adoptParked(
  request: object | undefined,
  method: object,
  client: RedisLockClient,
  key: LockKeys,
): ParkedOutcome | undefined {
  const parked = request ? parkedByRequest.get(request) : undefined;
  if (!parked || parked.method !== method) return undefined;
  const { outcome } = parked;
  const adoptable =
    parked.client === client &&
    sameKeys(parked.key, key) &&
    (outcome.error !== undefined || outcome.scope.handle.isHeld());
  parked.settle(adoptable);
  return adoptable ? outcome : undefined;
}

function sameKeys(a: LockKeys, b: LockKeys): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.length === b.length && a.every((key, i) => key === b[i]);
}

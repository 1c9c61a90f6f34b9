/*
 * Which app's LockService a `@Lock` method locks through, for instances Nest did not build from a
 * class (so never property-injected): `useValue` objects, which several apps may share, and
 * `useFactory` results, of any scope.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { sharedAcrossCopies } from './copies.shared.js';
import { LockError } from './errors/lock.errors.js';
import type { LockService } from './lock.service.js';
import { LOCK_SERVICE_PROPERTY } from './redis-lock.constants.js';
import { missingLockServiceMessage, ownerAppsClosedMessage } from './redis-lock.messages.js';

/** For each such instance (shared by both builds of the package, as below), the services of the apps that provide it, in the order they started. */
const owners = sharedAcrossCopies('REDIS_LOCK:OWNERS', () => new WeakMap<object, LockService[]>());
/** Services of apps that are shutting down or closed: never chosen again. */
const closed = sharedAcrossCopies('REDIS_LOCK:CLOSED_OWNERS', () => new WeakSet<LockService>());
/** The service of the app whose handler is running (set by `LockInterceptor`). */
const currentApp = sharedAcrossCopies(
  'REDIS_LOCK:CURRENT_APP',
  () => new AsyncLocalStorage<LockService>(),
);

/**
 * Records that `service`'s app provides `instance` (called by each app's explorer, or as a scoped
 * factory makes the instance).
 *
 * @example
 * registerLockOwner(instance, this.lockService);
 */
export function registerLockOwner(instance: object, service: LockService): void {
  const services = owners.get(instance) ?? [];
  if (!services.includes(service)) services.push(service);
  owners.set(instance, services);
}

/**
 * From now on `service` is never chosen: its app is shutting down.
 *
 * @example
 * markLockOwnerClosed(this);
 */
export function markLockOwnerClosed(service: LockService): void {
  closed.add(service);
}

/**
 * Runs `fn` (and everything it starts) as work of `service`'s app.
 *
 * @example
 * return runInApp(this.lockService, () => next.handle());
 */
export function runInApp<T>(service: LockService | undefined, fn: () => T): T {
  return service ? currentApp.run(service, fn) : fn();
}

/**
 * The service a `@Lock` method of `instance` locks through. An instance Nest built from its class
 * has its app's service injected. Any other uses an open app that provides it: the app whose
 * handler is running, if it is one of them, else the most recently started one.
 *
 * @throws LockError when no app provides the instance, or all that did are closed.
 * @example
 * const service = lockServiceOf(this, 'Reports.build()');
 */
export function lockServiceOf(instance: object | undefined, where: string): LockService {
  const injected = (instance as Record<symbol, LockService | undefined> | undefined)?.[
    LOCK_SERVICE_PROPERTY
  ];
  if (injected) return injected;
  const services = instance ? owners.get(instance) : undefined;
  if (!services) throw new LockError(missingLockServiceMessage(where));
  const open = services.filter((service) => !closed.has(service));
  // Forget closed apps, so a long-lived shared instance does not keep them in memory.
  if (open.length !== services.length) owners.set(instance!, open);
  if (open.length === 0) throw new LockError(ownerAppsClosedMessage(where));
  const current = currentApp.getStore();
  return current && open.includes(current) ? current : open[open.length - 1];
}

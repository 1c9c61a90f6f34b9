import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { RedisConnection } from './core/redis/redis-connection.js';
import { markLockOwnerClosed } from './lock-owners.registry.js';
import { RedisLockClient, type LockKeys } from './core/redis-lock.client.js';
import type { LockHandle } from './interfaces/lock-handle.interface.js';
import type { LockOptions, TryAcquireOptions } from './interfaces/lock-options.interface.js';
import type { PermitHandle } from './interfaces/permit-handle.interface.js';
import type { PermitOptions } from './interfaces/permit-options.interface.js';
import type { RedisLockModuleOptions } from './interfaces/redis-lock-module-options.interface.js';
import {
  DEFAULT_DRAIN_TIMEOUT,
  REDIS_LOCK_CONNECTION,
  REDIS_LOCK_LOGGER_CONTEXT,
  REDIS_LOCK_OBSERVER,
} from './redis-lock.constants.js';
import type { LockObserver } from './core/lock-observer.js';
import { drainTimedOutWarning } from './redis-lock.messages.js';
import { lockClientOptions } from './lock-client.options.js';
import { REDIS_LOCK_MODULE_OPTIONS } from './redis-lock.module-definition.js';

/**
 * Distributed locks on the module's Redis. Inject it anywhere; `@Lock` uses it too.
 *
 * @example
 * @Injectable()
 * export class LedgerService {
 *   constructor(private readonly locks: LockService) {}
 *
 *   credit(accountId: string, amount: number) {
 *     return this.locks.run(`account:${accountId}`, () => this.applyCredit(accountId, amount));
 *   }
 * }
 */
@Injectable()
export class LockService implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(REDIS_LOCK_LOGGER_CONTEXT);
  private readonly drainTimeout: number;
  /** The Nest-free client behind this service, for what the service does not expose. */
  readonly client: RedisLockClient;

  constructor(
    @Inject(REDIS_LOCK_MODULE_OPTIONS) options: RedisLockModuleOptions,
    @Inject(REDIS_LOCK_CONNECTION) private readonly connections: RedisConnection[],
    @Inject(REDIS_LOCK_OBSERVER) observer?: LockObserver,
  ) {
    // Already checked before the connections were made; drain() checks it again.
    this.drainTimeout = options.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT;
    const clients = connections.map((connection) => connection.client);
    this.client = new RedisLockClient({
      ...lockClientOptions(options, clients, this.logger),
      observer,
    });
  }

  /**
   * Makes one attempt. Resolves the lock, or `null` when another owner holds it.
   * @throws LockUnavailableError when Redis cannot be reached.
   * @example
   * const lock = await locks.tryAcquire('import:csv');
   * if (!lock) return 'an import is already running';
   */
  tryAcquire(key: LockKeys, options?: TryAcquireOptions): Promise<LockHandle | null> {
    return this.client.tryAcquire(key, options);
  }

  /**
   * Takes the lock, waiting up to `waitTimeout` ms while it is busy. Release it yourself. Given
   * several keys, takes all of them at once or none (in a stable order: no deadlock between two
   * callers naming the same keys in different orders), and renews and releases them together.
   * @throws LockNotAcquiredError when the wait times out or is aborted.
   * @throws LockUnavailableError when Redis cannot be reached.
   * @example
   * const lock = await locks.acquire('stock:7', { waitTimeout: 2_000, autoRenew: true });
   * try { await reserve(); } finally { await lock.release(); }
   *
   * const both = await locks.acquire([`account:${from}`, `account:${to}`], { waitTimeout: 5_000 });
   */
  acquire(key: LockKeys, options?: LockOptions): Promise<LockHandle> {
    return this.client.acquire(key, options);
  }

  /**
   * Runs `fn` under the lock: acquires, renews every ttl/3 while `fn` runs, releases when it
   * settles. A nested `run`/`@Lock` on the same key from inside `fn` joins this lock.
   * @throws LockNotAcquiredError, LockUnavailableError as `acquire`; whatever `fn` throws.
   * @example
   * await locks.run(`order:${id}`, async (lock) => charge(id, { signal: lock.signal }));
   */
  run<T>(
    key: LockKeys,
    fn: (lock: LockHandle) => T | Promise<T>,
    options?: LockOptions,
  ): Promise<T> {
    return this.client.run(key, fn, options);
  }

  /**
   * Whether any owner holds the key now (a snapshot). Given several keys, as for a multi-key
   * lock, whether any of them is held: `true` means `tryAcquire` on them would be refused.
   * @throws LockUnavailableError when Redis cannot be reached.
   * @throws InvalidLockKeyError on an empty or over-long key, or an empty array.
   * @example
   * if (await locks.isLocked('report:nightly')) return 'running';
   * if (await locks.isLocked([`account:${from}`, `account:${to}`])) return 'a transfer is running';
   */
  isLocked(key: LockKeys): Promise<boolean> {
    return this.client.isLocked(key);
  }

  /**
   * One attempt at a permit of the semaphore on `key`: at most `permits` holders at once.
   * Resolves the permit, or `null` when all are held.
   * @throws LockUnavailableError when Redis cannot be reached; LockError with Redlock.
   * @example
   * const permit = await locks.tryAcquirePermit('payments-api', { permits: 5 });
   * if (!permit) return 'too many payments in flight';
   */
  tryAcquirePermit(key: string, options: PermitOptions): Promise<PermitHandle | null> {
    return this.client.tryAcquirePermit(key, options);
  }

  /**
   * Takes a permit of the semaphore on `key`, waiting up to `waitTimeout` ms while all `permits`
   * are held. Each permit has its own lease; release it yourself.
   * @throws PermitNotAcquiredError when the wait times out or is aborted.
   * @throws LockUnavailableError when Redis cannot be reached; LockError with Redlock.
   * @example
   * const permit = await locks.acquirePermit('payments-api', { permits: 5, waitTimeout: 2_000 });
   * try { await pay(); } finally { await permit.release(); }
   */
  acquirePermit(key: string, options: PermitOptions): Promise<PermitHandle> {
    return this.client.acquirePermit(key, options);
  }

  /**
   * Runs `fn` holding a permit of the semaphore on `key`: acquires, renews its lease every ttl/3
   * while `fn` runs, gives it back when `fn` settles.
   * @throws PermitNotAcquiredError, LockUnavailableError as `acquirePermit`; whatever `fn` throws.
   * @example
   * await locks.runWithPermit('payments-api', (permit) => pay(permit.signal), { permits: 5 });
   */
  runWithPermit<T>(
    key: string,
    fn: (permit: PermitHandle) => T | Promise<T>,
    options: PermitOptions,
  ): Promise<T> {
    return this.client.runWithPermit(key, fn, options);
  }

  /**
   * Shutdown, first step (as in Nest's own packages, draining comes before the shutdown hooks that
   * close things): no new locks from now on, and work still running under a lock gets up to
   * `drainTimeout` ms to finish while its locks stay held and renewed. Logs what is still held
   * then.
   */
  async beforeApplicationShutdown(): Promise<void> {
    // A shared useValue instance locks through another open app from now on, never this one.
    markLockOwnerClosed(this);
    const stillHeld = await this.client.drain(this.drainTimeout);
    if (stillHeld.length > 0) this.logger.warn(drainTimedOutWarning(this.drainTimeout, stillHeld));
  }

  /**
   * Releases what is still held and stops its renewal, then closes our own connection. Every step
   * gives up when Redis does not answer in time (a release after the lock's answer timeout, QUIT
   * after QUIT_TIMEOUT), so a frozen or unreachable Redis cannot hang the shutdown.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.client.close();
    await Promise.all(this.connections.map((connection) => connection.close()));
  }
}

/* Takes read-write locks with the lock client's own waiting, over the read-write store. */
import type { ResolvedLockOptions } from '../lock-options.resolver.js';
import type { RwLockTarget } from '../keys/rw-lock-target.js';
import type { RedisLockHandle } from '../lease/redis-lock.handle.js';
import { RwLockStore } from '../redis/rw-lock.store.js';
import type { RedisClient } from '../redis/redis-connection.js';
import type { LockLogger } from '../redis-lock-client.options.js';
import { RenewalBatcher } from '../lease/renewal.batcher.js';
import { LockAcquisition } from './lock-acquisition.js';
import type { AttemptOwner } from './acquire-attempts.js';
import type { WakeUpSource } from './wake-up-source.interface.js';

/** What the read-write acquirer needs from the client: the same hooks its own handles use. */
export type RwLockOwner = Omit<AttemptOwner, 'store' | 'passOn' | 'renewals'>;

/** Fixed when the client is made. */
export interface RwLockSettings {
  readonly redis: RedisClient;
  readonly wakeUps?: WakeUpSource;
  readonly fairQueueTimeout: number;
  readonly logger: LockLogger;
}

/**
 * Read-write locks for a `RedisLockClient`: a `LockAcquisition` of their own over `RwLockStore`, so
 * waiting (pub/sub wake-ups, `waitTimeout`, `signal`, retry strategies, fair queues) and handles
 * (lease, watchdog, release) are the plain lock's. Nothing is passed on in the process
 * (`maxLocalPasses: 0`): a released read lock must never reach a waiting writer, and every grant
 * goes through the script that checks the modes. Handles are tracked by the client, so `drain`
 * and `close` cover them.
 *
 * @example
 * const handle = await rwLocks.acquire(rwLockTarget('lock:', 'doc:1', 'read', true), resolved);
 */
export class RwLockAcquirer {
  readonly store: RwLockStore;
  private readonly acquisition: LockAcquisition;

  constructor(owner: RwLockOwner, settings: RwLockSettings) {
    const store = (this.store = new RwLockStore(settings.redis, settings.fairQueueTimeout));
    const handles: AttemptOwner = {
      store,
      // Renewed in batches of their own: their store runs the read-write EXTEND.
      renewals: new RenewalBatcher(store),
      logger: settings.logger,
      track: (handle) => owner.track(handle),
      discard: (handle) => owner.discard(handle),
      ended: (handle) => {
        this.acquisition.ended(handle);
        owner.ended(handle);
      },
      passOn: () => false,
    };
    this.acquisition = new LockAcquisition(handles, {
      store,
      wakeUps: settings.wakeUps,
      fairQueueTimeout: settings.fairQueueTimeout,
      maxLocalPasses: 0,
      logger: settings.logger,
      alwaysLeave: true,
    });
  }

  /**
   * Takes the read or write side of the lock on `target` (see `LockAcquisition.acquire`).
   * @throws LockNotAcquiredError, LockUnavailableError.
   */
  acquire(target: RwLockTarget, opts: ResolvedLockOptions): Promise<RedisLockHandle> {
    return this.acquisition.acquire(target, opts);
  }

  /** Ends every wait and takes no new locks. */
  close(): void {
    this.acquisition.close();
  }
}

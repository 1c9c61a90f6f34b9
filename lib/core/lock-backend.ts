/* Reads a client's options into where its locks live (store, wake-ups, replicas) and checks them. */
import {
  DEFAULT_FAIR_QUEUE_TIMEOUT,
  DEFAULT_LOCAL_PASSES,
  MAX_TIMER_DELAY,
} from '../redis-lock.constants.js';
import { invalidOptionMessage, timerDelayExpected } from '../redis-lock.messages.js';
import { isTimerDelay } from './lease/long-timeout.js';
import type { LockStore } from './redis/lock-store.interface.js';
import { isCluster, type RedisClient } from './redis/redis-connection.js';
import type {
  LockLogger,
  RedisLockClientOptions,
  ReplicaWait,
} from './redis-lock-client.options.js';
import { RedisStore } from './redis/redis.store.js';
import { RedlockStore } from './redis/redlock.store.js';
import { WakeUpHub } from './waiting/wake-up.hub.js';
import type { WakeUpSource } from './waiting/wake-up-source.interface.js';

/** Where a client's locks live, and what tells its waiters of releases. */
export interface LockBackend {
  readonly store: LockStore;
  /** The single Redis or Cluster store, when that is where locks live (queues, WAIT). */
  readonly redisStore?: RedisStore;
  /** Release wake-ups (pub/sub, or in memory); none when off or with Redlock. */
  readonly wakeUps?: WakeUpSource;
  readonly waitForReplicas?: ReplicaWait;
}

/**
 * Checks that exactly one of `redis`, `redlock` and `memory` is given.
 * @throws TypeError naming the options otherwise.
 * @example
 * checkOneBackend({ redis }); // passes
 */
export function checkOneBackend(options: RedisLockClientOptions): void {
  const backends = [options.redis, options.redlock, options.memory];
  if (backends.filter((backend) => backend !== undefined).length !== 1) {
    throw new TypeError(
      invalidOptionMessage('redis', options.redis, 'one of redis, redlock or memory'),
    );
  }
}

/**
 * The waiting options, defaulted and checked: `fairQueueTimeout` and `maxLocalPasses`.
 * @throws RangeError naming the option that is out of range.
 * @example
 * const { fairQueueTimeout, maxLocalPasses } = checkWaitOptions({ redis }); // 30_000, 5
 */
export function checkWaitOptions(options: RedisLockClientOptions): {
  fairQueueTimeout: number;
  maxLocalPasses: number;
} {
  const fairQueueTimeout = options.fairQueueTimeout ?? DEFAULT_FAIR_QUEUE_TIMEOUT;
  // It is also the lease of a hand-over, which the handle's expiry timer counts down.
  if (!isTimerDelay(fairQueueTimeout)) {
    throw new RangeError(
      invalidOptionMessage(
        'fairQueueTimeout',
        fairQueueTimeout,
        timerDelayExpected(MAX_TIMER_DELAY),
      ),
    );
  }
  const maxLocalPasses = options.maxLocalPasses ?? DEFAULT_LOCAL_PASSES;
  if (!(Number.isInteger(maxLocalPasses) || maxLocalPasses === Infinity) || maxLocalPasses < 0) {
    throw new RangeError(
      invalidOptionMessage('maxLocalPasses', maxLocalPasses, 'an integer >= 0, or Infinity'),
    );
  }
  return { fairQueueTimeout, maxLocalPasses };
}

/**
 * Makes the store the options name (in memory, Redlock, or one Redis or Cluster) and its
 * wake-ups. Call `checkOneBackend` first.
 * @throws RangeError on `waitForReplicas` the store cannot honour.
 * @example
 * const { store, wakeUps } = openBackend({ redis }, logger);
 */
export function openBackend(options: RedisLockClientOptions, logger: LockLogger): LockBackend {
  if (options.memory) {
    if (options.waitForReplicas !== undefined) {
      throw new RangeError(
        invalidOptionMessage('waitForReplicas', options.waitForReplicas, 'no value with memory'),
      );
    }
    const wakeUps = options.pubSub !== false ? options.memory.wakeUps() : undefined;
    return { store: options.memory, wakeUps };
  }
  if (options.redlock) {
    const store = new RedlockStore(options.redlock);
    if (options.waitForReplicas !== undefined) {
      throw new RangeError(
        invalidOptionMessage('waitForReplicas', options.waitForReplicas, 'no value with redlock'),
      );
    }
    return { store };
  }
  const redis = options.redis as RedisClient;
  const redisStore = new RedisStore(redis);
  const waitForReplicas = checkReplicaWait(options.waitForReplicas, isCluster(redis));
  const wakeUps = options.pubSub !== false ? new WakeUpHub(redis, logger) : undefined;
  return { store: redisStore, redisStore, wakeUps, waitForReplicas };
}
/** @throws RangeError on replicas or a timeout that are not positive integers. */
function checkReplicaWait(
  wait: ReplicaWait | undefined,
  cluster: boolean,
): ReplicaWait | undefined {
  if (wait === undefined) return undefined;
  if (cluster) {
    // WAIT must go to the master that took the write; a Cluster client sends it to any node.
    throw new RangeError(
      invalidOptionMessage('waitForReplicas', wait, 'no value with Redis Cluster (not supported)'),
    );
  }
  const { replicas, timeout } = wait;
  if (!Number.isInteger(replicas) || replicas < 1) {
    throw new RangeError(
      invalidOptionMessage('waitForReplicas.replicas', replicas, 'a positive integer'),
    );
  }
  if (!Number.isInteger(timeout) || timeout < 1) {
    throw new RangeError(
      invalidOptionMessage(
        'waitForReplicas.timeout',
        timeout,
        'a positive integer of milliseconds',
      ),
    );
  }
  return { replicas, timeout };
}

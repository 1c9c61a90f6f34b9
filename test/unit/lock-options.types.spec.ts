import 'reflect-metadata';
import type { RedisLockClientOptions } from '../../lib/core/redis-lock-client.options.js';
import type { RedisClient } from '../../lib/core/redis/redis-connection.js';
import { fixedDelay } from '../../lib/core/waiting/retry.strategies.js';
import {
  Lock,
  type LockService,
  type RedisLockClient,
  type RedisLockModuleOptions,
} from '../../lib/index.js';
import { lockClientOptions } from '../../lib/lock-client.options.js';

/** The options the module shares with the client: every one but the backend and the logger. */
type SharedOptions = Required<
  Omit<RedisLockClientOptions, 'redis' | 'redlock' | 'memory' | 'logger' | 'observer'>
>;

/**
 * One value for every shared option. `Required` makes this fail to compile when the client gains
 * an option not listed here, so the test below covers it too.
 */
const EVERY_SHARED_OPTION: SharedOptions = {
  keyPrefix: 'app:',
  ttl: 1_234,
  waitTimeout: 567,
  retry: fixedDelay(89),
  fair: true,
  pubSub: false,
  fairQueueTimeout: 4_321,
  waitForReplicas: { replicas: 1, timeout: 25 },
  maxLocalPasses: 2,
};

/** Stand-ins for connections: only their identity is looked at, nothing is sent. */
const connectionA = { name: 'a' } as unknown as RedisClient;
const connectionB = { name: 'b' } as unknown as RedisClient;
const logger = { warn: () => undefined };

describe("the module's options reach the client", () => {
  it('every option the client takes is a module option, and LockService passes each one on as given', () => {
    // Type level: the module takes every shared client option (one declaration, one JSDoc).
    const moduleOptions: RedisLockModuleOptions = {
      redis: 'redis://localhost:6379',
      ...EVERY_SHARED_OPTION,
      drainTimeout: 100,
    };
    const options = lockClientOptions(moduleOptions, [connectionA], logger);
    expect(options).toEqual({ ...EVERY_SHARED_OPTION, redis: connectionA, logger });
  });

  it("with Redlock, the masters are the module's connections and the other Redlock options are kept", () => {
    const options = lockClientOptions(
      { redlock: { clients: ['redis://a', 'redis://b'], nodeTimeout: 40 }, ttl: 900 },
      [connectionA, connectionB],
      logger,
    );
    expect(options).toEqual({
      redlock: { clients: [connectionA, connectionB], nodeTimeout: 40 },
      ttl: 900,
      logger,
    });
    expect(options.redis).toBeUndefined();
  });
});

/**
 * Type-level checks: each method's options type holds only what the method honours. Never called;
 * `tsc --noEmit -p tsconfig.json` (and ts-jest, compiling this file) fails when a
 * `@ts-expect-error` below stops being an error.
 */
export function optionTypesPerMethod(locks: LockService, client: RedisLockClient): void {
  const signal = new AbortController().signal;
  const retry = fixedDelay(10);
  const full = { ttl: 1, waitTimeout: 1, retry, fair: true, autoRenew: true, signal };

  void locks.acquire('k', full);
  void locks.run('k', () => 1, full);
  void locks.tryAcquire(['a', 'b'], { ttl: 1, fair: true, autoRenew: true, signal });
  void client.acquire('k', full);
  void client.run('k', () => 1, full);
  void client.tryAcquire('k', { ttl: 1, fair: true, autoRenew: true, signal });

  // @ts-expect-error onNotAcquired is an option of @Lock only
  void locks.acquire('k', { onNotAcquired: 'skip' });
  // @ts-expect-error onNotAcquired is an option of @Lock only
  void locks.run('k', () => 1, { onNotAcquired: 'throw' });
  // @ts-expect-error onNotAcquired is an option of @Lock only
  void locks.tryAcquire('k', { onNotAcquired: 'skip' });
  // @ts-expect-error onNotAcquired is an option of @Lock only
  void client.acquire('k', { onNotAcquired: 'skip' });
  // @ts-expect-error a single attempt does not wait
  void locks.tryAcquire('k', { waitTimeout: 1_000 });
  // @ts-expect-error a single attempt does not retry
  void locks.tryAcquire('k', { retry });
  // @ts-expect-error a single attempt does not wait
  void client.tryAcquire('k', { waitTimeout: 1_000 });

  // isLocked: a key or several, like every other method, and no options.
  void locks.isLocked('k');
  void locks.isLocked(['a', 'b']);
  void client.isLocked(['a', 'b']);
  // @ts-expect-error isLocked takes no options
  void locks.isLocked('k', { ttl: 1 });

  // @Lock keeps every option, onNotAcquired included.
  class Jobs {
    @Lock('report', { ...full, onNotAcquired: 'skip' })
    async report(): Promise<void> {}

    // @ts-expect-error 'skip' or 'throw' only
    @Lock('report', { onNotAcquired: 'later' })
    async other(): Promise<void> {}
  }
  void Jobs;
}

import type { LockLogger, RedisLockClientOptions } from './core/redis-lock-client.options.js';
import type { RedisClient } from './core/redis/redis-connection.js';
import type { RedisLockModuleOptions } from './interfaces/redis-lock-module-options.interface.js';

/**
 * The options `LockService` builds its `RedisLockClient` with: the module's options as they are,
 * but the connections the module made (or was given) in place of `redis`/`redlock`'s configs,
 * and Nest's logger. By rest-spread, not field by field: since `RedisLockModuleOptions` takes
 * its defaults from `RedisLockClientOptions`, a client option added later reaches the client
 * without a change here. Options only the module reads (`drainTimeout`, `errorFactory`, `failFast`... and any other the client
 * does not know) are left for the client to ignore.
 *
 * @example
 * const client = new RedisLockClient(lockClientOptions(options, [connection.client], logger));
 */
export function lockClientOptions(
  options: RedisLockModuleOptions,
  clients: readonly RedisClient[],
  logger: LockLogger,
): RedisLockClientOptions {
  const { redis: _redis, redlock, drainTimeout: _drainTimeout, ...defaults } = options;
  return {
    ...defaults,
    // The in-memory store of `forTest` (in `defaults`) needs no connection.
    ...(redlock
      ? { redlock: { ...redlock, clients: [...clients] } }
      : defaults.memory
        ? {}
        : { redis: clients[0] }),
    logger,
  };
}

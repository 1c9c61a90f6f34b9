/**
 * The redis-servers a chaos run uses, started once and kept across rounds (flushed between
 * them): `main` for every mode but Redlock, `r1`..`r3` for Redlock. Each is a real redis-server of
 * the test harness (a free port, never 6379, no persistence) with DEBUG enabled for slow scripts,
 * plus an admin connection and a separate one that runs `DEBUG SLEEP` (it blocks while it runs).
 *
 * @example
 * const env = await startEnvironment();
 * const leftovers = await keysWithoutTtl(env);
 * await env.stop();
 */
import type { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { SERVERS, type LeftoverKey, type ServerName } from './records.js';

export interface Environment {
  servers: Record<ServerName, RedisServer>;
  admin: Record<ServerName, Redis>;
  sleeper: Record<ServerName, Redis>;
  stop(): Promise<void>;
}

export async function startEnvironment(): Promise<Environment> {
  const started = await Promise.all(
    SERVERS.map(() => startRedis({ args: ['--enable-debug-command', 'yes'] })),
  );
  const servers = Object.fromEntries(SERVERS.map((name, i) => [name, started[i]])) as Record<
    ServerName,
    RedisServer
  >;
  const clients = (options = {}) =>
    Object.fromEntries(
      SERVERS.map((name) => [name, servers[name].client({ retryStrategy: () => 50, ...options })]),
    ) as Record<ServerName, Redis>;
  return {
    servers,
    admin: clients(),
    // DEBUG SLEEP must never be retried or resent after a reconnect.
    sleeper: clients({ maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false }),
    stop: async () => {
      await Promise.all(started.map((server) => server.stop()));
    },
  };
}

/** Every key, on every server, that has no TTL (PTTL -1): what a round must never leave. */
export async function keysWithoutTtl(env: Environment): Promise<LeftoverKey[]> {
  const found: LeftoverKey[] = [];
  for (const server of SERVERS) {
    const admin = env.admin[server];
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        if ((await admin.pttl(key)) === -1) found.push({ server, key });
      }
    } while (cursor !== '0');
  }
  return found;
}

/** Empties every server before the next round. */
export async function flushAll(env: Environment): Promise<void> {
  await Promise.all(SERVERS.map((server) => env.admin[server].flushall()));
}

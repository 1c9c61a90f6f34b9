/**
 * Adversary probe: tokens never appear in errors. `LockUnavailableError` keeps the ioredis error
 * as its `cause`, and ioredis puts the failed command on a reply error (`err.command.args`):
 * EVALSHA's arguments, the lock's token among them. Logging the error the usual way
 * (`util.inspect`, `console.error(err)`, most loggers' error serializers) prints the token of a
 * lock this process still holds. Redis answers such errors routinely: BUSY while another client's
 * script runs past busy-reply-threshold, READONLY after a failover, OOM at maxmemory.
 */
import { inspect } from 'node:util';
import type { Redis } from 'ioredis';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { LockClients, rejectionOf, uniqueKey } from '../integration/helpers.js';

describe('adversary: a Redis error reply carried as the cause of LockUnavailableError', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  it('an extend refused with BUSY does not show the token when the error is logged', async () => {
    const locks = clients.create(redis.client());
    const lock = await locks.acquire(uniqueKey('busy-extend'), { ttl: 30_000 });
    await admin.config('SET', 'busy-reply-threshold', '50');
    const script = redis.client();
    // Another client's script runs for 600 ms: past the threshold, Redis answers BUSY.
    const slow = script.eval(
      `local t = redis.call('time') local s = t[1] * 1000000 + t[2]
       repeat t = redis.call('time') until t[1] * 1000000 + t[2] - s >= 600000 return 1`,
      0,
    );
    const probe = redis.client();
    await waitFor(async () => (await probe.ping().catch((e: Error) => e.message)) !== 'PONG', {
      interval: 10,
      message: 'Redis to answer BUSY',
    });
    const { error } = await rejectionOf(lock.extend());
    await slow;
    await admin.config('SET', 'busy-reply-threshold', '5000');
    expect(error.message).toMatch(/BUSY/);
    expect(inspect(error, { depth: 5 })).not.toContain(lock.token);
    await lock.release();
  });
});

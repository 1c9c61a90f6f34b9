/**
 * Adversary probe: `close()` (and `drain()`) say the client "takes no new locks: every wait ends
 * and every new acquire fails". An attempt already on its way when the client closes is not
 * covered: its grant, answered after `close()` resolved, is handed to the caller, whose callback
 * then runs under a lock the closed client neither releases nor tracks for shutdown.
 */
import type { Redis } from 'ioredis';
import { LockUnavailableError } from '../../lib/errors/lock.errors.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { LockClients, uniqueKey } from '../integration/helpers.js';

describe('adversary: a grant answered after close()', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  it('an acquire in flight when the client closes fails, and leaves no lock behind', async () => {
    const key = uniqueKey('after-close');
    const locks = clients.create(redis.client());
    // Redis busy with another client's slow script: the attempt's reply comes 300 ms later.
    const slow = redis.client().eval(
      `local t = redis.call('time') local s = t[1] * 1000000 + t[2]
         repeat t = redis.call('time') until t[1] * 1000000 + t[2] - s >= 300000 return 1`,
      0,
    );
    await new Promise((r) => setImmediate(r)); // the slow script is written first
    let ranAfterClose = false;
    let closed = false;
    const running = locks
      .run(key, () => void (ranAfterClose = closed), { ttl: 30_000 })
      .then(
        () => 'ran',
        (err: unknown) => err,
      );
    await new Promise((r) => setImmediate(r));
    await locks.close();
    closed = true;
    await slow;
    const outcome = await running;
    expect({ ranAfterClose, outcome }).toEqual({
      ranAfterClose: false,
      outcome: expect.any(LockUnavailableError),
    });
    await expect(admin.exists(`lock:{${key}}`)).resolves.toBe(0);
  });
});

/**
 * Adversary probe: a fair waiter whose wait ends while Redis is frozen settles about 2 s
 * (ATTEMPT_TIMEOUT) past its waitTimeout: `LockAcquisition.obtainOnce` awaits LEAVE_QUEUE, bounded
 * only by ATTEMPT_TIMEOUT, before it rejects. A default-mode waiter settles on time (about
 * waitTimeout + FINAL_ATTEMPT_GRACE). The README promises each waiter "gives up at its
 * waitTimeout"; an HTTP handler with waitTimeout 300 answers after 2.3 s.
 */
import { FINAL_ATTEMPT_GRACE } from '../../lib/redis-lock.constants.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { LockClients, rejectionOf, uniqueKey } from '../integration/helpers.js';

describe('adversary: a fair wait that ends with Redis frozen', () => {
  let redis: RedisServer;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await redis.resume();
    await clients.closeAll();
  });
  afterAll(() => stopAllRedis());

  it('rejects within FINAL_ATTEMPT_GRACE + 100 ms of its waitTimeout', async () => {
    const waitTimeout = 300;
    const locks = clients.create(redis.client());
    await locks.tryAcquire(uniqueKey('warm-up'), { fair: true }); // connected, scripts loaded
    await redis.pause();
    const { ms } = await rejectionOf(
      locks.acquire(uniqueKey('frozen'), { ttl: 5_000, waitTimeout, fair: true }),
    );
    expect(ms).toBeLessThan(waitTimeout + FINAL_ATTEMPT_GRACE + 100);
  });
});

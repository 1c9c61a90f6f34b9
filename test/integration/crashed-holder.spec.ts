import type { ChildProcess } from 'node:child_process';
import type { Redis } from 'ioredis';
import type { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import { fixedDelay } from '../../lib/core/waiting/retry.strategies.js';
import { exited, forkWorker, killAllWorkers, nextMessage } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { LockClients, nowMs, processState, renewalSeen, uniqueKey } from './helpers.js';

const HOLDER_WORKER = 'test/support/workers/lock-holder.worker.ts';

interface Acquired {
  type: 'acquired';
  pid: number;
  token: string;
  redisKey: string;
  /** CLOCK_MONOTONIC ms just before the worker sent its SET. */
  before: number;
}

interface Reply {
  type: 'reply';
  to: string;
  ok?: boolean;
  released?: boolean;
  held?: boolean;
  aborted?: boolean;
  error?: { name: string; message?: string };
  reason?: { name: string; message?: string };
  warnings?: string[];
}

/** Redis clock slack: key expiry runs on Redis's wall clock, the test on the monotonic one. */
const CLOCK_SLACK = 5;

describe('a holder process that dies or freezes', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(async () => {
    await killAllWorkers();
    await clients.closeAll();
  });
  afterAll(() => stopAllRedis());

  function startHolder(key: string, ttl: number, autoRenew: boolean) {
    const worker = forkWorker(HOLDER_WORKER, [
      JSON.stringify({ url: redis.url, key, ttl, autoRenew }),
    ]);
    const acquired = nextMessage<Acquired>(worker, (m) => m.type === 'acquired', 20_000);
    return { worker, acquired };
  }

  async function ask(worker: ChildProcess, command: string): Promise<Reply> {
    const reply = nextMessage<Reply>(worker, (m) => m.type === 'reply' && m.to === command);
    worker.send({ type: command });
    return reply;
  }

  /**
   * Polls tryAcquire until it succeeds; resolves with the handle and the monotonic time it was
   * granted. Each failed poll is a proof the key was still held.
   */
  async function takeOver(
    locks: RedisLockClient,
    key: string,
    timeout: number,
  ): Promise<{ handle: RedisLockHandle; at: number; refused: number }> {
    let handle: RedisLockHandle | null = null;
    let refused = 0;
    await waitFor(
      async () => {
        handle = await locks.tryAcquire(key, { ttl: 30_000 });
        if (!handle) refused++;
        return handle !== null;
      },
      { interval: 5, timeout, message: `another client to take ${key}` },
    );
    return { handle: handle!, at: nowMs(), refused };
  }

  it('SIGKILLed holder without renewal: nobody gets the lock before its ttl has passed, someone gets it within 1 s after', async () => {
    const ttl = 1500;
    const key = uniqueKey('killed');
    const { worker, acquired } = startHolder(key, ttl, false);
    const holder = await acquired;
    await expect(admin.get(holder.redisKey)).resolves.toBe(holder.token);

    worker.kill('SIGKILL');
    await expect(exited(worker)).resolves.toMatchObject({ signal: 'SIGKILL' });
    const killedAt = nowMs();

    const { handle, at, refused } = await takeOver(clients.create(redis.client()), key, 5000);
    expect(refused).toBeGreaterThan(0);
    // Not before the dead holder's lease ran out (its SET was sent after `before`)...
    expect(at - holder.before).toBeGreaterThanOrEqual(ttl - CLOCK_SLACK);
    // ...and soon after it: the lease, not something else, kept others out.
    expect(at - holder.before).toBeLessThan(ttl + 1000);
    expect(at).toBeGreaterThan(killedAt);
    await expect(admin.get(handle.redisKey)).resolves.toBe(handle.token);
  });

  it('SIGKILLed holder with the watchdog: the lock frees up when its last renewed lease runs out, within ttl + 1 s of the kill', async () => {
    const ttl = 1200;
    const key = uniqueKey('killed-renewing');
    const { worker, acquired } = startHolder(key, ttl, true);
    const holder = await acquired;
    // The watchdog is working: the lease was renewed twice.
    await renewalSeen(admin, holder.redisKey);
    await renewalSeen(admin, holder.redisKey);

    worker.kill('SIGKILL');
    await exited(worker);
    const killedAt = nowMs();
    const probedAt = nowMs();
    const remaining = await admin.pttl(holder.redisKey);
    // What is left of the last renewed lease: the dead process renews no more.
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThanOrEqual(ttl);
    await expect(admin.get(holder.redisKey)).resolves.toBe(holder.token);

    const { handle, at, refused } = await takeOver(clients.create(redis.client()), key, ttl + 2000);
    expect(refused).toBeGreaterThan(0);
    expect(at - probedAt).toBeGreaterThanOrEqual(remaining - CLOCK_SLACK);
    expect(at - killedAt).toBeLessThan(ttl + 1000);
    await expect(admin.get(handle.redisKey)).resolves.toBe(handle.token);
  });

  it('frozen holder (SIGSTOP past its lease): another client takes over; after SIGCONT the old handle cannot touch the new lock', async () => {
    const ttl = 1000;
    const key = uniqueKey('frozen');
    const { worker, acquired } = startHolder(key, ttl, true);
    const holder = await acquired;
    await renewalSeen(admin, holder.redisKey);

    worker.kill('SIGSTOP');
    await waitFor(() => processState(holder.pid) === 'T', { message: 'the holder to be stopped' });
    const probedAt = nowMs();
    const remaining = await admin.pttl(holder.redisKey);
    expect(remaining).toBeGreaterThan(0);

    // A waiter in this process gets the lock once the frozen holder's lease is over.
    const locks = clients.create(redis.client());
    const current = await locks.acquire(key, {
      ttl: 30_000,
      waitTimeout: ttl + 3000,
      retry: fixedDelay(5),
    });
    const grantedAt = nowMs();
    expect(grantedAt - probedAt).toBeGreaterThanOrEqual(remaining - CLOCK_SLACK);
    expect(processState(holder.pid)).toBe('T'); // still frozen: the lease, not the process, ended
    await expect(admin.get(current.redisKey)).resolves.toBe(current.token);

    worker.kill('SIGCONT');
    const extended = await ask(worker, 'extend');
    expect(extended.ok).toBe(false);
    expect(extended.error?.name).toBe('LockLostError');
    const released = await ask(worker, 'release');
    expect(released).toMatchObject({ released: false });
    const state = await ask(worker, 'state');
    expect(state).toMatchObject({ held: false, aborted: true });
    expect(state.reason?.name).toBe('LockLostError');
    expect(state.warnings!.length).toBeGreaterThan(0);
    for (const text of [...state.warnings!, extended.error!.message!, state.reason!.message!]) {
      expect(text).not.toContain(holder.token);
    }

    // The new holder's lock is untouched: same token, its own 30 s lease.
    await expect(admin.get(current.redisKey)).resolves.toBe(current.token);
    expect(await admin.pttl(current.redisKey)).toBeGreaterThan(20_000);
    expect(current.isHeld()).toBe(true);
    await expect(current.release()).resolves.toBe(true);
  });
});

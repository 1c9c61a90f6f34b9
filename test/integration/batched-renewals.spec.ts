/**
 * The watchdog renews a client's locks in batches (RenewalBatcher, EXTEND over many locks): few
 * Redis calls per round, each lock's result its own.
 */
import type { Redis } from 'ioredis';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import { LockLostError, LockUnavailableError } from '../../lib/errors/lock.errors.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { LockClients, nowMs, rejectionOf, uniqueKey } from './helpers.js';
import { ExtendCalls, renewedIn, type ExtendCall } from './renewal-rounds.js';

/**
 * Resolves with the `count` rounds that follow the first to renew every one of `tokens` in at most
 * `maxCalls` calls. Until then, locks granted a few ms apart renew in rounds of their own; each
 * renewal may go up to a sixth of the ttl early, so they join up within a few rounds.
 */
async function roundsAfterAllTogether(
  calls: ExtendCalls,
  tokens: string[],
  count: number,
  timeout: number,
  maxCalls = Infinity,
): Promise<ExtendCall[][]> {
  let after: ExtendCall[][] = [];
  await waitFor(
    () => {
      const rounds = calls.rounds();
      // The last round may still be arriving: only rounds followed by another are complete.
      const complete = rounds.slice(0, -1);
      const together = complete.findIndex((round) => {
        if (round.length > maxCalls) return false;
        const renewed = renewedIn(round);
        return tokens.every((token) => renewed.has(token));
      });
      after = together < 0 ? [] : complete.slice(together + 1);
      return after.length >= count;
    },
    { timeout, interval: 20, message: `${count} renewal rounds after one that renewed every lock` },
  );
  return after.slice(0, count);
}

/** The lock keys' values and PTTLs, in one round trip. */
async function keyStates(admin: Redis, handles: RedisLockHandle[]) {
  const pipeline = admin.pipeline();
  for (const handle of handles) pipeline.get(handle.redisKey).pttl(handle.redisKey);
  const replies = (await pipeline.exec())!.map(([, value]) => value);
  return handles.map((_, i) => ({
    value: replies[2 * i] as string | null,
    pttl: replies[2 * i + 1] as number,
  }));
}

describe('Batched renewals: one EXTEND call for many held locks', () => {
  let redis: RedisServer;
  let admin: Redis;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  it('renews 1,000 held locks in rounds of at most ceil(N/50) calls, each round renewing every lock once, nothing lost', async () => {
    const n = 1_000;
    // The ttl: a loaded machine's stalls stay well inside the two thirds of it left.
    const ttl = 3_000;
    const options = { ttl, autoRenew: true };
    const locks = clients.create(redis.client());
    const calls = await ExtendCalls.start(redis.port);
    try {
      const acquiredAt = nowMs();
      const handles: RedisLockHandle[] = [];
      // A hundred at a time: a loaded machine may not answer a thousand at once within the ttl.
      while (handles.length < n) {
        const next = Array.from({ length: 100 }, (_, i) => uniqueKey(`held-${i}`));
        handles.push(...(await Promise.all(next.map((key) => locks.acquire(key, options)))));
      }
      const tokens = handles.map((handle) => handle.token);

      const maxCalls = Math.ceil(n / 50);
      const rounds = await roundsAfterAllTogether(calls, tokens, 3, 8 * ttl, maxCalls);
      for (const round of rounds) {
        expect(round.length).toBeLessThanOrEqual(maxCalls);
        const renewed = renewedIn(round);
        expect(renewed.size).toBe(n);
        expect([...renewed.values()].every((times) => times === 1)).toBe(true);
        for (const token of tokens) expect(renewed.has(token)).toBe(true);
      }

      // Two ttls after the grants (three quick rounds may come sooner): only renewals can have
      // kept the keys then. What is awaited here is the passing of time itself.
      const twoTtlsLeft = acquiredAt + 2 * ttl - nowMs();
      if (twoTtlsLeft > 0) await new Promise((resolve) => setTimeout(resolve, twoTtlsLeft + 1));
      expect(nowMs() - acquiredAt).toBeGreaterThan(2 * ttl);
      const states = await keyStates(admin, handles);
      handles.forEach((handle, i) => {
        expect(handle.isHeld()).toBe(true);
        expect(handle.signal.aborted).toBe(false);
        expect(states[i].value).toBe(handle.token);
        // Renewed within the last period (ttl/3) or so: a lease never renewed would be gone.
        expect(states[i].pttl).toBeGreaterThan(ttl / 3);
      });
    } finally {
      calls.stop();
    }
  });

  it('a refused lock in a batch loses only that lock: its key is left as found, the others are renewed in the same call', async () => {
    const ttl = 1_500;
    const logger = { warn: () => undefined };
    const locks = clients.create(redis.client(), { logger });
    const calls = await ExtendCalls.start(redis.port);
    try {
      const handles = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          locks.acquire(uniqueKey(`refused-${i}`), { ttl, autoRenew: true }),
        ),
      );
      const tokens = handles.map((handle) => handle.token);
      await roundsAfterAllTogether(calls, tokens, 1, 10 * ttl);

      const [taken, deleted] = [handles[5], handles[7]];
      const others = handles.filter((handle) => handle !== taken && handle !== deleted);
      await admin.set(taken.redisKey, 'another-owner');
      await admin.del(deleted.redisKey);
      const refusedAt = calls.calls.length;
      await waitFor(() => !taken.isHeld() && !deleted.isHeld(), {
        timeout: 3 * ttl,
        message: 'both refused locks to be lost',
      });

      for (const handle of [taken, deleted]) {
        expect(handle.signal.reason).toBeInstanceOf(LockLostError);
        expect((handle.signal.reason as Error).message).toContain('held by another owner');
      }
      // One call carried the refused locks and the renewed ones together.
      const refusingCall = calls.calls
        .slice(refusedAt)
        .find((call) => call.tokens.includes(taken.token));
      expect(refusingCall?.tokens).toEqual(expect.arrayContaining(tokens));
      // Left as found: no lease was given to a key that holds another token.
      await expect(admin.get(taken.redisKey)).resolves.toBe('another-owner');
      await expect(admin.pttl(taken.redisKey)).resolves.toBe(-1);
      await expect(admin.exists(deleted.redisKey)).resolves.toBe(0);

      // The others are still held a full ttl later: renewed by the calls that refused the two.
      const lostAt = nowMs();
      await waitFor(() => nowMs() - lostAt > ttl, { timeout: 2 * ttl, message: 'a ttl to pass' });
      const states = await keyStates(admin, others);
      others.forEach((handle, i) => {
        expect(handle.isHeld()).toBe(true);
        expect(states[i].value).toBe(handle.token);
        expect(states[i].pttl).toBeGreaterThan(0);
      });
    } finally {
      calls.stop();
    }
  });

  it('a lock key of a foreign type fails only its own lock, untouched; the others in its call are renewed', async () => {
    const ttl = 1_500;
    const locks = clients.create(redis.client());
    const calls = await ExtendCalls.start(redis.port);
    try {
      const handles = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          locks.acquire(uniqueKey(`foreign-${i}`), { ttl, autoRenew: true }),
        ),
      );
      const tokens = handles.map((handle) => handle.token);
      await roundsAfterAllTogether(calls, tokens, 1, 10 * ttl);

      const spoilt = handles[3];
      const others = handles.filter((handle) => handle !== spoilt);
      await admin.multi().del(spoilt.redisKey).hset(spoilt.redisKey, 'field', 'x').exec();
      const spoiltAt = calls.calls.length;
      await waitFor(
        () => calls.calls.slice(spoiltAt).some((call) => call.tokens.includes(spoilt.token)),
        { timeout: 2 * ttl, message: 'a renewal call with the spoilt lock' },
      );
      const call = calls.calls.slice(spoiltAt).find((c) => c.tokens.includes(spoilt.token))!;
      expect(call.tokens).toEqual(expect.arrayContaining(tokens));

      // The hash got no lease; the explicit extend names the key and why.
      await expect(admin.pttl(spoilt.redisKey)).resolves.toBe(-1);
      const { error } = await rejectionOf(spoilt.extend());
      expect(error).toBeInstanceOf(LockUnavailableError);
      expect(String((error.cause as Error).message)).toContain(spoilt.redisKey);
      expect(String((error.cause as Error).message)).toContain('type hash');
      expect(error.message).not.toContain(spoilt.token);

      const states = await keyStates(admin, others);
      others.forEach((handle, i) => {
        expect(handle.isHeld()).toBe(true);
        expect(states[i].value).toBe(handle.token);
      });
    } finally {
      calls.stop();
    }
  });

  it('a multi-key lock in a batch is renewed all or nothing: one key gone, none of its keys is extended', async () => {
    const ttl = 1_500;
    const locks = clients.create(redis.client());
    const calls = await ExtendCalls.start(redis.port);
    try {
      const pair = await locks.acquire([uniqueKey('pair-a'), uniqueKey('pair-b')], {
        ttl,
        autoRenew: true,
      });
      const singles = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          locks.acquire(uniqueKey(`single-${i}`), { ttl, autoRenew: true }),
        ),
      );
      const tokens = [pair, ...singles].map((handle) => handle.token);
      await roundsAfterAllTogether(calls, tokens, 1, 10 * ttl);

      const [kept, gone] = pair.target.locks;
      await admin.del(gone);
      const pttlAtDelete = await admin.pttl(kept);
      await waitFor(() => !pair.isHeld(), { timeout: 3 * ttl, message: 'the pair to be lost' });
      expect((pair.signal.reason as Error).message).toContain('held by another owner');
      // The remaining key was not extended: its lease only ran down since.
      const pttl = await admin.pttl(kept);
      expect(pttl === -2 || pttl <= pttlAtDelete).toBe(true);
      for (const handle of singles) expect(handle.isHeld()).toBe(true);
    } finally {
      calls.stop();
    }
  });
});

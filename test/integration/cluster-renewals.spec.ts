/**
 * Batched renewals on a Redis Cluster and on Redlock: one EXTEND per slot (a script's keys must
 * share one), one per master with Redlock, where the quorum is judged lock by lock.
 */
import { hashSlot } from '../../lib/core/redis/cluster-slot.js';
import { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import type { RedisLockHandle } from '../../lib/core/lease/redis-lock.handle.js';
import { startCluster, stopAllClusters, type RedisCluster } from '../support/redis-cluster.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { uniqueKey } from './helpers.js';
import { ExtendCalls, renewedIn, type ExtendCall } from './renewal-rounds.js';

const TTL = 3_000;
const quiet = { warn: () => undefined };

/** The complete rounds (one followed by another) of every recorder, once each has `count`. */
async function completeRounds(recorders: ExtendCalls[], count: number): Promise<ExtendCall[][][]> {
  let rounds: ExtendCall[][][] = [];
  await waitFor(
    () => {
      rounds = recorders.map((recorder) => recorder.rounds().slice(0, -1));
      return rounds.every((r) => r.length >= count);
    },
    { timeout: 10 * TTL, interval: 20, message: `${count} renewal rounds on every node` },
  );
  return rounds;
}

describe('Batched renewals on a Cluster: one EXTEND per slot', () => {
  let cluster: RedisCluster;
  let locks: RedisLockClient;

  beforeAll(async () => {
    cluster = await startCluster({ masters: 3 });
  });
  afterEach(() => locks?.close());
  afterAll(async () => {
    await stopAllClusters();
    await stopAllRedis();
  });

  it('renews 2 × 60 locks of two hash tags in one call per slot per round, all held', async () => {
    locks = new RedisLockClient({ redis: cluster.client(), logger: quiet });
    const tags = [uniqueKey('tag-a'), uniqueKey('tag-b')];
    const handles: RedisLockHandle[] = [];
    for (const tag of tags) {
      const keys = Array.from({ length: 60 }, (_, i) => `{${tag}}:${i}`);
      handles.push(
        ...(await Promise.all(
          keys.map((key) => locks.acquire(key, { ttl: TTL, autoRenew: true })),
        )),
      );
    }
    const slots = new Set(handles.map((handle) => hashSlot(handle.redisKey)));
    expect(slots.size).toBe(2);
    // The masters that own the two slots (one, or two).
    const owners = new Set<number>();
    for (const handle of handles) owners.add((await cluster.masterForKey(handle.redisKey)).port);
    const recorders = await Promise.all([...owners].map((port) => ExtendCalls.start(port)));
    try {
      const byNode = await completeRounds(recorders, 3);
      const calls = byNode.flat(2);
      // Each call's keys share one slot.
      for (const call of calls) expect(new Set(call.keys.map(hashSlot)).size).toBe(1);
      // Past the first round (locks granted a few ms apart may start in rounds of their own),
      // every round on a master renews each of its slot's locks once, in one call per slot.
      for (const rounds of byNode) {
        for (const round of rounds.slice(1)) {
          const roundSlots = new Set(round.map((call) => hashSlot(call.keys[0])));
          expect(round.length).toBe(roundSlots.size);
          expect([...renewedIn(round).values()].every((times) => times === 1)).toBe(true);
          expect(renewedIn(round).size).toBe(60 * roundSlots.size);
        }
      }
      for (const handle of handles) expect(handle.isHeld()).toBe(true);
    } finally {
      for (const recorder of recorders) recorder.stop();
    }
  }, 60_000);
});

describe('Batched renewals on Redlock: one EXTEND per master, quorum per lock', () => {
  let masters: RedisServer[];
  let locks: RedisLockClient;

  beforeAll(async () => {
    masters = await Promise.all([startRedis(), startRedis(), startRedis()]);
  });
  afterEach(() => locks?.close());
  afterAll(() => stopAllRedis());

  it('a lock refused by 2 of 3 masters is lost, one refused by 1 of 3 is kept; both renewed in the same calls as 20 others', async () => {
    const admins = masters.map((m) => m.client());
    // Generous per-master timeouts: a loaded machine must not fail the grants themselves.
    const clients = masters.map((m) => m.client());
    locks = new RedisLockClient({ redlock: { clients, nodeTimeout: 500 }, logger: quiet });
    const handles: RedisLockHandle[] = [];
    for (let i = 0; i < 22; i++) {
      handles.push(await locks.acquire(uniqueKey(`redlock-${i}`), { ttl: TTL, autoRenew: true }));
    }
    const recorders = await Promise.all(masters.map((m) => ExtendCalls.start(m.port)));
    try {
      await completeRounds(recorders, 2);
      const [lost, kept] = handles;
      await admins[0].del(lost.redisKey);
      await admins[1].del(lost.redisKey);
      await admins[2].del(kept.redisKey);
      const at = recorders.map((r) => r.calls.length);
      await waitFor(() => !lost.isHeld(), { timeout: 2 * TTL, message: 'the lock refused twice' });
      expect((lost.signal.reason as Error).message).toContain('held by another owner');

      // The call that refused it on each master also renewed the others.
      recorders.forEach((recorder, n) => {
        const call = recorder.calls.slice(at[n]).find((c) => c.tokens.includes(lost.token))!;
        expect(call.tokens).toEqual(expect.arrayContaining(handles.map((h) => h.token)));
      });
      // A majority still renews `kept`, and every other lock.
      const renewedAt = recorders[0].calls.length;
      await waitFor(() => recorders[0].calls.length > renewedAt, {
        timeout: 2 * TTL,
        message: 'another round',
      });
      for (const handle of handles.slice(1)) expect(handle.isHeld()).toBe(true);
      await expect(admins[0].get(kept.redisKey)).resolves.toBe(kept.token);
    } finally {
      for (const recorder of recorders) recorder.stop();
    }
  }, 60_000);
});

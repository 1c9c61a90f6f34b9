/**
 * Scenario 3, topologies: what one acquire + release costs on each topology the library supports,
 * one caller at a time (latency, not throughput): a single Redis, Redlock on 3 and on 5 masters,
 * and a 3-master Redis Cluster, all private servers on this machine.
 */
import type { Redis } from 'ioredis';
import { RedisLockClient } from '../dist/core/redis-lock.client.js';
import { startCluster, stopAllClusters } from '../test/support/redis-cluster.js';
import { startRedis, type RedisServer } from '../test/support/redis-server.js';
import { now, percentile, sortedCopy } from './stats.js';

/** Long enough never to expire during a pair; no renewal. */
const TTL = 10_000;
const WARM_UP = 200;

export interface TopologyResult {
  name: string;
  acquireP50: number;
  acquireP99: number;
  pairP50: number;
  pairP99: number;
}

/** Starts the servers, measures `pairs` sequential acquire + release pairs per topology. */
export async function measureTopologies(
  single: RedisServer,
  pairs: number,
): Promise<TopologyResult[]> {
  const masters = await Promise.all(Array.from({ length: 5 }, () => startRedis()));
  const cluster = await startCluster({ masters: 3 });
  try {
    const clientOf = (server: RedisServer): Redis => server.client({ maxRetriesPerRequest: 1 });
    const setups: [string, RedisLockClient][] = [
      ['single Redis', new RedisLockClient({ redis: clientOf(single), keyPrefix: 'topo:' })],
      [
        'Redlock, 3 masters',
        new RedisLockClient({ redlock: { clients: masters.slice(0, 3).map(clientOf) } }),
      ],
      ['Redlock, 5 masters', new RedisLockClient({ redlock: { clients: masters.map(clientOf) } })],
      ['Redis Cluster, 3 masters', new RedisLockClient({ redis: cluster.client() })],
    ];
    const results: TopologyResult[] = [];
    for (const [name, locks] of setups) {
      results.push({ name, ...(await measure(locks, pairs)) });
      await locks.close();
    }
    return results;
  } finally {
    await stopAllClusters();
    await Promise.all(masters.map((m) => m.stop()));
  }
}

async function measure(locks: RedisLockClient, pairs: number) {
  const acquires: number[] = [];
  const whole: number[] = [];
  for (let i = 0; i < WARM_UP + pairs; i++) {
    // Keys spread over the slots of a Cluster, and never reused within a run.
    const key = `pair:${i}`;
    const t0 = now();
    const lock = await locks.acquire(key, { ttl: TTL });
    const t1 = now();
    await lock.release();
    if (i < WARM_UP) continue;
    acquires.push(t1 - t0);
    whole.push(now() - t0);
  }
  const a = sortedCopy(acquires);
  const w = sortedCopy(whole);
  return {
    acquireP50: percentile(a, 50),
    acquireP99: percentile(a, 99),
    pairP50: percentile(w, 50),
    pairP99: percentile(w, 99),
  };
}

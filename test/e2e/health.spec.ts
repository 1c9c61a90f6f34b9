/**
 * `RedisLockHealthIndicator` through terminus' `HealthCheckService`, against real redis-server
 * processes of each topology: up with the round trip, the topology and every node; down, naming
 * the node, when a node the locks need stops (Redlock: only when the majority is gone).
 */
import { Module, ServiceUnavailableException, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import { RedisLockHealthIndicator } from '../../lib/health/index.js';
import { RedisLockModule, type RedisLockModuleOptions } from '../../lib/index.js';
import type { NodeProbe } from '../../lib/core/redis/store-probe.js';
import { startCluster, stopAllClusters } from '../support/redis-cluster.js';
import { startRedis, stopAllRedis } from '../support/redis-server.js';
import { startSentinelGroup, stopAllSentinelGroups } from '../support/redis-sentinel.js';

/** Short, so a stopped node is reported quickly. */
const TIMEOUT = 300;

interface LockHealth {
  status: 'up' | 'down';
  topology: string;
  roundTripMs?: number;
  nodes: NodeProbe[];
}

async function createApp(options: RedisLockModuleOptions): Promise<INestApplicationContext> {
  @Module({
    imports: [RedisLockModule.forRoot(options), TerminusModule.forRoot({ logger: false })],
    providers: [RedisLockHealthIndicator],
  })
  class HealthModule {}
  return NestFactory.createApplicationContext(HealthModule, { logger: false });
}

/** What `health.check` reports for the lock store, whether it resolves (up) or throws (down). */
async function check(app: INestApplicationContext): Promise<LockHealth> {
  const health = app.get(HealthCheckService);
  const indicator = app.get(RedisLockHealthIndicator);
  let result: HealthCheckResult;
  try {
    result = await health.check([() => indicator.isHealthy('redis-lock', { timeout: TIMEOUT })]);
  } catch (error) {
    if (!(error instanceof ServiceUnavailableException)) throw error;
    result = error.getResponse() as HealthCheckResult;
    expect(result.status).toBe('error');
  }
  return result.details['redis-lock'] as unknown as LockHealth;
}

describe('RedisLockHealthIndicator', () => {
  const apps: INestApplicationContext[] = [];
  const open = async (options: RedisLockModuleOptions) => {
    const app = await createApp(options);
    apps.push(app);
    return app;
  };

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(async () => {
    await stopAllClusters();
    await stopAllSentinelGroups();
    await stopAllRedis();
  });

  it('one Redis: up with its round trip, then down naming it once it stops', async () => {
    const redis = await startRedis();
    const app = await open({ redis: redis.url });

    const up = await check(app);
    expect(up).toMatchObject({ status: 'up', topology: 'standalone' });
    expect(up.roundTripMs).toBeGreaterThan(0);
    expect(up.nodes).toEqual([
      { address: `127.0.0.1:${redis.port}`, role: 'master', up: true, roundTripMs: up.roundTripMs },
    ]);

    await redis.stop();
    const down = await check(app);
    expect(down).toMatchObject({ status: 'down', topology: 'standalone' });
    expect(down.roundTripMs).toBeUndefined();
    expect(down.nodes).toEqual([
      expect.objectContaining({ address: `127.0.0.1:${redis.port}`, up: false }),
    ]);
    expect(down.nodes[0].error).toEqual(expect.any(String));
  });

  it('Redlock: every master reported; up while a majority answers, down once it does not', async () => {
    const masters = await Promise.all([startRedis(), startRedis(), startRedis()]);
    const app = await open({ redlock: { clients: masters.map((m) => m.url) } });
    const addresses = masters.map((m) => `127.0.0.1:${m.port}`);

    const all = await check(app);
    expect(all).toMatchObject({ status: 'up', topology: 'redlock' });
    expect(all.nodes.map((n) => [n.address, n.up])).toEqual(addresses.map((a) => [a, true]));

    await masters[0].stop();
    const majority = await check(app);
    expect(majority.status).toBe('up');
    expect(majority.nodes.map((n) => n.up)).toEqual([false, true, true]);

    await masters[1].stop();
    const minority = await check(app);
    expect(minority.status).toBe('down');
    expect(minority.nodes.map((n) => n.up)).toEqual([false, false, true]);
  });

  it('Cluster: each master reported; down when one stops', async () => {
    const cluster = await startCluster({ masters: 3 });
    const app = await open({ redis: cluster.client() });
    const addresses = cluster.masters.map((m) => `127.0.0.1:${m.port}`).sort();

    const up = await check(app);
    expect(up).toMatchObject({ status: 'up', topology: 'cluster' });
    expect(up.nodes.map((n) => n.address).sort()).toEqual(addresses);
    expect(up.nodes.every((n) => n.up)).toBe(true);

    const stopped = cluster.masters[1];
    stopped.kill();
    await stopped.exited;
    const down = await check(app);
    expect(down.status).toBe('down');
    const byAddress = new Map(down.nodes.map((n) => [n.address, n.up]));
    expect(byAddress.get(`127.0.0.1:${stopped.port}`)).toBe(false);
    expect([...byAddress.values()].filter(Boolean)).toHaveLength(2);
  });

  it('Sentinel: the master the client reached; down when it stops', async () => {
    const group = await startSentinelGroup({ replicas: 1 });
    const app = await open({
      redis: { sentinels: group.sentinelAddresses, name: group.masterName },
    });

    const up = await check(app);
    expect(up).toMatchObject({ status: 'up', topology: 'sentinel' });
    expect(up.nodes).toEqual([
      expect.objectContaining({ address: `127.0.0.1:${group.master.port}`, up: true }),
    ]);

    group.master.kill();
    await group.master.exited;
    const down = await check(app);
    expect(down).toMatchObject({ status: 'down', topology: 'sentinel' });
    expect(down.nodes[0].up).toBe(false);
  });
});

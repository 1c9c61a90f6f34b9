/**
 * One process of the held-locks scenario: takes `count` locks with the watchdog on and holds them,
 * then measures what holding them costs this process while the watchdog renews them.
 *
 * argv[2]: JSON {@link HeldConfig}. Protocol with `held.bench.ts`: sends `{ type: 'held' }` once
 * every lock is taken and a full ttl has passed (the renewals settled into their rounds); on
 * `{ type: 'measure', seconds }` measures, then answers {@link HeldReport} and exits.
 * Any failure: `{ type: 'error', message }`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { nextParentMessage, sendToParent } from '../../test/support/worker-ipc.js';

export interface HeldConfig {
  url: string;
  count: number;
  ttl: number;
  /** The library build to measure: a `dist` folder (the current build, or a baseline's). */
  dist: string;
}

export interface HeldReport {
  type: 'done';
  /** Client CPU over the measured window, as a share of one core. */
  cpu: number;
  /** Event-loop delay over the window (ms). */
  lagP99: number;
  lagMax: number;
  /** Locks no longer held at the end (should be 0). */
  lost: number;
}

type Handle = { isHeld(): boolean; release(): Promise<boolean> };
type Client = {
  acquire(key: string, options: object): Promise<Handle>;
  close(): Promise<void>;
};

const config = JSON.parse(process.argv[2]) as HeldConfig;
const distUrl = pathToFileURL(resolve(config.dist, 'core/redis-lock.client.js')).href;
const { RedisLockClient } = (await import(distUrl)) as {
  RedisLockClient: new (options: object) => Client;
};

try {
  const redis = new Redis(config.url);
  const locks = new RedisLockClient({ redis, logger: { warn: () => undefined } });
  const handles: Handle[] = [];
  // A hundred at a time, as a service taking locks over a moment would.
  while (handles.length < config.count) {
    const keys = Array.from({ length: 100 }, (_, i) => `held:${process.pid}:${handles.length + i}`);
    const options = { ttl: config.ttl, autoRenew: true };
    handles.push(...(await Promise.all(keys.map((key) => locks.acquire(key, options)))));
  }
  await sleep(config.ttl);
  const measure = nextParentMessage<{ type: 'measure'; seconds: number }>();
  await sendToParent({ type: 'held' });
  const { seconds } = await measure;

  const lag = monitorEventLoopDelay({ resolution: 1 });
  lag.enable();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await sleep(seconds * 1000);
  const cpu = process.cpuUsage(cpuBefore);
  const elapsed = performance.now() - started;
  lag.disable();
  const report: HeldReport = {
    type: 'done',
    cpu: (cpu.user + cpu.system) / 1000 / elapsed,
    lagP99: lag.percentile(99) / 1e6,
    lagMax: lag.max / 1e6,
    lost: handles.filter((handle) => !handle.isHeld()).length,
  };
  await sendToParent(report);
  await locks.close();
  redis.disconnect();
} catch (err) {
  await sendToParent({ type: 'error', message: (err as Error).message });
}
process.disconnect();

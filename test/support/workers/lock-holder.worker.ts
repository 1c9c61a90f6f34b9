/**
 * Takes one lock and then does what the test tells it, so the test can kill or freeze the holder
 * (SIGKILL, SIGSTOP) and see what the old holder's handle does afterwards.
 *
 * argv[2]: JSON `{ url, key, ttl, autoRenew }`.
 * Sends `{ type: 'acquired', pid, token, redisKey, before }`, where `before` is CLOCK_MONOTONIC in
 * ms (`process.hrtime`, the same clock in every process) read just before the acquiring SET.
 * Then answers each command `{ type: 'extend' | 'release' | 'state' | 'exit' }` with
 * `{ type: 'reply', to, ... }`.
 */
import { Redis } from 'ioredis';
import { RedisLockClient } from '../../../lib/core/redis-lock.client.js';
import { sendToParent } from '../worker-ipc.js';

interface Config {
  url: string;
  key: string;
  ttl: number;
  autoRenew: boolean;
}

const config = JSON.parse(process.argv[2]) as Config;
const redis = new Redis(config.url);
const warnings: string[] = [];
const locks = new RedisLockClient({ redis, logger: { warn: (m) => void warnings.push(m) } });
const errorInfo = (error: unknown) =>
  error instanceof Error ? { name: error.name, message: error.message } : { name: String(error) };

await redis.ping();
const before = Number(process.hrtime.bigint()) / 1e6;
const lock = await locks.acquire(config.key, { ttl: config.ttl, autoRenew: config.autoRenew });

process.on('message', (command: { type: string }) => {
  void (async () => {
    switch (command.type) {
      case 'extend':
        try {
          await lock.extend();
          return sendToParent({ type: 'reply', to: 'extend', ok: true });
        } catch (error) {
          return sendToParent({ type: 'reply', to: 'extend', ok: false, error: errorInfo(error) });
        }
      case 'release':
        try {
          const released = await lock.release();
          return sendToParent({ type: 'reply', to: 'release', released });
        } catch (error) {
          return sendToParent({ type: 'reply', to: 'release', error: errorInfo(error) });
        }
      case 'state':
        return sendToParent({
          type: 'reply',
          to: 'state',
          held: lock.isHeld(),
          aborted: lock.signal.aborted,
          reason: lock.signal.aborted ? errorInfo(lock.signal.reason) : undefined,
          warnings,
        });
      case 'exit':
        redis.disconnect();
        process.exit(0);
    }
  })();
});

await sendToParent({
  type: 'acquired',
  pid: process.pid,
  token: lock.token,
  redisKey: lock.redisKey,
  before,
});

/**
 * A lock client in its own process that does what the test tells it, one command at a time or
 * several at once (`AgentCommand` in protocol.ts): start an acquire (answered when granted or
 * failed), release a held lock, write to a fenced store with a held lock's fencing token, or tell
 * the warnings its lock client logged. So the test can line up waiters of several processes,
 * kill or freeze one of them, and see what each got.
 *
 * argv[2]: JSON `{ url, client }`, `client` being extra `RedisLockClient` options (`fair`,
 * `fairQueueTimeout`, `pubSub`). Sends `{ type: 'ready', pid }` once connected, then one
 * `AgentReply` per command.
 */
import { Redis } from 'ioredis';
import { RedisLockClient } from '../../../lib/core/redis-lock.client.js';
import type { RedisLockHandle } from '../../../lib/core/lease/redis-lock.handle.js';
import { sendToParent } from '../../support/worker-ipc.js';
import { fencedWrite, type AgentCommand, type AgentReply } from './protocol.js';

interface Config {
  url: string;
  client?: { fair?: boolean; fairQueueTimeout?: number; pubSub?: boolean };
}

const config = JSON.parse(process.argv[2]) as Config;
const redis = new Redis(config.url);
const observer = new Redis(config.url);
const warnings: string[] = [];
const locks = new RedisLockClient({
  ...config.client,
  redis,
  logger: { warn: (m) => void warnings.push(m) },
});
const held = new Map<string, RedisLockHandle>();
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const reply = (message: AgentReply) => sendToParent(message);

async function handle(command: AgentCommand): Promise<void> {
  switch (command.type) {
    case 'acquire': {
      const lock = await locks.acquire(command.key, command.options);
      const at = nowMs();
      const heldAtGrant = lock.isHeld();
      const owns = (await observer.get(lock.redisKey)) === lock.token;
      if (command.record) await observer.rpush(command.record, command.id);
      if (command.releaseAtOnce) await lock.release();
      else held.set(command.id, lock);
      return reply({
        type: 'granted',
        id: command.id,
        token: lock.token,
        fencingToken: lock.fencingToken.toString(),
        at,
        held: heldAtGrant,
        owns,
      });
    }
    case 'release': {
      const released = await held.get(command.id)!.release();
      held.delete(command.id);
      return reply({ type: 'released', id: command.id, released });
    }
    case 'write': {
      // Deliberately no isHeld() check first: the store's fencing check must catch a late write.
      const lock = held.get(command.id)!;
      const accepted = await fencedWrite(observer, command.store, lock.fencingToken, command.value);
      return reply({ type: 'written', id: command.id, accepted, held: lock.isHeld() });
    }
    case 'warnings':
      return reply({ type: 'warnings', id: command.id, warnings });
    case 'block': {
      // Written to the socket before the loop starts, so Redis sees it only once we are blocked.
      void observer.set(command.marker, '1');
      const until = nowMs() + command.ms;
      while (nowMs() < until) {
        // busy: nothing else runs in this process meanwhile
      }
      return reply({ type: 'blocked', id: command.id });
    }
  }
}

process.on('message', (command: AgentCommand) => {
  handle(command).catch((error: unknown) => {
    const { name, message } =
      error instanceof Error ? error : { name: 'Error', message: String(error) };
    return reply({ type: 'failed', id: command.id, error: { name, message } });
  });
});

await Promise.all([redis.ping(), observer.ping()]);
await sendToParent({ type: 'ready', pid: process.pid });

/**
 * The stores the store-independent behavioural specs run on (`describe.each(LOCK_BACKENDS)`):
 * a Redis the harness starts, and the in-memory store. Each gives lock clients and a read (and
 * tamper) view of its keys, so one test asserts the same thing of both and the in-memory store
 * cannot drift from the scripts.
 */
import type { Redis } from 'ioredis';
import { InMemoryLockStore } from '../../lib/core/memory/in-memory-lock.store.js';
import type { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import type { RedisLockClientOptions } from '../../lib/core/redis-lock-client.options.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { fairQueue, LockClients, subscriberCount } from './helpers.js';

export type BackendName = 'redis' | 'memory';
export const LOCK_BACKENDS: BackendName[] = ['redis', 'memory'];

/** The keys of a store, read the way the specs read Redis (`admin.get`, `admin.pttl`...). */
export interface StoreKeys {
  get(key: string): Promise<string | null>;
  pttl(key: string): Promise<number>;
  /** How many of `keys` exist. */
  exists(...keys: string[]): Promise<number>;
  del(key: string): Promise<unknown>;
  set(key: string, value: string): Promise<unknown>;
  /** The waiters in the fair queue of `key` (default prefix), first in line first. */
  queue(key: string): Promise<string[]>;
}

/** Lock clients on one store, and its keys. Made by {@link lockBackend} inside a `describe`. */
export interface LockBackend {
  readonly name: BackendName;
  /** A new client on the store (closed after each test). */
  client(options?: Omit<RedisLockClientOptions, 'redis' | 'memory'>): RedisLockClient;
  readonly keys: StoreKeys;
  /** Resolves once `count` waiters listen for releases of `key` (default prefix). */
  subscribed(key: string, count?: number): Promise<void>;
}

/** Registers the hooks that start the store before the `describe`'s tests and stop it after. */
export function lockBackend(name: BackendName): LockBackend {
  const clients = new LockClients();
  let server: RedisServer | undefined;
  let admin: Redis | undefined;
  let memory = new InMemoryLockStore();
  beforeAll(async () => {
    if (name !== 'redis') return;
    server = await startRedis();
    admin = server.client();
  });
  afterEach(() => clients.closeAll());
  afterAll(async () => {
    if (name === 'redis') await stopAllRedis();
    memory = new InMemoryLockStore();
  });
  const keys: StoreKeys =
    name === 'redis'
      ? {
          get: (key) => admin!.get(key),
          pttl: (key) => admin!.pttl(key),
          exists: (...k) => admin!.exists(...k),
          del: (key) => admin!.del(key),
          set: (key, value) => admin!.set(key, value),
          queue: (key) => fairQueue(admin!, key),
        }
      : {
          get: async (key) => memory.keys.get(key) ?? null,
          pttl: async (key) => memory.keys.pttl(key),
          exists: async (...k) => k.filter((key) => memory.keys.get(key) !== undefined).length,
          del: async (key) => memory.keys.delete(key),
          set: async (key, value) => memory.keys.set(key, value, Infinity),
          queue: async (key) => memory.keys.waiters(`lock:{${key}}:queue`),
        };
  return {
    name,
    keys,
    client: (options = {}) =>
      name === 'redis'
        ? clients.create(server!.client(), options)
        : clients.createOn({ ...options, memory }),
    subscribed: (key, count = 1) =>
      waitFor(
        async () =>
          (name === 'redis'
            ? await subscriberCount(admin!, key)
            : memory.channels.listening(`lock:{${key}}:released`)) >= count,
        { interval: 5, message: `${count} waiter(s) listening for releases of ${key}` },
      ),
  };
}

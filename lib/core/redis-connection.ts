import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { WRITE_BATCH } from '../redis-lock.constants.js';
import { REDIS_RECOVERED, redisErrorWarning } from '../redis-lock.messages.js';
import type { LockLogger } from './redis-lock-client.options.js';

/**
 * An ioredis client the locks can run on: one Redis (also through Sentinel) or a Redis Cluster.
 *
 * @example
 * const client: RedisClient = new Cluster([{ host: '10.0.0.1', port: 7000 }]);
 */
export type RedisClient = Redis | Cluster;

/**
 * Where to lock: a `redis://` URL, ioredis options (including `{ sentinels, name }` for
 * Sentinel), or a client you own (`Redis` or `Cluster`).
 *
 * @example
 * const config: RedisConnectionConfig = { host: 'redis', port: 6379, password: process.env.REDIS_PASSWORD };
 */
export type RedisConnectionConfig = string | RedisOptions | RedisClient;

/** Whether the client is an ioredis `Cluster`. */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as Cluster).isCluster === true;
}

/**
 * Per socket, for the current tick: how many lock commands wait in its cork (0: the tick's first
 * command went out alone and nothing is corked yet). See {@link coalesceWrites}.
 */
const batches = new WeakMap<Redis['stream'], number>();

/**
 * Gathers the lock commands written to `client` in one tick into few socket writes. The tick's
 * first command is written at once: alone it must not wait, and it is often the one a waiter in
 * another process is waiting for (a release). Later ones in the same tick are corked and leave in
 * writes of WRITE_BATCH commands, the rest when the tick ends. Under load many locks send their
 * scripts in the same tick (their replies arrive together and their callers go on together), and
 * a write per command is a system call each: the largest single cost of a lock on the client. A
 * batch leaves as soon as it is full, so Redis works on it while the next is built. The order of
 * commands is unchanged, and corks nest: a socket someone else corked stays corked until they
 * uncork it. Left alone: a Cluster (each command goes to its own node's socket) and a client not
 * ready (ioredis queues its commands then).
 *
 * @example
 * coalesceWrites(redis);
 * const reply = redis.evalsha(sha, 1, 'lock:{a}', token); // leaves with the tick's other commands
 */
export function coalesceWrites(client: RedisClient): void {
  if (isCluster(client) || client.status !== 'ready') return;
  const stream = client.stream;
  if (!stream?.writable) return;
  const waiting = batches.get(stream);
  if (waiting === undefined) {
    batches.set(stream, 0);
    process.nextTick(endTick, stream);
  } else if (waiting === 0) {
    stream.cork();
    batches.set(stream, 1);
  } else if (waiting < WRITE_BATCH) {
    batches.set(stream, waiting + 1);
  } else {
    // Send the full batch; the socket stays corked for the rest of the tick.
    stream.uncork();
    stream.cork();
    batches.set(stream, 1);
  }
}

function endTick(stream: Redis['stream']): void {
  const waiting = batches.get(stream);
  batches.delete(stream);
  if (waiting) stream.uncork();
}

/*
 * For clients we create: fail a command after one reconnect attempt instead of ioredis's 20, so a
 * request answers 503 quickly when Redis is down instead of hanging; never run without the lock.
 */
const OWN_CLIENT_DEFAULTS: RedisOptions = { maxRetriesPerRequest: 1 };

/**
 * The ioredis client the locks go through, and whether we created it (and so must close it).
 *
 * @example
 * const connection = RedisConnection.from('redis://localhost:6379', logger);
 * // ...
 * await connection.close(); // quits only a client it created
 */
export class RedisConnection {
  private constructor(
    readonly client: RedisClient,
    readonly owned: boolean,
  ) {}

  static from(config: RedisConnectionConfig, logger: LockLogger): RedisConnection {
    if (isRedisClient(config)) return new RedisConnection(config, false);
    const client =
      typeof config === 'string'
        ? new Redis(config, OWN_CLIENT_DEFAULTS)
        : new Redis({ ...OWN_CLIENT_DEFAULTS, ...config });
    // Report the outage once and the recovery once, not every reconnect attempt.
    let healthy = true;
    client.on('error', (err: Error) => {
      if (healthy) logger.warn(redisErrorWarning(err.message));
      healthy = false;
    });
    client.on('ready', () => {
      if (!healthy) logger.warn(REDIS_RECOVERED);
      healthy = true;
    });
    return new RedisConnection(client, true);
  }

  /** Quits a client we created (disconnecting if it will not quit); leaves the user's open. */
  async close(): Promise<void> {
    if (!this.owned || this.client.status === 'end') return;
    // QUIT would wait for a reconnect to fail first; there is nothing to flush when not ready.
    if (this.client.status !== 'ready') return this.client.disconnect();
    try {
      // QUIT resolves on the server's OK; the socket closes (status 'end') a moment later.
      const ended = new Promise((resolve) => this.client.once('end', resolve));
      await this.client.quit();
      await ended;
    } catch {
      this.client.disconnect();
    }
  }
}

/*
 * Duck-typed rather than `instanceof Redis`: the app's ioredis may be another copy (or major) than
 * the one this package resolves, and options must never be mistaken for a client or vice versa.
 */
function isRedisClient(config: RedisConnectionConfig): config is RedisClient {
  const candidate = config as Partial<Redis>;
  return (
    typeof config === 'object' &&
    typeof candidate.evalsha === 'function' &&
    typeof candidate.set === 'function' &&
    typeof candidate.status === 'string'
  );
}

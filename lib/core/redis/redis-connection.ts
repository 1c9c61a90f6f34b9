/* The connection locks run on: made from options (auto-pipelining on) or a client passed in. */
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { QUIT_TIMEOUT } from '../../redis-lock.constants.js';
import {
  REDIS_RECOVERED,
  redisErrorWarning,
  UNPARSABLE_REDIS_URL,
} from '../../redis-lock.messages.js';
import { answerWithin } from '../waiting/race-attempt.js';
import type { LockLogger } from '../redis-lock-client.options.js';

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

/*
 * For clients we create: fail a command after one reconnect attempt instead of ioredis's 20, so a
 * request answers 503 quickly when Redis is down instead of hanging; never run without the lock.
 * And ioredis' automatic pipelining: the lock commands of one tick (many locks' scripts, when
 * their replies arrived together) leave in one socket write instead of a system call each. A
 * client the user passes in is used as it is.
 */
const OWN_CLIENT_DEFAULTS: RedisOptions = { maxRetriesPerRequest: 1, enableAutoPipelining: true };

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
        ? clientForUrl(config)
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

  /**
   * Quits a client we created, dropping the connection instead when Redis does not answer within
   * QUIT_TIMEOUT (frozen, or cut off without a reset): shutdown must not hang on it. Leaves the
   * user's client open.
   */
  async close(): Promise<void> {
    if (!this.owned || this.client.status === 'end') return;
    // QUIT would wait for a reconnect to fail first; there is nothing to flush when not ready.
    if (this.client.status !== 'ready') return this.client.disconnect();
    // QUIT resolves on the server's OK; the socket closes (status 'end') a moment later. ioredis
    // sends QUIT at once, ahead of commands still gathered for the tick's pipeline (a last
    // release, say): a PING joins that pipeline, so its answer means they were all answered.
    const ended = new Promise((resolve) => this.client.once('end', resolve));
    try {
      await answerWithin(
        this.client
          .ping()
          .then(() => this.client.quit())
          .then(() => ended),
        QUIT_TIMEOUT,
      );
    } catch {
      this.client.disconnect();
    }
  }
}

/**
 * A client for a `redis://` or `rediss://` URL. ioredis rejects a URL it cannot parse with an
 * error that carries the whole URL (Node's `input`), which Nest prints on a failed startup: a
 * password in plain text. Ours says what to fix and carries neither the URL nor that error.
 */
function clientForUrl(url: string): Redis {
  let client: Redis | undefined;
  try {
    client = new Redis(url, OWN_CLIENT_DEFAULTS);
  } catch {
    // Not rethrown from inside the catch: the new error must not get the old one as its cause.
  }
  if (!client) throw new TypeError(UNPARSABLE_REDIS_URL);
  return client;
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

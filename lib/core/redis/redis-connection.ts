import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { QUIT_TIMEOUT, WRITE_BATCH } from '../../redis-lock.constants.js';
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

/** Per socket, for the current tick: how its lock commands are being written. */
interface TickWrites {
  /** Commands waiting in the socket's cork (0: we have not corked it). */
  corked: number;
  /** Whether a command that someone waits for went out at once this tick. */
  sentAtOnce: boolean;
}

/** See {@link sendCoalesced}. */
const ticks = new WeakMap<Redis['stream'], TickWrites>();

/**
 * Sends a lock command (`send` writes it to `client`), gathering the lock commands written in one
 * tick into few socket writes. A write per command is a system call each: the largest single cost
 * of a lock on the client. The tick's first command leaves at once: alone it must not wait, and
 * it is often the one a waiter in another process is waiting for (a release). Later ones in the
 * same tick are corked and leave in writes of WRITE_BATCH commands, the rest when the tick ends.
 * Under load many locks send their scripts in the same tick (their replies arrive together and
 * their callers go on together). A batch leaves as soon as it is full, so Redis works on it while
 * the next is built.
 *
 * `lazy`: nobody needs this command on its way before the tick ends (a fair waiter's attempt: its
 * reply comes in a later tick anyway). It is corked even when first, and leaves with the tick's
 * next command, or when the tick ends. Fair waiters of a process that ask in one tick so reach
 * Redis in one write, one behind the other in the queue; and a releaser that asks again at once
 * costs no system call before the waiter it passed the lock to in this process takes it up.
 *
 * The order of commands is unchanged, and corks nest: a socket someone else corked stays corked
 * until they uncork it. Left alone: a Cluster (each command goes to its own node's socket) and a
 * client not ready (ioredis queues its commands then).
 *
 * @example
 * const reply = sendCoalesced(redis, () => redis.evalsha(sha, 1, 'lock:{a}', token));
 */
export function sendCoalesced<T>(client: RedisClient, send: () => T, lazy = false): T {
  if (isCluster(client) || client.status !== 'ready') return send();
  const stream = client.stream;
  if (!stream?.writable) return send();
  let tick = ticks.get(stream);
  if (!tick) {
    ticks.set(stream, (tick = { corked: 0, sentAtOnce: false }));
    process.nextTick(endTick, stream);
  }
  if (!lazy && !tick.sentAtOnce) {
    tick.sentAtOnce = true;
    const sent = send();
    // With the lazy commands before it, in one write.
    if (tick.corked > 0) uncork(stream, tick);
    return sent;
  }
  if (tick.corked >= WRITE_BATCH) uncork(stream, tick); // the full batch goes now
  if (tick.corked === 0) stream.cork();
  tick.corked++;
  return send();
}

function uncork(stream: Redis['stream'], tick: TickWrites): void {
  tick.corked = 0;
  stream.uncork();
}

function endTick(stream: Redis['stream']): void {
  const tick = ticks.get(stream);
  ticks.delete(stream);
  if (tick?.corked) stream.uncork();
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
    // QUIT resolves on the server's OK; the socket closes (status 'end') a moment later.
    const ended = new Promise((resolve) => this.client.once('end', resolve));
    try {
      await answerWithin(
        this.client.quit().then(() => ended),
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

/* Release wake-ups over Redis pub/sub: one subscriber connection per client, for every waiter. */
import { ATTEMPT_TIMEOUT } from '../../redis-lock.constants.js';
import {
  CLIENT_CLOSED,
  WAKE_UPS_RESTORED,
  wakeUpsUnavailableWarning,
} from '../../redis-lock.messages.js';
import { answerWithin, NoAnswerError } from './race-attempt.js';
import { isCluster, type RedisClient } from '../redis/redis-connection.js';
import type { LockLogger } from '../redis-lock-client.options.js';

/**
 * Called with a release's message (the first fair waiter, or '' for anyone) and the channel it
 * came on, or with `null` when messages may have been missed (the subscriber reconnected) and
 * every waiter should look again.
 */
export type WakeListener = (message: string | null, channel?: string) => void;

/**
 * The one subscriber connection of a lock client, shared by every waiter in the process. Channels
 * are subscribed while someone listens on them and unsubscribed when the last listener leaves.
 * Created on the first wait, so a client that never waits never opens it. On a Redis Cluster it
 * uses sharded pub/sub (SSUBSCRIBE): each channel is served by its own shard only.
 *
 * @example
 * const hub = new WakeUpHub(redis, logger);
 * const stop = await hub.listen(['lock:{a}:released'], () => retryNow());
 * // ...
 * stop();
 */
export class WakeUpHub {
  private subscriber?: RedisClient;
  private readonly sharded: boolean;
  private readonly listeners = new Map<string, Set<WakeListener>>();
  /** Channels by their SUBSCRIBE, settled once Redis confirmed it. */
  private readonly subscribed = new Map<string, Promise<unknown>>();
  /** Channels whose last listener left; unsubscribed together unless someone listens again. */
  private readonly leaving = new Set<string>();
  private failing = false;
  private closed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly logger: LockLogger,
  ) {
    this.sharded = isCluster(redis);
  }

  /**
   * Calls `listener` for every message on `channels` until the returned function is called.
   * Resolves once Redis confirmed the subscriptions, so no release after that is missed.
   * @param timeout how long Redis may take to confirm (ms)
   * @throws when the subscription cannot be made in time (the caller falls back to polling);
   * listening has then already been undone.
   */
  async listen(
    channels: readonly string[],
    listener: WakeListener,
    timeout = ATTEMPT_TIMEOUT,
  ): Promise<() => void> {
    const subscriber = this.connection();
    const confirmations = channels.map((channel) => {
      let listening = this.listeners.get(channel);
      if (!listening) this.listeners.set(channel, (listening = new Set()));
      listening.add(listener);
      let confirmed = this.subscribed.get(channel);
      if (!confirmed) {
        confirmed = this.sharded ? subscriber.ssubscribe(channel) : subscriber.subscribe(channel);
        // A failed SUBSCRIBE is retried by the next listener rather than remembered.
        confirmed.catch(() => this.subscribed.delete(channel));
        this.subscribed.set(channel, confirmed);
      }
      return confirmed;
    });
    const stop = () => {
      for (const channel of channels) this.unlisten(channel, listener);
    };
    try {
      await answerWithin(Promise.all(confirmations), timeout);
    } catch (err) {
      stop();
      // A caller with little time left may give up early; that says nothing about pub/sub.
      const callerImpatient = err instanceof NoAnswerError && timeout < ATTEMPT_TIMEOUT;
      if (!callerImpatient && !this.failing) {
        this.logger.warn(wakeUpsUnavailableWarning((err as Error).message));
        this.failing = true;
      }
      throw err;
    }
    if (this.failing) this.logger.warn(WAKE_UPS_RESTORED);
    this.failing = false;
    return stop;
  }

  /** Closes the subscriber connection. Waiters still listening fall back to their timers. */
  close(): void {
    this.closed = true;
    this.listeners.clear();
    this.subscribed.clear();
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }

  private connection(): RedisClient {
    if (this.closed) throw new Error(CLIENT_CLOSED);
    if (this.subscriber) return this.subscriber;
    // Same server and options as the lock connection; a connection in subscribe mode can run
    // nothing else, hence a second one. A Cluster subscribes per shard.
    const subscriber = isCluster(this.redis)
      ? this.redis.duplicate([], { shardedSubscribers: true })
      : this.redis.duplicate();
    let connectedBefore = false;
    subscriber.on(this.sharded ? 'smessage' : 'message', (channel: string, message: string) => {
      const listening = this.listeners.get(channel);
      if (listening) for (const listener of [...listening]) listener(message, channel);
    });
    subscriber.on('ready', () => {
      // ioredis resubscribes by itself after a reconnect, but releases published while the
      // connection was down are lost: every waiter looks again.
      if (connectedBefore) for (const listener of this.allListeners()) listener(null);
      connectedBefore = true;
    });
    // Errors surface through `listen` and the waiters' timers; an 'error' event without a
    // listener would crash the process.
    subscriber.on('error', () => undefined);
    this.subscriber = subscriber;
    return subscriber;
  }

  private allListeners(): Set<WakeListener> {
    const all = new Set<WakeListener>();
    for (const listening of this.listeners.values()) for (const l of listening) all.add(l);
    return all;
  }

  private unlisten(channel: string, listener: WakeListener): void {
    const listening = this.listeners.get(channel);
    if (!listening?.delete(listener) || listening.size > 0) return;
    // Not at once: when a waiter gets the lock, the next waiter of this process listens on the
    // same channel a moment later, and an UNSUBSCRIBE + SUBSCRIBE per hand-over is waste.
    if (this.leaving.size === 0) setImmediate(() => this.unsubscribeLeft());
    this.leaving.add(channel);
  }

  private unsubscribeLeft(): void {
    const left = [...this.leaving].filter((channel) => !this.listeners.get(channel)?.size);
    this.leaving.clear();
    for (const channel of left) {
      this.listeners.delete(channel);
      this.subscribed.delete(channel);
    }
    // Commands run in order on the connection: a later SUBSCRIBE to them still wins. Sharded
    // channels of different slots cannot share one SUNSUBSCRIBE.
    if (this.sharded) {
      for (const channel of left) this.subscriber?.sunsubscribe(channel).catch(() => undefined);
    } else if (left.length > 0) {
      this.subscriber?.unsubscribe(...left).catch(() => undefined);
    }
  }
}

/** The data an in-memory lock store keeps: strings with a lease, and waiter queues. */
import { monotonicNow } from '../lease/monotonic-clock.js';

/** A string key and when it expires (monotonic ms; Infinity: never). */
interface Entry {
  value: string;
  expiresAt: number;
}

/** A waiter's place in a queue: when its place lapses without a refresh (monotonic ms). */
interface Place {
  deadline: number;
}

/**
 * The few Redis data types the lock scripts use, held in this process: strings with a TTL (lock
 * keys, fencing counters) and queues of waiters in arrival order with a deadline per waiter (the
 * `queue` and `timeouts` sorted sets of a key, kept together). Expiry is lazy, as in Redis: a key
 * whose time passed is gone when next read. Time is `performance.now()`, so a test that fakes it
 * moves leases with it.
 *
 * @example
 * const keys = new MemoryKeyspace();
 * keys.set('lock:{a}', token, 30_000);
 * keys.pttl('lock:{a}'); // 30000, then less
 */
export class MemoryKeyspace {
  private readonly strings = new Map<string, Entry>();
  private readonly queues = new Map<string, Map<string, Place>>();

  /** The value of a live key, or undefined. */
  get(key: string): string | undefined {
    const entry = this.strings.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= monotonicNow()) {
      this.strings.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Sets `key` with a lease of `ttl` ms (Infinity: no expiry). */
  set(key: string, value: string, ttl: number): void {
    this.strings.set(key, { value, expiresAt: monotonicNow() + ttl });
  }

  /** Gives a live key a new lease of `ttl` ms. */
  expire(key: string, ttl: number): void {
    const entry = this.strings.get(key);
    if (entry && this.get(key) !== undefined) entry.expiresAt = monotonicNow() + ttl;
  }

  delete(key: string): void {
    this.strings.delete(key);
  }

  /** Like Redis PTTL: the ms left (rounded up), or -2 when the key is absent. */
  pttl(key: string): number {
    if (this.get(key) === undefined) return -2;
    const { expiresAt } = this.strings.get(key)!;
    return expiresAt === Infinity ? -1 : Math.max(0, Math.ceil(expiresAt - monotonicNow()));
  }

  /**
   * The live waiters of `queue`, first in line first, after dropping the places whose deadline
   * passed (waiters that gave up or died), as the scripts' PURGE_STALE does.
   */
  waiters(queue: string): string[] {
    const places = this.queues.get(queue);
    if (!places) return [];
    const now = monotonicNow();
    for (const [waiter, place] of places) if (place.deadline <= now) places.delete(waiter);
    if (places.size === 0) this.queues.delete(queue);
    return [...places.keys()];
  }

  /** How long the place of `waiter` has left (ms), or undefined when it has none. */
  placeLeft(queue: string, waiter: string): number | undefined {
    const place = this.queues.get(queue)?.get(waiter);
    return place && place.deadline - monotonicNow();
  }

  /** Queues `waiter` at the end, or refreshes its deadline keeping its place (ZADD NX + ZADD). */
  enqueue(queue: string, waiter: string, timeout: number): void {
    let places = this.queues.get(queue);
    if (!places) this.queues.set(queue, (places = new Map()));
    places.set(waiter, { deadline: monotonicNow() + timeout });
  }

  dequeue(queue: string, waiter: string): void {
    const places = this.queues.get(queue);
    if (places?.delete(waiter) && places.size === 0) this.queues.delete(queue);
  }
}

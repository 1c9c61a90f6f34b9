/* The contract of release wake-ups: pub/sub on Redis, or messages in memory. */
import type { WakeListener } from './wake-up.hub.js';

/**
 * Where a waiter hears that a lock was released: Redis pub/sub (`WakeUpHub`) or, with the
 * in-memory store, its channels in this process (`MemoryWakeUps`).
 *
 * @example
 * const stop = await wakeUps.listen(target.channels, () => wake.ring(), 1_000);
 * stop();
 */
export interface WakeUpSource {
  /**
   * Calls `listener` for every message on `channels` until the returned function is called.
   * Resolves once listening, so no release after that is missed.
   * @throws when listening cannot start in time (the waiter then polls).
   */
  listen(
    channels: readonly string[],
    listener: WakeListener,
    timeout?: number,
  ): Promise<() => void>;
  /** Stops every listener; waiters still listening fall back to their timers. */
  close(): void;
}

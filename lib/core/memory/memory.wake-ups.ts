/** Release messages between lock clients that share an in-memory store. */
import { CLIENT_CLOSED } from '../../redis-lock.messages.js';
import type { WakeListener } from '../waiting/wake-up.hub.js';
import type { WakeUpSource } from '../waiting/wake-up-source.interface.js';

/**
 * The publish side of an in-memory store: its channels, named as in Redis (a key's channel, and
 * one per client for queued waiters). A message is delivered on a later microtask, never inside
 * the release that sent it: as with Redis, a waiter hears it after the release's own step, and
 * it is only a hint to look again.
 *
 * @example
 * const stop = channels.subscribe('lock:{a}:released', (message) => retry());
 * channels.publish('lock:{a}:released', '');
 */
export class MemoryChannels {
  private readonly listeners = new Map<string, Set<WakeListener>>();

  subscribe(channel: string, listener: WakeListener): () => void {
    let listening = this.listeners.get(channel);
    if (!listening) this.listeners.set(channel, (listening = new Set()));
    listening.add(listener);
    return () => {
      if (listening.delete(listener) && listening.size === 0) this.listeners.delete(channel);
    };
  }

  /** How many listeners `channel` has, and the channels named `channel:...` (one per client). */
  listening(channel: string): number {
    let count = 0;
    for (const [name, listening] of this.listeners) {
      if (name === channel || name.startsWith(`${channel}:`)) count += listening.size;
    }
    return count;
  }

  publish(channel: string, message: string): void {
    const listening = this.listeners.get(channel);
    if (!listening) return;
    const targets = [...listening];
    queueMicrotask(() => {
      for (const listener of targets) listener(message);
    });
  }
}

/**
 * One lock client's wake-ups on an in-memory store: what `WakeUpHub` is on Redis pub/sub.
 *
 * @example
 * const wakeUps = new MemoryWakeUps(channels);
 * const stop = await wakeUps.listen(['lock:{a}:released'], () => retry());
 */
export class MemoryWakeUps implements WakeUpSource {
  private readonly stops = new Set<() => void>();
  private closed = false;

  constructor(private readonly channels: MemoryChannels) {}

  /** @throws Error once the client is closed. */
  listen(channels: readonly string[], listener: WakeListener): Promise<() => void> {
    if (this.closed) return Promise.reject(new Error(CLIENT_CLOSED));
    const unsubscribes = channels.map((channel) => this.channels.subscribe(channel, listener));
    const stop = () => {
      this.stops.delete(stop);
      for (const unsubscribe of unsubscribes) unsubscribe();
    };
    this.stops.add(stop);
    return Promise.resolve(stop);
  }

  close(): void {
    this.closed = true;
    for (const stop of [...this.stops]) stop();
  }
}

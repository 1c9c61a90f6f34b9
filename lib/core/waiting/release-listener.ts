/* Subscribes a waiter to the release messages of its keys: the key's channel, or its own. */
import { ATTEMPT_TIMEOUT } from '../../redis-lock.constants.js';
import { waiterChannel } from '../keys/lock-token.js';
import { monotonicNow } from '../lease/monotonic-clock.js';
import type { AcquireCall } from './acquire-call.interface.js';
import type { WakeUpSource } from './wake-up-source.interface.js';

/**
 * Subscribes a waiter to the keys' release channels; `undefined` when it must poll instead.
 * `listener` gets each message with the lock key whose channel it came on.
 *
 * @example
 * const stopListening = await listenForRelease(wakeUps, call, () => wake.ring());
 */
export async function listenForRelease(
  wakeUps: WakeUpSource | undefined,
  call: AcquireCall,
  listener: (message: string | null, lock?: string) => void,
): Promise<(() => void) | undefined> {
  if (!wakeUps) return undefined;
  const timeout = Math.min(ATTEMPT_TIMEOUT, Math.max(1, call.deadline - monotonicNow()));
  try {
    // Queued waiters are told one by one, on their client's channel; the others share the key's.
    const { channels, locks } = call.target;
    const own = call.queued ? channels.map((c) => waiterChannel(c, call.token)) : channels;
    const lockOf = new Map(own.map((channel, i) => [channel, locks[i]]));
    const onMessage = (message: string | null, channel?: string) =>
      listener(message, channel === undefined ? undefined : lockOf.get(channel));
    return await wakeUps.listen(own, onMessage, timeout);
  } catch {
    return undefined; // reported by the hub; this wait polls with its retry strategy
  }
}

/* The locks one client holds: tracked from grant to release or loss, and waited for by a drain. */
import { heldAfterDrain } from './lock-drain.js';
import type { RedisLockHandle } from './redis-lock.handle.js';

/**
 * The handles a client granted and has not seen let go (`close` releases them), and the drains
 * waiting for them to be let go.
 *
 * @example
 * held.add(handle); // granted
 * held.delete(handle); held.wakeDrains(); // released or lost
 * const stillHeld = await held.drain(10_000); // names of the locks still held then
 */
export class HeldLocks {
  private readonly handles = new Set<RedisLockHandle>();
  /** Called whenever a held lock is let go: a drain waits on them. */
  private readonly endedListeners = new Set<() => void>();

  add(handle: RedisLockHandle): void {
    this.handles.add(handle);
  }

  delete(handle: RedisLockHandle): void {
    this.handles.delete(handle);
  }

  /** Tells every drain in progress to look again: a lock was let go. */
  wakeDrains(): void {
    for (const listener of this.endedListeners) listener();
  }

  /** Every handle held now. */
  all(): RedisLockHandle[] {
    return [...this.handles];
  }

  /** Waits up to `timeout` ms for every held lock to be let go; the names still held then. */
  async drain(timeout: number): Promise<string[]> {
    const left = await heldAfterDrain(
      () => this.handles,
      timeout,
      (wake) => {
        this.endedListeners.add(wake);
        return () => this.endedListeners.delete(wake);
      },
    );
    return left.map((handle) => handle.key);
  }
}

/** One held semaphore permit: a lock handle's lease and watchdog, without a fencing token. */
import { inspect } from 'node:util';
import type { PermitHandle } from '../../interfaces/permit-handle.interface.js';
import type { LockTarget } from '../keys/lock-target.js';
import { RedisLockHandle, type LockHandleOwner } from '../lease/redis-lock.handle.js';

/**
 * A permit is renewed, lost and released exactly as a lock is (`RedisLockHandle`: the lease
 * counts from the send of the granting command, the watchdog renews every ttl/3, the signal aborts
 * on loss), through the owner's `PermitStore`; it is never passed on inside the process. Created
 * by `RedisLockClient`; users see it as `PermitHandle`.
 *
 * @example
 * const permit = await client.acquirePermit('payments-api', { permits: 5 });
 * try { await pay(permit.signal); } finally { await permit.release(); }
 */
export class RedisPermitHandle extends RedisLockHandle implements PermitHandle {
  constructor(
    owner: LockHandleOwner,
    target: LockTarget,
    token: string,
    ttl: number,
    sentAt: number,
    autoRenew: boolean,
    lease: number,
    /** N, as asked by the call that took it. */
    readonly permits: number,
  ) {
    super(owner, target, token, 0n, ttl, sentAt, autoRenew, lease);
  }

  /** Keeps tokens out of JSON; a permit has no fencing token to show. */
  override toJSON(): ReturnType<RedisLockHandle['toJSON']> {
    // The base's type names a fencing token; the JSON of a permit just leaves it out.
    return { key: this.key, held: this.isHeld() } as ReturnType<RedisLockHandle['toJSON']>;
  }

  override [inspect.custom](): string {
    return `RedisPermitHandle { key: ${JSON.stringify(this.key)}, held: ${this.isHeld()} }`;
  }
}

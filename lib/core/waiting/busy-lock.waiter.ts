/* What a waiter does once the lock is busy, until it holds the lock or gives up. */
import { QUEUE_REFRESHES_PER_TIMEOUT } from '../../redis-lock.constants.js';
import type { InProcessHandOver, PassTicket } from './in-process-hand-over.js';
import type { AcquireCall, Busy } from './acquire-call.interface.js';
import type { AcquireAttempts } from './acquire-attempts.js';
import type { PassTakeOver } from './pass-take-over.js';
import { notAcquired, waitTimedOut } from './wait-errors.js';
import { listenForRelease } from './release-listener.js';
import { LocalQueue, Wake } from './lock-wait.js';
import { monotonicNow } from '../lease/monotonic-clock.js';
import { RedisLockHandle } from '../lease/redis-lock.handle.js';
import type { RedisStore } from '../redis/redis.store.js';
import type { WakeUpSource } from './wake-up-source.interface.js';

/** What a waiter needs, fixed when the lock client is made. */
export interface WaiterSettings {
  readonly attempts: AcquireAttempts;
  readonly passTakeOver: PassTakeOver;
  readonly handOver: InProcessHandOver;
  /** The single Redis or Cluster store, when that is where locks live (queues). */
  readonly redisStore?: RedisStore;
  /** Release wake-ups (pub/sub, or in memory); none when off or with Redlock. */
  readonly wakeUps?: WakeUpSource;
  readonly fairQueueTimeout: number;
}

/**
 * Everything a waiter does once the lock is busy, until it holds the lock or gives up: the local
 * queue of its process, the subscription to releases, the queue in Redis, hand-overs, passes
 * inside the process and the fallbacks. `LockAcquisition` makes the first attempt, or skips it when
 * others of the process wait for the keys already, and hands the waiter over to this.
 *
 * @example
 * const handle = await waiter.waitForRelease(call); // call: an AcquireCall whose attempt was refused
 */
export class BusyLockWaiter {
  /** Waiters of this process by key set (not fair mode): only the first contends in Redis. */
  private readonly localQueues = new Map<string, LocalQueue>();
  /** How many fair waiters of this process contend for each key set. */
  private readonly fairWaiters = new Map<string, number>();
  /** Every waiter's doorbell, rung on close so no one sleeps through it. */
  private readonly waiting = new Set<Wake>();
  private readonly attempts: AcquireAttempts;
  private readonly passTakeOver: PassTakeOver;
  private readonly handOver: InProcessHandOver;
  private readonly redisStore?: RedisStore;
  private readonly wakeUps?: WakeUpSource;
  private readonly fairQueueTimeout: number;
  private closed = false;

  constructor(settings: WaiterSettings) {
    ({
      attempts: this.attempts,
      passTakeOver: this.passTakeOver,
      handOver: this.handOver,
      redisStore: this.redisStore,
      wakeUps: this.wakeUps,
      fairQueueTimeout: this.fairQueueTimeout,
    } = settings);
  }

  /** Ends every wait: each wakes up, and its next attempt fails as the client is closed. */
  close(): void {
    this.closed = true;
    for (const wake of this.waiting) wake.ring();
  }

  /**
   * Whether waiters of this process already wait for these keys (fair ones, or in the local
   * queue): a new caller queues behind them rather than barging.
   */
  hasWaiters(id: string, fair: boolean): boolean {
    return fair ? this.fairWaiters.has(id) : this.localQueues.has(id);
  }

  /**
   * Waits for the lock: in fair mode in the queue in Redis; otherwise behind this process's
   * earlier waiters on the same keys first. Not async itself: a grant reaches the caller with
   * no promise of ours in between.
   */
  waitForRelease(call: AcquireCall): Promise<RedisLockHandle> {
    return call.opts.fair ? this.contend(call) : this.waitInLocalQueue(call);
  }

  /** Default mode: waits for this process's earlier waiters on the same keys, then contends. */
  private async waitInLocalQueue(call: AcquireCall): Promise<RedisLockHandle> {
    const { target, opts } = call;
    let queue = this.localQueues.get(target.id);
    if (!queue) {
      const created = new LocalQueue(() => {
        if (this.localQueues.get(target.id) === created) this.localQueues.delete(target.id);
      });
      this.localQueues.set(target.id, (queue = created));
    }
    const place = queue.join();
    try {
      const wake = new Wake();
      void place.turn.then(() => wake.ring());
      const outcome = await this.sleep(wake, call.deadline - monotonicNow(), opts.signal);
      if (outcome === 'aborted') throw notAcquired(call, true);
      if (outcome !== 'woken') throw waitTimedOut(call, this.attempts);
      // First of its process: it takes the process's place in the queue in Redis, so a release
      // hands the lock to the processes in turn rather than to whichever reacts fastest (the
      // releasing one, which is awake, would win nearly every time). A lock whose keys span
      // Cluster slots cannot queue (its keys move in more than one script), and neither can a
      // waiter that would not hear the hand-over (no pub/sub).
      const queue = !!this.wakeUps && this.redisStore?.slotParts(target).length === 1;
      return await this.contend(call, queue);
    } finally {
      place.leave();
    }
  }

  /**
   * Subscribes first, then tries, then sleeps until a release wakes it (or the lease it saw would
   * have run out, or the deadline): a release between a failed attempt and the subscription is
   * never missed, because the attempt after subscribing sees it. `queue`: whether to wait in the
   * key's queue in Redis (see `AcquireCall.queued`).
   */
  private async contend(call: AcquireCall, queue = call.queued): Promise<RedisLockHandle> {
    const { opts, target } = call;
    const wake = new Wake();
    // A release in this process may pass the lock straight to this waiter: in default mode as the
    // first waiter of its process, in fair mode when it stands right behind the releasing lock's
    // place in the queue. It is taken at once, not after a subscription or attempt in flight:
    // their replies may sit behind the releaser's work on this event loop, and need a round trip.
    const waiter = { deadline: call.deadline, signal: opts.signal, wake };
    let ticket = opts.fair ? undefined : this.handOver.registerFirstWaiter(target.id, waiter);
    let nextBehind: string | undefined;
    const registerBehindAhead = () => {
      if (!opts.fair || call.ahead === nextBehind) return;
      ticket?.cancel();
      nextBehind = call.ahead;
      ticket =
        nextBehind === undefined
          ? undefined
          : this.handOver.registerNextInQueue(target.id, nextBehind, waiter);
    };
    const orPassed = <T>(pending: Promise<T>) =>
      ticket ? Promise.race([pending, ticket.passed]) : pending;
    let stopListening: (() => void) | undefined;
    if (opts.fair) this.count(this.fairWaiters, target.id, +1);
    try {
      registerBehindAhead();
      if (!opts.fair && ticket && this.handOver.holderLeaseLeft(target.id) !== undefined) {
        const passed = await this.awaitPass(call, ticket, wake);
        if (passed) return passed;
      }
      call.queued = queue;
      // Every message only says "try now": a hand-over is granted by the next attempt. It names
      // the key released, and wakes the waiter only if that key was the one in its way.
      const listening = listenForRelease(this.wakeUps, call, (message, lock) => {
        if (message === null) wake.ring();
        // The client's channel: only a message naming this waiter is for it.
        else if (!call.queued || message === call.token) wake.ring(lock);
      });
      const listened = await orPassed(listening);
      if (listened === 'passed') {
        void listening.then((stop) => stop?.());
        return this.passTakeOver.takePassed(call, ticket!.lock!);
      }
      stopListening = listened;
      // Without wake-ups a default-mode waiter polls instead of queueing (it would not hear a
      // hand-over); a fair one keeps its place and finds a hand-over on its next attempt.
      if (!stopListening && !opts.fair) call.queued = false;
      for (let attempt = 1; ; attempt++) {
        wake.reset();
        const reply = this.attempts.attempt(call);
        const outcome = await orPassed(reply);
        if (ticket?.lock) {
          return this.passTakeOver.takePassed(
            call,
            ticket.lock,
            outcome === 'passed' ? reply : outcome,
          );
        }
        if (outcome instanceof RedisLockHandle) return outcome;
        // ('passed' always comes with a lock, taken above.)
        if (outcome === 'aborted' || outcome === 'passed') throw notAcquired(call, true);
        registerBehindAhead();
        const remaining = call.deadline - monotonicNow();
        if (outcome === 'deadline' || remaining <= 0) throw waitTimedOut(call, this.attempts);
        const pause = stopListening
          ? this.recheckAfter(outcome, call, attempt)
          : opts.retry(attempt);
        if (pause === null || !Number.isFinite(pause)) throw waitTimedOut(call, this.attempts);
        const sleepFor = Math.min(Math.max(0, pause), remaining);
        const woke = await this.sleep(wake, sleepFor, opts.signal, outcome.lock);
        // Passed before the abort was seen: granted while still wanted, like a late reply.
        if (ticket?.lock) return this.passTakeOver.takePassed(call, ticket.lock);
        if (woke === 'aborted') throw notAcquired(call, true);
      }
    } catch (err) {
      // An attempt failed (Redis unreachable, say) after a lock was passed: that lock needs none.
      if (ticket?.lock) return this.passTakeOver.takePassed(call, ticket.lock);
      throw err;
    } finally {
      if (opts.fair) this.count(this.fairWaiters, target.id, -1);
      ticket?.cancel();
      stopListening?.();
    }
  }

  private count(counts: Map<string, number>, id: string, by: 1 | -1): void {
    const n = (counts.get(id) ?? 0) + by;
    if (n > 0) counts.set(id, n);
    else counts.delete(id);
  }

  /**
   * Waits while this process holds the keys and may pass them on: they come to this waiter from
   * here, so it neither subscribes nor queues in Redis meanwhile. Returns the lock passed, or
   * `undefined` when the holder let go of it otherwise (the waiter then contends in Redis).
   */
  private async awaitPass(
    call: AcquireCall,
    ticket: PassTicket,
    wake: Wake,
  ): Promise<RedisLockHandle | undefined> {
    // A holder in this process: the lock is busy, whether Redis answers or not.
    call.answered = true;
    for (;;) {
      const leaseLeft = this.handOver.holderLeaseLeft(call.target.id);
      if (leaseLeft === undefined) return undefined;
      call.leaseSeen = { ms: leaseLeft, at: monotonicNow() };
      const remaining = call.deadline - monotonicNow();
      // Looks again when the holder's lease would run out: a holder may never let go.
      const woke = await this.sleep(wake, Math.min(remaining, leaseLeft + 1), call.opts.signal);
      if (ticket.lock) return this.passTakeOver.takePassed(call, ticket.lock);
      if (woke === 'aborted') throw notAcquired(call, true);
      if (woke === 'timer' && remaining <= leaseLeft + 1) throw waitTimedOut(call, this.attempts);
      wake.reset();
    }
  }

  /**
   * With wake-ups, how long to sleep when no release message comes: a message can be lost (a
   * reconnect) and a crashed holder sends none, so look again when the lease seen would have run
   * out; in fair mode also often enough to keep our place in the queues.
   */
  private recheckAfter(busy: Busy, call: AcquireCall, attempt: number): number | null {
    const leaseLeft = busy.pttl >= 0 ? busy.pttl + 1 : busy.pttl === -2 ? Infinity : null;
    if (!call.queued) return leaseLeft ?? call.opts.retry(attempt);
    return Math.min(leaseLeft ?? Infinity, this.fairQueueTimeout / QUEUE_REFRESHES_PER_TIMEOUT);
  }

  private async sleep(wake: Wake, ms: number, signal?: AbortSignal, lock?: string) {
    this.waiting.add(wake);
    try {
      return await wake.wait(ms, signal, lock);
    } finally {
      this.waiting.delete(wake);
    }
  }
}

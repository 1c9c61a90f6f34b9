/* A waiter's doorbell (Wake) and the local queue of a process's waiters for one lock. */
import { setLongTimeout } from '../lease/long-timeout.js';

/** Why a wait for a wake-up ended. */
export type WakeOutcome = 'woken' | 'timer' | 'aborted';

/**
 * A waiter's doorbell: rung by a release message, remembered until the waiter next looks, so a
 * message that arrives while the waiter's attempt is still on its way is not lost. A message
 * names the lock key released; a waiter that knows which key its attempt found busy wakes only
 * for that key's release (a key it took and gave back, or one it does not wait for, tells it
 * nothing new). A ring without a key (a reconnect, a local turn, the client closing) always wakes.
 *
 * @example
 * wake.reset();                 // before an attempt
 * const busy = await attempt(); // messages may arrive meanwhile: kept
 * await wake.wait(recheckMs, signal, busy.lock);
 */
export class Wake {
  private rung = false;
  /** Lock keys whose release was heard since the last reset. */
  private readonly heard = new Set<string>();
  /** The lock key the waiter sleeps for (`undefined`: any). */
  private awaited?: string;
  private answer?: (outcome: WakeOutcome) => void;

  ring(lock?: string): void {
    if (lock === undefined) this.rung = true;
    else {
      this.heard.add(lock);
      if (this.awaited !== undefined && lock !== this.awaited) return;
    }
    this.answer?.('woken');
  }

  /** Forgets earlier rings: called right before an attempt, whose reply is newer than them. */
  reset(): void {
    this.rung = false;
    this.heard.clear();
    this.awaited = undefined;
  }

  /**
   * Resolves when rung (at once if rung since the last reset), after `ms`, or on abort. `lock`:
   * only a release of this lock key (or a ring without a key) wakes it.
   */
  wait(ms: number, signal?: AbortSignal, lock?: string): Promise<WakeOutcome> {
    this.awaited = lock;
    const heard = lock === undefined ? this.heard.size > 0 : this.heard.has(lock);
    if (this.rung || heard) return Promise.resolve('woken');
    if (signal?.aborted) return Promise.resolve('aborted');
    return new Promise((resolve) => {
      const finish = (outcome: WakeOutcome) => {
        timer.clear();
        signal?.removeEventListener('abort', onAbort);
        this.answer = undefined;
        resolve(outcome);
      };
      const onAbort = () => finish('aborted');
      // A wait's deadline may be far off, or Infinity: a plain setTimeout would end it in 1 ms.
      const timer = setLongTimeout(() => finish('timer'), ms);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.answer = finish;
    });
  }
}

/**
 * The waiters of one process for one key (or key set), in arrival order. Only the first contends
 * in Redis; a release therefore wakes one waiter per process, not all of them.
 *
 * @example
 * const place = queue.join();
 * try { await place.turn; ...contend... } finally { place.leave(); }
 */
export class LocalQueue {
  private readonly places: { start: () => void }[] = [];

  constructor(private readonly onEmpty: () => void) {}

  /** Takes a place at the back; `turn` resolves when it is first. `leave` is safe to repeat. */
  join(): { turn: Promise<void>; leave: () => void } {
    let start!: () => void;
    const turn = new Promise<void>((resolve) => (start = resolve));
    const place = { start };
    this.places.push(place);
    if (this.places.length === 1) start();
    const leave = () => {
      const index = this.places.indexOf(place);
      if (index < 0) return;
      this.places.splice(index, 1);
      if (index === 0 && this.places.length > 0) this.places[0].start();
      if (this.places.length === 0) this.onEmpty();
    };
    return { turn, leave };
  }
}

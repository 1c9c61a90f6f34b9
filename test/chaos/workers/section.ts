/**
 * Records critical sections in a worker: the interval from entering to the last moment the holder
 * saw `isHeld() === true`, checked again and again (and right before leaving) while the section
 * awaits short sleeps, plus what it saw when the lock stopped being held. An injected event-loop
 * block runs inside the next section that checks (or on its own if no section comes soon).
 *
 * @example
 * await client.run('d0', (lock) => recorder.hold(lock, { mode: 'default', ... }, 120));
 */
import { LockLostError, type LockHandle } from '../../../lib/index.js';
import { nowMs, type Mode, type SectionRecord, type WorkerRecord } from '../records.js';
import type { Rng } from './rng.js';

/** What a section records about the lock besides the times. */
export interface SectionMeta {
  mode: Mode;
  keys: string[];
  /** Joined an enclosing call's lock (see SectionRecord.joined). */
  joined: boolean;
  autoRenew: boolean;
  ttl: number;
  /** Mode `rw`: the side taken. */
  side?: 'read' | 'write';
}

/** How long a planned block waits for a holder before it blocks wherever it is (ms). */
const BLOCK_PICKUP = 300;

/** Keeps the event loop busy for `ms`: a holder that does synchronous work past its lease. */
export function busyFor(ms: number): void {
  const until = nowMs() + ms;
  while (nowMs() < until) {
    // spin: no timer, no I/O, no renewal runs meanwhile
  }
}

export class SectionRecorder {
  private pendingBlock = 0;

  constructor(
    private readonly emit: (record: WorkerRecord) => void,
    private readonly rng: Rng,
  ) {}

  /** Plans a block of `ms`: the next section that checks runs it (see the file comment). */
  block(ms: number): void {
    this.pendingBlock = ms;
    setTimeout(() => this.runPendingBlock(), BLOCK_PICKUP).unref();
  }

  /** Holds the section open for about `holdMs`, checking `isHeld()`; records it at the end. */
  async hold(handle: LockHandle, meta: SectionMeta, holdMs: number): Promise<void> {
    const record: SectionRecord = {
      t: 'section',
      pid: process.pid,
      ...meta,
      fence: String(handle.fencingToken),
      start: nowMs(),
      end: 0,
      enteredHeld: false,
    };
    // Read once on entering, so the handle has its signal (some create it on first read).
    void handle.signal;
    record.enteredHeld = this.check(handle, record);
    const until = record.start + holdMs;
    while (nowMs() < until) {
      await new Promise((resolve) => setTimeout(resolve, this.rng.int(1, 15)));
      this.runPendingBlock();
      this.check(handle, record);
    }
    this.check(handle, record);
    record.end = nowMs();
    this.emit(record);
  }

  private runPendingBlock(): void {
    const ms = this.pendingBlock;
    this.pendingBlock = 0;
    if (ms > 0) busyFor(ms);
  }

  /**
   * One look at the handle. The time is taken before `isHeld()`, so a recorded `lastHeld` is never
   * later than the moment the handle answered true.
   */
  private check(handle: LockHandle, record: SectionRecord): boolean {
    const t = nowMs();
    if (handle.isHeld()) {
      if (record.lostAt !== undefined) record.revivedAt ??= t;
      record.lastHeld = t;
      return true;
    }
    const seen = nowMs();
    record.lostAt ??= seen;
    const signal = handle.signal;
    if (!signal.aborted) {
      record.signalLagAt ??= seen;
      record.lossKind ??= 'lapsed';
    } else if (record.lossKind === undefined || record.lossKind === 'lapsed') {
      record.lossKind = signal.reason instanceof LockLostError ? 'lost' : 'released';
    }
    return false;
  }
}

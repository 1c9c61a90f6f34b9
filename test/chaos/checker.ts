/**
 * The invariants of a chaos round, checked on the records alone (pure, see checker.spec.ts):
 * 1. `overlap`: no two critical sections of one key overlap (a multi-key lock's interval counts
 *    for each of its keys), except where one touches a restart of the key's server; two readers
 *    of a read-write lock may (mode `rw`): never a writer with anyone else;
 * 2. `fencing`: fencing tokens rise strictly in grant order per key (a read-write lock's
 *    writers; each reader's is at least that of the writer before it);
 * 3. `no-ttl-key`: no key without a TTL remains after the round;
 * 4. `wait-bound`: no wait outlives its waitTimeout by more than WAIT_GRACE, unless its process
 *    stalled meanwhile;
 * 5. `worker-error`: no unhandled rejection, uncaught exception or failed exit in a worker;
 * 6. `no-exit`: every worker exits by itself once told to stop;
 * and, for what cases 2 to 4 of issue 14 look like from inside a critical section:
 * 7. `released-under-scope`: no section sees its lock released (by its own process) before it
 *    leaves (a joined call outliving the scope that took the lock, case 3);
 * 8. `entered-lost`: no section starts on a lock already known lost (case 2);
 * 9. `unexplained-loss`: a renewed lock is not lost without a fault that explains it (case 4);
 * 10. `signal-lag`: whenever `isHeld()` is false, `signal.aborted` is true (case 4);
 * 11. `revived`: once `isHeld()` was false it stays false;
 * and for semaphores (the `semaphore` mode, whose sections are kept out of 1 and 2):
 * 12. `too-many-holders`: never more than SEMAPHORE_PERMITS sections of one key overlap, except
 *     where one of them touches a restart of the key's server.
 *
 * @example
 * const result = checkRound(observations);
 * if (result.violations.length > 0) console.log(result.violations);
 */
import { entryExcuse, lossExcuse, serversOf, touches, waitExcused } from './excuses.js';
import type {
  ErrorRecord,
  ExitRecord,
  InjectedFault,
  LeftoverKey,
  SectionRecord,
  StallRecord,
  WaitRecord,
} from './records.js';
import { SEMAPHORE_PERMITS } from './records.js';

export const INVARIANTS = [
  'overlap',
  'fencing',
  'no-ttl-key',
  'wait-bound',
  'worker-error',
  'no-exit',
  'released-under-scope',
  'entered-lost',
  'unexplained-loss',
  'signal-lag',
  'revived',
  'too-many-holders',
] as const;
export type Invariant = (typeof INVARIANTS)[number];

/**
 * How far past its waitTimeout a wait may end (ms): the library gives the last attempt 50 ms to
 * be answered (FINAL_ATTEMPT_GRACE), then the caller must be resumed through a few timer and
 * promise turns; 250 ms leaves room for a loaded 2-core machine. Stalls of the waiting process
 * (SIGSTOP, blocks, or lags of 60 ms and more its monitor saw) excuse the wait instead.
 */
export const WAIT_GRACE = 250;

/** Everything one round produced. */
export interface RoundObservations {
  sections: SectionRecord[];
  waits: WaitRecord[];
  stalls: StallRecord[];
  errors: ErrorRecord[];
  faults: InjectedFault[];
  exits: ExitRecord[];
  leftovers: LeftoverKey[];
}

export interface Violation {
  invariant: Invariant;
  message: string;
}

export interface CheckResult {
  violations: Violation[];
  /** Overlaps (and fencing inversions between them) that touch a restart window: reported apart. */
  restartOverlaps: number;
  /** Fencing inversions under Redlock, whose tokens no single counter orders (documented). */
  redlockFenceInversions: number;
  /** Losses and late waits that a fault explained; the losses by explanation. */
  excusedLosses: number;
  lossExcuses: Record<string, number>;
  excusedWaits: number;
}

/** A section with an interval: it saw `isHeld()` true at least once. */
type Held = SectionRecord & { lastHeld: number };

/** Checks every invariant of a round; see the file comment. */
export function checkRound(obs: RoundObservations): CheckResult {
  const result: CheckResult = {
    violations: [],
    restartOverlaps: 0,
    redlockFenceInversions: 0,
    excusedLosses: 0,
    lossExcuses: {},
    excusedWaits: 0,
  };
  const flag = (invariant: Invariant, message: string) =>
    result.violations.push({ invariant, message });
  const restarts = obs.faults.filter((f) => f.kind === 'restart');
  const ctx = { faults: obs.faults, stalls: obs.stalls };

  const origins = leaseOrigins(obs.sections);
  const permits = obs.sections.filter((s) => s.mode === 'semaphore');
  const locks = obs.sections.filter((s) => s.mode !== 'semaphore');
  for (const [key, held] of byKey(locks)) {
    checkKey(key, held, restarts, origins, result, flag);
  }
  for (const [key, held] of byKey(permits)) checkPermits(key, held, restarts, result, flag);
  for (const s of obs.sections) {
    const what = `${describe(s)}`;
    if (s.lossKind === 'released') flag('released-under-scope', `${what} saw its lock released`);
    if (!s.enteredHeld && !entryExcuse(s, ctx)) flag('entered-lost', `${what} entered not held`);
    if (s.signalLagAt !== undefined) {
      flag('signal-lag', `${what}: isHeld() false, signal not aborted at ${fmt(s.signalLagAt)}`);
    }
    if (s.revivedAt !== undefined) flag('revived', `${what}: held again at ${fmt(s.revivedAt)}`);
    const lost = s.lossKind === 'lost' || s.lossKind === 'lapsed';
    if (lost && s.autoRenew && !s.joined && s.enteredHeld) {
      const why = lossExcuse(s, ctx);
      if (why) {
        result.excusedLosses++;
        result.lossExcuses[why] = (result.lossExcuses[why] ?? 0) + 1;
      } else flag('unexplained-loss', `${what} lost its renewed lock at ${fmt(s.lostAt!)}`);
    }
  }
  for (const w of obs.waits) {
    if (w.waitTimeout <= 0 || w.end - w.start <= w.waitTimeout + WAIT_GRACE) continue;
    if (waitExcused(w.pid, w.start, w.end, ctx)) {
      result.excusedWaits++;
      continue;
    }
    const took = Math.round(w.end - w.start);
    flag(
      'wait-bound',
      `pid ${w.pid} ${w.mode} [${w.keys}] waited ${took} ms with waitTimeout ${w.waitTimeout} ` +
        `(${w.outcome}) from ${fmt(w.start)}`,
    );
  }
  for (const e of obs.errors) flag('worker-error', `pid ${e.pid} ${e.kind}: ${e.message}`);
  for (const x of obs.exits) {
    if (x.killed) flag('no-exit', `pid ${x.pid} did not exit by the deadline and was killed`);
    else if (x.code !== 0) {
      flag('worker-error', `pid ${x.pid} exited with code ${x.code}, signal ${x.signal}`);
    }
  }
  for (const k of obs.leftovers) flag('no-ttl-key', `${k.server}: key ${k.key} has no TTL`);
  return result;
}

/** The sections with an interval, by key (a multi-key section under each of its keys). */
function byKey(sections: SectionRecord[]): Map<string, Held[]> {
  const map = new Map<string, Held[]>();
  for (const s of sections) {
    if (s.lastHeld === undefined) continue;
    for (const key of s.keys) {
      const list = map.get(key) ?? [];
      list.push(s as Held);
      map.set(key, list);
    }
  }
  for (const list of map.values()) list.sort((a, b) => a.start - b.start);
  return map;
}

/** Overlap and fencing order among the intervals of one key (sorted by start). */
function checkKey(
  key: string,
  held: Held[],
  restarts: InjectedFault[],
  origins: Map<SectionRecord, number>,
  result: CheckResult,
  flag: (invariant: Invariant, message: string) => void,
): void {
  // From the start of the lease the section holds: a lock passed on in its process holds the
  // lease of the grant its chain of passes began with, which a restart may have forgotten.
  const touchesRestart = (s: Held) =>
    restarts.some(
      (r) =>
        serversOf(s).includes(r.server!) &&
        touches(origins.get(s) ?? s.start, s.lastHeld, r.start, r.end),
    );
  let previous: Held | undefined;
  for (let i = 0; i < held.length; i++) {
    const b = held[i];
    for (let j = 0; j < i; j++) {
      const a = held[j];
      if (sameGrant(a, b) || !(b.start < a.lastHeld && a.start < b.lastHeld)) continue;
      // Readers of a read-write lock share it; a writer overlaps nobody.
      if (a.side === 'read' && b.side === 'read') continue;
      if (touchesRestart(a) || touchesRestart(b)) {
        result.restartOverlaps++;
        continue;
      }
      flag('overlap', `key ${key}: ${describe(a)} and ${describe(b)} overlap`);
    }
    if (b.joined || (previous && sameGrant(previous, b))) continue;
    // A reader carries the token of the last write: never below a writer that came before it.
    const reader = b.side === 'read';
    const below = reader ? (p: bigint) => BigInt(b.fence) < p : (p: bigint) => BigInt(b.fence) <= p;
    if (previous && below(BigInt(previous.fence))) {
      // A lease that spans a restart (its chain of passes began before it) carries a token from
      // before the restart, which may be below a grant's after it: the restart exception.
      if (b.mode === 'redlock') result.redlockFenceInversions++;
      else if (touchesRestart(previous) || touchesRestart(b)) {
        result.restartOverlaps++;
      } else {
        flag('fencing', `key ${key}: ${describe(b)} granted after ${describe(previous)}`);
      }
    }
    if (!reader) previous = b;
  }
}

/**
 * At most SEMAPHORE_PERMITS intervals of one semaphore key (sorted by start) at any moment: the
 * most overlap at some interval's start, so each start is counted against those still held then.
 * A crowd with a section that touches a restart of the key's server is the restart exception.
 */
function checkPermits(
  key: string,
  held: Held[],
  restarts: InjectedFault[],
  result: CheckResult,
  flag: (invariant: Invariant, message: string) => void,
): void {
  const touchesRestart = (s: Held) =>
    restarts.some(
      (r) => serversOf(s).includes(r.server!) && touches(s.start, s.lastHeld, r.start, r.end),
    );
  for (let i = 0; i < held.length; i++) {
    const b = held[i];
    const crowd = [...held.slice(0, i).filter((a) => a.lastHeld > b.start), b];
    if (crowd.length <= SEMAPHORE_PERMITS) continue;
    if (crowd.some(touchesRestart)) {
      result.restartOverlaps++;
      continue;
    }
    flag(
      'too-many-holders',
      `key ${key}: ${crowd.length} holders at ${fmt(b.start)} (N = ${SEMAPHORE_PERMITS}): ` +
        crowd.map(describe).join(', '),
    );
  }
}

/**
 * When the lease of each section began: a lock passed on inside a process keeps the lease (and
 * token in Redis) of the grant before it and gets that grant's fencing token + 1, so a section
 * whose process had a section on the same keys with the token just below began its lease with
 * that one's. The chain is followed back to the grant from Redis it started with.
 */
function leaseOrigins(sections: SectionRecord[]): Map<SectionRecord, number> {
  const byToken = new Map<string, SectionRecord>();
  const id = (s: SectionRecord, fence: bigint) =>
    `${s.pid} ${[...s.keys].sort().join(',')} ${fence}`;
  for (const s of sections) if (!s.joined) byToken.set(id(s, BigInt(s.fence)), s);
  const origins = new Map<SectionRecord, number>();
  for (const s of sections) {
    let origin = s;
    for (let fence = BigInt(s.fence) - 1n; ; fence--) {
      const before = byToken.get(id(s, fence));
      if (!before || before.start > origin.start) break;
      origin = before;
    }
    origins.set(s, origin.start);
  }
  return origins;
}

/** Two intervals of one grant: the same process and fencing token (a joined call, say). */
function sameGrant(a: SectionRecord, b: SectionRecord): boolean {
  return a.pid === b.pid && a.fence === b.fence;
}

function describe(s: SectionRecord): string {
  const held = s.lastHeld === undefined ? 'never held' : `held to ${fmt(s.lastHeld)}`;
  const joined = (s.joined ? ' joined' : '') + (s.side ? ` ${s.side}` : '');
  return (
    `[pid ${s.pid} ${s.mode}${joined} fence ${s.fence} [${s.keys}] ` +
    `from ${fmt(s.start)} ${held}, ttl ${s.ttl}]`
  );
}

/** Monotonic ms, to a tenth. */
function fmt(ms: number): string {
  return ms.toFixed(1);
}

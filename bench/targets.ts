/**
 * The targets the library is held to, checked against one run's results. A report, not a gate:
 * a miss prints ✗ and the run still succeeds, since figures on a busy machine are noisy.
 */
import type { ContendedResult } from './contended.bench.js';
import { fmt } from './report.js';
import type { PairResult } from './uncontended.bench.js';
import type { Impl } from './workers/contended.worker.js';
import { CONTENDED_PERMITS } from './workers/contenders.js';

/** Below this share of raw ioredis (uncontended) or of ideal (contended) is a miss. */
const MIN_SHARE = 0.9;
const MIN_FAIR_JAIN = 0.99;
/** Slack on the fair max-wait bound for timers, round trips and process scheduling. */
const FAIR_WAIT_SLACK_MS = 10;

export interface TargetInput {
  uncontended: {
    library: PairResult;
    raw: PairResult;
    /** Semaphore permits: the library's and redis-semaphore's `Semaphore`. */
    permit: PairResult;
    semaphore: PairResult;
  };
  contended: Record<Impl, ContendedResult>;
  /** `ideal/s` of a row: 1 / (its mean hold + RTT). */
  ideal: (heldMean: number) => number;
  /** Worker loops in all (processes × workers). */
  contenders: number;
  criticalSectionMs: number;
}

interface Target {
  ok: boolean;
  text: string;
}

/** One line per target, `✓` or `✗` first. */
export function checkTargets(input: TargetInput): string[] {
  return targets(input).map(({ ok, text }) => `${ok ? '✓' : '✗'} ${text}`);
}

function targets({
  uncontended,
  contended,
  ideal,
  contenders,
  criticalSectionMs,
}: TargetInput): Target[] {
  const lib = contended.library;
  const fair = contended['library-fair'];
  const floor = contended['token-ring'];
  const vsRaw = uncontended.library.perSecond / uncontended.raw.perSecond;
  const ofIdeal = lib.perSecond / ideal(lib.heldMean);
  // With a FIFO hand-over a waiter has at most everyone else ahead of it, plus the holder.
  const fairBound = contenders * criticalSectionMs + FAIR_WAIT_SLACK_MS;
  const permitVsSemaphore = uncontended.permit.perSecond / uncontended.semaphore.perSecond;
  const sem = contended['library-semaphore'];
  const semIdeal = CONTENDED_PERMITS * ideal(sem.heldMean);
  const list: Target[] = [
    {
      ok: sem.perSecond / semIdeal >= MIN_SHARE,
      text:
        `library semaphore contended (N = ${CONTENDED_PERMITS}) ≥ ${MIN_SHARE}x ideal N / (cs + RTT): ` +
        `${fmt(sem.perSecond / semIdeal, 2)}x (${fmt(sem.perSecond, 1)} of ${fmt(semIdeal, 1)} grants/s)`,
    },
    {
      ok: sem.jain >= MIN_FAIR_JAIN,
      text: `library semaphore contended Jain ≥ ${MIN_FAIR_JAIN}: ${fmt(sem.jain, 3)}`,
    },
    {
      ok: permitVsSemaphore >= 1,
      text:
        'library semaphore uncontended ≥ redis-semaphore Semaphore: ' +
        `${fmt(permitVsSemaphore, 2)}x`,
    },
    {
      ok: vsRaw >= MIN_SHARE,
      text: `library uncontended ≥ ${MIN_SHARE}x raw ioredis: ${fmt(vsRaw, 2)}x`,
    },
    {
      ok: ofIdeal >= MIN_SHARE,
      text:
        `library default contended ≥ ${MIN_SHARE}x ideal: ${fmt(ofIdeal, 2)}x ` +
        `(${fmt(lib.perSecond, 1)} of ${fmt(ideal(lib.heldMean), 1)} grants/s)`,
    },
    {
      ok: fair.jain >= MIN_FAIR_JAIN,
      text: `library fair Jain ≥ ${MIN_FAIR_JAIN}: ${fmt(fair.jain, 3)}`,
    },
    {
      ok: fair.waitMax <= fairBound,
      text:
        `library fair max wait ≤ P×W × cs + ${FAIR_WAIT_SLACK_MS} ms = ${contenders} × ` +
        `${criticalSectionMs} + ${FAIR_WAIT_SLACK_MS} = ${fmt(fairBound, 0)} ms: ` +
        `${fmt(fair.waitMax, 1)} ms (the token ring's in this run, the floor: ` +
        `${fmt(floor.waitMax, 1)} ms)`,
    },
  ];

  // The library's default mode against the better of the other two libraries, metric by metric.
  const others: Impl[] = ['redlock', 'redis-semaphore'];
  const metrics: {
    name: string;
    value: (r: ContendedResult) => number;
    higherIsBetter: boolean;
    digits: number;
  }[] = [
    { name: 'grants/s', value: (r) => r.perSecond, higherIsBetter: true, digits: 1 },
    { name: 'wait p50 ms', value: (r) => r.waitP50, higherIsBetter: false, digits: 1 },
    { name: 'wait p99 ms', value: (r) => r.waitP99, higherIsBetter: false, digits: 1 },
    { name: 'wait max ms', value: (r) => r.waitMax, higherIsBetter: false, digits: 1 },
    { name: 'Jain', value: (r) => r.jain, higherIsBetter: true, digits: 3 },
  ];
  for (const { name, value, higherIsBetter, digits } of metrics) {
    const better = (a: number, b: number) => (higherIsBetter ? a > b : a < b);
    // NaN (no grants at all) never counts as the best.
    const best = others
      .filter((impl) => Number.isFinite(value(contended[impl])))
      .reduce<Impl | undefined>(
        (top, impl) =>
          top === undefined || better(value(contended[impl]), value(contended[top])) ? impl : top,
        undefined,
      );
    const mine = value(lib);
    const bestValue = best === undefined ? NaN : value(contended[best]);
    list.push({
      ok: best === undefined || mine === bestValue || better(mine, bestValue),
      text:
        `library default ${name} ${higherIsBetter ? '≥' : '≤'} best other ` +
        `(${best ?? 'none'} ${fmt(bestValue, digits)}): ${fmt(mine, digits)}`,
    });
  }
  return list;
}

/**
 * A round of the chaos run as a fast-check value: the workload (`RoundConfig`) and a fault
 * schedule (an array of `Fault` records), so a seed picks the rounds, and fast-check shrinking
 * can cut a failing schedule down (fewer faults, earlier, shorter) to one that still fails.
 *
 * The distribution aims at the interleavings of issue 14: SIGSTOPs of a waiter past its
 * hand-over lease (fairQueueTimeout is 300 ms in 3 rounds out of 5), grant replies held back by
 * 60 to 75% of the ttl (proxy delays on the command connection, slow scripts), Redis frozen
 * while hand-overs are confirmed, subscriber connections lagging the command connection,
 * restarts (rare: they excuse what overlaps them).
 *
 * @example
 * const [round] = fc.sample(roundArbitrary({ modes: [...MODES], processes: 3, durationMs: 15_000 }), 1);
 */
import fc from 'fast-check';
import type { Fault, Mode, ServerName } from './records.js';

/** The workload of a round; see WorkerConfig for each field's meaning. */
export interface RoundConfig {
  seed: number;
  processes: number;
  modes: Mode[];
  keys: number;
  ttl: number;
  fairQueueTimeout: number;
  workersPerMode: number;
  holdMax: number;
  waitMin: number;
  waitMax: number;
  /** How long the workers contend, in ms (faults are planned inside it). */
  durationMs: number;
}

export interface Round {
  config: RoundConfig;
  faults: Fault[];
}

/** What the command line fixes about every round. */
export interface PlanOptions {
  modes: Mode[];
  processes: number;
  durationMs: number;
  /** False: rounds without faults (the workload alone, a baseline that must pass). */
  faults: boolean;
}

/** Faults must be over this long before the round ends (ms), so the stop finds a calm system. */
export const QUIET_END = 1_500;

export function roundArbitrary(options: PlanOptions): fc.Arbitrary<Round> {
  // The workload is not shrunk: a chained arbitrary draws its faults anew whenever its source
  // shrinks, which would throw the failing schedule away. Shrinking works on the faults alone.
  return fc.noShrink(configArbitrary(options)).chain((config) =>
    fc.record({
      config: fc.constant(config),
      faults: !options.faults
        ? fc.constant([])
        : fc.array(faultArbitrary(config), {
            maxLength: Math.ceil(config.durationMs / 700),
            size: 'max',
          }),
    }),
  );
}

function configArbitrary({ modes, processes, durationMs }: PlanOptions) {
  return fc
    .record({
      seed: fc.integer({ min: 1, max: 2 ** 30 }),
      keys: fc.integer({ min: 2, max: 3 }),
      ttl: fc.integer({ min: 300, max: 1000 }),
      fairQueueTimeout: fc.constantFrom(300, 300, 300, 1000, 5000),
      holdMax: fc.integer({ min: 50, max: 400 }),
      waitMin: fc.integer({ min: 150, max: 500 }),
      waitSpan: fc.integer({ min: 500, max: 3000 }),
    })
    .map(({ waitSpan, ...rest }): RoundConfig => ({
      ...rest,
      processes,
      modes,
      workersPerMode: 2,
      waitMax: rest.waitMin + waitSpan,
      durationMs,
    }));
}

function faultArbitrary(config: RoundConfig): fc.Arbitrary<Fault> {
  const { ttl, processes, durationMs, fairQueueTimeout } = config;
  const at = fc.integer({ min: 300, max: durationMs - QUIET_END - 500 });
  const worker = fc.integer({ min: 0, max: processes - 1 });
  const usesRedlock = config.modes.includes('redlock');
  const servers: ServerName[] = usesRedlock ? ['main', 'main', 'r1', 'r2', 'r3'] : ['main'];
  const server = fc.constantFrom(...servers);
  const role = fc.constantFrom<'cmd' | 'sub'>('cmd', 'sub');
  const span = (min: number, max: number) =>
    fc.integer({ min: Math.round(min), max: Math.round(max) });
  const subDelay = Math.min(fairQueueTimeout, 1500);
  return fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('stop-worker' as const),
        at,
        worker,
        duration: span(1.2 * ttl, 4 * ttl),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('block' as const),
        at,
        worker,
        duration: span(1.2 * ttl, 3 * ttl),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('stop-redis' as const),
        at,
        server,
        duration: span(50, 600),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('slow-script' as const),
        at,
        server,
        duration: span(0.5 * ttl, 0.75 * ttl),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('client-kill' as const),
        at,
        worker,
        role,
        duration: fc.constant(0),
      }),
    },
    { weight: 8, arbitrary: cmdDelay(at, worker, ttl) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('proxy-delay' as const),
        at,
        worker,
        role: fc.constant('sub' as const),
        delay: span(1.2 * subDelay, 2 * subDelay + ttl),
        duration: span(50, 1500),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('proxy-drop' as const),
        at,
        worker,
        role,
        duration: fc.constant(0),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('abort-waits' as const),
        at,
        worker,
        duration: fc.constant(0),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('restart' as const),
        at,
        server,
        duration: fc.constant(0),
      }),
    },
  );
}

/** Replies on a worker's command connection held back by 60-75% of the ttl, briefly. */
function cmdDelay(at: fc.Arbitrary<number>, worker: fc.Arbitrary<number>, ttl: number) {
  return fc
    .record({
      at,
      worker,
      delay: fc.integer({ min: Math.round(0.6 * ttl), max: Math.round(0.75 * ttl) }),
      share: fc.double({ min: 0.05, max: 0.3, noNaN: true }),
    })
    .map(({ share, ...rest }): Fault => ({
      kind: 'proxy-delay',
      role: 'cmd',
      ...rest,
      duration: Math.max(20, Math.round(rest.delay * share)),
    }));
}

/**
 * Benchmark settings, read from the environment so `npm run bench` needs no arguments.
 * Every default keeps a whole run to about a minute on a small machine.
 */

/** How the contended workers spend their critical section. */
export type CriticalSectionMode = 'busy' | 'sleep';

export interface BenchOptions {
  /** Measured seconds per scenario row (BENCH_SECONDS, default 3). */
  seconds: number;
  /** Concurrent callers in the uncontended scenario (BENCH_CONCURRENCY, default 50). */
  concurrency: number;
  /** Forked processes in the contended scenario (BENCH_PROCESSES, default 4). */
  processes: number;
  /** Workers per process in the contended scenario (BENCH_WORKERS, default 3). */
  workers: number;
  /** Critical section length in ms (BENCH_CS_MS, default 5). */
  criticalSectionMs: number;
  /** `busy` spins the CPU (exact length, blocks the worker's event loop); `sleep` awaits a timer. */
  criticalSectionMode: CriticalSectionMode;
  /** Sequential pairs per topology in the topologies scenario (BENCH_TOPOLOGY_PAIRS, default 2000). */
  topologyPairs: number;
  /** HTTP connections in the route scenario (BENCH_ROUTE_CONNECTIONS, default 50). */
  routeConnections: number;
  /** Rounds per route and platform in the route scenario, alternating (BENCH_ROUTE_ROUNDS, default 3). */
  routeRounds: number;
  /**
   * Scenarios to run (BENCH_SCENARIOS, comma-separated, default all):
   * `uncontended`, `contended`, `topologies`, `routes`, `held`.
   */
  scenarios: ReadonlySet<Scenario>;
}

export const SCENARIOS = ['uncontended', 'contended', 'topologies', 'routes', 'held'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export function readOptions(env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const mode = env.BENCH_CS_MODE ?? 'busy';
  if (mode !== 'busy' && mode !== 'sleep') {
    throw new RangeError(`BENCH_CS_MODE must be "busy" or "sleep", got "${mode}".`);
  }
  return {
    seconds: readNumber(env, 'BENCH_SECONDS', 3, { min: 0.1, max: 600 }),
    concurrency: readNumber(env, 'BENCH_CONCURRENCY', 50, { min: 1, max: 10_000, integer: true }),
    processes: readNumber(env, 'BENCH_PROCESSES', 4, { min: 1, max: 64, integer: true }),
    workers: readNumber(env, 'BENCH_WORKERS', 3, { min: 1, max: 1_000, integer: true }),
    criticalSectionMs: readNumber(env, 'BENCH_CS_MS', 5, { min: 0, max: 10_000 }),
    criticalSectionMode: mode,
    topologyPairs: readNumber(env, 'BENCH_TOPOLOGY_PAIRS', 2000, {
      min: 10,
      max: 1_000_000,
      integer: true,
    }),
    routeConnections: readNumber(env, 'BENCH_ROUTE_CONNECTIONS', 50, {
      min: 1,
      max: 1_000,
      integer: true,
    }),
    routeRounds: readNumber(env, 'BENCH_ROUTE_ROUNDS', 3, { min: 1, max: 100, integer: true }),
    scenarios: readScenarios(env.BENCH_SCENARIOS),
  };
}

function readScenarios(raw: string | undefined): ReadonlySet<Scenario> {
  if (raw === undefined || raw.trim() === '') return new Set(SCENARIOS);
  const names = raw.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new RangeError(
      `BENCH_SCENARIOS must list some of ${SCENARIOS.join(', ')}, got "${unknown.join(', ')}".`,
    );
  }
  return new Set(names as Scenario[]);
}

function readNumber(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  limits: { min: number; max: number; integer?: boolean },
): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  const valid =
    Number.isFinite(value) &&
    value >= limits.min &&
    value <= limits.max &&
    (!limits.integer || Number.isInteger(value));
  if (!valid) {
    const kind = limits.integer ? 'an integer' : 'a number';
    throw new RangeError(
      `${name} must be ${kind} from ${limits.min} to ${limits.max}, got "${raw}".`,
    );
  }
  return value;
}

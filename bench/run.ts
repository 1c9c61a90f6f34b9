/**
 * `npm run bench`: starts one private redis-server, runs the uncontended and contended
 * scenarios, prints their tables and the machine they ran on, and stops everything it started,
 * also on error, SIGINT/SIGTERM or when a run takes far longer than it should.
 * See bench/README.md for how to read the output; settings come from BENCH_* variables.
 */
import { killAllWorkers } from '../test/support/fork-worker.js';
import { startRedis, stopAllRedis } from '../test/support/redis-server.js';
import type { Redis } from 'ioredis';
import type { RedisServer } from '../test/support/redis-server.js';
import { readOptions, type BenchOptions, type Scenario } from './bench.options.js';
import { ContendedFleet, type ContendedResult } from './contended.bench.js';
import { perOperation, pingRoundTrip, redisVersion, totalPerOperation } from './redis-stats.js';
import { fmt, machineLine, markdownTable } from './report.js';
import { checkTargets } from './targets.js';
import { HELD_TTL, measureHeld, type HeldResult } from './held.bench.js';
import { measureTopologies } from './topologies.bench.js';
import { measureRoutes, PLATFORMS, type RouteResult, type RouteStats } from './route.bench.js';
import { measureRw } from './rw.bench.js';
import {
  comparePairs,
  libraryPair,
  rawPair,
  redlockPair,
  semaphorePair,
  libraryPermitPair,
  semaphoreSemaphorePair,
  SEMAPHORE_PERMITS,
  type PairResult,
} from './uncontended.bench.js';
import { CONTENDED_PERMITS, holdersOf, IMPLS, type Impl } from './workers/contenders.js';

/** Row labels of the contended table: what each implementation's waiters do. */
const IMPL_LABELS: Record<Impl, string> = {
  library: 'library: acquire (default wait)',
  'library-fair': 'library: acquire({ fair: true })',
  redlock: '@sesamecare-oss/redlock (retry 200 ± 100 ms)',
  'redis-semaphore': 'redis-semaphore Mutex (retry 10 ms)',
  'token-ring': 'floor of fair: token ring, no lock',
  'library-semaphore': `library: acquirePermit (N = ${CONTENDED_PERMITS})`,
  'redis-semaphore-semaphore': `redis-semaphore Semaphore (N = ${CONTENDED_PERMITS}, retry 10 ms)`,
};

/** Held-locks scenario: how many locks one process holds. */
const HELD_COUNTS = [1_000, 10_000];

/** Length of the unmeasured round each implementation runs before the contended rows. */
const CONTENDED_WARM_UP_SECONDS = 0.5;

let cleaning: Promise<void> | undefined;
const cleanUp = (): Promise<void> =>
  (cleaning ??= Promise.allSettled([killAllWorkers(), stopAllRedis()]).then(() => undefined));

let aborting = false;

function abortRun(why: string, code: number): void {
  aborting = true;
  console.error(`\nbench: ${why}; stopping workers and redis-server.`);
  void cleanUp().finally(() => process.exit(code));
}

async function main(options: BenchOptions): Promise<void> {
  const server = await startRedis();
  const admin = server.client();
  const version = await redisVersion(admin);
  const rtt = await pingRoundTrip(admin);
  console.log(
    `nestjs-redis-lock benchmark: ${options.seconds} s per row, private redis-server ${version}` +
      ` on port ${server.port}, PING round trip p50 ${fmt(rtt, 3)} ms\n`,
  );

  const has = (scenario: Scenario) => options.scenarios.has(scenario);
  let uncontended: Awaited<ReturnType<typeof runUncontended>> | undefined;
  if (has('uncontended')) uncontended = await runUncontended(options, server, admin);
  let contended: Record<Impl, ContendedResult> | undefined;
  if (has('contended')) contended = await runContended(options, server.url, admin, rtt);
  if (has('topologies')) await runTopologies(options, server);
  let routes: RouteResult[] | undefined;
  if (has('routes')) routes = await runRoutes(options, server.url);
  let held: HeldResult[] | undefined;
  if (has('held')) held = await runHeld(options, server.url, admin);

  console.log('\n## Targets\n');
  const lines = checkTargets({
    uncontended,
    contended,
    routes,
    held: held?.filter((r) => r.build === 'this build'),
    ideal: (heldMean) => 1000 / (heldMean + rtt),
  });
  for (const line of lines) console.log(line);
  console.log(`\n${machineLine(version)}`);
}

async function runUncontended(options: BenchOptions, server: RedisServer, admin: Redis) {
  console.log(
    `## Uncontended: ${options.concurrency} concurrent callers, distinct keys, one connection\n`,
  );
  // The library on a connection of its own making, as a module user gets it.
  const library = libraryPair({ host: '127.0.0.1', port: server.port });
  const [lib, raw, rawBatched, redlock, semaphore, libPermit, semSemaphore] = await comparePairs(
    [
      library,
      await rawPair(server.client()),
      // The library's connection pipelines the commands of one tick (ioredis' own way).
      await rawPair(server.client({ enableAutoPipelining: true })),
      redlockPair(server.client()),
      semaphorePair(server.client()),
      libraryPermitPair(server.client()),
      semaphoreSemaphorePair(server.client()),
    ],
    admin,
    options.concurrency,
    options.seconds,
  );
  await library.close();
  const pairRow = (name: string, r: PairResult) => [
    name,
    fmt(r.perSecond),
    fmt(r.perSecond / raw.perSecond, 2) + 'x',
    fmt(r.p50, 3),
    fmt(r.p99, 3),
    fmt(totalPerOperation(r.sent, r.pairs), 2),
    perOperation(r.calls, r.pairs),
  ];
  console.log(
    markdownTable(
      [
        'acquire + release',
        'pairs/s',
        'vs raw',
        'p50 ms',
        'p99 ms',
        'round trips/pair',
        'Redis commands/pair (incl. inside Lua)',
      ],
      [
        pairRow('library: tryAcquire + release', lib),
        pairRow('raw ioredis: SET NX PX + EVALSHA', raw),
        pairRow('raw ioredis, enableAutoPipelining: true', rawBatched),
        pairRow('@sesamecare-oss/redlock: acquire + release', redlock),
        pairRow('redis-semaphore: Mutex acquire + release', semaphore),
        pairRow(`library: tryAcquirePermit + release (N = ${SEMAPHORE_PERMITS})`, libPermit),
        pairRow(
          `redis-semaphore: Semaphore acquire + release (N = ${SEMAPHORE_PERMITS})`,
          semSemaphore,
        ),
      ],
    ),
  );
  return { library: lib, pipelined: rawBatched, permit: libPermit, semaphore: semSemaphore };
}

async function runContended(options: BenchOptions, url: string, admin: Redis, rtt: number) {
  const { processes, workers, criticalSectionMs, criticalSectionMode } = options;
  const ideal = (held: number) => 1000 / (held + rtt);
  console.log(
    `\n## Contended: ${processes} processes x ${workers} workers on ONE key, ` +
      `${criticalSectionMs} ms ${criticalSectionMode} critical section, ` +
      `ideal = 1 / (critical section + RTT) = ${fmt(ideal(criticalSectionMs), 1)} grants/s ` +
      `(per row: from the measured mean hold)\n`,
  );
  const fleet = await ContendedFleet.start(url, options);
  const contended = {} as Record<Impl, ContendedResult>;
  // An unmeasured round each first, as the uncontended rows have: no row runs cold code.
  for (const impl of IMPLS) await fleet.round(admin, CONTENDED_WARM_UP_SECONDS, impl);
  for (const impl of IMPLS) contended[impl] = await fleet.round(admin, options.seconds, impl);
  await fleet.stop();
  console.log(
    markdownTable(
      [
        'lock',
        'grants/s',
        'held ms',
        'ideal/s',
        '% of ideal',
        'wait p50 ms',
        'p99 ms',
        'max ms',
        'Jain',
        'min/max per worker',
        'round trips/grant',
        'Redis calls/grant',
      ],
      IMPLS.map((impl) => {
        const r = contended[impl];
        // A semaphore row's ideal: N holders at once, each at the lock's ideal.
        const rowIdeal = holdersOf(impl) * ideal(r.heldMean);
        return [
          IMPL_LABELS[impl],
          fmt(r.perSecond, 1),
          fmt(r.heldMean, 2),
          fmt(rowIdeal, 1),
          fmt((100 * r.perSecond) / rowIdeal, 0) + '%',
          fmt(r.waitP50, 1),
          fmt(r.waitP99, 1),
          fmt(r.waitMax, 1),
          fmt(r.jain, 3),
          `${r.minPerWorker}/${r.maxPerWorker}`,
          fmt(totalPerOperation(r.sent, r.grants), 1),
          fmt(totalPerOperation(r.calls, r.grants), 1),
        ];
      }),
    ),
  );
  console.log('\nRedis calls per grant by command; waits cut off at the end of the round:\n');
  for (const impl of IMPLS) {
    const r = contended[impl];
    const late = r.late ? `, ${r.late} of them granted late and released uncounted` : '';
    const locked = r.stillLocked ? '; WARNING: key still locked after the round' : '';
    console.log(
      `- ${impl}: ${perOperation(r.calls, r.grants)}; ${r.cutOff} cut off${late}${locked}`,
    );
  }
  const rwCallers = 12;
  console.log(
    `\n## Read-write lock: ${rwCallers} callers on ONE key, one connection each, ` +
      `${criticalSectionMs} ms sleep critical section, rounds alternating plain / read\n`,
  );
  const rw = await measureRw(url, rwCallers, criticalSectionMs, options.seconds);
  const rwIdeal = rwCallers * ideal(criticalSectionMs);
  console.log(
    markdownTable(
      ['lock', 'grants/s', 'vs plain', 'ideal/s', '% of ideal'],
      [
        ['plain lock (no mode)', rw.plain, ideal(criticalSectionMs)],
        ["read lock (mode: 'read')", rw.read, rwIdeal],
        ["write lock (mode: 'write')", rw.write, ideal(criticalSectionMs)],
      ].map(([name, r, best]) => {
        const { perSecond } = r as typeof rw.plain;
        return [
          name as string,
          fmt(perSecond, 1),
          fmt(perSecond / rw.plain.perSecond, 2) + 'x',
          fmt(best as number, 1),
          fmt((100 * perSecond) / (best as number), 0) + '%',
        ];
      }),
    ),
  );

  return contended;
}

async function runTopologies(options: BenchOptions, server: RedisServer) {
  const pairs = options.topologyPairs;
  console.log(
    `\n## Topologies: one caller, ${pairs} acquire + release pairs each, private servers\n`,
  );
  const topologies = await measureTopologies(server, pairs);
  console.log(
    markdownTable(
      ['topology', 'acquire p50 ms', 'acquire p99 ms', 'acquire + release p50 ms', 'p99 ms'],
      topologies.map((t) => [
        t.name,
        fmt(t.acquireP50, 3),
        fmt(t.acquireP99, 3),
        fmt(t.pairP50, 3),
        fmt(t.pairP99, 3),
      ]),
    ),
  );
}

async function runHeld(options: BenchOptions, url: string, admin: Redis): Promise<HeldResult[]> {
  console.log(
    `\n## Held locks: N locks held with the watchdog (ttl ${HELD_TTL / 1000} s), ` +
      `${options.seconds} s measured after a ttl to settle, one process each\n`,
  );
  const builds = [{ name: 'this build', dist: 'dist' }];
  if (process.env.BENCH_HELD_BASELINE) {
    builds.push({ name: 'baseline', dist: process.env.BENCH_HELD_BASELINE });
  }
  const held: HeldResult[] = [];
  for (const count of HELD_COUNTS) {
    // Builds take turns, so load on a shared machine falls on both alike.
    for (const build of builds) {
      held.push(await measureHeld(admin, url, build, count, options.seconds));
    }
  }
  console.log(
    markdownTable(
      [
        'build',
        'locks',
        'Redis calls/s',
        'calls per 50 locks per round',
        'client CPU',
        'lag p99 ms',
        'lag max ms',
        'lost',
      ],
      held.map((r) => [
        r.build,
        fmt(r.count),
        fmt(r.callsPerSecond, 0),
        fmt(r.callsPer50PerRound, 2),
        fmt(100 * r.cpu, 1) + '%',
        fmt(r.lagP99, 1),
        fmt(r.lagMax, 1),
        fmt(r.lost),
      ]),
    ),
  );

  return held;
}

async function runRoutes(options: BenchOptions, url: string): Promise<RouteResult[]> {
  const { routeConnections: connections, routeRounds: rounds, seconds } = options;
  console.log(
    `\n## A route with and without @Lock: one Nest app, ${connections} connections, distinct keys, ` +
      `${rounds} alternating rounds of ${seconds} s per route\n`,
  );
  const results: RouteResult[] = [];
  for (const platform of PLATFORMS) {
    results.push(await measureRoutes(platform, { url, connections, rounds, seconds }));
  }
  const row = (platform: string, route: string, r: RouteStats, vs?: RouteStats) => [
    `${platform}: ${route}`,
    fmt(r.perSecond),
    vs ? fmt(r.perSecond / vs.perSecond, 2) + 'x' : '',
    fmt(r.p50, 2),
    fmt(r.p99, 2),
    fmt(r.cpuPerRequest, 0),
    fmt(r.failed),
  ];
  console.log(
    markdownTable(
      ['route', 'requests/s', 'vs unlocked', 'p50 ms', 'p99 ms', 'app CPU µs/request', 'failed'],
      results.flatMap(({ platform, plain, locked }) => [
        row(platform, 'GET /plain/:id', plain),
        row(platform, "GET /locked/:id, @Lock('item:{{id}}')", locked, plain),
      ]),
    ),
  );
  return results;
}

const options = readOptions();
// Far above a normal run (about (8 + 4 x route rounds) x seconds + 20 s of start-up): only a hang gets here.
const hardLimit = setTimeout(
  () => abortRun('run took too long', 1),
  (90 + (20 + 4 * options.routeRounds) * options.seconds) * 1000,
).unref();
process.once('SIGINT', () => abortRun('interrupted', 130));
process.once('SIGTERM', () => abortRun('terminated', 143));

try {
  await main(options);
} catch (err) {
  // Once aborting, failures are the workers and server being stopped under the run: expected.
  if (!aborting) console.error(err);
  process.exitCode = 1;
} finally {
  clearTimeout(hardLimit);
  await cleanUp();
}

/**
 * `npm run bench`: starts one private redis-server, runs the uncontended and contended
 * scenarios, prints their tables and the machine they ran on, and stops everything it started,
 * also on error, SIGINT/SIGTERM or when a run takes far longer than it should.
 * See bench/README.md for how to read the output; settings come from BENCH_* variables.
 */
import { killAllWorkers } from '../test/support/fork-worker.js';
import { startRedis, stopAllRedis } from '../test/support/redis-server.js';
import { readOptions, type BenchOptions } from './bench.options.js';
import { ContendedFleet, type ContendedResult } from './contended.bench.js';
import { perOperation, pingRoundTrip, redisVersion, totalPerOperation } from './redis-stats.js';
import { fmt, machineLine, markdownTable } from './report.js';
import { checkTargets } from './targets.js';
import { measureTopologies } from './topologies.bench.js';
import { measureRw } from './rw.bench.js';
import {
  comparePairs,
  libraryPair,
  rawPair,
  redlockPair,
  semaphorePair,
  type PairResult,
} from './uncontended.bench.js';
import { IMPLS, type Impl } from './workers/contenders.js';

/** Row labels of the contended table: what each implementation's waiters do. */
const IMPL_LABELS: Record<Impl, string> = {
  library: 'library: acquire (default wait)',
  'library-fair': 'library: acquire({ fair: true })',
  redlock: '@sesamecare-oss/redlock (retry 200 ± 100 ms)',
  'redis-semaphore': 'redis-semaphore Mutex (retry 10 ms)',
  'token-ring': 'floor of fair: token ring, no lock',
};

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

  console.log(
    `## Uncontended: ${options.concurrency} concurrent callers, distinct keys, one connection\n`,
  );
  const [lib, raw, rawBatched, redlock, semaphore] = await comparePairs(
    [
      libraryPair(server.client()),
      await rawPair(server.client()),
      // The library sends the commands of one tick in shared writes; this is ioredis' own way.
      await rawPair(server.client({ enableAutoPipelining: true })),
      redlockPair(server.client()),
      semaphorePair(server.client()),
    ],
    admin,
    options.concurrency,
    options.seconds,
  );
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
      ],
    ),
  );

  const { processes, workers, criticalSectionMs, criticalSectionMode } = options;
  const ideal = (held: number) => 1000 / (held + rtt);
  console.log(
    `\n## Contended: ${processes} processes x ${workers} workers on ONE key, ` +
      `${criticalSectionMs} ms ${criticalSectionMode} critical section, ` +
      `ideal = 1 / (critical section + RTT) = ${fmt(ideal(criticalSectionMs), 1)} grants/s ` +
      `(per row: from the measured mean hold)\n`,
  );
  const fleet = await ContendedFleet.start(server.url, options);
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
        return [
          IMPL_LABELS[impl],
          fmt(r.perSecond, 1),
          fmt(r.heldMean, 2),
          fmt(ideal(r.heldMean), 1),
          fmt((100 * r.perSecond) / ideal(r.heldMean), 0) + '%',
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
  const rw = await measureRw(server.url, rwCallers, criticalSectionMs, options.seconds);
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

  console.log('\n## Targets\n');
  const lines = checkTargets({
    uncontended: { library: lib, raw },
    contended,
    ideal,
    contenders: processes * workers,
    criticalSectionMs,
  });
  for (const line of lines) console.log(line);
  console.log(`\n${machineLine(version)}`);
}

const options = readOptions();
// Far above a normal run (about 8 x seconds + 10 s of start-up): only a hang gets here.
const hardLimit = setTimeout(
  () => abortRun('run took too long', 1),
  (60 + 20 * options.seconds) * 1000,
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

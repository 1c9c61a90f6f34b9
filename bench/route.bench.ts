/**
 * Scenario 4, what a locked route costs: one Nest app (in its own process) serving the same
 * handler with and without `@Lock`, each request on its own key (uncontended), loaded by
 * autocannon with `connections` connections in alternating rounds (plain, locked, plain, ...),
 * on Express and on Fastify. Reports requests per second and latency p50/p99 of each route.
 */
import type { ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import { forkWorker, nextMessage } from '../test/support/fork-worker.js';
import { percentile, sortedCopy } from './stats.js';
import type { Platform, RouteAppConfig } from './workers/route-app.js';

const APP_SCRIPT = 'bench/workers/route-app.ts';
const READY_TIMEOUT = 30_000;
export const PLATFORMS: Platform[] = ['express', 'fastify'];

export type Route = 'plain' | 'locked';

export interface RouteStats {
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
  /** Answers other than 2xx, and connection errors: a valid run has none. */
  failed: number;
  /** CPU time the app process spent per request (µs): steadier than rates on a busy machine. */
  cpuPerRequest: number;
}

export type RouteResult = { platform: Platform } & Record<Route, RouteStats>;

export interface RouteSettings {
  url: string;
  connections: number;
  /** Rounds per route, alternating. */
  rounds: number;
  /** Seconds per round. */
  seconds: number;
}

/** Both routes on one platform, alternating rounds, after an unmeasured warm-up of each. */
export async function measureRoutes(
  platform: Platform,
  settings: RouteSettings,
): Promise<RouteResult> {
  const app = forkWorker(APP_SCRIPT, [
    JSON.stringify({ url: settings.url, platform } satisfies RouteAppConfig),
  ]);
  try {
    const { port } = await nextMessage<{ type: string; port: number }>(
      app,
      (m) => m.type === 'ready',
      READY_TIMEOUT,
    );
    const base = `http://127.0.0.1:${port}`;
    for (const route of ['plain', 'locked'] as const) {
      await round(app, base, route, settings.connections, Math.min(1, settings.seconds));
    }
    const rounds: Record<Route, Round[]> = { plain: [], locked: [] };
    for (let i = 0; i < settings.rounds; i++) {
      // Alternate which goes first, so a drift of the machine's load favours neither.
      const order: Route[] = i % 2 === 0 ? ['plain', 'locked'] : ['locked', 'plain'];
      for (const route of order) {
        rounds[route].push(await round(app, base, route, settings.connections, settings.seconds));
      }
    }
    return { platform, plain: summary(rounds.plain), locked: summary(rounds.locked) };
  } finally {
    await stop(app);
  }
}

interface Round {
  requests: number;
  seconds: number;
  failed: number;
  latencies: number[];
  /** CPU µs of the app process during the round. */
  cpu: number;
}

/** One autocannon run on `/<route>/<n>`, n counting up: every request locks its own key. */
async function round(
  app: ChildProcess,
  base: string,
  route: Route,
  connections: number,
  seconds: number,
) {
  let next = 0;
  const cpuBefore = await cpuOf(app);
  const latencies: number[] = [];
  const run = autocannon({
    url: base,
    connections,
    duration: seconds,
    requests: [{ setupRequest: (request) => ({ ...request, path: `/${route}/${next++}` }) }],
  });
  run.on('response', (_client, _status, _bytes, ms) => void latencies.push(ms));
  const result = await run;
  const cpu = (await cpuOf(app)) - cpuBefore;
  return {
    cpu,
    requests: result.requests.total,
    seconds: result.duration,
    failed: result.non2xx + result.errors + result.timeouts,
    latencies,
  } satisfies Round;
}

function summary(rounds: Round[]): RouteStats {
  const requests = rounds.reduce((sum, r) => sum + r.requests, 0);
  const seconds = rounds.reduce((sum, r) => sum + r.seconds, 0);
  const sorted = sortedCopy(rounds.flatMap((r) => r.latencies));
  return {
    requests,
    perSecond: requests / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    failed: rounds.reduce((sum, r) => sum + r.failed, 0),
    cpuPerRequest: rounds.reduce((sum, r) => sum + r.cpu, 0) / requests,
  };
}

/** User + system CPU µs the app process has used so far. */
async function cpuOf(app: ChildProcess): Promise<number> {
  const answer = nextMessage<{ type: string; user: number; system: number }>(
    app,
    (m) => m.type === 'cpu',
  );
  app.send({ type: 'cpu' });
  const { user, system } = await answer;
  return user + system;
}

async function stop(app: ChildProcess): Promise<void> {
  if (app.exitCode !== null || !app.connected) return;
  const exited = new Promise((resolve) => app.once('exit', resolve));
  app.send({ type: 'stop' });
  await exited;
}

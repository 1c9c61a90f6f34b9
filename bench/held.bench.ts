/**
 * Scenario 4, held locks: one process holds N locks with the watchdog on (ttl 3 s) and does
 * nothing else. Measures what the renewals cost: Redis calls per second (the server's
 * `INFO commandstats`), the client's CPU and its event-loop lag. With BENCH_HELD_BASELINE set to
 * another build's `dist`, that build is measured too, turn about, on the same server.
 */
import type { Redis } from 'ioredis';
import { exited, forkWorker, nextMessage } from '../test/support/fork-worker.js';
import { readCommandStats, resetCommandStats } from './redis-stats.js';
import type { HeldConfig, HeldReport } from './workers/held.worker.js';

const WORKER_SCRIPT = 'bench/workers/held.worker.ts';
/** The ttl: renewals every second. */
export const HELD_TTL = 3_000;
/** The watchdog renews every lock once per ttl / 3: one renewal round. */
export const ROUNDS_PER_SECOND = 3_000 / HELD_TTL;
/** Taking 10,000 locks and settling for a ttl takes seconds on a small, loaded machine. */
const HELD_TIMEOUT = 120_000;

export interface HeldResult {
  build: string;
  count: number;
  /** EVALSHA + EVAL calls per second on the server while the locks were held. */
  callsPerSecond: number;
  /** Calls per 50 held locks per renewal round (target: at most 1). */
  callsPer50PerRound: number;
  cpu: number;
  lagP99: number;
  lagMax: number;
  lost: number;
}

/** Holds `count` locks in a fresh process running the build in `dist`, for `seconds`. */
export async function measureHeld(
  admin: Redis,
  url: string,
  build: { name: string; dist: string },
  count: number,
  seconds: number,
): Promise<HeldResult> {
  const config: HeldConfig = { url, count, ttl: HELD_TTL, dist: build.dist };
  const child = forkWorker(WORKER_SCRIPT, [JSON.stringify(config)]);
  const failed = (m: { type: string }) => m.type === 'error';
  const held = await nextMessage<{ type: string; message?: string }>(
    child,
    (m) => m.type === 'held' || failed(m),
    HELD_TIMEOUT,
  );
  if (held.type === 'error') throw new Error(`held-locks worker: ${held.message}`);
  await resetCommandStats(admin);
  child.send({ type: 'measure', seconds });
  const report = await nextMessage<HeldReport | { type: 'error'; message: string }>(
    child,
    (m) => m.type === 'done' || failed(m),
    HELD_TIMEOUT,
  );
  const stats = await readCommandStats(admin);
  if (report.type === 'error') throw new Error(`held-locks worker: ${report.message}`);
  // Its locks released before the next build's worker starts.
  await exited(child);
  // The worker measured `seconds`; the server counted a little longer (messages, the stats read).
  const calls = (stats.evalsha ?? 0) + (stats.eval ?? 0);
  const callsPerSecond = calls / seconds;
  return {
    build: build.name,
    count,
    callsPerSecond,
    callsPer50PerRound: callsPerSecond / ROUNDS_PER_SECOND / (count / 50),
    cpu: report.cpu,
    lagP99: report.lagP99,
    lagMax: report.lagMax,
    lost: report.lost,
  };
}

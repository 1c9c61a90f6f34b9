/**
 * Scenario 2, contended: `processes` forked processes × `workers` loops hammer ONE key, each loop
 * acquire (waiting) → fixed critical section → release. Measures how close the lock comes to the
 * ideal hand-over rate, how long waiters wait, and how evenly grants are shared, for each lock
 * implementation in turn (one round each, on its own key).
 */
import type { ChildProcess } from 'node:child_process';
import type { Redis } from 'ioredis';
import { forkWorker, nextMessage } from '../test/support/fork-worker.js';
import type { BenchOptions } from './bench.options.js';
import { readCommandStats, resetCommandStats } from './redis-stats.js';
import { jainIndex, percentile, sortedCopy } from './stats.js';
import type { Command, Impl, Reply, WorkerConfig } from './workers/contended.worker.js';

const WORKER_SCRIPT = 'bench/workers/contended.worker.ts';
/** Starting tsx in several processes at once on a small machine takes a few seconds. */
const READY_TIMEOUT = 30_000;
/** Long enough that no lease expires during a critical section; autoRenew is off. */
const TTL = 10_000;

export interface ContendedResult {
  grants: number;
  perSecond: number;
  /** Mean measured critical section (ms). */
  heldMean: number;
  waitP50: number;
  waitP99: number;
  waitMax: number;
  jain: number;
  minPerWorker: number;
  maxPerWorker: number;
  /** Waits open at the end of the round (not counted), and of those, locks granted late. */
  cutOff: number;
  late: number;
  /** The round's key still existed after every worker had released: a bug to look into. */
  stillLocked: boolean;
  /** Calls per command during the round, on the server (including those inside Lua). */
  calls: Record<string, number>;
  /** Commands the workers sent during the round (their round trips), by name. */
  sent: Record<string, number>;
}

/** The forked processes, reused for every round so process start-up is paid once. */
export class ContendedFleet {
  private constructor(private readonly children: ChildProcess[]) {}

  static async start(url: string, options: BenchOptions): Promise<ContendedFleet> {
    const config: Omit<WorkerConfig, 'index'> = {
      url,
      processes: options.processes,
      workers: options.workers,
      criticalSectionMs: options.criticalSectionMs,
      criticalSectionMode: options.criticalSectionMode,
      ttl: TTL,
    };
    const children = Array.from({ length: options.processes }, (_, index) =>
      forkWorker(WORKER_SCRIPT, [JSON.stringify({ ...config, index } satisfies WorkerConfig)]),
    );
    const fleet = new ContendedFleet(children);
    await fleet.collect('ready', READY_TIMEOUT);
    return fleet;
  }

  /**
   * One round of `seconds` with `impl`. Resolves once every worker has released, so nothing of
   * this round is still held when the next starts; the next also uses a key of its own.
   */
  async round(admin: Redis, seconds: number, impl: Impl): Promise<ContendedResult> {
    await resetCommandStats(admin);
    this.send({ type: 'go', seconds, impl });
    // Server counters are read when the round ends, before the waits still open drain away.
    const [calls, replies] = await Promise.all([
      new Promise((resolve) => setTimeout(resolve, seconds * 1000)).then(() =>
        readCommandStats(admin),
      ),
      this.collect('done', seconds * 1000 + READY_TIMEOUT),
    ]);
    // Every worker released before answering, so the key should be gone: a check, not a wait.
    const stillLocked =
      (await admin.exists(`bench:contended:${impl}`, `mutex:bench:contended:${impl}`)) > 0;

    const done = replies.flatMap((reply) => (reply.type === 'done' ? [reply] : []));
    const sent: Record<string, number> = {};
    for (const reply of done) {
      for (const [name, n] of Object.entries(reply.sent)) sent[name] = (sent[name] ?? 0) + n;
    }
    const workers = done.flatMap((reply) => reply.workers);
    const grantsPerWorker = workers.map((w) => w.grants);
    const grants = grantsPerWorker.reduce((a, b) => a + b, 0);
    const waits = sortedCopy(workers.flatMap((w) => w.waits));
    const heldMs = workers.reduce((a, w) => a + w.heldMs, 0);
    return {
      grants,
      // Workers stop asking after `seconds`, and neither cut-off waits nor late grants are
      // counted, so every grant falls inside the window.
      perSecond: grants / seconds,
      heldMean: grants ? heldMs / grants : NaN,
      waitP50: percentile(waits, 50),
      waitP99: percentile(waits, 99),
      waitMax: waits.length ? waits[waits.length - 1] : NaN,
      jain: jainIndex(grantsPerWorker),
      minPerWorker: Math.min(...grantsPerWorker),
      maxPerWorker: Math.max(...grantsPerWorker),
      cutOff: workers.reduce((a, w) => a + w.cutOff, 0),
      late: workers.reduce((a, w) => a + w.late, 0),
      stillLocked,
      calls,
      sent,
    };
  }

  /** Asks every process to exit and waits until they have. */
  async stop(): Promise<void> {
    const exits = this.children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
        }),
    );
    this.send({ type: 'stop' });
    await Promise.all(exits);
  }

  private send(command: Command): void {
    for (const child of this.children) if (child.connected) child.send(command);
  }

  private async collect(type: Reply['type'], timeout: number): Promise<Reply[]> {
    return Promise.all(
      this.children.map(async (child) => {
        const reply = await nextMessage<Reply>(
          child,
          (m) => m.type === type || m.type === 'error',
          timeout,
        );
        if (reply.type === 'error')
          throw new Error(`worker ${child.pid} failed:\n${reply.message}`);
        return reply;
      }),
    );
  }
}

/**
 * Scenario 2, contended: `processes` forked processes × `workers` loops hammer ONE key, each loop
 * acquire (waiting) → fixed critical section → release. Measures how close the lock comes to the
 * ideal hand-over rate, how long waiters wait, and how evenly grants are shared.
 */
import type { ChildProcess } from 'node:child_process';
import type { Redis } from 'ioredis';
import { forkWorker, nextMessage } from '../test/support/fork-worker.js';
import type { BenchOptions } from './bench.options.js';
import { readCommandStats, resetCommandStats } from './redis-stats.js';
import { jainIndex, percentile, sortedCopy } from './stats.js';
import type { Command, Reply, RetrySpec, WorkerConfig } from './workers/contended.worker.js';

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
  /** Calls per command during the round, on the server. */
  calls: Record<string, number>;
}

/** The forked processes, reused for every round so process start-up is paid once. */
export class ContendedFleet {
  private constructor(private readonly children: ChildProcess[]) {}

  static async start(url: string, options: BenchOptions): Promise<ContendedFleet> {
    const config: WorkerConfig = {
      url,
      key: 'contended',
      workers: options.workers,
      criticalSectionMs: options.criticalSectionMs,
      criticalSectionMode: options.criticalSectionMode,
      ttl: TTL,
    };
    const children = Array.from({ length: options.processes }, () =>
      forkWorker(WORKER_SCRIPT, [JSON.stringify(config)]),
    );
    const fleet = new ContendedFleet(children);
    await fleet.collect('ready', READY_TIMEOUT);
    return fleet;
  }

  /** One round of `seconds` with the given retry strategy (`null`: the library's default). */
  async round(admin: Redis, seconds: number, retry: RetrySpec): Promise<ContendedResult> {
    await resetCommandStats(admin);
    this.send({ type: 'go', seconds, retry });
    const replies = await this.collect('done', seconds * 1000 + READY_TIMEOUT);
    const calls = await readCommandStats(admin);

    const workers = replies.flatMap((reply) => (reply.type === 'done' ? reply.workers : []));
    const grantsPerWorker = workers.map((w) => w.grants);
    const grants = grantsPerWorker.reduce((a, b) => a + b, 0);
    const waits = sortedCopy(workers.flatMap((w) => w.waits));
    const held = workers.reduce((a, w) => a + w.heldMs, 0);
    return {
      grants,
      // Workers stop asking after `seconds` and aborted waits are not grants, so every grant
      // falls inside the window.
      perSecond: grants / seconds,
      heldMean: grants ? held / grants : NaN,
      waitP50: percentile(waits, 50),
      waitP99: percentile(waits, 99),
      waitMax: waits.length ? waits[waits.length - 1] : NaN,
      jain: jainIndex(grantsPerWorker),
      minPerWorker: Math.min(...grantsPerWorker),
      maxPerWorker: Math.max(...grantsPerWorker),
      calls,
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

/**
 * Runs one chaos round on a running environment: a proxy per worker in front of the main server,
 * the worker processes, the fault schedule; then stops the workers (killing any that miss the
 * exit deadline), looks for keys left without a TTL, flushes the servers and checks everything.
 *
 * @example
 * const outcome = await runRound(env, round);
 * if (outcome.result.violations.length > 0) process.exitCode = 1;
 */
import type { ChildProcess } from 'node:child_process';
import { exited, forkWorker, nextMessage } from '../support/fork-worker.js';
import { checkRound, type CheckResult, type RoundObservations } from './checker.js';
import { flushAll, keysWithoutTtl, type Environment } from './environment.js';
import { FaultInjector } from './faults.js';
import type { Round } from './plan.js';
import { nowMs, type ExitRecord, type WorkerRecord } from './records.js';
import { TcpProxy } from './tcp-proxy.js';
import type { FromWorker, ToWorker, WorkerConfig } from './workers/protocol.js';

const WORKER = 'test/chaos/workers/chaos.worker.ts';
const READY_TIMEOUT = 60_000;
/** How long a worker may take to finish its calls, close and exit once told to stop (ms). */
export const EXIT_DEADLINE = 20_000;

export interface RoundOutcome {
  observations: RoundObservations;
  result: CheckResult;
  /** Wall time the round took, set-up and checks included (ms). */
  tookMs: number;
}

export async function runRound(env: Environment, round: Round): Promise<RoundOutcome> {
  const began = nowMs();
  const { config } = round;
  const proxies = await Promise.all(
    Array.from({ length: config.processes }, () =>
      TcpProxy.start({ host: '127.0.0.1', port: env.servers.main.port }),
    ),
  );
  const records: WorkerRecord[] = [];
  const workers: ChildProcess[] = proxies.map((proxy, index) => {
    const workerConfig: WorkerConfig = {
      index,
      seed: config.seed + index * 7919,
      modes: config.modes,
      keys: config.keys,
      workersPerMode: config.workersPerMode,
      ttl: config.ttl,
      fairQueueTimeout: config.fairQueueTimeout,
      holdMax: config.holdMax,
      waitMin: config.waitMin,
      waitMax: config.waitMax,
      main: { host: '127.0.0.1', port: proxy.port },
      redlock: [env.servers.r1.url, env.servers.r2.url, env.servers.r3.url],
    };
    const child = forkWorker(WORKER, [JSON.stringify(workerConfig)]);
    child.on('message', (message: FromWorker) => {
      if (message.type === 'records') records.push(...message.records);
    });
    return child;
  });
  const injector = new FaultInjector(env, workers, proxies);
  let exits: ExitRecord[];
  try {
    await Promise.all(
      workers.map((child) =>
        nextMessage<FromWorker>(child, (m) => m.type === 'ready', READY_TIMEOUT),
      ),
    );
    const start = nowMs();
    for (const child of workers) child.send({ type: 'go' } satisfies ToWorker);
    injector.schedule(round.faults, start, config.durationMs);
    await new Promise((resolve) => setTimeout(resolve, config.durationMs));
    await injector.settled();
  } finally {
    await injector.calm();
    exits = await stopWorkers(workers);
    await Promise.all(proxies.map((proxy) => proxy.close()));
  }
  const faults = await injector.settled();
  const leftovers = await keysWithoutTtl(env);
  await flushAll(env);
  const observations: RoundObservations = {
    sections: records.filter((r) => r.t === 'section'),
    waits: records.filter((r) => r.t === 'wait'),
    stalls: records.filter((r) => r.t === 'stall'),
    errors: records.filter((r) => r.t === 'error'),
    faults,
    exits,
    leftovers,
  };
  return { observations, result: checkRound(observations), tookMs: nowMs() - began };
}

/** Tells every worker to stop; SIGKILLs those still running after the deadline. */
async function stopWorkers(workers: ChildProcess[]): Promise<ExitRecord[]> {
  return Promise.all(
    workers.map(async (child) => {
      if (child.exitCode === null && child.signalCode === null && child.connected) {
        child.send({ type: 'stop' } satisfies ToWorker);
      }
      let killed = false;
      const timer = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, EXIT_DEADLINE);
      // Records come before 'done' on the channel: once it is here, every record is.
      await nextMessage<FromWorker>(child, (m) => m.type === 'done', EXIT_DEADLINE).catch(
        () => undefined,
      );
      const exit = await exited(child);
      clearTimeout(timer);
      return { pid: child.pid ?? -1, code: exit.code, signal: exit.signal, killed };
    }),
  );
}

/**
 * Injects a round's planned faults at their times and records when each really happened. Faults
 * on one target (a worker's SIGSTOPs, anything on one server) run one after the other, so a
 * SIGCONT or a restart never cuts another fault of the same target short.
 *
 * @example
 * const injector = new FaultInjector(env, workers, proxies);
 * injector.schedule(round.faults, roundStart, round.config.durationMs);
 * const injected = await injector.settled();
 */
import type { ChildProcess } from 'node:child_process';
import { sleep } from '../support/wait-for.js';
import type { Environment } from './environment.js';
import { QUIET_END } from './plan.js';
import { nowMs, type Fault, type InjectedFault } from './records.js';
import type { TcpProxy } from './tcp-proxy.js';
import type { ToWorker } from './workers/protocol.js';

/** How long a planned block may wait for a holder in the worker (see workers/section.ts). */
const BLOCK_PICKUP = 300;

export class FaultInjector {
  private readonly injected: InjectedFault[] = [];
  private readonly running: Promise<void>[] = [];
  /** The last fault of each serialised target. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly stopped = new Set<number>();

  constructor(
    private readonly env: Environment,
    private readonly workers: ChildProcess[],
    private readonly proxies: TcpProxy[],
  ) {}

  /** Plans every fault at `roundStart + at`, its duration clipped to end before the quiet end. */
  schedule(faults: Fault[], roundStart: number, durationMs: number): void {
    for (const planned of faults) {
      const latest = Math.max(0, durationMs - QUIET_END - planned.at);
      const fault = { ...planned, duration: Math.min(planned.duration, latest) };
      const due = roundStart + fault.at - nowMs();
      const target =
        fault.server !== undefined && fault.kind !== 'client-kill' && fault.kind !== 'proxy-delay'
          ? `server:${fault.server}`
          : fault.kind === 'stop-worker' || fault.kind === 'block'
            ? `worker:${fault.worker}`
            : undefined;
      const run = async () => {
        await sleep(Math.max(0, due));
        const previous = target ? this.chains.get(target) : undefined;
        const mine = (async () => {
          await previous;
          await this.inject(fault);
        })();
        if (target) this.chains.set(target, mine);
        await mine;
      };
      this.running.push(run().catch(() => undefined));
    }
  }

  /** Resolves with every fault injected, once all are over. */
  async settled(): Promise<InjectedFault[]> {
    await Promise.all(this.running);
    return this.injected;
  }

  /** Undoes anything a fault may have left behind (a stopped worker, a delay). */
  async calm(): Promise<void> {
    for (const pid of this.stopped) process.kill(pid, 'SIGCONT');
    for (const proxy of this.proxies) proxy.clearDelays();
  }

  private async inject(fault: Fault): Promise<void> {
    const child = fault.worker === undefined ? undefined : this.workers[fault.worker];
    const pid = child?.pid;
    const start = nowMs();
    const record = (end = nowMs()): void => void this.injected.push({ ...fault, start, end, pid });
    switch (fault.kind) {
      case 'stop-worker':
        this.stopped.add(pid!);
        process.kill(pid!, 'SIGSTOP');
        await sleep(fault.duration);
        process.kill(pid!, 'SIGCONT');
        this.stopped.delete(pid!);
        return record();
      case 'block':
        child!.send({ type: 'block', ms: fault.duration } satisfies ToWorker);
        return record(start + fault.duration + BLOCK_PICKUP);
      case 'abort-waits':
        child!.send({ type: 'abort-waits' } satisfies ToWorker);
        return record();
      case 'stop-redis': {
        const server = this.env.servers[fault.server!];
        await server.pause();
        await sleep(fault.duration);
        await server.resume();
        return record();
      }
      case 'slow-script': {
        const seconds = (fault.duration / 1000).toFixed(3);
        await this.env.sleeper[fault.server!]
          .call('DEBUG', 'SLEEP', seconds)
          .catch(() => undefined);
        return record();
      }
      case 'client-kill': {
        const admin = this.env.admin.main;
        const addresses = this.proxies[fault.worker!].upstreamAddresses(fault.role!);
        for (const address of addresses) {
          await admin.call('CLIENT', 'KILL', 'ADDR', address).catch(() => undefined);
        }
        return record();
      }
      case 'proxy-delay':
        this.proxies[fault.worker!].delay(fault.role!, fault.delay!, fault.duration);
        return record(start + fault.duration);
      case 'proxy-drop':
        this.proxies[fault.worker!].drop(fault.role!);
        return record();
      case 'restart':
        await this.env.servers[fault.server!].restart();
        return record();
    }
  }
}

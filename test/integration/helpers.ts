/**
 * Small helpers shared by the integration specs of the core (`lib/core`), on top of the harness in
 * `test/support`. Nothing here talks to a Redis the harness did not start.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { LockScripts } from '../../lib/core/redis/scripts/index.js';
import { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import type { RedisLockClientOptions } from '../../lib/core/redis-lock-client.options.js';
import { exited, forkWorker, nextMessage } from '../support/fork-worker.js';
import { startMonitor, type Monitor } from '../support/monitor.js';
import { waitFor } from '../support/wait-for.js';
import type {
  AgentCommand,
  AgentReply,
  LoopConfig,
  LoopDone,
  LoopReport,
} from './workers/protocol.js';

/**
 * Monotonic milliseconds from CLOCK_MONOTONIC (`process.hrtime`), which on Linux is the same clock
 * in every process, so a worker's timestamps can be compared with the test's.
 */
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** A `LockLogger` that keeps what it is given. */
export function collectingLogger(): { warn(message: string): void; messages: string[] } {
  const messages: string[] = [];
  return { messages, warn: (message: string) => void messages.push(message) };
}

/** Creates lock clients and closes them all in {@link LockClients.closeAll} (call in afterEach). */
export class LockClients {
  private readonly clients: RedisLockClient[] = [];

  create(redis: Redis, options: Omit<RedisLockClientOptions, 'redis'> = {}): RedisLockClient {
    // Tests pass their own logger when they look at warnings; the rest stay quiet.
    const client = new RedisLockClient({ logger: { warn: () => undefined }, ...options, redis });
    this.clients.push(client);
    return client;
  }

  /** A client on any store (the in-memory one, say): `options` name it. */
  createOn(options: RedisLockClientOptions): RedisLockClient {
    const client = new RedisLockClient({ logger: { warn: () => undefined }, ...options });
    this.clients.push(client);
    return client;
  }

  async closeAll(): Promise<void> {
    await Promise.all(
      this.clients.splice(0).map((client) => client.close().catch(() => undefined)),
    );
  }
}

/** How `promise` settled, and after how many ms from the call. Fails if it resolves. */
export async function rejectionOf(
  promise: Promise<unknown>,
): Promise<{ error: Error; ms: number }> {
  const started = nowMs();
  try {
    await promise;
  } catch (error) {
    return { error: error as Error, ms: nowMs() - started };
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** Total calls of a command on the server so far (`INFO commandstats`), e.g. `set` or `evalsha`. */
export async function commandCalls(admin: Redis, command: string): Promise<number> {
  const info = await admin.info('commandstats');
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info);
  return match ? Number(match[1]) : 0;
}

/**
 * Resolves once `count` subscriptions (default prefix) listen for releases of `key`: on the key's
 * channel (`lock:{key}:released`), or on a client's (`lock:{key}:released:<client id>`, shared by
 * that client's waiters queued in Redis). A waiter that got that far sleeps until a release wakes
 * it.
 */
export async function subscribed(admin: Redis, key: string, count = 1): Promise<void> {
  await waitFor(async () => (await subscriberCount(admin, key)) >= count, {
    interval: 5,
    message: `${count} subscriber(s) of lock:{${key}}:released(:*)`,
  });
}

/** A key name no other test uses. */
let counter = 0;
export function uniqueKey(label: string): string {
  counter += 1;
  return `${label}:${process.pid}:${counter}`;
}

/** A promise with its resolve function, to hold a callback open until the test says so. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

/** A lock script, by its name in `LockScripts`. */
export type ScriptName = keyof typeof LockScripts;
const SCRIPT_NAMES = Object.keys(LockScripts) as ScriptName[];

/** One command as MONITOR reports it: the arguments, the first being the command name. */
export type MonitoredCommand = string[];

/**
 * Records every command the server executes, in execution order (Redis `MONITOR`), on its own
 * connection. Stop it with {@link CommandLog.stop}.
 */
export class CommandLog {
  readonly commands: MonitoredCommand[] = [];
  /** When the server ran each of `commands` (Redis' clock, ms since the epoch). */
  readonly times: number[] = [];

  private constructor(private readonly monitor: Monitor) {}

  /** Starts MONITOR on the server `client` is connected to. */
  static async start(client: Redis): Promise<CommandLog> {
    const monitor = await startMonitor(client.options.port!);
    const log = new CommandLog(monitor);
    monitor.onCommand((args, at) => {
      log.commands.push(args);
      log.times.push(at);
    });
    return log;
  }

  /**
   * The names of the lock scripts run with `token` as first argument, in order (EVALSHA sha
   * numkeys keys... token ..., or EVAL source ... on first use, counted only if no EVALSHA of
   * the same call failed before it: run each script once before counting to be sure). An
   * `extend` counts for every lock it renews (its ARGV holds token, ttl, key count per lock).
   */
  scriptsOf(token: string): ScriptName[] {
    return this.scriptRunsOf(token).map((run) => run.name);
  }

  /** Like {@link CommandLog.scriptsOf}, with when the server ran each (Redis' clock, ms). */
  scriptRunsOf(token: string): { name: ScriptName; at: number }[] {
    const runs: { name: ScriptName; at: number }[] = [];
    this.commands.forEach((args, i) => {
      const command = args[0].toLowerCase();
      if (command !== 'evalsha' && command !== 'eval') return;
      const name = SCRIPT_NAMES.find((n) =>
        command === 'evalsha' ? LockScripts[n].sha === args[1] : LockScripts[n].source === args[1],
      );
      const argv = args.slice(3 + Number(args[2]));
      const tokens = name === 'extend' ? argv.filter((_, j) => j % 3 === 0) : argv.slice(0, 1);
      if (name && tokens.includes(token)) runs.push({ name, at: this.times[i] });
    });
    return runs;
  }

  /** The commands whose arguments include `value` (a key, say), as MONITOR reported them. */
  mentioning(value: string): MonitoredCommand[] {
    return this.commands.filter((args) => args.includes(value));
  }

  stop(): void {
    this.monitor.stop();
  }
}

/** The Linux scheduler state of a process ('T' when stopped), or undefined if it is gone. */
export function processState(pid: number): string | undefined {
  try {
    // /proc/PID/stat is "pid (comm) STATE ...": comm may contain spaces, so read after the ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return undefined;
  }
}

/** Resolves once Redis shows a renewal of the key: its PTTL goes up between two reads. */
export async function renewalSeen(admin: Redis, redisKey: string, timeout = 5000): Promise<void> {
  let previous = await admin.pttl(redisKey);
  await waitFor(
    async () => {
      const current = await admin.pttl(redisKey);
      const renewed = current > previous + 20;
      previous = current;
      return renewed;
    },
    { interval: 10, timeout, message: `a renewal of ${redisKey}` },
  );
}

/** How many connections are subscribed to the release channel of `key` (default prefix). */
export async function subscriberCount(admin: Redis, key: string): Promise<number> {
  const channel = `lock:{${key}}:released`;
  const own = (await admin.call('PUBSUB', 'CHANNELS', `${channel}:*`)) as string[];
  const counts = (await admin.call('PUBSUB', 'NUMSUB', channel, ...own)) as (string | number)[];
  let total = 0;
  for (let i = 1; i < counts.length; i += 2) total += Number(counts[i]);
  return total;
}

/** The waiter tokens in the fair queue of `key` (default prefix), first in line first. */
export function fairQueue(admin: Redis, key: string): Promise<string[]> {
  return admin.zrange(`lock:{${key}}:queue`, '0', '-1');
}

/**
 * Resolves once MONITOR has delivered every command the server ran before this call (it sends a
 * marker PING and waits to see it), so {@link CommandLog} can be read as complete.
 */
export async function monitorCaughtUp(admin: Redis, log: CommandLog): Promise<void> {
  const marker = `caught-up:${Math.random().toString(36).slice(2)}`;
  await admin.ping(marker);
  await waitFor(() => log.commands.some((args) => args.includes(marker)), {
    message: 'MONITOR to deliver the marker',
  });
}

const AGENT_WORKER = 'test/integration/workers/lock-agent.worker.ts';

/**
 * A `RedisLockClient` in a worker process of its own (workers/lock-agent.worker.ts), driven by
 * the test: `send` an `AgentCommand`, then await its `reply`.
 */
export class LockAgent {
  private constructor(
    readonly child: ChildProcess,
    readonly pid: number,
  ) {}

  /** Forks the agent and resolves once it is connected to `url`. */
  static async start(
    url: string,
    client: { fair?: boolean; fairQueueTimeout?: number; pubSub?: boolean } = {},
  ): Promise<LockAgent> {
    const child = forkWorker(AGENT_WORKER, [JSON.stringify({ url, client })]);
    const ready = await nextMessage<{ type: string; pid: number }>(
      child,
      (m) => m.type === 'ready',
      20_000,
    );
    return new LockAgent(child, ready.pid);
  }

  send(command: AgentCommand): void {
    this.child.send(command);
  }

  /** The next reply of one of `types` to the command `id` (replies are buffered until taken). */
  reply<T extends AgentReply['type']>(
    id: string,
    types: T[],
    timeout = 10_000,
  ): Promise<Extract<AgentReply, { type: T }>> {
    return nextMessage<Extract<AgentReply, { type: T }>>(
      this.child,
      (m) => m.id === id && (types as string[]).includes(m.type),
      timeout,
    );
  }
}

const LOOP_WORKER = 'test/integration/workers/contend-loop.worker.ts';

/**
 * Runs `workers/contend-loop.worker.ts` in `processes` processes with `config` (the i-th gets
 * index i), starts them together once all are connected, and resolves with their reports and the
 * ms from the start to the last report. Fails if a worker reports an error, does not report
 * within `timeout` ms, or does not exit cleanly.
 */
export async function runContendLoop(
  config: LoopConfig,
  processes: number,
  timeout: number,
): Promise<{ reports: LoopDone[]; elapsed: number }> {
  const workers = Array.from({ length: processes }, (_, i) =>
    forkWorker(LOOP_WORKER, [JSON.stringify(config), String(i)]),
  );
  await Promise.all(
    workers.map((w) => nextMessage(w, (m: { type: string }) => m.type === 'ready', 20_000)),
  );
  const started = nowMs();
  for (const worker of workers) worker.send({ type: 'go' });
  const reports = await Promise.all(
    workers.map((w) =>
      nextMessage<LoopReport>(w, (m) => m.type === 'done' || m.type === 'error', timeout),
    ),
  );
  const elapsed = nowMs() - started;
  for (const report of reports) {
    if (report.type === 'error') throw new Error(`a worker failed: ${report.message}`);
  }
  for (const worker of workers) {
    const exit = await exited(worker);
    if (exit.code !== 0) throw new Error(`a worker exited with ${JSON.stringify(exit)}`);
  }
  return { reports: reports as LoopDone[], elapsed };
}

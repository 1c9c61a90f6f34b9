/**
 * Small helpers shared by the integration specs of the core (`lib/core`), on top of the harness in
 * `test/support`. Nothing here talks to a Redis the harness did not start.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { LockScripts } from '../../lib/core/lock.scripts.js';
import { RedisLockClient } from '../../lib/core/redis-lock.client.js';
import type { RedisLockClientOptions } from '../../lib/core/redis-lock-client.options.js';
import { waitFor } from '../support/wait-for.js';

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
 * Resolves once `count` connections are subscribed to the release channel of `key` (default
 * prefix): a waiter that got that far sleeps until a release wakes it.
 */
export async function subscribed(admin: Redis, key: string, count = 1): Promise<void> {
  const channel = `lock:{${key}}:released`;
  await waitFor(
    async () => {
      const [, n] = (await admin.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
      return n >= count;
    },
    { interval: 5, message: `${count} subscriber(s) of ${channel}` },
  );
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

  private constructor(private readonly connection: Redis) {}

  static async start(client: Redis): Promise<CommandLog> {
    const connection = await client.monitor();
    connection.on('error', () => undefined);
    const log = new CommandLog(connection);
    connection.on('monitor', (_time: string, args: string[]) => {
      log.commands.push(args.map(String));
    });
    return log;
  }

  /**
   * The names of the lock scripts run with `token` as first argument, in order (EVALSHA sha
   * numkeys keys... token ..., or EVAL source ... on first use, counted only if no EVALSHA of
   * the same call failed before it: run each script once before counting to be sure).
   */
  scriptsOf(token: string): ScriptName[] {
    const names: ScriptName[] = [];
    for (const args of this.commands) {
      const command = args[0].toLowerCase();
      if (command !== 'evalsha' && command !== 'eval') continue;
      if (args[3 + Number(args[2])] !== token) continue;
      const name = SCRIPT_NAMES.find((n) =>
        command === 'evalsha' ? LockScripts[n].sha === args[1] : LockScripts[n].source === args[1],
      );
      if (name) names.push(name);
    }
    return names;
  }

  /** The commands whose arguments include `value` (a key, say), as MONITOR reported them. */
  mentioning(value: string): MonitoredCommand[] {
    return this.commands.filter((args) => args.includes(value));
  }

  stop(): void {
    this.connection.disconnect();
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

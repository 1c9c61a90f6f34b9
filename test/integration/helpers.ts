/**
 * Small helpers shared by the integration specs of the core (`lib/core`), on top of the harness in
 * `test/support`. Nothing here talks to a Redis the harness did not start.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
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
   * The lock scripts run with `token` (EVALSHA sha 1 key token [ttl], or EVAL source ... on first
   * use): extends carry a ttl, releases do not. Run each script once before counting, so a
   * NOSCRIPT attempt and its EVAL are not counted twice.
   */
  scriptsOf(token: string): Array<'extend' | 'release'> {
    return this.commands
      .filter((args) => ['evalsha', 'eval'].includes(args[0].toLowerCase()) && args[4] === token)
      .map((args) => (args.length === 6 ? 'extend' : 'release'));
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

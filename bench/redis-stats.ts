import type { Redis } from 'ioredis';

/** Commands the benchmark itself sends to read statistics; never counted as work. */
const BOOKKEEPING = new Set(['info', 'config|resetstat', 'config', 'ping', 'script|load', 'hello']);

/** Zeroes the server's per-command counters (`INFO commandstats`). */
export async function resetCommandStats(admin: Redis): Promise<void> {
  await admin.config('RESETSTAT');
}

/**
 * Calls per command since the last reset, e.g. `{ set: 1000, evalsha: 1000 }`, leaving out
 * the benchmark's own bookkeeping commands.
 */
export async function readCommandStats(admin: Redis): Promise<Record<string, number>> {
  const info = await admin.info('commandstats');
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (!BOOKKEEPING.has(match[1])) calls[match[1]] = Number(match[2]);
  }
  return calls;
}

/** Renders calls per operation, e.g. `evalsha 1.00 + set 1.00`: largest first, then by name. */
export function perOperation(calls: Record<string, number>, operations: number): string {
  if (operations === 0) return '-';
  return Object.entries(calls)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([name, n]) => `${name} ${(n / operations).toFixed(2)}`)
    .join(' + ');
}

/** Round trips to Redis per operation: every counted command is one request. */
export function totalPerOperation(calls: Record<string, number>, operations: number): number {
  const total = Object.values(calls).reduce((a, b) => a + b, 0);
  return operations === 0 ? NaN : total / operations;
}

/** Median round trip of `count` sequential PINGs after a short warm-up, in ms. */
export async function pingRoundTrip(redis: Redis, count = 500): Promise<number> {
  for (let i = 0; i < 50; i++) await redis.ping();
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await redis.ping();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

/** `redis_version` from `INFO server`. */
export async function redisVersion(admin: Redis): Promise<string> {
  const info = await admin.info('server');
  return /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown';
}

/**
 * Counts the commands one ioredis client sends, by name: each is one request on the wire, so
 * this is the round trips the caller paid for. Only for the benchmark's own clients.
 */
export class SentCommands {
  calls: Record<string, number> = {};

  constructor(redis: Redis) {
    this.watch(redis);
  }

  /** Counts the commands `redis` sends too (a connection a lock client made for itself). */
  watch(redis: Redis): void {
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = (...args: Parameters<Redis['sendCommand']>) => {
      const name = args[0].name;
      this.calls[name] = (this.calls[name] ?? 0) + 1;
      return send(...args);
    };
  }

  reset(): void {
    this.calls = {};
  }
}

/**
 * Read-write locks under contention: 12 callers on ONE key, each with its own connection, taking it
 * in a loop with a critical section of `csMs` (sleep). As readers (`mode: 'read'`) they share the
 * lock, so their throughput approaches callers / (cs + RTT); as plain locks (or writers) they take
 * turns, at most 1 / (cs + RTT). Rounds alternate plain / read so a loaded machine weighs on both.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { RedisLockClient } from '../dist/core/redis-lock.client.js';

export type RwBenchKind = 'plain' | 'read' | 'write';

export interface RwBenchResult {
  kind: RwBenchKind;
  grants: number;
  perSecond: number;
}

/**
 * One round of `callers` loops on one key for `seconds`.
 *
 * @example
 * const read = await rwRound('redis://127.0.0.1:6380', 'read', 12, 5, 3);
 */
export async function rwRound(
  url: string,
  kind: RwBenchKind,
  callers: number,
  csMs: number,
  seconds: number,
): Promise<RwBenchResult> {
  const connections = Array.from({ length: callers }, () => new Redis(url));
  const clients = connections.map(
    (redis) => new RedisLockClient({ redis, logger: { warn: () => undefined } }),
  );
  const key = `bench:rw:${kind}:${Date.now()}`;
  const mode = kind === 'plain' ? undefined : kind;
  // Warm: each connection loads the scripts before the clock starts.
  await Promise.all(clients.map((c) => c.run(key, () => undefined, { mode, waitTimeout: 10_000 })));
  let grants = 0;
  const until = Date.now() + seconds * 1000;
  const started = process.hrtime.bigint();
  await Promise.all(
    clients.map(async (client) => {
      while (Date.now() < until) {
        await client.run(key, () => sleep(csMs), { mode, waitTimeout: 10_000 });
        grants++;
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  await Promise.all(clients.map((c) => c.close()));
  for (const redis of connections) redis.disconnect();
  return { kind, grants, perSecond: grants / elapsed };
}

/**
 * Alternating rounds (plain, read, plain, read, write), each kind's rate the mean of its rounds.
 *
 * @example
 * const { plain, read } = await measureRw(url, 12, 5, 3);
 */
export async function measureRw(
  url: string,
  callers: number,
  csMs: number,
  seconds: number,
): Promise<Record<RwBenchKind, RwBenchResult>> {
  const order: RwBenchKind[] = ['plain', 'read', 'plain', 'read', 'write'];
  const rounds: RwBenchResult[] = [];
  for (const kind of order) rounds.push(await rwRound(url, kind, callers, csMs, seconds / 2));
  const merged = (kind: RwBenchKind): RwBenchResult => {
    const of = rounds.filter((r) => r.kind === kind);
    const perSecond = of.reduce((sum, r) => sum + r.perSecond, 0) / of.length;
    return { kind, grants: of.reduce((sum, r) => sum + r.grants, 0), perSecond };
  };
  return { plain: merged('plain'), read: merged('read'), write: merged('write') };
}

/**
 * One chaos worker process (forked by run.ts): contends for locks in every mode of the round with
 * a few async loops each, records sections, waits, stalls and errors, and streams them to the
 * orchestrator. See protocol.ts for the messages.
 *
 * argv[2]: JSON `WorkerConfig`.
 *
 * Connections to the main server go through this worker's TCP proxy (the orchestrator delays and
 * drops them there); the Redlock masters are reached directly.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { RedisLockClient } from '../../../lib/index.js';
import { sendToParent } from '../../support/worker-ipc.js';
import { type Mode, type WorkerRecord } from '../records.js';
import { startLagMonitor } from './lag-monitor.js';
import { lockLoop, type LoopContext } from './loops.js';
import { semaphoreLoop } from './semaphore-loop.js';
import { startNest } from './nest-mode.js';
import type { FromWorker, ToWorker, WorkerConfig } from './protocol.js';
import { Rng } from './rng.js';
import { SectionRecorder } from './section.js';

const FLUSH_MS = 250;
const config = JSON.parse(process.argv[2]) as WorkerConfig;
const pid = process.pid;
const pending: WorkerRecord[] = [];
const emit = (record: WorkerRecord) => void pending.push(record);

process.on('unhandledRejection', (reason) =>
  emit({ t: 'error', pid, kind: 'unhandledRejection', message: String(reason) }),
);
process.on('uncaughtException', (error) =>
  emit({ t: 'error', pid, kind: 'uncaughtException', message: String(error?.stack ?? error) }),
);

const send = (message: FromWorker) => sendToParent(message);
const flush = async () => {
  if (pending.length > 0) await send({ type: 'records', records: pending.splice(0) });
};
const flusher = setInterval(() => void flush().catch(() => undefined), FLUSH_MS);
const lag = startLagMonitor((start, end) => emit({ t: 'stall', pid, start, end }));

let stopping = false;
const ctx: LoopContext = {
  config,
  recorder: new SectionRecorder(emit, new Rng(config.seed + 7)),
  emit,
  stopping: () => stopping,
  waits: new Set(),
  background: new Set(),
};

const has = (mode: Mode) => config.modes.includes(mode);
const keyNames = (prefix: string) => Array.from({ length: config.keys }, (_, i) => prefix + i);
const quiet = { warn: () => undefined };
const connections: Redis[] = [];
const connect = (options: RedisOptions) => {
  const redis = new Redis({ retryStrategy: (n) => Math.min(n * 20, 200), ...options });
  redis.on('error', () => undefined);
  connections.push(redis);
  return redis;
};
const main = { ...config.main, connectionName: `chaos-w${config.index}` };
const mainClient =
  has('default') || has('multi') || has('reentrant') || has('semaphore') || has('rw')
    ? new RedisLockClient({
        redis: connect(main),
        fairQueueTimeout: config.fairQueueTimeout,
        logger: quiet,
      })
    : undefined;
const fairClient = has('fair')
  ? new RedisLockClient({
      redis: connect(main),
      fair: true,
      fairQueueTimeout: config.fairQueueTimeout,
      logger: quiet,
    })
  : undefined;
const redlockClient = has('redlock')
  ? new RedisLockClient({
      redlock: { clients: config.redlock.map((url) => connect({ ...urlOptions(url) })) },
      logger: quiet,
    })
  : undefined;

await Promise.all(connections.map((redis) => redis.ping()));
const nest = has('nest') ? await startNest(ctx, keyNames('n'), config.seed + 11) : undefined;

process.on('message', (message: ToWorker) => {
  if (message.type === 'block') ctx.recorder.block(message.ms);
  if (message.type === 'abort-waits') for (const waiter of ctx.waits) waiter.abort();
  if (message.type === 'go') start();
  if (message.type === 'stop') void stop();
});
await send({ type: 'ready', pid });

let loops: Promise<void>[] = [];

function start(): void {
  const n = config.workersPerMode;
  const seedFor = (mode: string, i: number) => config.seed * 1009 + mode.length * 97 + i;
  const run = (client: RedisLockClient | undefined, mode: Mode, keys: string[]) => {
    if (!client || !has(mode)) return;
    for (let i = 0; i < n; i++)
      loops.push(lockLoop(ctx, client, mode, keys, new Rng(seedFor(mode, i))));
  };
  run(mainClient, 'default', keyNames('d'));
  run(mainClient, 'multi', keyNames('d'));
  run(mainClient, 'reentrant', keyNames('d'));
  run(fairClient, 'fair', keyNames('f'));
  run(mainClient, 'rw', keyNames('w'));
  run(redlockClient, 'redlock', keyNames('r'));
  if (mainClient && has('semaphore')) {
    for (let i = 0; i < n; i++) {
      const rng = new Rng(seedFor('semaphore', i));
      loops.push(semaphoreLoop(ctx, mainClient, keyNames('s'), rng));
    }
  }
  if (nest) loops = loops.concat(nest.loops(n));
}

async function stop(): Promise<void> {
  stopping = true;
  // Waits would only delay the exit: they end now (recorded as aborted).
  for (const waiter of ctx.waits) waiter.abort();
  await Promise.all(loops);
  while (ctx.background.size > 0) await Promise.all([...ctx.background]);
  await nest?.close();
  await Promise.all([mainClient, fairClient, redlockClient].map((client) => client?.close()));
  for (const redis of connections) redis.disconnect();
  lag.stop();
  clearInterval(flusher);
  await flush();
  await send({ type: 'done', pid });
  process.exit(0);
}

function urlOptions(url: string): { host: string; port: number } {
  const { hostname, port } = new URL(url);
  return { host: hostname, port: Number(port) };
}

/**
 * OpenTelemetry instrumentation of the core (LockTelemetry as the client's observer) against a
 * real Redis, read back through the SDK's in-memory span exporter and an on-demand metric reader:
 * spans per acquisition and hold, metrics by outcome, key redaction, and nothing observed while no
 * SDK is registered.
 */
import * as api from '@opentelemetry/api';
import type { Redis } from 'ioredis';
import type { LockObserver } from '../../lib/core/lock-observer.js';
import { LockNotAcquiredError, LockUnavailableError } from '../../lib/errors/lock.errors.js';
import { LOST_TAKEN } from '../../lib/redis-lock.messages.js';
import { LockTelemetry } from '../../lib/telemetry/lock.telemetry.js';
import { registerOtelSdk, type OtelSdk, type Point } from '../support/otel-sdk.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { LockClients, uniqueKey } from './helpers.js';

const STARTED = { key: 'k', keys: ['k'], mode: 'default', waitTimeout: 0 } as const;

/** The sum of a counter's points whose attributes include `match`. */
function total(points: Point[], match: Record<string, unknown> = {}): number {
  return points
    .filter((point) => Object.entries(match).every(([k, v]) => point.attributes[k] === v))
    .reduce((sum, point) => sum + (point.value as number), 0);
}

describe('LockTelemetry without a registered SDK', () => {
  let redis: RedisServer;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(() => clients.closeAll());
  afterAll(() => stopAllRedis());

  it('observes nothing until an SDK is registered, then records (it follows the global providers)', async () => {
    const telemetry = new LockTelemetry(api);
    expect(telemetry.acquireStarted(STARTED)).toBeUndefined();
    const locks = clients.create(redis.client(), { observer: telemetry });
    await locks.run(uniqueKey('no-sdk'), () => 'ran');

    const sdk = registerOtelSdk();
    try {
      expect(telemetry.acquireStarted(STARTED)).toBeDefined();
      await locks.run(uniqueKey('sdk'), () => 'ran');
      expect(sdk.spans('lock.acquire')).toHaveLength(1);
    } finally {
      await sdk.shutdown();
    }
    expect(telemetry.acquireStarted(STARTED)).toBeUndefined();
  });
});

describe('LockTelemetry with a registered SDK', () => {
  let redis: RedisServer;
  let admin: Redis;
  let sdk: OtelSdk;
  const clients = new LockClients();

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
  });
  beforeEach(() => {
    sdk = registerOtelSdk();
  });
  afterEach(async () => {
    await clients.closeAll();
    await sdk.shutdown();
  });
  afterAll(() => stopAllRedis());

  const traced = (options: Parameters<typeof clients.create>[1] = {}) =>
    clients.create(redis.client(), { observer: new LockTelemetry(api), ...options });

  it('an acquisition and its hold are spans under the active span, with key, mode and outcome', async () => {
    const locks = traced();
    const key = uniqueKey('order');
    const tracer = api.trace.getTracer('test');
    const request = await tracer.startActiveSpan('request', async (span) => {
      await locks.run(key, () => 'paid');
      span.end();
      return span.spanContext();
    });

    const [acquire] = sdk.spans('lock.acquire');
    const [hold] = sdk.spans('lock.hold');
    expect(acquire.attributes).toMatchObject({
      'lock.key': key,
      'lock.mode': 'default',
      'lock.outcome': 'acquired',
    });
    expect(hold.attributes).toMatchObject({
      'lock.key': key,
      'lock.mode': 'default',
      'lock.outcome': 'released',
    });
    expect(hold.attributes['lock.fencing_token']).toMatch(/^\d+$/);
    for (const span of [acquire, hold]) {
      expect(span.parentSpanContext?.spanId).toBe(request.spanId);
      expect(span.spanContext().traceId).toBe(request.traceId);
      expect(span.status.code).toBe(api.SpanStatusCode.UNSET);
    }
  });

  it('a busy lock: the acquisition spans its wait and ends busy; acquisitions count by outcome and mode', async () => {
    const holder = traced();
    const waiter = traced();
    const key = uniqueKey('busy');
    const held = await holder.acquire(key, { ttl: 10_000 });

    await expect(waiter.acquire(key, { waitTimeout: 100 })).rejects.toThrow(LockNotAcquiredError);
    expect(await waiter.tryAcquire(key, { fair: true })).toBeNull();
    await held.release();

    const busy = sdk.spans('lock.acquire').filter((s) => s.attributes['lock.outcome'] === 'busy');
    expect(busy.map((span) => span.attributes['lock.mode'])).toEqual(['default', 'fair']);
    // The span covers the wait: it lasts at least the wait the caller allowed.
    const [seconds, nanos] = busy[0].duration;
    expect(seconds * 1000 + nanos / 1e6).toBeGreaterThanOrEqual(99);

    const acquisitions = await sdk.points('lock.acquisitions');
    expect(total(acquisitions, { 'lock.outcome': 'acquired' })).toBe(1);
    expect(total(acquisitions, { 'lock.outcome': 'busy', 'lock.mode': 'default' })).toBe(1);
    expect(total(acquisitions, { 'lock.outcome': 'busy', 'lock.mode': 'fair' })).toBe(1);
    const waits = await sdk.points('lock.wait.duration');
    const busyWait = waits.find(
      (p) => p.attributes['lock.outcome'] === 'busy' && p.attributes['lock.mode'] === 'default',
    )!.value as { count: number; sum: number };
    expect(busyWait.count).toBe(1);
    expect(busyWait.sum).toBeGreaterThanOrEqual(0.099);
    const holds = await sdk.points('lock.hold.duration');
    expect((holds[0].value as { count: number }).count).toBe(1);
    expect(holds[0].attributes).toEqual({ 'lock.mode': 'default', 'lock.outcome': 'released' });
  });

  it('lock.held counts the locks held now', async () => {
    const locks = traced();
    const held = async () => total(await sdk.points('lock.held'));
    const a = await locks.acquire(uniqueKey('a'));
    const b = await locks.acquire(uniqueKey('b'));
    expect(await held()).toBe(2);
    await a.release();
    expect(await held()).toBe(1);
    await b.release();
    expect(await held()).toBe(0);
  });

  it('renewals are counted, and a lock lost while held ends its hold span as lost', async () => {
    const locks = traced();
    const handle = await locks.acquire(uniqueKey('renewed'), { ttl: 300, autoRenew: true });
    await waitFor(async () => total(await sdk.points('lock.renewals')) >= 1, {
      message: 'a renewal to be counted',
    });

    await admin.set(handle.redisKey, 'someone-else', 'PX', 10_000);
    await waitFor(async () => total(await sdk.points('lock.lost')) === 1, {
      message: 'the loss to be counted',
    });
    const [hold] = sdk.spans('lock.hold');
    expect(hold.attributes['lock.outcome']).toBe('lost');
    expect(hold.status).toEqual({ code: api.SpanStatusCode.ERROR, message: LOST_TAKEN });
    expect(hold.events.map((event) => event.name)).toContain('lock.renewed');
    expect(total(await sdk.points('lock.held'))).toBe(0);
  });

  it('Redis not answering: the acquisition ends unavailable, with an error status', async () => {
    const down = await startRedis();
    const client = down.client({ maxRetriesPerRequest: 0, enableOfflineQueue: false });
    const locks = clients.create(client, { observer: new LockTelemetry(api) });
    await down.stop();

    await expect(locks.acquire(uniqueKey('down'))).rejects.toThrow(LockUnavailableError);
    const [acquire] = sdk.spans('lock.acquire');
    expect(acquire.attributes['lock.outcome']).toBe('unavailable');
    expect(acquire.status.code).toBe(api.SpanStatusCode.ERROR);
    expect(sdk.spans('lock.hold')).toHaveLength(0);
  });

  it.each([
    // Several keys are locked, and shown, in sorted order.
    ['redacted' as const, ['user:42:cart', 'plain'], '*, user:*'],
    [(key: string) => key.replace(/\d+/g, '#'), ['user:42:cart'], 'user:#:cart'],
  ])('keys: %p shows %p as %p in spans, and metrics carry no key', async (keys, given, shown) => {
    const locks = clients.create(redis.client(), { observer: new LockTelemetry(api, keys) });
    await locks.run(given.length > 1 ? given : given[0], () => undefined);

    for (const span of sdk.spans()) expect(span.attributes['lock.key']).toBe(shown);
    for (const metric of ['lock.acquisitions', 'lock.wait.duration', 'lock.held']) {
      for (const point of await sdk.points(metric)) {
        expect(Object.keys(point.attributes)).not.toContain('lock.key');
      }
    }
  });

  it('an observer that throws does not change what the lock does', async () => {
    const failing: LockObserver = {
      acquireStarted: () => ({
        ended: () => ({
          renewed: () => {
            throw new Error('observer bug');
          },
          ended: () => {
            throw new Error('observer bug');
          },
        }),
      }),
    };
    const locks = clients.create(redis.client(), { observer: failing });
    const key = uniqueKey('robust');
    await expect(
      locks.run(key, async (lock) => {
        await lock.extend();
        return 'ran';
      }),
    ).resolves.toBe('ran');
    expect(await locks.isLocked(key)).toBe(false);
  });
});

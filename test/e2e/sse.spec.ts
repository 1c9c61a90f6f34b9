/**
 * @Lock on an @Sse handler: the lock lives as long as the event stream, on Express and Fastify.
 * The stream's events come from a Subject the test drives (fixtures/orders.app.ts, Streams).
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { RedisLockClient } from '../../lib/index.js';
import { CommandLog } from './fixtures/command-log.js';
import { Gate, within } from './fixtures/gate.js';
import { createOrdersApp, PLATFORMS, Streams } from './fixtures/orders.app.js';

/** A streaming GET on its own connection; `text` grows as the server writes. */
interface SseClient {
  response: Promise<IncomingMessage>;
  ended: Promise<void>;
  text(): string;
  disconnect(): void;
}

function openSse(app: INestApplication, path: string): SseClient {
  const { port } = app.getHttpServer().address() as AddressInfo;
  let text = '';
  let req!: ClientRequest;
  let markEnded!: () => void;
  const ended = new Promise<void>((done) => (markEnded = done));
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req = httpRequest(
      { host: '127.0.0.1', port, path, agent: false, headers: { accept: 'text/event-stream' } },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', markEnded);
        res.on('close', markEnded);
        resolve(res);
      },
    );
    req.on('error', (err) => {
      markEnded();
      reject(err);
    });
    req.end();
  });
  response.catch(() => undefined);
  return { response, ended, text: () => text, disconnect: () => req.destroy() };
}

afterAll(() => stopAllRedis());

describe.each(PLATFORMS)('@Lock on an @Sse stream ($platform)', (platformCase) => {
  let redis: RedisServer;
  let app: INestApplication;
  let streams: Streams;
  let raw: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    app = await createOrdersApp(platformCase, { redis: redis.url });
    streams = app.get(Streams);
    raw = redis.client();
  });

  /** Clients a test opened, disconnected after it so a failed test leaves no stream open. */
  const clients: SseClient[] = [];
  const track = (client: SseClient) => (clients.push(client), client);

  afterEach(() => {
    for (const client of clients.splice(0)) client.disconnect();
    app.get(Gate).reset();
  });

  afterAll(async () => {
    await app?.close();
    await redis?.stop();
  });

  it('holds the lock while the stream runs and releases it when the stream completes', async () => {
    const client = track(openSse(app, '/orders/1/events'));
    await waitFor(() => streams.isOpen('1'), { message: 'the stream to be subscribed' });
    expect((await client.response).statusCode).toBe(200);

    streams.emit('1', 'first');
    await waitFor(() => client.text().includes('data: first'), { message: 'the first event' });
    expect(await raw.exists('lock:{stream:1}')).toBe(1);

    streams.complete('1');
    await within(client.ended, 5_000, 'the response to end');
    await waitFor(async () => (await raw.exists('lock:{stream:1}')) === 0, {
      message: 'lock:stream:1 to be released after completion',
    });
  });

  it('answers 423 with Retry-After before the stream starts, without running the handler, while another owner holds the key', async () => {
    const holder = new RedisLockClient({ redis: raw });
    const held = await holder.acquire('stream:4', { ttl: 20_000 });
    try {
      // Held back by CLIENT PAUSE, Redis answers after Nest would commit the stream's headers (one
      // macrotask after subscribing): a lock taken on subscription would be refused in a 200
      // stream with an error event. Taken by the guard, it is refused before the response.
      await raw.call('CLIENT', 'PAUSE', '300', 'WRITE');
      const client = track(openSse(app, '/orders/4/events'));
      const response = await client.response;
      await within(client.ended, 5_000, 'the response to end');

      expect(response.statusCode).toBe(423);
      expect(response.headers['content-type']).not.toMatch(/event-stream/);
      expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(19);
      expect(JSON.parse(client.text())).toEqual({
        statusCode: 423,
        message: 'Lock "stream:4" is held by another owner.',
        error: 'Locked',
      });
      expect(app.get(Gate).ran('stream:4')).toBe(false);
      expect(held.isHeld()).toBe(true);
    } finally {
      await raw.call('CLIENT', 'UNPAUSE');
      await holder.close();
    }
  });

  it('refuses a second stream on the same key with 423 while the first runs, without running it', async () => {
    const first = track(openSse(app, '/orders/2/events'));
    await waitFor(() => streams.isOpen('2'), { message: 'the first stream to be subscribed' });
    expect(await raw.exists('lock:{stream:2}')).toBe(1);

    const second = track(openSse(app, '/orders/2/events'));
    const response = await second.response;
    await within(second.ended, 5_000, 'the second response to end');

    expect(response.statusCode).toBe(423);
    expect(response.headers['content-type']).not.toMatch(/event-stream/);
    expect(JSON.parse(second.text())).toMatchObject({ statusCode: 423, error: 'Locked' });
    expect(app.get(Gate).journal.filter((entry) => entry === 'start stream:2')).toHaveLength(1);
    expect(streams.isOpen('2')).toBe(true);
    expect(await raw.exists('lock:{stream:2}')).toBe(1);
    first.disconnect();
    await waitFor(async () => (await raw.exists('lock:{stream:2}')) === 0, {
      message: 'lock:stream:2 to be released',
    });
  });

  it('releases the lock when the client disconnects mid-stream', async () => {
    const client = track(openSse(app, '/orders/3/events'));
    await waitFor(() => streams.isOpen('3'), { message: 'the stream to be subscribed' });
    streams.emit('3', 'tick');
    await waitFor(() => client.text().includes('data: tick'), { message: 'the event' });
    expect(await raw.exists('lock:{stream:3}')).toBe(1);

    client.disconnect();

    await waitFor(async () => (await raw.exists('lock:{stream:3}')) === 0, {
      message: 'lock:stream:3 to be released after the disconnect',
    });
    expect(streams.isOpen('3')).toBe(false);
  });

  it('locks the key of the piped value, not the raw one, when a pipe changes it', async () => {
    const holder = new RedisLockClient({ redis: raw });
    // The raw value's key is busy; the handler's (piped: ABC) is free.
    await holder.acquire('stream:abc', { ttl: 20_000 });
    const rawToken = await raw.get('lock:{stream:abc}');
    try {
      const client = track(openSse(app, '/orders/abc/shouted-events'));
      await waitFor(() => streams.isOpen('ABC'), { message: 'the stream to be subscribed' });
      expect((await client.response).statusCode).toBe(200);
      streams.emit('ABC', 'loud');
      await waitFor(() => client.text().includes('data: loud'), { message: 'the event' });

      expect(await raw.exists('lock:{stream:ABC}')).toBe(1);
      expect(await raw.get('lock:{stream:abc}')).toBe(rawToken);

      streams.complete('ABC');
      await within(client.ended, 5_000, 'the response to end');
      await waitFor(async () => (await raw.exists('lock:{stream:ABC}')) === 0, {
        message: 'lock:stream:ABC to be released',
      });
      expect(await raw.get('lock:{stream:abc}')).toBe(rawToken);
    } finally {
      await holder.close();
    }
  });

  it('refuses by the piped key when a pipe changes it, and lets go of the raw key it took first', async () => {
    const holder = new RedisLockClient({ redis: raw });
    await holder.acquire('stream:DEF', { ttl: 20_000 });
    try {
      const client = track(openSse(app, '/orders/def/shouted-events'));
      await within(client.ended, 5_000, 'the response to end');

      // A 423 (JSON) or, on a Redis slower than Nest's header commit, an error event.
      expect(client.text()).toMatch(/Lock \\?"stream:DEF\\?" is held by another owner\./);
      expect(app.get(Gate).ran('stream:DEF')).toBe(false);
      await waitFor(async () => (await raw.exists('lock:{stream:def}')) === 0, {
        message: 'the raw key the guard took to be let go',
      });
    } finally {
      await holder.close();
    }
  });

  it('releases the lock the guard took when the client leaves before the handler runs', async () => {
    const gate = app.get(Gate);
    gate.hold('pipe:g1');
    const client = track(openSse(app, '/orders/g1/gated-events'));
    await gate.arrived('pipe:g1');
    // The guard took the lock before the pipe ran; the handler has not taken it over yet.
    expect(await raw.exists('lock:{gated:g1}')).toBe(1);

    client.disconnect();

    await waitFor(async () => (await raw.exists('lock:{gated:g1}')) === 0, {
      message: 'the parked lock to be released after the disconnect',
    });
    expect(gate.ran('gated:g1')).toBe(false);
  });

  it('answers 503 before the stream starts when Redis cannot be reached, without running the handler', async () => {
    const doomed = await startRedis();
    const doomedApp = await createOrdersApp(platformCase, { redis: doomed.url });
    try {
      await doomed.stop();
      const client = track(openSse(doomedApp, '/orders/5/events'));
      const response = await client.response;
      await within(client.ended, 5_000, 'the response to end');

      expect(response.statusCode).toBe(503);
      expect(response.headers['content-type']).not.toMatch(/event-stream/);
      expect(JSON.parse(client.text())).toMatchObject({
        statusCode: 503,
        error: 'Service Unavailable',
      });
      expect(doomedApp.get(Gate).ran('stream:5')).toBe(false);
      expect(doomedApp.get(Streams).isOpen('5')).toBe(false);
    } finally {
      await doomedApp.close();
    }
  });

  it.each([
    { where: 'below @Lock (it runs first)', path: '/orders/d1/denied-events' },
    { where: 'above @Lock (the lock guard stands aside)', path: '/orders/d2/denied-late-events' },
  ])('takes no lock for a request a method guard $where refuses', async ({ path }) => {
    const log = await CommandLog.start(redis);
    try {
      const client = track(openSse(app, path));
      const response = await client.response;
      await within(client.ended, 5_000, 'the response to end');

      expect(response.statusCode).toBe(403);
      await log.sync();
      expect(log.setKeys()).toEqual([]);
    } finally {
      await log.stop();
    }
  });
});

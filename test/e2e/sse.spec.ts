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

  it('refuses a second stream on the same key while the first runs, without running it: a 200 stream with one error event', async () => {
    const first = track(openSse(app, '/orders/2/events'));
    await waitFor(() => streams.isOpen('2'), { message: 'the first stream to be subscribed' });
    expect(await raw.exists('lock:{stream:2}')).toBe(1);

    // Nest commits SSE headers one macrotask after subscribing, and the refusal needs Redis'
    // answer. Held back by CLIENT PAUSE, that answer surely comes after the headers, as with any
    // Redis farther away than this machine: the refusal is then a 200 whose stream carries one
    // `error` event. (A Redis that answers within that macrotask gives a 423 instead.)
    await raw.call('CLIENT', 'PAUSE', '300', 'WRITE');
    let response: IncomingMessage;
    const second = track(openSse(app, '/orders/2/events'));
    try {
      response = await second.response;
    } finally {
      await raw.call('CLIENT', 'UNPAUSE');
    }
    await within(second.ended, 5_000, 'the second response to end');

    expect(response.statusCode).toBe(200);
    expect(second.text()).toMatch(/^\s*event: error\n(id: \d+\n)?data: (.*)\n\n$/);
    expect(second.text()).toContain('data: Lock "stream:2" is held by another owner.\n');
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
});

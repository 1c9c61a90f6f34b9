/**
 * A key that cannot be built from a request answers 400 with a plain message on every transport
 * (HTTP, microservice TCP, WebSocket): no class or method names, no placeholder. The log keeps
 * the detail.
 */
import type { AddressInfo } from 'node:net';
import { Logger, type INestApplication, type INestMicroservice } from '@nestjs/common';
import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import request from 'supertest';
import WebSocket from 'ws';
import { freePort, startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { within } from './fixtures/gate.js';
import { createGatewayApp, createMicroservice } from './fixtures/messaging.app.js';
import { createOrdersApp, PLATFORMS } from './fixtures/orders.app.js';

const BAD_KEY = { statusCode: 400, message: 'Invalid lock key input.', error: 'Bad Request' };
const INTERNALS = ['PaymentMessages', 'PaymentsGateway', 'OrdersController', 'placeholder', '{{'];

let redis: RedisServer;
/** Lines logged through Nest's Logger (the apps are created with `logger: false`). */
const logged: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

beforeEach(() => {
  logged.length = 0;
  const capture = (message: unknown) => void logged.push(String(message));
  Logger.overrideLogger({ log: capture, error: capture, warn: capture, debug: capture });
});

afterAll(() => stopAllRedis());

function expectPlainAnswerAndLoggedDetail(answer: unknown, where: string) {
  expect(answer).toEqual(BAD_KEY);
  for (const internal of INTERNALS) expect(JSON.stringify(answer)).not.toContain(internal);
  expect(logged.some((line) => line.includes(where) && line.includes('placeholder'))).toBe(true);
}

describe.each(PLATFORMS)('HTTP on $platform', (platform) => {
  let app: INestApplication;

  beforeAll(async () => {
    app = await createOrdersApp(platform, { redis: redis.url });
  });

  afterAll(() => app?.close());

  it('answers 400 with a plain message and logs the method and placeholder', async () => {
    const response = await request(app.getHttpServer()).post('/orders/by-body').send({});

    expect(response.status).toBe(400);
    expectPlainAnswerAndLoggedDetail(response.body, 'OrdersController.byBody()');
  });
});

describe('microservice (TCP)', () => {
  let app: INestMicroservice;
  let client: ClientProxy;

  beforeAll(async () => {
    const port = await freePort();
    app = await createMicroservice({ redis: redis.url }, port);
    client = ClientProxyFactory.create({
      transport: Transport.TCP,
      options: { host: '127.0.0.1', port },
    });
    await client.connect();
  });

  afterAll(async () => {
    await client?.close();
    await app?.close();
  });

  it('answers an RpcException error of statusCode 400 with a plain message', async () => {
    const answer = await firstValueFrom(client.send('order.pay', {})).then(
      (value: unknown) => ({ resolved: value }),
      (error: unknown) => error,
    );

    expectPlainAnswerAndLoggedDetail(answer, 'PaymentMessages.pay()');
  });
});

describe('WebSocket gateway (platform-ws)', () => {
  let app: INestApplication;
  let socket: WebSocket | undefined;

  beforeAll(async () => {
    app = await createGatewayApp({ redis: redis.url });
  });

  afterAll(async () => {
    socket?.terminate();
    await app?.close();
  });

  it("answers an 'exception' event of statusCode 400 with a plain message", async () => {
    const { port } = app.getHttpServer().address() as AddressInfo;
    socket = new WebSocket(`ws://127.0.0.1:${port}`);
    const open = socket;
    await within(
      new Promise((resolve, reject) => open.once('open', resolve).once('error', reject)),
      5_000,
      'the socket to open',
    );
    const reply = new Promise<unknown>((resolve) =>
      open.once('message', (data) => resolve(JSON.parse(String(data)))),
    );

    open.send(JSON.stringify({ event: 'pay', data: {} }));

    const message = (await within(reply, 5_000, 'the answer')) as { event: string; data: unknown };
    expect(message.event).toBe('exception');
    expectPlainAnswerAndLoggedDetail(message.data, 'PaymentsGateway.pay()');
  });
});

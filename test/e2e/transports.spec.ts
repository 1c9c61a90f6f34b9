/**
 * @Lock on microservice (TCP) and WebSocket (platform-ws) handlers: a busy lock reaches the client
 * as an RpcException / WsException error carrying statusCode 423, through the LockInterceptor.
 *
 * Where the global interceptor that RedisLockModule registers (APP_INTERCEPTOR) applies: Nest
 * keeps it in the ApplicationConfig of the app whose module graph declared it. A standalone
 * microservice and gateways of an HTTP app use that config; a microservice connected to an HTTP
 * app gets a fresh config unless `inheritAppConfig: true`. That is why @Lock also binds the
 * interceptor to the method itself, so every mode answers 423.
 */
import type { AddressInfo } from 'node:net';
import type { INestApplication, INestMicroservice } from '@nestjs/common';
import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import WebSocket from 'ws';
import { freePort, startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { Gate, within } from './fixtures/gate.js';
import { createGatewayApp, createHybridApp, createMicroservice } from './fixtures/messaging.app.js';

const LOCKED = {
  statusCode: 423,
  message: 'Lock "order:1" is held by another owner.',
  error: 'Locked',
};

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(() => stopAllRedis());

async function tcpClient(port: number): Promise<ClientProxy> {
  const client = ClientProxyFactory.create({
    transport: Transport.TCP,
    options: { host: '127.0.0.1', port },
  });
  await client.connect();
  return client;
}

/** Sends `pattern` for order 1 while another call holds it; resolves what the second call got. */
async function secondCallWhileHeld(
  app: INestApplication | INestMicroservice,
  client: ClientProxy,
  pattern: string,
  gateName: string,
): Promise<unknown> {
  const gate = app.get(Gate);
  gate.hold(gateName);
  const first = firstValueFrom(client.send(pattern, { id: '1' }));
  await gate.arrived(gateName);
  try {
    return await firstValueFrom(client.send(pattern, { id: '1' })).then(
      (value) => ({ resolved: value }),
      (error: unknown) => error,
    );
  } finally {
    gate.release(gateName);
    await expect(first).resolves.toEqual({ paid: '1' });
    expect(gate.journal.filter((entry) => entry === `start ${gateName}`)).toHaveLength(1);
  }
}

describe('@MessagePattern handler, standalone TCP microservice', () => {
  let app: INestMicroservice;
  let client: ClientProxy;

  beforeAll(async () => {
    const port = await freePort();
    app = await createMicroservice({ redis: redis.url }, port);
    client = await tcpClient(port);
  });

  afterAll(async () => {
    await client?.close();
    await app?.close();
  });

  it('answers a busy lock with an RpcException error of statusCode 423', async () => {
    const answer = await secondCallWhileHeld(app, client, 'order.pay', 'rpc:1');

    expect(answer).toEqual(LOCKED);
  });
});

describe('@MessagePattern handler, microservice connected to an HTTP app (hybrid)', () => {
  const hybrids = new Map<boolean, { app: INestApplication; client: ClientProxy }>();

  beforeAll(async () => {
    for (const inheritAppConfig of [true, false]) {
      const port = await freePort();
      const app = await createHybridApp({ redis: redis.url }, port, inheritAppConfig);
      hybrids.set(inheritAppConfig, { app, client: await tcpClient(port) });
    }
  });

  afterAll(async () => {
    for (const { app, client } of hybrids.values()) {
      await client.close();
      await app.close();
    }
  });

  const busyAnswer = (inheritAppConfig: boolean, pattern: string, gateName: string) => {
    const { app, client } = hybrids.get(inheritAppConfig)!;
    return secondCallWhileHeld(app, client, pattern, gateName);
  };

  it.each([true, false])(
    'with inheritAppConfig: %s, answers a busy lock with statusCode 423',
    async (inheritAppConfig) => {
      // Without inheritAppConfig the app's global interceptors do not reach the microservice;
      // the LockInterceptor that @Lock binds to the method itself maps the error there.
      expect(await busyAnswer(inheritAppConfig, 'order.pay', 'rpc:1')).toEqual(LOCKED);
    },
  );

  it.each([true, false])(
    'with inheritAppConfig: %s, an explicit @UseInterceptors(LockInterceptor) on top still answers 423',
    async (inheritAppConfig) => {
      expect(
        await busyAnswer(inheritAppConfig, 'order.pay.intercepted', 'rpc-intercepted:1'),
      ).toEqual(LOCKED);
    },
  );
});

describe('@SubscribeMessage handler on platform-ws', () => {
  let app: INestApplication;
  const sockets: WebSocket[] = [];

  /** An open socket whose received messages are collected in `inbox`. */
  async function connect(): Promise<{ socket: WebSocket; inbox: unknown[] }> {
    const { port } = app.getHttpServer().address() as AddressInfo;
    const socket = new WebSocket(`ws://127.0.0.1:${port}`);
    sockets.push(socket);
    const inbox: unknown[] = [];
    socket.on('message', (data) => inbox.push(JSON.parse(String(data))));
    await within(
      new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject)),
      5_000,
      'the socket to open',
    );
    return { socket, inbox };
  }

  /** Resolves the next message in `inbox` (already there or arriving within 5 s). */
  async function nextFrom(socket: WebSocket, inbox: unknown[]): Promise<unknown> {
    if (inbox.length) return inbox.shift();
    await within(new Promise((resolve) => socket.once('message', resolve)), 5_000, 'a message');
    return inbox.shift();
  }

  beforeAll(async () => {
    app = await createGatewayApp({ redis: redis.url });
  });

  afterAll(async () => {
    for (const socket of sockets) socket.terminate();
    await app?.close();
  });

  it("answers a busy lock with an 'exception' event of statusCode 423", async () => {
    const gate = app.get(Gate);
    const holder = await connect();
    const other = await connect();
    gate.hold('ws:1');
    holder.socket.send(JSON.stringify({ event: 'pay', data: { id: '1' } }));
    await gate.arrived('ws:1');

    other.socket.send(JSON.stringify({ event: 'pay', data: { id: '1' } }));

    expect(await nextFrom(other.socket, other.inbox)).toEqual({ event: 'exception', data: LOCKED });
    expect(gate.journal.filter((entry) => entry === 'start ws:1')).toHaveLength(1);
    gate.release('ws:1');
    expect(await nextFrom(holder.socket, holder.inbox)).toEqual({
      event: 'paid',
      data: { id: '1' },
    });
  });
});

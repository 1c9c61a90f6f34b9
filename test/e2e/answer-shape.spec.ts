/**
 * Shaping the answer to a busy lock, on Express and Fastify: Retry-After from the holder's lease,
 * the module's errorFactory, and a LockInterceptor subclass registered globally or on the class
 * answering in place of the stock one whatever the order. The lock is held by a key written
 * straight into Redis, so every request for it is refused.
 */
import {
  Controller,
  Injectable,
  Module,
  Param,
  Post,
  UseInterceptors,
  ConflictException,
  ImATeapotException,
  type ExecutionContext,
  type INestApplication,
  type Type,
} from '@nestjs/common';
import { APP_INTERCEPTOR, NestFactory } from '@nestjs/core';
import type { Redis } from 'ioredis';
import request from 'supertest';
import {
  Lock,
  LockInterceptor,
  LockNotAcquiredError,
  RedisLockModule,
  type LockError,
  type RedisLockModuleOptions,
} from '../../lib/index.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { PLATFORMS, type PlatformCase } from './fixtures/orders.app.js';

/** Answers a busy lock with 418 and the key: tells which interceptor converted. */
@Injectable()
class TeapotLockInterceptor extends LockInterceptor {
  protected override async toTransportError(error: LockError, context: ExecutionContext) {
    if (error instanceof LockNotAcquiredError) return new ImATeapotException({ busy: error.key });
    return super.toTransportError(error, context);
  }
}

@Controller('res')
class ResourceController {
  @Post(':id')
  @Lock('res:{{id}}')
  async take(@Param('id') id: string) {
    return { took: id };
  }
}

@Controller('teapot')
@UseInterceptors(TeapotLockInterceptor)
class TeapotController {
  @Post(':id')
  @Lock('res:{{id}}')
  async take(@Param('id') id: string) {
    return { took: id };
  }
}

async function createApp(
  { adapter }: PlatformCase,
  options: RedisLockModuleOptions,
  extra: { providers?: unknown[]; controllers?: Type[] } = {},
): Promise<INestApplication> {
  @Module({
    imports: [RedisLockModule.forRoot(options)],
    controllers: [ResourceController, ...(extra.controllers ?? [])],
    providers: (extra.providers ?? []) as never[],
  })
  class AppModule {}

  const app = await NestFactory.create(AppModule, adapter(), {
    logger: false,
    abortOnError: false,
  });
  await app.listen(0, '127.0.0.1');
  if (adapter === PLATFORMS[1].adapter) {
    await (app.getHttpAdapter().getInstance() as { ready(): Promise<unknown> }).ready();
  }
  return app;
}

let redis: RedisServer;
let raw: Redis;

beforeAll(async () => {
  redis = await startRedis();
  raw = redis.client();
});

afterEach(() => raw.flushall());

afterAll(() => stopAllRedis());

describe.each(PLATFORMS)('the answer to a busy lock ($platform)', (platformCase) => {
  const apps: INestApplication[] = [];
  const appWith = async (
    ...args: Parameters<typeof createApp> extends [unknown, ...infer R] ? R : never
  ) => {
    const app = await createApp(platformCase, ...args);
    apps.push(app);
    return app;
  };

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  it('carries Retry-After: the holder’s lease left in whole seconds, rounded up', async () => {
    const app = await appWith({ redis: redis.url });
    await raw.set('lock:{res:1}', 'another-owner', 'PX', 6_500);
    const before = await raw.pttl('lock:{res:1}');

    const response = await request(app.getHttpServer()).post('/res/1');
    const after = await raw.pttl('lock:{res:1}');

    expect(response.status).toBe(423);
    expect(response.body).toEqual({
      statusCode: 423,
      message: 'Lock "res:1" is held by another owner.',
      error: 'Locked',
    });
    const retryAfter = Number(response.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(Math.ceil(after / 1000));
    expect(retryAfter).toBeLessThanOrEqual(Math.ceil(before / 1000));
  });

  it('carries no Retry-After when the lease is not known (a key without expiry)', async () => {
    const app = await appWith({ redis: redis.url });
    await raw.set('lock:{res:2}', 'another-owner');

    const response = await request(app.getHttpServer()).post('/res/2');

    expect(response.status).toBe(423);
    expect(response.headers['retry-after']).toBeUndefined();
  });

  it('answers with what the module’s errorFactory returns, given the error and the context', async () => {
    const seen: string[] = [];
    const app = await appWith({
      redis: redis.url,
      errorFactory: (error, context) => {
        seen.push(`${context.getClass().name}.${context.getHandler().name} ${error.name}`);
        return error instanceof LockNotAcquiredError
          ? new ConflictException({ code: 'BUSY', resource: error.key })
          : error;
      },
    });
    await raw.set('lock:{res:3}', 'another-owner', 'PX', 10_000);

    const response = await request(app.getHttpServer()).post('/res/3');

    expect(response.status).toBe(409);
    expect(response.body).toEqual({ code: 'BUSY', resource: 'res:3' });
    // One conversion, though two LockInterceptors (global and @Lock's) surround the handler.
    expect(seen).toEqual(['ResourceController.take LockNotAcquiredError']);
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('lets a subclass registered globally answer in place of the stock interceptors', async () => {
    const app = await appWith(
      { redis: redis.url },
      { providers: [{ provide: APP_INTERCEPTOR, useClass: TeapotLockInterceptor }] },
    );
    await raw.set('lock:{res:4}', 'another-owner', 'PX', 10_000);

    const response = await request(app.getHttpServer()).post('/res/4');

    expect(response.status).toBe(418);
    expect(response.body).toEqual({ busy: 'res:4' });
  });

  it('lets a subclass bound on the controller class answer in place of the stock interceptors', async () => {
    const app = await appWith({ redis: redis.url }, { controllers: [TeapotController] });
    await raw.set('lock:{res:5}', 'another-owner', 'PX', 10_000);

    const teapot = await request(app.getHttpServer()).post('/teapot/5');
    const stock = await request(app.getHttpServer()).post('/res/5');

    expect(teapot.status).toBe(418);
    expect(teapot.body).toEqual({ busy: 'res:5' });
    expect(stock.status).toBe(423);
  });
});

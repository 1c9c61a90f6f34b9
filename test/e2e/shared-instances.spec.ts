/**
 * Instances Nest does not build with `new` on a class: a `useValue` object shared by several apps
 * (as e2e suites with an app per test do), and request- or transient-scoped `useFactory`
 * providers. Each call locks through the LockService of the app it belongs to.
 */
import {
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  Param,
  Scope,
  type INestApplication,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { Lock, LockError, RedisLockModule } from '../../lib/index.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { lockKeysIn } from './fixtures/lock-keys.js';

let redis: RedisServer;
let raw: Redis;

beforeAll(async () => {
  redis = await startRedis();
  raw = redis.client();
});

afterAll(() => stopAllRedis());

/** Answers the lock keys in Redis while it runs under its lock, and counts its runs. */
class KeyReporter {
  runs = 0;
  lastId?: string;

  @Lock('report:{{id}}')
  async keysWhileLocked(id: string): Promise<string[]> {
    this.runs++;
    this.lastId = id;
    return lockKeysIn(raw);
  }
}

const SHARED = 'TEST:SHARED_REPORTER';
const PER_REQUEST = 'TEST:PER_REQUEST_REPORTER';
const TRANSIENT = 'TEST:TRANSIENT_REPORTER';

/** Calls the shared reporter from inside a request of its app. */
@Controller('shared')
class SharedController {
  constructor(@Inject(SHARED) private readonly reporter: KeyReporter) {}

  @Get(':id')
  keys(@Param('id') id: string) {
    return this.reporter.keysWhileLocked(id);
  }
}

/** A singleton that gets its own instance of the transient factory provider. */
@Injectable()
class TransientUser {
  constructor(@Inject(TRANSIENT) readonly reporter: KeyReporter) {}
}

/** Request-scoped through the request-scoped factory provider it injects. */
@Controller('scoped')
class ScopedController {
  constructor(
    @Inject(PER_REQUEST) private readonly perRequest: KeyReporter,
    private readonly transient: TransientUser,
  ) {}

  @Get('request/:id')
  perRequestKeys(@Param('id') id: string) {
    return this.perRequest.keysWhileLocked(id);
  }

  @Get('transient/:id')
  transientKeys(@Param('id') id: string) {
    return this.transient.reporter.keysWhileLocked(id);
  }
}

/** An HTTP app locking under `keyPrefix` that provides `shared` as a `useValue`. */
async function createSharingApp(shared: KeyReporter, keyPrefix: string) {
  @Module({
    imports: [RedisLockModule.forRoot({ redis: redis.url, keyPrefix })],
    controllers: [SharedController],
    providers: [{ provide: SHARED, useValue: shared }],
  })
  class SharingModule {}
  const app = await NestFactory.create(SharingModule, new ExpressAdapter(), {
    logger: false,
    abortOnError: false,
  });
  await app.init();
  return app;
}

describe('a useValue instance shared by several apps', () => {
  const open: INestApplication[] = [];
  const start = async (shared: KeyReporter, prefix: string) => {
    const app = await createSharingApp(shared, prefix);
    open.push(app);
    return app;
  };

  afterEach(async () => {
    await Promise.all(open.splice(0).map((app) => app.close()));
    await raw.flushall();
  });

  it('locks through the app of the test that uses it, one app after the other (beforeEach apps)', async () => {
    const shared = new KeyReporter();

    const first = await start(shared, 'first:');
    await expect(shared.keysWhileLocked('1')).resolves.toEqual(['first:{report:1}']);
    await first.close();

    await start(shared, 'second:');
    await expect(shared.keysWhileLocked('1')).resolves.toEqual(['second:{report:1}']);
    expect(await lockKeysIn(raw)).toEqual([]);
  });

  it('locks through the app whose request calls it, and outside any request through the most recently started open app', async () => {
    const shared = new KeyReporter();
    const first = await start(shared, 'first:');
    const second = await start(shared, 'second:');

    const viaFirst = await request(first.getHttpServer()).get('/shared/1').expect(200);
    const viaSecond = await request(second.getHttpServer()).get('/shared/1').expect(200);
    expect(viaFirst.body).toEqual(['first:{report:1}']);
    expect(viaSecond.body).toEqual(['second:{report:1}']);
    await expect(shared.keysWhileLocked('2')).resolves.toEqual(['second:{report:2}']);

    await second.close();
    await expect(shared.keysWhileLocked('3')).resolves.toEqual(['first:{report:3}']);
    expect((await request(first.getHttpServer()).get('/shared/4').expect(200)).body).toEqual([
      'first:{report:4}',
    ]);
  });

  it('refuses to run once every app that provided it is closed, saying so', async () => {
    const shared = new KeyReporter();
    const app = await start(shared, 'first:');
    await app.close();
    const runs = shared.runs;

    const refusal = shared.keysWhileLocked('1');

    await expect(refusal).rejects.toBeInstanceOf(LockError);
    await expect(refusal).rejects.toThrow(/KeyReporter\.keysWhileLocked\(\).*closed/);
    expect(shared.runs).toBe(runs);
  });
});

describe('request- and transient-scoped useFactory providers', () => {
  let app: INestApplication;

  beforeAll(async () => {
    @Module({
      imports: [RedisLockModule.forRoot({ redis: redis.url })],
      controllers: [ScopedController],
      providers: [
        TransientUser,
        { provide: PER_REQUEST, scope: Scope.REQUEST, useFactory: () => new KeyReporter() },
        { provide: TRANSIENT, scope: Scope.TRANSIENT, useFactory: () => new KeyReporter() },
      ],
    })
    class ScopedModule {}
    app = await NestFactory.create(ScopedModule, new ExpressAdapter(), {
      logger: false,
      abortOnError: false,
    });
    await app.init();
  });

  afterAll(() => app?.close());

  it.each(['request', 'transient'])(
    'a %s-scoped one locks when called in a request',
    async (scope) => {
      const response = await request(app.getHttpServer()).get(`/scoped/${scope}/7`);

      expect(response.status).toBe(200);
      expect(response.body).toEqual(['lock:{report:7}']);
      expect(await lockKeysIn(raw)).toEqual([]);
    },
  );

  it('a request-scoped one resolved outside any request (as queue consumers do) locks too', async () => {
    const reporter = await app.resolve<KeyReporter>(PER_REQUEST);

    await expect(reporter.keysWhileLocked('8')).resolves.toEqual(['lock:{report:8}']);
  });

  it('a transient one in a singleton locks when called outside any request', async () => {
    await expect(app.get(TransientUser).reporter.keysWhileLocked('9')).resolves.toEqual([
      'lock:{report:9}',
    ]);
  });
});

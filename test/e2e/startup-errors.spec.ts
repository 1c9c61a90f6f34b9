/**
 * Mistakes caught before an app serves: invalid @Lock options at class definition, an app that
 * forgot RedisLockModule, forRoot() without options, and (with failFast) a Redis that does not
 * answer at startup.
 */
import { Controller, Injectable, Module, Param, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Lock, LockError, LockTemplateError, RedisLockModule } from '../../lib/index.js';
import { freePort, startRedis, stopAllRedis } from '../support/redis-server.js';

afterAll(() => stopAllRedis());

/** Defines a class with `@Lock(…, options)` on `Orders.pay`; returns what the definition threw. */
function defineWith(options: unknown): unknown {
  try {
    class Orders {
      @Lock('order:{{id}}', options as never)
      async pay(id: string) {
        return id;
      }
    }
    return Orders && undefined;
  } catch (err) {
    return err;
  }
}

describe('@Lock options checked where the class is defined', () => {
  it.each([
    { options: { ttl: '5000' }, option: 'ttl', value: '"5000"' },
    { options: { ttl: 0 }, option: 'ttl', value: 'number 0' },
    { options: { ttl: NaN }, option: 'ttl', value: 'number NaN' },
    { options: { ttl: -100 }, option: 'ttl', value: 'number -100' },
    { options: { ttl: 1.5 }, option: 'ttl', value: 'number 1.5' },
    { options: { ttl: 2 ** 31 }, option: 'ttl', value: `number ${2 ** 31}` },
    { options: { waitTimeout: -1 }, option: 'waitTimeout', value: 'number -1' },
    { options: { waitTimeout: NaN }, option: 'waitTimeout', value: 'number NaN' },
    { options: { waitTimeout: '200' }, option: 'waitTimeout', value: '"200"' },
    { options: { retry: 50 }, option: 'retry', value: 'number 50' },
    { options: { fair: 'yes' }, option: 'fair', value: '"yes"' },
    { options: { autoRenew: 1 }, option: 'autoRenew', value: 'number 1' },
    { options: { onNotAcquired: 'wait' }, option: 'onNotAcquired', value: '"wait"' },
  ])(
    'refuses $options, naming Orders.pay(), the option and its value',
    ({ options, option, value }) => {
      const error = defineWith(options);

      expect(error).toBeInstanceOf(LockTemplateError);
      const { message } = error as Error;
      expect(message).toContain('Orders.pay()');
      expect(message).toContain(option);
      expect(message).toContain(value);
    },
  );

  it('refuses an unknown option name, listing the known ones', () => {
    const error = defineWith({ tll: 5_000 });

    expect(error).toBeInstanceOf(LockTemplateError);
    expect((error as Error).message).toContain('Orders.pay(): unknown option "tll"');
    expect((error as Error).message).toContain('ttl, waitTimeout');
  });

  it('refuses options that are not an object', () => {
    expect(defineWith(5_000)).toBeInstanceOf(LockTemplateError);
    expect((defineWith(5_000) as Error).message).toContain('Orders.pay(): the options must be');
  });

  it('accepts every valid option', () => {
    const valid = {
      ttl: 10_000,
      waitTimeout: Infinity,
      retry: () => 10,
      fair: true,
      autoRenew: false,
      onNotAcquired: 'skip',
    };
    expect(defineWith(valid)).toBeUndefined();
    expect(defineWith({})).toBeUndefined();
  });
});

describe('an app that does not import RedisLockModule', () => {
  @Controller('orders')
  class OrdersController {
    @Post(':id/pay')
    @Lock('order:{{id}}')
    async pay(@Param('id') id: string) {
      return id;
    }
  }

  @Injectable()
  class NightlyJob {
    @Lock('report:nightly')
    async run() {
      return 'done';
    }
  }

  it.each([
    { what: 'a controller', metadata: { controllers: [OrdersController] } },
    { what: 'a provider', metadata: { providers: [NightlyJob] } },
  ])(
    'fails to start with @Lock on $what, saying to import RedisLockModule.forRoot',
    async ({ metadata }) => {
      @Module(metadata)
      class ForgetfulModule {}

      const created = NestFactory.create(ForgetfulModule, { logger: false, abortOnError: false });

      await expect(created).rejects.toThrow(
        /import.*RedisLockModule\.forRoot|RedisLockModule\.forRoot.*import/,
      );
    },
  );
});

describe('RedisLockModule.forRoot() without options', () => {
  it.each([undefined, null])(
    'throws for %p where the module is imported, saying what to give',
    (options) => {
      expect(() => RedisLockModule.forRoot(options as never)).toThrow(
        /RedisLockModule\.forRoot\(\) needs options.*redis: 'redis:\/\/host:6379'.*no default Redis/s,
      );
    },
  );

  it('fails to start when a forRootAsync factory returns nothing', async () => {
    @Module({ imports: [RedisLockModule.forRootAsync({ useFactory: () => undefined as never })] })
    class BareModule {}

    const created = NestFactory.create(BareModule, { logger: false, abortOnError: false });

    await expect(created).rejects.toThrow(/needs options, got undefined/);
  });
});

describe('failFast', () => {
  const create = async (options: Parameters<typeof RedisLockModule.forRoot>[0]) => {
    @Module({ imports: [RedisLockModule.forRoot(options)] })
    class AppModule {}
    return NestFactory.create(AppModule, { logger: false, abortOnError: false });
  };

  it('makes init fail when nothing listens at the URL, without the URL or password in the error', async () => {
    const port = await freePort();
    const url = `redis://admin:s3cret-pw@127.0.0.1:${port}`;
    const app = await create({ redis: url, failFast: true, connectTimeout: 2_000 });

    let error: unknown;
    try {
      await app.init();
    } catch (err) {
      error = err;
    }
    await app.close();

    expect(error).toBeInstanceOf(LockError);
    const { message } = error as Error;
    expect(message).toContain('failFast');
    expect(message).toMatch(/0 of the 1 Redis server/);
    expect(message).not.toContain('s3cret-pw');
    expect(message).not.toContain(String(port));
    expect(message).not.toContain('127.0.0.1');
  });

  it('gives up after connectTimeout when Redis never answers', async () => {
    const silent = await startRedis();
    const app = await create({ redis: silent.url, failFast: true, connectTimeout: 300 });
    await silent.pause();
    try {
      await expect(app.init()).rejects.toThrow(/no answer within 300 ms/);
    } finally {
      await silent.resume();
      await app.close();
      await silent.stop();
    }
  });

  it('starts when Redis answers', async () => {
    const redis = await startRedis();
    const app = await create({ redis: redis.url, failFast: true, connectTimeout: 2_000 });

    await expect(app.init()).resolves.toBe(app);
    await app.close();
    await redis.stop();
  });

  it('is off by default: the app starts and locks answer 503 until Redis is reachable', async () => {
    const port = await freePort();
    const app = await create({ redis: `redis://127.0.0.1:${port}` });

    await expect(app.init()).resolves.toBe(app);
    await app.close();
  });

  it('refuses an invalid connectTimeout before connecting', async () => {
    await expect(create({ redis: 'redis://127.0.0.1:1', connectTimeout: -5 })).rejects.toThrow(
      /connectTimeout/,
    );
  });
});

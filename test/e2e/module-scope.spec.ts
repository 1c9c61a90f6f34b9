/**
 * RedisLockModule is global unless told otherwise: a feature module that does not import it gets
 * `LockService` and a working `@Lock` from the root module's `forRoot()`. With `isGlobal: false`,
 * feature modules import a module of the app that imports `forRoot()` once and re-exports it.
 */
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Redis } from 'ioredis';
import { Lock, LockService, RedisLockModule } from '../../lib/index.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';

let redis: RedisServer;
let raw: Redis;

beforeAll(async () => {
  redis = await startRedis();
  raw = redis.client();
});

afterAll(() => stopAllRedis());

/** A provider of a feature module that never imports RedisLockModule. */
@Injectable()
class Inventory {
  constructor(readonly locks: LockService) {}

  /** Whether the lock key is in Redis while the method runs. */
  @Lock('sku:{{sku}}')
  async reserve(sku: string): Promise<boolean> {
    return (await raw.exists(`lock:{sku:${sku}}`)) === 1;
  }
}

@Module({ providers: [Inventory], exports: [Inventory] })
class InventoryModule {}

function createApp(lockModule: ReturnType<typeof RedisLockModule.forRoot>) {
  @Module({ imports: [lockModule, InventoryModule] })
  class AppModule {}
  return NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
}

describe('RedisLockModule.forRoot() without isGlobal', () => {
  let app: INestApplicationContext | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('gives a feature module that does not import it LockService and @Lock', async () => {
    app = await createApp(RedisLockModule.forRoot({ redis: redis.url }));
    const inventory = app.get(Inventory);

    expect(inventory.locks).toBeInstanceOf(LockService);
    await expect(
      inventory.locks.run('stock', async () => raw.exists('lock:{stock}')),
    ).resolves.toBe(1);
    await expect(inventory.reserve('7')).resolves.toBe(true);
    await expect(raw.exists('lock:{sku:7}', 'lock:{stock}')).resolves.toBe(0);
  });

  it('with isGlobal: false, the same feature module cannot resolve LockService', async () => {
    // A client of the test's: the app that fails to start never closes one it would create.
    const client = redis.client();
    await expect(
      createApp(RedisLockModule.forRoot({ redis: client, isGlobal: false })),
    ).rejects.toThrow(/LockService/);
  });
});

describe('RedisLockModule.forRoot({ isGlobal: false }) re-exported by a module of the app', () => {
  let app: INestApplicationContext | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  /** Holds the module's options once; feature modules import this one. */
  function locksModule() {
    @Module({
      imports: [RedisLockModule.forRoot({ redis: redis.url, isGlobal: false })],
      exports: [RedisLockModule],
    })
    class LocksModule {}
    return LocksModule;
  }

  @Injectable()
  class Shipping {
    constructor(readonly locks: LockService) {}

    @Lock('parcel:{{id}}')
    async ship(id: string): Promise<boolean> {
      return (await raw.exists(`lock:{parcel:${id}}`)) === 1;
    }
  }

  it('gives every feature module that imports it one LockService and a working @Lock', async () => {
    const LocksModule = locksModule();
    @Module({ imports: [LocksModule], providers: [Inventory], exports: [Inventory] })
    class StockModule {}
    @Module({ imports: [LocksModule], providers: [Shipping], exports: [Shipping] })
    class ShippingModule {}
    @Module({ imports: [StockModule, ShippingModule] })
    class AppModule {}

    app = await NestFactory.createApplicationContext(AppModule, {
      logger: false,
      abortOnError: false,
    });

    const { locks } = app.get(Inventory);
    expect(locks).toBeInstanceOf(LockService);
    expect(app.get(Shipping).locks).toBe(locks);
    await expect(app.get(Inventory).reserve('3')).resolves.toBe(true);
    await expect(app.get(Shipping).ship('4')).resolves.toBe(true);
    expect(await raw.exists('lock:{sku:3}', 'lock:{parcel:4}')).toBe(0);
  });
});

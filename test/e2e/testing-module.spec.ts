/**
 * Testing an app's locked code without Redis: `RedisLockModule.forTest()` (an in-memory store)
 * and a `LockService` replaced by a test's fake. The @Lock behaviour that does not depend on the
 * store runs against both a real Redis (`forRoot`) and `forTest`, so the two cannot drift.
 */
import { Injectable, type DynamicModule } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { lastValueFrom, Observable, of } from 'rxjs';
import {
  InMemoryLockStore,
  Lock,
  LockError,
  LockNotAcquiredError,
  LockService,
  RedisLockModule,
  type LockKeys,
  type LockOptions,
} from '../../lib/index.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { Gate } from './fixtures/gate.js';

const gate = new Gate();

@Injectable()
class LedgerService {
  @Lock('ledger:{{id}}')
  async post(id: string): Promise<string> {
    await gate.pass(`post:${id}`);
    return `posted ${id}`;
  }

  /** Calls `post` on the same key from inside its own lock: it must join, not deadlock. */
  @Lock('ledger:{{id}}')
  async postTwice(id: string): Promise<string> {
    return `${await this.post(id)} twice`;
  }

  @Lock('ledger:nightly', { onNotAcquired: 'skip' })
  async nightly(): Promise<string> {
    await gate.pass('nightly');
    return 'closed the day';
  }

  @Lock(['ledger:{{from}}', 'ledger:{{to}}'])
  async transfer(from: string, to: string): Promise<string> {
    await gate.pass(`transfer:${from}:${to}`);
    return `${from} -> ${to}`;
  }

  @Lock('ledger:feed')
  feed(): Observable<string> {
    return of('a', 'b');
  }
}

async function compile(lockModule: DynamicModule): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    imports: [lockModule],
    providers: [LedgerService],
  }).compile();
  await moduleRef.init();
  return moduleRef;
}

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterEach(() => gate.reset());
afterAll(() => stopAllRedis());

describe.each(['redis', 'memory'] as const)('@Lock in a testing module on %s', (name) => {
  let moduleRef: TestingModule;
  let ledger: LedgerService;
  beforeEach(async () => {
    moduleRef = await compile(
      name === 'redis' ? RedisLockModule.forRoot({ redis: redis.url }) : RedisLockModule.forTest(),
    );
    ledger = moduleRef.get(LedgerService);
  });
  afterEach(async () => {
    await moduleRef.close();
  });

  it('runs the method under the lock and refuses a second call while it runs', async () => {
    gate.hold('post:1');
    const first = ledger.post('1');
    await gate.arrived('post:1');
    await expect(moduleRef.get(LockService).isLocked('ledger:1')).resolves.toBe(true);
    await expect(ledger.post('1')).rejects.toBeInstanceOf(LockNotAcquiredError);
    gate.release('post:1');
    await expect(first).resolves.toBe('posted 1');
    await expect(moduleRef.get(LockService).isLocked('ledger:1')).resolves.toBe(false);
  });

  it('joins its own lock when called again on the same key from inside it (reentrancy)', async () => {
    await expect(ledger.postTwice('2')).resolves.toBe('posted 2 twice');
  });

  it("skips without running while the key is held ('skip'), and runs once it is free", async () => {
    const held = await moduleRef.get(LockService).acquire('ledger:nightly');
    await expect(ledger.nightly()).resolves.toBeUndefined();
    expect(gate.ran('nightly')).toBe(false);
    await held.release();
    await expect(ledger.nightly()).resolves.toBe('closed the day');
  });

  it('locks every key of a multi-key template, all or nothing', async () => {
    const held = await moduleRef.get(LockService).acquire('ledger:b');
    await expect(ledger.transfer('a', 'b')).rejects.toBeInstanceOf(LockNotAcquiredError);
    expect(gate.ran('transfer:a:b')).toBe(false);
    await expect(moduleRef.get(LockService).isLocked('ledger:a')).resolves.toBe(false);
    await held.release();
    await expect(ledger.transfer('a', 'b')).resolves.toBe('a -> b');
  });
});

describe('RedisLockModule.forTest', () => {
  it('gives each module its own store unless they are given one to share', async () => {
    const [a, b] = [
      await compile(RedisLockModule.forTest()),
      await compile(RedisLockModule.forTest()),
    ];
    const store = new InMemoryLockStore();
    const shared = [
      await compile(RedisLockModule.forTest({ store })),
      await compile(RedisLockModule.forTest({ store })),
    ];
    try {
      await a.get(LockService).acquire('ledger:own');
      await expect(b.get(LockService).tryAcquire('ledger:own')).resolves.not.toBeNull();

      await shared[0].get(LockService).acquire('ledger:shared');
      await expect(shared[1].get(LockService).tryAcquire('ledger:shared')).resolves.toBeNull();
    } finally {
      await Promise.all([a, b, ...shared].map((moduleRef) => moduleRef.close()));
    }
  });

  it('takes the module options it is given (waitTimeout: a waiter gets a lock released meanwhile)', async () => {
    const moduleRef = await compile(RedisLockModule.forTest({ waitTimeout: 5_000, ttl: 1_000 }));
    try {
      const locks = moduleRef.get(LockService);
      const held = await locks.acquire('ledger:wait');
      const waiting = moduleRef.get(LedgerService).post('wait');
      await held.release();
      await expect(waiting).resolves.toBe('posted wait');
    } finally {
      await moduleRef.close();
    }
  });
});

describe('@Lock with LockService overridden by a fake', () => {
  async function withFake(fake: object): Promise<TestingModule> {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisLockModule.forTest()],
      providers: [LedgerService],
    })
      .overrideProvider(LockService)
      .useValue(fake)
      .compile();
    await moduleRef.init();
    return moduleRef;
  }

  it("runs the method through the fake's run, with the resolved key and the @Lock options", async () => {
    const calls: { key: LockKeys; options?: LockOptions }[] = [];
    const fake = {
      run: <T>(key: LockKeys, fn: () => T | Promise<T>, options?: LockOptions) => {
        calls.push({ key, options });
        return Promise.resolve(fn());
      },
    };
    const moduleRef = await withFake(fake);
    try {
      const ledger = moduleRef.get(LedgerService);
      await expect(ledger.post('7')).resolves.toBe('posted 7');
      await expect(ledger.transfer('x', 'y')).resolves.toBe('x -> y');
      await expect(lastValueFrom(ledger.feed(), { defaultValue: 'none' })).resolves.toBe('b');
      expect(calls.map((call) => call.key)).toEqual([
        'ledger:7',
        ['ledger:x', 'ledger:y'],
        'ledger:feed',
      ]);
    } finally {
      await moduleRef.close();
    }
  });

  it("a fake that rejects with LockNotAcquiredError acts as a busy lock ('skip' skips)", async () => {
    const busy = {
      run: (key: LockKeys) => Promise.reject(new LockNotAcquiredError(String(key), 0, false)),
    };
    const moduleRef = await withFake(busy);
    try {
      const ledger = moduleRef.get(LedgerService);
      await expect(ledger.nightly()).resolves.toBeUndefined();
      await expect(ledger.post('8')).rejects.toBeInstanceOf(LockNotAcquiredError);
      expect(gate.ran('nightly')).toBe(false);
      expect(gate.ran('post:8')).toBe(false);
    } finally {
      await moduleRef.close();
    }
  });

  it('a fake without run fails the call with an error saying what the fake must implement', async () => {
    const moduleRef = await withFake({ acquire: () => Promise.resolve(null) });
    try {
      const error = await moduleRef
        .get(LedgerService)
        .post('9')
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(error).toBeInstanceOf(LockError);
      expect((error as Error).message).toMatch(/LedgerService\.post\(\).*run\(key, fn, options\)/s);
      expect(gate.ran('post:9')).toBe(false);
    } finally {
      await moduleRef.close();
    }
  });
});

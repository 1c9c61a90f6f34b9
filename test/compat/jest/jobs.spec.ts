/**
 * A consumer's own Jest test of a provider that uses `@Lock`, the way a Nest app tests one: with
 * `@nestjs/testing` and the app's default Jest setup. `test/compat/run.sh` runs it in two fresh
 * apps made from the packed library: a NestJS 11 CommonJS app (ts-jest, CommonJS: it loads the
 * package's CommonJS build) and a NestJS 12 ES module app (Jest's ESM mode, ts-jest ESM preset:
 * the ES module build). REDIS_URL points at the private redis-server run.sh started.
 */
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { Lock, LockNotAcquiredError, LockService, RedisLockModule } from 'nestjs-redis-lock';

@Injectable()
export class ReportJob {
  runs = 0;
  heldWhileRunning: boolean | undefined;

  // Constructor injection through the decorator metadata ts-jest emits, as in an app.
  constructor(private readonly locks: LockService) {}

  @Lock('report:nightly', { onNotAcquired: 'skip' })
  async build(): Promise<string> {
    this.runs++;
    this.heldWhileRunning = await this.locks.isLocked('report:nightly');
    return 'built';
  }
}

describe('ReportJob', () => {
  let moduleRef: TestingModule;
  let job: ReportJob;
  let locks: LockService;

  beforeAll(async () => {
    moduleRef = await Test.createTestingModule({
      imports: [
        RedisLockModule.forRoot({
          redis: process.env.REDIS_URL ?? '',
          keyPrefix: `compat-jest:${process.pid}:`,
        }),
      ],
      providers: [ReportJob],
    }).compile();
    await moduleRef.init();
    job = moduleRef.get(ReportJob);
    locks = moduleRef.get(LockService);
  });

  afterAll(async () => {
    await moduleRef.close();
  });

  it('runs under the lock', async () => {
    await expect(job.build()).resolves.toBe('built');
    expect(job.heldWhileRunning).toBe(true);
    await expect(locks.isLocked('report:nightly')).resolves.toBe(false);
  });

  it('skips the run while another holder has the lock', async () => {
    const held = await locks.acquire('report:nightly');
    try {
      const runs = job.runs;
      await expect(job.build()).resolves.toBeUndefined();
      expect(job.runs).toBe(runs);
      await expect(locks.acquire('report:nightly')).rejects.toBeInstanceOf(LockNotAcquiredError);
    } finally {
      await held.release();
    }
  });
});

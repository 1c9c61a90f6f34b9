/**
 * The `@Lock` mode of a chaos worker: a Nest standalone application context with
 * `RedisLockModule.forRoot`, and a provider whose methods carry `@Lock('nest:{{0}}', ...)`. The
 * method body gets its lock's handle by joining it with `LockService.run` on the same key (the
 * decorator does not pass it), and records its section through that handle.
 *
 * Runs under tsx, which emits no decorator metadata: constructor dependencies name their token
 * with `@Inject` (see test/support/fork-worker.ts). The classes are built once the config is
 * known, because `@Lock`'s options are fixed where the class is defined.
 *
 * @example
 * const nest = await startNest(ctx, ['nest:n0', 'nest:n1']);
 * await Promise.all(nest.loops(2));
 * await nest.close();
 */
import 'reflect-metadata';
import { Inject, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Lock, LockService, RedisLockModule } from '../../../lib/index.js';
import {
  outcomeOf,
  renewedHold,
  SOLO_SHARE,
  soloKey,
  startWait,
  type LoopContext,
} from './loops.js';
import { Rng } from './rng.js';

type Work = (key: string, holdMs: number, entered: () => void) => Promise<void>;

/** Starts the app; `loops(n)` runs n contending loops until the worker stops. */
export async function startNest(ctx: LoopContext, keys: string[], seed: number) {
  const { ttl, waitMin, waitMax, fairQueueTimeout, main, index } = ctx.config;

  @Injectable()
  class Jobs {
    constructor(@Inject(LockService) private readonly locks: LockService) {}

    @Lock('nest:{{0}}', { waitTimeout: waitMin })
    async short(key: string, holdMs: number, entered: () => void): Promise<void> {
      await this.body(key, holdMs, entered);
    }

    @Lock('nest:{{0}}', { waitTimeout: waitMax })
    async long(key: string, holdMs: number, entered: () => void): Promise<void> {
      await this.body(key, holdMs, entered);
    }

    @Lock('nest:{{0}}', { waitTimeout: waitMin, onNotAcquired: 'skip' })
    async skippable(key: string, holdMs: number, entered: () => void): Promise<void> {
      await this.body(key, holdMs, entered);
    }

    private async body(key: string, holdMs: number, entered: () => void): Promise<void> {
      entered();
      const meta = { mode: 'nest' as const, keys: [key], joined: false, autoRenew: true, ttl };
      await this.locks.run(`nest:${key}`, (lock) => ctx.recorder.hold(lock, meta, holdMs));
    }
  }

  @Module({
    imports: [
      RedisLockModule.forRoot({
        redis: { host: main.host, port: main.port, connectionName: `chaos-nest-${index}` },
        ttl,
        fairQueueTimeout,
      }),
    ],
    providers: [Jobs],
  })
  class ChaosModule {}

  const app = await NestFactory.createApplicationContext(ChaosModule, { logger: false });
  const jobs = app.get(Jobs);
  const methods: [Work, number][] = [
    [jobs.short.bind(jobs), waitMin],
    [jobs.long.bind(jobs), waitMax],
    [jobs.skippable.bind(jobs), waitMin],
  ];

  const loop = async (rng: Rng) => {
    const solo = soloKey(keys[0], rng);
    while (!ctx.stopping()) {
      const key = rng.chance(SOLO_SHARE) ? solo : rng.pick(keys);
      const [work, waitTimeout] = rng.pick(methods);
      const wait = startWait(ctx, 'nest', [key], waitTimeout);
      try {
        await work(key, renewedHold(ctx, rng), () => wait.settle('granted'));
        wait.settle('skipped');
      } catch (error) {
        if (!wait.settled) wait.settle(outcomeOf(ctx, error));
        else outcomeOf(ctx, error);
      }
      await new Promise((resolve) => setTimeout(resolve, rng.int(0, 30)));
    }
  };
  return {
    loops: (count: number) =>
      Array.from({ length: count }, (_, i) => loop(new Rng(seed * 31 + i + 1))),
    close: () => app.close(),
  };
}

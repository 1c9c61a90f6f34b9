/**
 * The optional peers are optional: with `@opentelemetry/api` and `@nestjs/terminus` impossible to
 * import (hidden by resolution hooks in a forked process), the library loads, the module starts
 * and `@Lock` locks.
 */
import { exited, forkWorker, nextMessage, workerOutput } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';

describe('without the optional peer dependencies', () => {
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => stopAllRedis());

  it('the module starts and @Lock runs its method under the lock', async () => {
    const worker = forkWorker('test/e2e/fixtures/without-peers.worker.ts', [redis.url]);
    const result = await nextMessage(
      worker,
      (m) => (m as { type: string }).type === 'result',
      20_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${workerOutput(worker)}`);
    });
    expect(result).toEqual({ type: 'result', hidden: true, ran: 'ran', inside: true });
    expect((await exited(worker)).code).toBe(0);
  });
});

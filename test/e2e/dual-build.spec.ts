/**
 * The package ships a CommonJS build beside its ES module build, and a process can load both: a
 * CommonJS app (`require`) with an ES module dependency (`import`). Nothing may then depend on
 * the identity of one copy's objects. A forked process (fixtures/dual-build.worker.ts) loads both
 * builds from dist/ (`npm run build` first), registers `RedisLockModule` from one copy and uses the
 * other copy's `@Lock`, both ways round.
 */
import { existsSync } from 'node:fs';
import { exited, forkWorker, killAllWorkers, nextMessage } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';

const WORKER = 'test/e2e/fixtures/dual-build.worker.ts';
const BUILDS = ['dist/index.js', 'dist/cjs/index.js', 'dist/cjs/package.json'];

let redis: RedisServer;

beforeAll(async () => {
  const missing = BUILDS.filter((file) => !existsSync(new URL(`../../${file}`, import.meta.url)));
  if (missing.length > 0) throw new Error(`${missing.join(', ')} missing: run npm run build first`);
  redis = await startRedis();
});

afterAll(async () => {
  await killAllWorkers();
  await stopAllRedis();
});

describe.each([
  ['the ES module build', 'esm', 'the CommonJS build'],
  ['the CommonJS build', 'cjs', 'the ES module build'],
])('RedisLockModule from %s, @Lock from the other', (_module, moduleFrom, decoratorsFrom) => {
  let checks: Record<string, unknown>;

  beforeAll(async () => {
    // tsx/esm: `require` stays Node's own, so both copies share Node's one @nestjs/core.
    const args = [JSON.stringify({ url: redis.url, moduleFrom })];
    const child = forkWorker(WORKER, args, {}, 'tsx/esm');
    ({ checks } = await nextMessage<{ type: string; checks: Record<string, unknown> }>(
      child,
      (m) => m.type === 'result',
      30_000,
    ));
    expect(await exited(child)).toEqual({ code: 0, signal: null });
  });

  it('loads two distinct copies, whose metadata key and options token are equal', () => {
    expect(checks.copiesAreDistinct).toBe(true);
    expect(checks.metadataKeysEqual).toBe(true);
    expect(checks.optionsTokensEqual).toBe(true);
  });

  it(`locks a provider decorated through ${decoratorsFrom}, and skips it when busy`, () => {
    // [free call, call while the lock is held elsewhere, runs]: the busy call did not run.
    expect(checks.providerSkipsWhenBusy).toEqual(['ran', 'skipped', 1]);
    expect(checks.providerHeldWhileRunning).toBe(true);
  });

  it('locks an instance made by a useFactory provider, handed the service by the explorer', () => {
    expect(checks.factoryProviderSkipsWhenBusy).toEqual(['ran', 'skipped', 1]);
  });

  it('answers 423 on a busy controller route and runs it when free', () => {
    expect(checks.controllerWhenBusy).toEqual([423, expect.objectContaining({ statusCode: 423 })]);
    expect(checks.controllerWhenFree).toEqual([201, { id: '1', paid: true }]);
  });

  it(`makes the errors of one copy instances of ${decoratorsFrom}'s classes`, () => {
    expect(checks.errorIsOtherCopysNotAcquired).toBe(true);
    expect(checks.errorIsOtherCopysLockError).toBe(true);
    expect(checks.errorIsOtherCopysLockLost).toBe(false);
    expect(checks.plainErrorIsLockError).toBe(false);
  });
});

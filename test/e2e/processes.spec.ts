/**
 * The library's main claim, end to end: `@Lock` excludes across OS processes, not only inside one.
 * Three forked processes each run a Nest HTTP app (fixtures/nest-app.worker.ts) with
 * `RedisLockModule.forRoot` on the same private redis-server. Every critical section is recorded by
 * its process with CLOCK_MONOTONIC times (the same clock in every process on Linux) and checked by an
 * independent observer (`INCR inside:<key>` on entry, `DECR` on exit).
 */
import type { ChildProcess } from 'node:child_process';
import type { Redis } from 'ioredis';
import { exited, forkWorker, killAllWorkers, nextMessage } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';
import { nowMs, renewalSeen } from '../integration/helpers.js';
import {
  HOLD_TTL,
  type Entered,
  type JobDone,
  type Ready,
  type Section,
} from './fixtures/nest-app.protocol.js';

const WORKER = 'test/e2e/fixtures/nest-app.worker.ts';
const PROCESSES = 3;
/** Requests for one order, fired at once and spread over the processes. */
const REQUESTS = 60;
/** Redis expires keys on its wall clock at ms resolution; the test reads the monotonic clock. */
const CLOCK_SLACK = 5;

interface AppProcess {
  child: ChildProcess;
  pid: number;
  url: string;
}

interface Reply {
  status: number;
  body: Record<string, unknown>;
  /** CLOCK_MONOTONIC ms when the request was sent and when its answer arrived. */
  sentAt: number;
  receivedAt: number;
}

async function startApp(redisUrl: string): Promise<AppProcess> {
  const child = forkWorker(WORKER, [JSON.stringify({ url: redisUrl })]);
  const ready = await nextMessage<Ready>(child, (m) => m.type === 'ready', 20_000);
  return { child, pid: ready.pid, url: `http://127.0.0.1:${ready.port}` };
}

async function post(app: AppProcess, path: string): Promise<Reply> {
  const sentAt = nowMs();
  const response = await fetch(app.url + path, { method: 'POST' });
  const body = (await response.json()) as Record<string, unknown>;
  return { status: response.status, body, sentAt, receivedAt: nowMs() };
}

/** Every section each process recorded for `key`. */
async function sectionsOf(apps: AppProcess[], key: string): Promise<Section[]> {
  const replies = await Promise.all(
    apps.map((app) => {
      const reply = nextMessage<{ type: string; key: string; sections: Section[] }>(
        app.child,
        (m) => m.type === 'sections' && m.key === key,
      );
      app.child.send({ type: 'sections', key });
      return reply;
    }),
  );
  return replies.flatMap((reply) => reply.sections);
}

/** Pairs of sections that overlap in time, whichever processes ran them. */
function overlaps(sections: Section[]): Array<[Section, Section]> {
  const byStart = [...sections].sort((a, b) => a.start - b.start);
  const found: Array<[Section, Section]> = [];
  for (let i = 0; i < byStart.length; i++) {
    for (let j = i + 1; j < byStart.length && byStart[j].start < byStart[i].end; j++) {
      found.push([byStart[i], byStart[j]]);
    }
  }
  return found;
}

/** How many times the lock passed from one process to another, in time order. */
function handovers(sections: Section[]): number {
  const pids = [...sections].sort((a, b) => a.start - b.start).map((s) => s.pid);
  return pids.filter((pid, i) => i > 0 && pid !== pids[i - 1]).length;
}

function countByPid(pids: unknown[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const pid of pids) counts[String(pid)] = (counts[String(pid)] ?? 0) + 1;
  return counts;
}

describe('@Lock across OS processes (3 Nest apps, one Redis)', () => {
  let redis: RedisServer;
  let admin: Redis;
  let apps: AppProcess[];

  beforeAll(async () => {
    redis = await startRedis();
    admin = redis.client();
    apps = await Promise.all(Array.from({ length: PROCESSES }, () => startApp(redis.url)));
  }, 30_000);

  afterAll(async () => {
    // Close the apps cleanly first (releases locks, closes connections); kill what does not stop.
    const live = (apps ?? []).filter((app) => app.child.exitCode === null && app.child.connected);
    for (const app of live) app.child.send({ type: 'stop' });
    await waitFor(() => live.every((app) => app.child.exitCode !== null), {
      timeout: 5_000,
    }).catch(() => undefined);
    await killAllWorkers();
    await stopAllRedis();
  });

  describe('a controller route', () => {
    it(`lets one request at a time into POST /orders/:id/pay for the same order, over ${REQUESTS} concurrent requests to ${PROCESSES} processes`, async () => {
      const replies = await Promise.all(
        Array.from({ length: REQUESTS }, (_, i) =>
          post(apps[i % PROCESSES], '/orders/contended/pay'),
        ),
      );

      // Every request was answered by the lock: 200 when it got in, 423 when its wait ran out.
      const statuses = replies.map((reply) => reply.status);
      expect(statuses.filter((status) => status !== 200 && status !== 423)).toEqual([]);
      for (const reply of replies.filter((r) => r.status === 423)) {
        expect(reply.body).toMatchObject({ statusCode: 423, error: 'Locked' });
      }
      const paid = replies.filter((reply) => reply.status === 200);
      const sections = await sectionsOf(apps, 'order:contended');
      // One section per 200, in the process that answered it.
      expect(sections).toHaveLength(paid.length);
      expect(countByPid(sections.map((s) => s.pid))).toEqual(
        countByPid(paid.map((reply) => reply.body.pid)),
      );
      // All three processes got in, and the lock went back and forth between them.
      expect(new Set(sections.map((s) => s.pid)).size).toBe(PROCESSES);
      expect(handovers(sections)).toBeGreaterThanOrEqual(PROCESSES);
      // Exclusive: the observer never saw two inside, and no two sections overlap in time.
      expect(Math.max(...sections.map((s) => s.inside))).toBe(1);
      expect(overlaps(sections)).toEqual([]);
      await expect(admin.get('inside:order:contended')).resolves.toBe('0');
      await expect(admin.exists('lock:{order:contended}')).resolves.toBe(0);
    });

    it('serves other orders in every process while one process holds an order', async () => {
      const [holder] = apps;
      const entered = nextMessage<Entered>(holder.child, (m) => m.type === 'entered');
      const held = post(holder, '/orders/held/hold');
      await entered;

      // The held order is busy everywhere, including in the holder's own process...
      for (const app of apps) {
        const busy = await post(app, '/orders/held/try');
        expect(busy.status).toBe(423);
      }
      // ...while other orders are served at the same time, in every process.
      const others = await Promise.all(
        apps.flatMap((app) => [post(app, '/orders/free-1/pay'), post(app, '/orders/free-2/pay')]),
      );
      expect(others.map((reply) => reply.status)).toEqual(Array(2 * PROCESSES).fill(200));

      holder.child.send({ type: 'release', id: 'held' });
      expect((await held).status).toBe(200);

      const [heldSections, free] = await Promise.all([
        sectionsOf(apps, 'order:held'),
        Promise.all(['order:free-1', 'order:free-2'].map((key) => sectionsOf(apps, key))),
      ]);
      expect(heldSections).toHaveLength(1);
      const [hold] = heldSections;
      const freeSections = free.flat();
      expect(freeSections).toHaveLength(2 * PROCESSES);
      // The overlap was real: every other order's section ran inside the held section...
      for (const section of freeSections) {
        expect(section.start).toBeGreaterThan(hold.start);
        expect(section.end).toBeLessThan(hold.end);
      }
      expect(new Set(freeSections.map((s) => s.pid)).size).toBe(PROCESSES);
      // ...while each order on its own stayed exclusive.
      for (const sections of free) {
        expect(Math.max(...sections.map((s) => s.inside))).toBe(1);
        expect(overlaps(sections)).toEqual([]);
      }
    });
  });

  describe('a provider method with onNotAcquired: skip', () => {
    it('runs the job body in one process at a time, and the skipped calls resolve undefined', async () => {
      const done = await Promise.all(
        apps.map((app) => {
          const reply = nextMessage<JobDone>(app.child, (m) => m.type === 'job-done', 15_000);
          app.child.send({ type: 'job', durationMs: 1_000, everyMs: 10 });
          return reply;
        }),
      );

      expect(done.flatMap((d) => d.errors)).toEqual([]);
      // Each call resolved 'ran' (and left one section) or undefined (skipped, lock busy).
      expect(done.flatMap((d) => d.unexpected)).toEqual([]);
      for (const d of done) expect(d.sections).toHaveLength(d.ran);
      const skipped = done.reduce((sum, d) => sum + d.skipped, 0);
      expect(skipped).toBeGreaterThan(0);
      // Never two bodies at once, across all processes.
      const sections = done.flatMap((d) => d.sections);
      expect(sections.length).toBeGreaterThan(0);
      expect(Math.max(...sections.map((s) => s.inside))).toBe(1);
      expect(overlaps(sections)).toEqual([]);
      // Not one process doing everything: the runs are spread over at least two of them.
      expect(done.filter((d) => d.ran > 0).length).toBeGreaterThanOrEqual(2);
    });
  });

  describe('a holder process killed mid-handler', () => {
    it('keeps the order locked (423) in the other processes until its last renewed lease runs out, then serves it (200)', async () => {
      const holder = await startApp(redis.url);
      const entered = nextMessage<Entered>(holder.child, (m) => m.type === 'entered');
      const held = post(holder, '/orders/crashed/hold').catch((error: unknown) => error);
      await entered;
      // The handler's lease is being renewed (the watchdog @Lock runs), so the key outlives its
      // first ttl as long as the process lives.
      await renewalSeen(admin, 'lock:{order:crashed}');

      holder.child.kill('SIGKILL');
      await expect(exited(holder.child)).resolves.toMatchObject({ signal: 'SIGKILL' });
      const killedAt = nowMs();
      const probedAt = nowMs();
      const remaining = await admin.pttl('lock:{order:crashed}');
      // What is left of the last renewal: the dead process renews no more.
      expect(remaining).toBeGreaterThan(0);
      expect(remaining).toBeLessThanOrEqual(HOLD_TTL);
      // The request the dead process was serving never got an answer (fetch's error comes from
      // another realm than Jest's, so it is matched by shape, not instanceof).
      expect(await held).toMatchObject({ name: 'TypeError', message: 'fetch failed' });

      // Ask the surviving processes in turn, one attempt each (waitTimeout 0), until one gets in.
      const survivors = apps;
      const answers: Array<Reply & { pid: number }> = [];
      await waitFor(
        async () => {
          const app = survivors[answers.length % survivors.length];
          answers.push({ ...(await post(app, '/orders/crashed/try')), pid: app.pid });
          return answers.at(-1)!.status === 200;
        },
        { interval: 10, timeout: HOLD_TTL + 3_000, message: 'a survivor to take order:crashed' },
      );
      const winner = answers.at(-1)!;
      const refused = answers.slice(0, -1);
      // Until then, every survivor was refused with 423...
      expect(refused.map((a) => a.status)).toEqual(Array(refused.length).fill(423));
      expect(new Set(refused.map((a) => a.pid)).size).toBe(survivors.length);
      // ...and the winner's section began only once the dead holder's lease was over,
      // and soon after it: the lease, not something else, kept the others out.
      const start = winner.body.start as number;
      expect(start - probedAt).toBeGreaterThanOrEqual(remaining - CLOCK_SLACK);
      expect(start - killedAt).toBeLessThan(HOLD_TTL + 1_000);
      // From then on every survivor is served.
      for (const app of survivors) {
        await expect(post(app, '/orders/crashed/try')).resolves.toMatchObject({ status: 200 });
      }
      await expect(admin.exists('lock:{order:crashed}')).resolves.toBe(0);
    });
  });
});

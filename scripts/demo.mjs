/**
 * `npm run demo`: shows nestjs-redis-lock at work across processes.
 *
 * Starts two instances of the sample app (sample-app/, built into dist-sample/ by `nest build`)
 * against one Redis, pays the same order six times at once through both of them, and prints who
 * held the order lock when. Exits 1 if two payments of one order ever overlapped.
 *
 * Redis: REDIS_URL if set (it must answer); otherwise redis://127.0.0.1:6379 if something answers
 * there; otherwise a private `redis-server` on a free port, stopped at the end. Set
 * DEMO_PRIVATE_REDIS=1 to skip the default URL and always start a private server. Every key the
 * demo writes starts with a random `demo:<hex>:` prefix and is deleted at the end; nothing else in
 * Redis is touched. DEMO_VERBOSE=1 streams the logs of both instances.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'dist-sample', 'sample-app', 'main.js');
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

const PAY_MS = 300; // how long one payment holds the order lock
const ORDER_WAIT_MS = 1000; // how long a request waits for a busy order lock before 423
const REPORT_INTERVAL_MS = 2000; // both instances tick the report job this often
const ORDER = '42';
const OTHER_ORDER = '77';
const VERBOSE = process.env.DEMO_VERBOSE === '1';

/** Everything that must be stopped or deleted when the demo ends, however it ends. */
const owned = { apps: [], redisServer: undefined, redisUrl: undefined, keyPrefix: undefined };

class DemoError extends Error {}

main().then(
  (ok) => finish(ok ? 0 : 1),
  (error) => finish(1, error),
);
// However the demo ends (Ctrl-C, a crash, stdout closed by `| head`), stop what it started.
process.on('uncaughtException', (error) => finish(1, error));
process.on('unhandledRejection', (error) => finish(1, error));
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () =>
    finish(130, `${signal}: stopping the sample apps and any private Redis`),
  );
}

let finishing = false;
/** Reports why the demo ends (once: later errors are consequences), cleans up and exits. */
async function finish(code, reason) {
  if (finishing) return;
  finishing = true;
  try {
    if (typeof reason === 'string') console.error(`\n${reason}`);
    else if (reason !== undefined) {
      console.error(
        `\n${reason instanceof DemoError ? reason.message : (reason?.stack ?? reason)}`,
      );
      for (const app of owned.apps) printLogTail(app);
    }
  } catch {
    // stderr is gone too; cleaning up matters more
  }
  await cleanup();
  process.exit(code);
}

async function main() {
  if (!existsSync(MAIN)) {
    throw new DemoError(`${MAIN} is missing. Build the sample app first: npm run build:sample`);
  }
  const redis = await resolveRedis();
  const keyPrefix = `demo:${randomBytes(4).toString('hex')}:`;
  owned.redisUrl = redis.url;
  owned.keyPrefix = keyPrefix;

  console.log(
    'nestjs-redis-lock demo: two app instances, one Redis, one order paid six times at once\n',
  );
  const keys = redis.private ? '' : ', deleted at the end';
  console.log(`Redis:  ${redis.description}; keys under "${keyPrefix}"${keys}`);

  const [portA, portB] = [await freePort(), await freePort()];
  const apps = [
    startApp('A', portA, redis.url, keyPrefix),
    startApp('B', portB, redis.url, keyPrefix),
  ];
  owned.apps.push(...apps);
  await Promise.all(apps.map(waitUntilReady));
  console.log(`Apps:   A on http://127.0.0.1:${portA}, B on http://127.0.0.1:${portB}`);
  console.log(
    `Lock:   POST /orders/:id/pay is @Lock('order:{{id}}'); one payment takes ${PAY_MS} ms;`,
  );
  console.log(
    `        a request waits up to ${ORDER_WAIT_MS} ms for a busy lock, then gets 423 Locked\n`,
  );

  const [a, b] = apps;
  const targets = [a, b, a, b, a, b].map((app) => ({ app, order: ORDER }));
  targets.push({ app: a, order: OTHER_ORDER });
  console.log(
    `Firing ${targets.length - 1} payments for order ${ORDER} (3 at A, 3 at B) ` +
      `and 1 for order ${OTHER_ORDER} (at A), all at the same moment:\n`,
  );
  const t0 = Date.now();
  const results = await Promise.all(targets.map((target, i) => pay(target, i + 1, t0)));
  if (finishing) return false; // interrupted: the apps are shutting down, results are moot
  printTable(results);

  const checks = await checkResults(results, b);
  for (const line of await watchReportJob(apps)) console.log(line);

  console.log(`\n${checks.ok ? 'Conclusion' : 'FAILED'}:\n  ${checks.conclusion.join('\n  ')}`);
  return checks.ok;
}

// ---------------------------------------------------------------------------------------------
// Redis

/** Picks the Redis to use, starting a private one when needed and possible. */
async function resolveRedis() {
  const explicit = process.env.REDIS_URL;
  if (explicit) {
    if (await answers(explicit))
      return { url: explicit, description: `${redact(explicit)} (REDIS_URL)` };
    throw new DemoError(
      `REDIS_URL=${redact(explicit)} does not answer. Start that Redis or fix REDIS_URL;\n` +
        `or unset it to use ${DEFAULT_REDIS_URL} or else a private redis-server.`,
    );
  }
  if (process.env.DEMO_PRIVATE_REDIS !== '1' && (await answers(DEFAULT_REDIS_URL))) {
    return { url: DEFAULT_REDIS_URL, description: `${DEFAULT_REDIS_URL} (already running)` };
  }
  const binary = findOnPath('redis-server');
  if (!binary) {
    throw new DemoError(
      `No Redis found: nothing answers at ${DEFAULT_REDIS_URL} and redis-server is not on PATH.\n` +
        'Either install Redis so the demo can start a private server:\n' +
        '    sudo apt-get install redis-server     (Debian/Ubuntu; macOS: brew install redis)\n' +
        'or point the demo at a Redis you have:\n' +
        '    REDIS_URL=redis://host:6379 npm run demo',
    );
  }
  return startPrivateRedis(binary);
}

async function startPrivateRedis(binary) {
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  owned.redisServer = child;
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));

  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 5000;
  while (!(await answers(url))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new DemoError(`${binary} did not start on port ${port}:\n${output.trim()}`);
    }
    await sleep(50);
  }
  return {
    url,
    private: true,
    description: `private redis-server on port ${port} (${binary}), stopped at the end`,
  };
}

/** True when a Redis at `url` answers PING within a second. */
async function answers(url) {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {}); // a refused connection is an answer too: "no"
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Deletes the keys this run wrote, found by their unique prefix. */
async function deleteDemoKeys(url, keyPrefix) {
  const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 500);
      if (keys.length > 0) await client.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// Sample app processes

function startApp(name, port, redisUrl, keyPrefix) {
  const env = {
    ...process.env,
    INSTANCE: name,
    PORT: String(port),
    REDIS_URL: redisUrl,
    KEY_PREFIX: keyPrefix,
    PAY_MS: String(PAY_MS),
    ORDER_WAIT_MS: String(ORDER_WAIT_MS),
    REPORT_INTERVAL_MS: String(REPORT_INTERVAL_MS),
    REPORT_MS: '500',
    NO_COLOR: '1',
  };
  const child = spawn(process.execPath, [MAIN], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const app = { name, port, child, url: `http://127.0.0.1:${port}`, log: [] };
  let partial = '';
  const onData = (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    for (const text of lines) {
      app.log.push({ at: Date.now(), text });
      if (VERBOSE) console.log(`  [${name}] ${text}`);
    }
  };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  return app;
}

async function waitUntilReady(app) {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (app.child.exitCode !== null) {
      throw new DemoError(
        `Instance ${app.name} exited with code ${app.child.exitCode} while starting.`,
      );
    }
    try {
      const response = await fetch(`${app.url}/health`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new DemoError(`Instance ${app.name} did not answer GET /health within 20 s.`);
}

async function stopApp(app) {
  if (app.child.exitCode !== null || app.child.signalCode !== null) return;
  const exited = new Promise((resolve) => app.child.once('exit', resolve));
  app.child.kill('SIGTERM'); // runs Nest's shutdown hooks: timers stop, locks are released
  const forced = setTimeout(() => app.child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(forced);
}

function printLogTail(app) {
  if (VERBOSE || app.log.length === 0) return;
  console.error(`\nLast log lines of instance ${app.name}:`);
  for (const { text } of app.log.slice(-15)) console.error(`  ${text}`);
}

let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    await Promise.allSettled(owned.apps.map(stopApp));
    const server = owned.redisServer;
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    } else if (owned.redisUrl && owned.keyPrefix) {
      await deleteDemoKeys(owned.redisUrl, owned.keyPrefix).catch((error) =>
        console.error(`Could not delete the demo keys "${owned.keyPrefix}*": ${error.message}`),
      );
    }
  })();
  return cleaning;
}

// ---------------------------------------------------------------------------------------------
// Requests and results

/** Sends one payment and reports when it was sent and answered, relative to `t0`. */
async function pay({ app, order }, n, t0) {
  const sentAt = Date.now() - t0;
  const response = await fetch(`${app.url}/orders/${order}/pay`, {
    method: 'POST',
    signal: AbortSignal.timeout(15_000),
  });
  const answeredAt = Date.now() - t0;
  const body = await response.json().catch(() => undefined);
  const result = {
    n,
    instance: app.name,
    order,
    status: response.status,
    sentAt,
    answeredAt,
    body,
  };
  if (response.status === 200) {
    result.start = body.startedAt - t0;
    result.end = body.finishedAt - t0;
    result.servedBy = body.instance;
  }
  return result;
}

function printTable(results) {
  const rows = [...results].sort((x, y) => (x.start ?? x.answeredAt) - (y.start ?? y.answeredAt));
  const span = Math.max(...results.map((r) => r.answeredAt));
  const width = 40;
  const cell = (ms) => Math.min(width, Math.round((ms / span) * width));
  const bar = (r) => {
    const cells = Array(width).fill(' ');
    const paint = (from, to, ch) => cells.fill(ch, cell(from), Math.max(cell(from) + 1, cell(to)));
    paint(r.sentAt, r.answeredAt, '·');
    if (r.status === 200) paint(r.start, r.end, '█');
    return `|${cells.join('')}|`;
  };
  const answer = (r) =>
    r.status === 200 ? '200 OK' : r.status === 423 ? '423 Locked' : `${r.status} !!`;
  const paying = (r) => (r.status === 200 ? `${pad(r.start, 4)} → ${pad(r.end, 4)}` : '—');
  const scale = `0 ms${`${span} ms`.padStart(width - 2)}`;
  const columns = [
    ['req', 3, (r) => pad(r.n, 3)],
    ['order', 5, (r) => r.order],
    ['sent to', 7, (r) => r.instance],
    ['answer', 10, answer],
    ['paying (ms)', 11, paying],
    ['answered', 8, (r) => `${pad(r.answeredAt, 5)} ms`],
    [scale, width + 2, bar],
  ];
  const line = (values) =>
    `  ${values.map((v, i) => String(v).padEnd(columns[i][1])).join('  ')}`.trimEnd();
  console.log(line(columns.map(([title]) => title)));
  for (const r of rows) console.log(line(columns.map(([, , value]) => value(r))));
  console.log(
    '\n  Timeline: · waiting for the lock or the answer   █ paying, i.e. holding the order lock\n',
  );
}

/** Verifies the results and builds the conclusion; `ok` is false when the lock failed. */
async function checkResults(results, reader) {
  const problems = [];
  const unexpected = results.filter((r) => r.status !== 200 && r.status !== 423);
  for (const r of unexpected) {
    problems.push(`request ${r.n} got HTTP ${r.status}: ${JSON.stringify(r.body)}`);
  }

  const served = results
    .filter((r) => r.order === ORDER && r.status === 200)
    .sort((x, y) => x.start - y.start);
  const locked = results.filter((r) => r.order === ORDER && r.status === 423);
  let overlaps = 0;
  for (let i = 1; i < served.length; i++) {
    if (served[i].start < served[i - 1].end) {
      overlaps++;
      problems.push(
        `requests ${served[i - 1].n} and ${served[i].n} paid order ${ORDER} at the same time`,
      );
    }
  }
  const verdict = overlaps === 0 ? 'each began after the previous one ended' : 'THE LOCK FAILED';
  console.log(`  Check: overlapping payments of order ${ORDER}: ${overlaps} (${verdict})`);

  const other = results.find((r) => r.order === OTHER_ORDER);
  const parallel =
    other?.status === 200 && served.some((r) => r.start < other.end && other.start < r.end);
  console.log(
    `  Check: order ${OTHER_ORDER} paid in parallel with order ${ORDER}: ` +
      `${parallel ? 'yes' : 'no'} (each order has its own lock)`,
  );

  const ledger = await fetch(`${reader.url}/orders/${ORDER}`, {
    signal: AbortSignal.timeout(5000),
  }).then((r) => r.json());
  const recorded = ledger.payments?.length ?? 0;
  console.log(
    `  Check: ledger of order ${ORDER}, read via ${reader.name}: ${recorded} payment(s) for ` +
      `${served.length} served (appended under LockService.run)`,
  );
  if (recorded !== served.length) {
    problems.push(`the ledger has ${recorded} payments, expected ${served.length}`);
  }

  const byInstance = (name) => served.filter((r) => r.servedBy === name).length;
  const conclusion =
    problems.length > 0
      ? problems
      : [
          `${served.length} of ${served.length + locked.length} payments for order ${ORDER} went ` +
            `through one at a time (A: ${byInstance('A')}, B: ${byInstance('B')}), ` +
            'never overlapping.',
          `The other ${locked.length} waited ${ORDER_WAIT_MS} ms for the lock, ` +
            'then got 423 Locked.',
          `Order ${OTHER_ORDER} was paid ${parallel ? 'at the same time' : 'too'}: ` +
            'each order has its own lock.',
        ];
  return { ok: problems.length === 0, conclusion };
}

/**
 * Collects two ticks of the report job from the logs of both instances. Both instances tick on the
 * same wall-clock boundaries; `@Lock(..., { onNotAcquired: 'skip' })` lets only one generate.
 */
async function watchReportJob(apps) {
  const events = () =>
    apps.flatMap((app) =>
      app.log
        .filter(({ text }) => /report generated by|skipped: another instance/.test(text))
        .map(({ at, text }) => ({
          tick: Math.floor(at / REPORT_INTERVAL_MS),
          at,
          instance: app.name,
          generated: text.includes('report generated by'),
        })),
    );
  const completeTicks = () => {
    const byTick = new Map();
    for (const e of events()) byTick.set(e.tick, [...(byTick.get(e.tick) ?? []), e]);
    return [...byTick.values()].filter(
      (group) => new Set(group.map((e) => e.instance)).size === apps.length,
    );
  };
  const deadline = Date.now() + 3 * REPORT_INTERVAL_MS;
  while (completeTicks().length < 2 && Date.now() < deadline) await sleep(100);

  const ticks = completeTicks().slice(0, 2);
  const lines = [
    `\nReport job: a timer fires on both instances every ${REPORT_INTERVAL_MS} ms and calls ` +
      'a method',
    `            decorated @Lock('report:nightly', { onNotAcquired: 'skip' }):`,
  ];
  for (const group of ticks) {
    const generated = group.filter((e) => e.generated).map((e) => e.instance);
    const skipped = group.filter((e) => !e.generated).map((e) => e.instance);
    lines.push(
      `  tick ${ticks.indexOf(group) + 1}: generated by ${generated.join(', ') || 'nobody'}; ` +
        `skipped by ${skipped.join(', ') || 'nobody'}`,
    );
  }
  const once = ticks.length > 0 && ticks.every((g) => g.filter((e) => e.generated).length === 1);
  lines.push(
    ticks.length === 0
      ? '  (no report tick was seen on both instances in time)'
      : `  Check: each tick generated exactly one report: ${once ? 'yes' : 'no'}`,
  );
  // Informational only: two reports in one tick would not break mutual exclusion (one may finish
  // before the other starts), so only the order checks decide the exit code.
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function findOnPath(command) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function redact(url) {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

function pad(value, width) {
  return String(value).padStart(width);
}

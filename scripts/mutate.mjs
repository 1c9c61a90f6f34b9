/**
 * `npm run mutate`: a targeted mutation run over the lease, renewal, hand-over and script code.
 *
 * Each entry of MUTANTS below breaks one safety rule of docs/protocol.md on purpose (a file, the
 * exact snippet it changes, the replacement, and the spec files that should notice). For each,
 * the script writes the change, type-checks lib/ (a mutant that does not compile would be
 * "killed" by a compile error, which proves nothing), runs those specs with Jest (`--bail`),
 * records whether a test failed (killed) or all passed (survived), and puts the file back.
 * It prints a table and the score, and exits 1 when a mutant survived (0 with --report-only).
 *
 * Not run in CI: one run takes about 20 minutes on two cores. Run it after changing the lease,
 * renewal, hand-over or script code, or the tests that guard them.
 *
 * Files are always put back: from memory after each mutant, on Ctrl-C, SIGTERM or an error; and
 * if the process was killed outright (SIGKILL), the next run restores them from the journal in
 * .tmp/mutate/ before anything else (the Jest run it had started, in its own process group, then
 * finishes on its own).
 *
 * Usage: npm run mutate -- [--only id,id] [--list] [--report-only] [--no-typecheck] [--no-baseline]
 *   --only          run these mutants only (ids from --list)
 *   --list          print the mutants and their specs, run nothing
 *   --report-only   exit 0 even when mutants survive
 *   --no-typecheck  skip the per-mutant `tsc` check (faster; trust the table)
 *   --no-baseline   skip the first run of the specs on the unchanged code
 *   --check         only apply and type-check each mutant (to maintain the table), no tests
 *
 * Logs of every Jest run: .tmp/mutate/<id>.log
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORK = join(ROOT, '.tmp', 'mutate');
/** What to put back if this process dies before it could: { file, content } of the mutant. */
const JOURNAL = join(WORK, 'restore.json');
/** A mutant whose specs have not finished by then counts as killed (it hung a test). */
const MUTANT_TIMEOUT_MS = 15 * 60_000;

const LEASE = 'test/integration/lease-safety.spec.ts';
const BASICS = 'test/integration/lock-client.basics.spec.ts';
const WATCHDOG = 'test/integration/lock-client.watchdog.spec.ts';
const WAITING = 'test/integration/lock-client.waiting.spec.ts';
const HAND_OVER_SPEC = 'test/integration/in-process-hand-over.spec.ts';
const FAIR = 'test/integration/fair.spec.ts';
const FENCING = 'test/integration/fencing.spec.ts';
const MULTI = 'test/integration/multi-key.spec.ts';
const REDLOCK = 'test/integration/redlock.spec.ts';
const HTTP = 'test/e2e/http.spec.ts';
const MODULE_SCOPE = 'test/e2e/module-scope.spec.ts';

const ATTEMPTS = 'lib/core/waiting/acquire-attempts.ts';
const TAKE_OVER = 'lib/core/waiting/pass-take-over.ts';
const HANDLE = 'lib/core/lease/redis-lock.handle.ts';
const SIGNAL = 'lib/core/lease/lease.signal.ts';
const WATCHDOG_TIMERS = 'lib/core/lease/lease.watchdog.ts';
const WAITER = 'lib/core/waiting/busy-lock.waiter.ts';
const HAND_OVER = 'lib/core/waiting/in-process-hand-over.ts';
const ACQUIRE_SCRIPTS = 'lib/core/redis/scripts/acquire.scripts.ts';
const EXTEND_SCRIPT = 'lib/core/redis/scripts/extend.script.ts';
const RELEASE_SCRIPTS = 'lib/core/redis/scripts/release.scripts.ts';
const SHARED_LUA = 'lib/core/redis/scripts/shared.lua.ts';
const CLOCK = 'lib/core/lease/monotonic-clock.ts';
const CONSTANTS = 'lib/redis-lock.constants.ts';
const CONNECTION = 'lib/core/redis/redis-connection.ts';
const MODULE = 'lib/redis-lock.module-definition.ts';

/**
 * The mutants: `edits` are [exact original snippet, replacement] pairs applied to `file`; each
 * snippet must occur exactly once (the run stops, naming the entry, when the code moved on).
 */
const MUTANTS = [
  // Leases (rule 1: a lease starts at the send time of the command whose reply proved it).
  {
    id: 'grant-lease-from-reply',
    why: 'a grant’s lease counts from the reply’s arrival, not from when the script was sent',
    file: ATTEMPTS,
    edits: [['      opts.ttl,\n      sentAt,\n', '      opts.ttl,\n      monotonicNow(),\n']],
    specs: [LEASE],
  },
  {
    id: 'extend-lease-from-reply',
    why: 'an extend’s lease counts from the reply’s arrival',
    file: HANDLE,
    edits: [
      [
        'this.expiresAt = sentAt + this.leaseGiven;',
        'this.expiresAt = monotonicNow() + this.leaseGiven;',
      ],
    ],
    specs: [LEASE, BASICS],
  },
  {
    id: 'late-reply-is-grant',
    why: 'a grant whose reply came after its lease ran out is kept as a lock',
    file: ATTEMPTS,
    edits: [
      ['if (monotonicNow() - sentAt >= lease) {', 'if (monotonicNow() - sentAt >= Infinity) {'],
    ],
    // Reachable on one Redis only in the last 1 % of a ttl under 2 s; Redlock's drift makes it wide.
    specs: [REDLOCK, LEASE],
  },
  {
    id: 'no-drift-margin',
    why: 'trustedLease() is the whole ttl: no margin for clock drift and late timers',
    file: CLOCK,
    edits: [['return ttl - Math.floor(ttl * driftFactor) - LEASE_DRIFT_MS;', 'return ttl;']],
    specs: [LEASE, WATCHDOG],
  },
  {
    id: 'isheld-ignores-lease',
    why: 'isHeld() does not look at the lease (only released/lost)',
    file: HANDLE,
    edits: [
      [
        'if (monotonicNow() < this.expiresAt) return true;',
        'if (monotonicNow() < this.expiresAt || this.ttl > 0) return true;',
      ],
    ],
    specs: [LEASE, BASICS],
  },
  {
    id: 'signal-ignores-lease',
    why: 'signal.aborted does not look at the lease, so it lags isHeld() after a blocked loop',
    file: SIGNAL,
    edits: [['get: () => {\n      checkLease();\n      return', 'get: () => {\n      return']],
    specs: [LEASE],
  },
  {
    id: 'released-after-pass',
    why: 'release() marks the handle released only after the pass to a local waiter ran',
    file: HANDLE,
    edits: [
      [
        'this.released = true;\n      this.releasing = this.releaseOnce();',
        'this.releasing = this.releaseOnce();\n      this.released = true;',
      ],
    ],
    specs: [BASICS, HAND_OVER_SPEC],
  },
  // Renewal.
  {
    id: 'renew-every-half-ttl',
    why: 'RENEW_DIVISOR 3 → 2: the watchdog renews every ttl/2',
    file: CONSTANTS,
    edits: [['export const RENEW_DIVISOR = 3;', 'export const RENEW_DIVISOR = 2;']],
    specs: [WATCHDOG],
  },
  {
    id: 'renew-counts-from-reply',
    why: 'the first renewal is ttl/3 after the reply, whatever lease is left (issue 14 case 4)',
    file: WATCHDOG_TIMERS,
    edits: [
      [
        'delay = Math.max(0, this.lease.leaseLeft() - this.lease.ttl * (1 - 1 / RENEW_DIVISOR)),',
        'delay = this.lease.ttl / RENEW_DIVISOR,',
      ],
    ],
    specs: [LEASE, WATCHDOG],
  },
  // Grants and attempts.
  {
    id: 'answered-never-set',
    why: 'a wait never records that Redis answered: a busy key is reported as Redis unavailable',
    file: ATTEMPTS,
    edits: [['call.answered = true;\n    this.lastAnswerAt = monotonicNow();\n', '']],
    specs: [WAITING, LEASE],
  },
  {
    id: 'late-grant-kept',
    why: 'an attempt given up on (deadline, abort) leaves its late grant in Redis for a whole ttl',
    file: ATTEMPTS,
    edits: [
      [
        "if (outcome.kind !== 'reply') {\n          this.releaseIfGrantedLate(call, reply);",
        "if (outcome.kind !== 'reply') {",
      ],
    ],
    specs: [WAITING],
  },
  // In-process passes.
  {
    id: 'refused-pass-returned',
    why: 'PassRefusedError swallowed: a pass Redis refused to confirm is returned and run on',
    file: TAKE_OVER,
    edits: [
      [
        'if (err instanceof LockLostError) throw new PassRefusedError();',
        'if (err instanceof LockLostError) return handle;',
      ],
    ],
    specs: [LEASE],
  },
  {
    id: 'short-pass-unconfirmed',
    why: 'a pass with under half its lease left is not confirmed before its caller runs',
    file: TAKE_OVER,
    edits: [
      [
        'leaseLeft < Math.min(leaseGiven, fullLease) / 2',
        'leaseLeft < Math.min(leaseGiven, fullLease) / 2 - fullLease',
      ],
    ],
    specs: [LEASE, HAND_OVER_SPEC],
  },
  {
    id: 'pass-lease-restarted',
    why: 'a lock passed in the process gets a fresh full lease instead of the releaser’s',
    file: HAND_OVER,
    edits: [
      [
        'lock: passed(handle, leaseEnds) };',
        'lock: passed(handle, monotonicNow() + handle.leaseGiven) };',
      ],
    ],
    specs: [HAND_OVER_SPEC],
  },
  {
    id: 'pass-fence-unchanged',
    why: 'a lock passed in the process keeps the releaser’s fencing token',
    file: HAND_OVER,
    edits: [['fencingToken: handle.fencingToken + 1n,', 'fencingToken: handle.fencingToken,']],
    specs: [HAND_OVER_SPEC, FENCING],
  },
  // Hand-over through Redis.
  {
    id: 'hand-over-message-grants',
    why: 'the old behaviour: a hand-over message grants the lock, lease from the last busy attempt',
    file: WAITER,
    edits: [
      [
        'let stopListening: (() => void) | undefined;',
        'let stopListening: (() => void) | undefined;\n' +
          '    let handedOver = false as boolean;\n' +
          '    let lastBusyAt = monotonicNow();',
      ],
      [
        'message === call.token) wake.ring();',
        'message === call.token) wake.ring();\n' +
          '        if (call.queued && message === call.token) handedOver = true;',
      ],
      [
        'const reply = this.grants.attempt(call);',
        'const attemptSentAt = monotonicNow();\n        const reply = this.grants.attempt(call);',
      ],
      [
        'if (outcome instanceof RedisLockHandle) return outcome;',
        'if (outcome instanceof RedisLockHandle) return outcome;\n        lastBusyAt = attemptSentAt;',
      ],
      [
        "        if (woke === 'aborted') throw notAcquired(call, true);\n      }\n    } catch",
        "        if (woke === 'aborted') throw notAcquired(call, true);\n" +
          '        if (handedOver && !this.closed) {\n' +
          '          return this.grants.takePassed(call, {\n' +
          '            token: call.token,\n' +
          '            fencingToken: 0n,\n' +
          '            leaseEnds: lastBusyAt + this.fairQueueTimeout,\n' +
          '            leaseGiven: this.fairQueueTimeout,\n' +
          '            passesLeft: 0,\n' +
          '            passedTo: [],\n' +
          '          });\n' +
          '        }\n' +
          '      }\n    } catch',
      ],
    ],
    specs: [LEASE],
  },
  {
    id: 'hand-over-lease-fixed',
    why: 'the hand-over lease is a fixed 60 s instead of what is left of the waiter’s spot',
    file: RELEASE_SCRIPTS,
    edits: [
      [
        "local lease = tonumber(redis.call('zscore', timeouts, first)) - nowMs",
        'local lease = 60000',
      ],
    ],
    specs: [LEASE, FAIR],
  },
  {
    id: 'stale-spots-kept',
    why: 'PURGE_STALE purges nothing: a dead waiter keeps its place in the queue',
    file: SHARED_LUA,
    edits: [
      ["local stale = redis.call('zrangebyscore', timeouts, '-inf', nowMs)", 'local stale = {}'],
    ],
    specs: [FAIR],
  },
  // Scripts: every write conditional on the caller's token or on the key being absent.
  {
    id: 'acquire-without-nx',
    why: 'ACQUIRE sets the key without NX: it overwrites another owner’s lock',
    file: ACQUIRE_SCRIPTS,
    edits: [
      [
        "redis.call('set', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2])",
        "redis.call('set', KEYS[i], ARGV[1], 'PX', ARGV[2])",
      ],
    ],
    specs: [BASICS],
  },
  {
    id: 'multi-key-not-all-or-nothing',
    why: 'a multi-key ACQUIRE does not check every key before its first write',
    file: ACQUIRE_SCRIPTS,
    edits: [['local n = #KEYS / 2\nif n > 1 then', 'local n = #KEYS / 2\nif n < 1 then']],
    specs: [MULTI],
  },
  {
    id: 'fair-grants-held-key',
    why: 'ACQUIRE_FAIR grants a key another owner holds when its queue is empty',
    file: ACQUIRE_SCRIPTS,
    edits: [
      [
        'if blocked == 0 and (pttl ~= -2 or (first and first ~= token)) then',
        'if blocked == 0 and (first and first ~= token) then',
      ],
    ],
    specs: [FAIR],
  },
  {
    id: 'fair-handed-any-holder',
    why: 'ACQUIRE_FAIR takes any held key as handed to the caller (no token check)',
    file: ACQUIRE_SCRIPTS,
    edits: [
      [
        "if redis.call('get', KEYS[i]) ~= token then handed = false break end",
        "if redis.call('exists', KEYS[i]) == 0 then handed = false break end",
      ],
    ],
    specs: [FAIR],
  },
  {
    id: 'extend-ignores-token',
    why: 'EXTEND renews the key whoever holds it',
    file: EXTEND_SCRIPT,
    edits: [["if redis.call('get', KEYS[i]) ~= ARGV[1] then return 0 end", '']],
    specs: [BASICS, WATCHDOG],
  },
  {
    id: 'release-ignores-token',
    why: 'RELEASE deletes (or hands over) the key whoever holds it',
    file: RELEASE_SCRIPTS,
    edits: [
      [
        "if redis.call('get', KEYS[i]) == ARGV[1] then\n    handOver(i, n)\n    released",
        "if redis.call('exists', KEYS[i]) == 1 then\n    handOver(i, n)\n    released",
      ],
    ],
    specs: [BASICS],
  },
  {
    id: 'unqueued-release-ignores-token',
    why: 'RELEASE_UNQUEUED (Redlock’s masters) deletes the key whoever holds it',
    file: RELEASE_SCRIPTS,
    edits: [
      [
        "if redis.call('get', KEYS[i]) == ARGV[1] then\n    redis.call('del', KEYS[i])",
        "if redis.call('exists', KEYS[i]) == 1 then\n    redis.call('del', KEYS[i])",
      ],
    ],
    specs: [REDLOCK],
  },
  // Fencing tokens.
  {
    id: 'fence-stride-zero',
    why: 'ISSUE_FENCE steps a key’s counter by 0: grants repeat the same token',
    file: SHARED_LUA,
    edits: [
      [
        "local fence = redis.call('incrby', KEYS[first], ${FENCE_STRIDE})",
        "local fence = redis.call('incrby', KEYS[first], 0)",
      ],
    ],
    specs: [FENCING],
  },
  {
    id: 'multi-key-fence-not-above',
    why: 'a multi-key token is not stepped above its keys’ counters',
    file: SHARED_LUA,
    edits: [
      [
        'if previous and previous + ${FENCE_STRIDE} > fence then fence = previous + ${FENCE_STRIDE} end',
        'if previous and previous > fence then fence = previous end',
      ],
    ],
    specs: [FENCING],
  },
  // The Nest layer's connection and module.
  {
    id: 'own-client-retries',
    why: 'the module’s own client keeps ioredis’s 20 retries instead of failing fast',
    file: CONNECTION,
    edits: [
      [
        'const OWN_CLIENT_DEFAULTS: RedisOptions = { maxRetriesPerRequest: 1 };',
        'const OWN_CLIENT_DEFAULTS: RedisOptions = {};',
      ],
    ],
    specs: [HTTP],
  },
  {
    id: 'not-global-by-default',
    why: 'isGlobal defaults to false: feature modules must import RedisLockModule again',
    file: MODULE,
    edits: [['.setExtras({ isGlobal: true },', '.setExtras({ isGlobal: false },']],
    specs: [MODULE_SCOPE],
  },
];

// ---------------------------------------------------------------------------------------------

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? new Set((args[onlyAt + 1] ?? '').split(',').filter(Boolean)) : null;

/** The file currently mutated and its original text, so every exit path can put it back. */
let current = null;
/** The Jest or tsc process running now (its own process group), to stop on Ctrl-C. */
let child = null;

function restore() {
  if (current) {
    writeFileSync(join(ROOT, current.file), current.content);
    current = null;
  }
  rmSync(JOURNAL, { force: true });
}

/** A run killed outright left a mutant in place: put the file back first. */
function recoverFromJournal() {
  if (!existsSync(JOURNAL)) return;
  const { file, content } = JSON.parse(readFileSync(JOURNAL, 'utf8'));
  writeFileSync(join(ROOT, file), content);
  rmSync(JOURNAL, { force: true });
  console.log(`mutate: restored ${file}, left mutated by an interrupted run`);
}

function stopChild() {
  if (!child) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function onSignal(signal) {
  stopChild();
  restore();
  console.error(`\nmutate: stopped by ${signal}; files restored`);
  process.exit(130);
}

/** Applies the entry's edits to `text`, or explains why it cannot (the snippet moved on). */
function mutated(mutant, text) {
  let out = text;
  for (const [from, to] of mutant.edits) {
    const first = out.indexOf(from);
    if (first < 0) return { error: `snippet not found: ${JSON.stringify(from)}` };
    if (out.indexOf(from, first + 1) >= 0) {
      return { error: `snippet found more than once: ${JSON.stringify(from)}` };
    }
    out = out.slice(0, first) + to + out.slice(first + from.length);
  }
  return { text: out };
}

/** Runs a command in its own process group; resolves with its exit code and output. */
function run(command, commandArgs, logFile, timeoutMs) {
  return new Promise((resolve) => {
    let output = '';
    child = spawn(command, commandArgs, {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      output += `\nmutate: timed out after ${timeoutMs} ms\n`;
      stopChild();
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      child = null;
      if (logFile) writeFileSync(logFile, output);
      resolve({ code: code ?? (signal ? 128 : 1), output });
    });
  });
}

const jest = (specs, logFile) =>
  run(
    process.execPath,
    [
      '--experimental-vm-modules',
      'node_modules/jest/bin/jest.js',
      ...specs,
      '--bail',
      // A mutant may leave a connection open (an app that failed to start): do not wait on it.
      '--forceExit',
      '--ci',
      '--colors=false',
    ],
    logFile,
    MUTANT_TIMEOUT_MS,
  );

const typecheck = () =>
  run(
    process.execPath,
    ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'tsconfig.build.json'],
    null,
    5 * 60_000,
  );

/** The first failing test Jest names ("● describe › test"), for the table. */
function firstFailure(output) {
  const line = output.split('\n').find((l) => /^\s*● /.test(l) && !/● Console/.test(l));
  return line ? line.trim().slice(2) : '';
}

const seconds = (ms) => `${Math.round(ms / 1000)}s`;

async function main() {
  mkdirSync(WORK, { recursive: true });
  recoverFromJournal();
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => onSignal(signal));
  process.on('exit', restore);

  const selected = MUTANTS.filter((m) => !only || only.has(m.id));
  if (only) {
    const unknown = [...only].filter((id) => !MUTANTS.some((m) => m.id === id));
    if (unknown.length) throw new Error(`unknown mutant(s): ${unknown.join(', ')}`);
  }
  if (flag('--list')) {
    for (const m of MUTANTS)
      console.log(`${m.id.padEnd(32)} ${m.file}\n  ${m.why}\n  ${m.specs.join(' ')}`);
    return 0;
  }

  // Every snippet must still be in the code: a stale table would test nothing.
  for (const m of selected) {
    const { error } = mutated(m, readFileSync(join(ROOT, m.file), 'utf8'));
    if (error) throw new Error(`mutant ${m.id} (${m.file}): ${error}`);
  }

  if (!flag('--no-baseline') && !flag('--check')) {
    const specs = [...new Set(selected.flatMap((m) => m.specs))];
    console.log(`mutate: baseline, ${specs.length} spec file(s) on the unchanged code...`);
    const { code, output } = await jest(specs, join(WORK, 'baseline.log'));
    if (code !== 0) {
      throw new Error(
        `the specs fail without any mutant (${firstFailure(output) || 'see log'}): ` +
          `fix them first (log: .tmp/mutate/baseline.log)`,
      );
    }
  }

  const results = [];
  for (const [i, m] of selected.entries()) {
    const started = Date.now();
    const path = join(ROOT, m.file);
    const original = readFileSync(path, 'utf8');
    current = { file: m.file, content: original };
    writeFileSync(JOURNAL, JSON.stringify(current));
    writeFileSync(path, mutated(m, original).text);
    process.stdout.write(`mutate: [${i + 1}/${selected.length}] ${m.id} ... `);
    let result;
    try {
      if (!flag('--no-typecheck') && (await typecheck()).code !== 0) {
        result = { status: 'invalid', detail: 'does not compile: fix the table entry' };
      } else if (flag('--check')) {
        result = { status: 'compiles', detail: '' };
      } else {
        const { code, output } = await jest(m.specs, join(WORK, `${m.id}.log`));
        result =
          code === 0
            ? { status: 'survived', detail: '' }
            : { status: 'killed', detail: firstFailure(output) || `jest exited ${code}` };
      }
    } finally {
      restore();
    }
    result = { ...result, id: m.id, ms: Date.now() - started };
    results.push(result);
    console.log(`${result.status} (${seconds(result.ms)})`);
  }

  console.log(
    '\n' + 'mutant'.padEnd(32) + 'result'.padEnd(10) + 'time'.padEnd(7) + 'first failing test',
  );
  for (const r of results) {
    console.log(r.id.padEnd(32) + r.status.padEnd(10) + seconds(r.ms).padEnd(7) + r.detail);
  }
  const killed = results.filter((r) => r.status === 'killed').length;
  const invalid = results.filter((r) => r.status === 'invalid').length;
  if (flag('--check')) return invalid ? 2 : 0;
  console.log(
    `\nscore: ${killed}/${results.length - invalid} killed` +
      (invalid ? ` (${invalid} invalid)` : ''),
  );
  const survivors = results.filter((r) => r.status === 'survived').map((r) => r.id);
  if (survivors.length) console.log(`survived: ${survivors.join(', ')}`);
  if (invalid) return 2;
  return survivors.length && !flag('--report-only') ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    stopChild();
    restore();
    console.error(`mutate: ${err.message}`);
    process.exit(2);
  },
);

/**
 * Real `redis-server --sentinel` processes for tests, each on a free port of 127.0.0.1 with its
 * own temporary directory holding its `sentinel.conf`.
 *
 * `startRedis` cannot start one: Sentinel needs a config file it can rewrite, given as the first
 * argument, while `startRedis` puts its own options first. The cleanup discipline is the same as
 * `redis-server.ts`: every process is tracked and stopped by `stop()` /
 * {@link stopAllSentinelProcesses}, and a watchdog shell kills it if this process dies first.
 * Most tests want a whole group instead: see `startSentinelGroup` in `redis-sentinel.ts`.
 *
 * @example
 * const sentinel = await startSentinelProcess(['sentinel monitor mymaster 127.0.0.1 41234 1']);
 * await sentinel.client().call('SENTINEL', 'MASTERS');
 * await sentinel.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { freePort, type RedisExit } from './redis-server.js';
import { waitFor } from './wait-for.js';

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;
const START_ATTEMPTS = 5;
const OUTPUT_LIMIT = 64 * 1024;

/** A running Sentinel started by {@link startSentinelProcess}. */
export interface SentinelProcess {
  /** The TCP port on 127.0.0.1. */
  readonly port: number;
  /** Process id. */
  readonly pid: number;
  /** Its temporary directory with `sentinel.conf` (removed by `stop()`). */
  readonly dir: string;
  /** Settles when the process exits, however that happens. */
  readonly exited: Promise<RedisExit>;
  /** A new ioredis client connected to this Sentinel, closed by `stop()`; errors are ignored. */
  client(options?: RedisOptions): Redis;
  /** Sends `signal` (default SIGKILL); await {@link SentinelProcess.exited} to see it go. */
  kill(signal?: NodeJS.Signals): void;
  /** Closes its clients, stops the process (SIGTERM, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
  /** What the Sentinel printed so far (the last 64 KiB): its `+sdown`, `+switch-master`... */
  output(): string;
}

const running = new Set<ManagedSentinel>();

/**
 * Starts `redis-server sentinel.conf --sentinel` on a free port; `config` lines are appended to
 * the generated `port`, `bind` and `dir` lines. Resolves once it listens; retries on a new port if
 * the chosen one was taken in the meantime.
 *
 * @throws Error with the Sentinel's output when it exits or does not start in time.
 */
export async function startSentinelProcess(config: string[]): Promise<SentinelProcess> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-redis-lock-sentinel-'));
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const sentinel = new ManagedSentinel(await freePort(), dir);
    try {
      await sentinel.launch(config);
      running.add(sentinel);
      return sentinel;
    } catch (error) {
      lastError = error;
      if (!/Address already in use/i.test(String(error))) break;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError;
}

/** Stops every Sentinel started by {@link startSentinelProcess} and not stopped yet. */
export async function stopAllSentinelProcesses(): Promise<void> {
  await Promise.all([...running].map((sentinel) => sentinel.stop()));
}

class ManagedSentinel implements SentinelProcess {
  private child!: ChildProcess;
  private watchdog?: ChildProcess;
  private exitPromise!: Promise<RedisExit>;
  private log = '';
  private readonly clients = new Set<Redis>();
  private stopping?: Promise<void>;

  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get exited(): Promise<RedisExit> {
    return this.exitPromise;
  }

  async launch(config: string[]): Promise<void> {
    const file = join(this.dir, 'sentinel.conf');
    const base = [`port ${this.port}`, `bind ${HOST}`, `dir "${this.dir}"`, 'daemonize no'];
    writeFileSync(file, [...base, ...config, ''].join('\n'));
    const child = spawn('redis-server', [file, '--sentinel'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    // Keep draining the pipes for the whole life of the process: a full pipe would block it.
    const append = (chunk: Buffer): void => {
      this.log = (this.log + chunk.toString()).slice(-OUTPUT_LIMIT);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    let spawnError: Error | undefined;
    this.exitPromise = new Promise((resolve) => {
      child.once('error', (error) => {
        spawnError = error;
        resolve({ code: null, signal: null });
      });
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    let ended = false;
    void this.exitPromise.then(() => (ended = true));

    // Sentinel logs its id after it listens; reading our own child's log also proves that the
    // port answers for this process and not for one another test file started.
    try {
      await waitFor(() => ended || this.log.includes('Sentinel ID is'), {
        timeout: START_TIMEOUT_MS,
        interval: 20,
      });
    } catch {
      await terminate(child, this.exitPromise);
      throw new Error(`sentinel on port ${this.port} did not start in time\n${this.log}`);
    }
    if (ended) {
      if (spawnError) throw new Error(`could not run redis-server: ${spawnError.message}`);
      throw new Error(`sentinel on port ${this.port} exited at start:\n${this.log}`);
    }
    this.watchdog = startWatchdog(child.pid!, this.dir);
  }

  client(options: RedisOptions = {}): Redis {
    const client = new Redis({ host: HOST, port: this.port, ...options });
    client.on('error', () => undefined);
    this.clients.add(client);
    return client;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal);
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const client of this.clients) client.disconnect();
      this.clients.clear();
      this.watchdog?.kill('SIGKILL');
      await terminate(this.child, this.exitPromise);
      running.delete(this);
      rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.stopping;
  }

  output(): string {
    return this.log;
  }

  /** Synchronous last resort for the 'exit' hook. */
  killNow(): void {
    for (const client of this.clients) client.disconnect();
    this.watchdog?.kill('SIGKILL');
    this.child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. */
async function terminate(child: ChildProcess, exited: Promise<RedisExit>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    await exited;
    return;
  }
  child.kill('SIGCONT');
  child.kill('SIGTERM');
  const escalation = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(escalation);
}

/**
 * The same watchdog as `redis-server.ts`: a tiny shell that SIGKILLs the Sentinel and removes its
 * directory once this process is gone (Jest's sandboxed `process` never emits 'exit').
 */
function startWatchdog(pid: number, dir: string): ChildProcess {
  const script =
    'while kill -0 "$2" 2>/dev/null; do ' +
    'if ! kill -0 "$1" 2>/dev/null; then kill -9 "$2"; rm -rf "$3"; exit 0; fi; sleep 1; done';
  const argv = ['-c', script, 'sentinel-watchdog', String(process.pid), String(pid), dir];
  const watchdog = spawn('sh', argv, { stdio: 'ignore' });
  watchdog.on('error', () => undefined);
  watchdog.unref();
  return watchdog;
}

let exitHookInstalled = false;

/** Kills leftover Sentinels when a plain Node process (benchmark, tsx script) exits. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const sentinel of running) sentinel.killNow();
    running.clear();
  });
}

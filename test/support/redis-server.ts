/**
 * Real `redis-server` processes for tests, each on a free port of 127.0.0.1 with its own
 * temporary directory and no persistence. The shared Redis on 6379 is never touched.
 *
 * Start servers per test file in `beforeAll` and stop them in `afterAll`:
 *
 * @example
 * let redis: RedisServer;
 * beforeAll(async () => {
 *   redis = await startRedis();
 * });
 * afterAll(() => stopAllRedis());
 *
 * Nothing may outlive the test run, so every server is tracked and stopped by `stop()` /
 * `stopAllRedis()`; a watchdog shell kills it if this process dies without stopping it
 * (Jest's sandboxed `process` never emits 'exit', so an 'exit' hook alone is not enough).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { waitFor } from './wait-for.js';

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;
const START_ATTEMPTS = 5;
const OUTPUT_LIMIT = 64 * 1024;

/** Options for {@link startRedis}. */
export interface StartRedisOptions {
  /** Extra `redis-server` arguments, appended after the harness's own so they win. */
  args?: string[];
  /** How long to wait for the server to answer, in ms. Default 10000. */
  startTimeout?: number;
}

/** How a server process ended. */
export interface RedisExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running `redis-server` started by {@link startRedis}. */
export interface RedisServer {
  /** The TCP port on 127.0.0.1; kept across {@link RedisServer.restart}. */
  readonly port: number;
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  /** Process id of the current server process (changes on restart). */
  readonly pid: number;
  /** The server's temporary working directory (removed by `stop()`). */
  readonly dir: string;
  /** Settles when the current server process exits, however that happens. */
  readonly exited: Promise<RedisExit>;
  /**
   * A new ioredis client connected to this server, closed by `stop()`. It has a no-op 'error'
   * listener so a stopped or paused server does not flood the log; add your own to observe errors.
   */
  client(options?: RedisOptions): Redis;
  /** SIGSTOP: the server stops answering but keeps its connections. Resolves once it is stopped. */
  pause(): Promise<void>;
  /** SIGCONT after {@link RedisServer.pause}. Resolves once it runs again. */
  resume(): Promise<void>;
  /** Sends `signal` (default SIGKILL) to the server; await {@link RedisServer.exited} to see it go. */
  kill(signal?: NodeJS.Signals): void;
  /** Starts the server again on the same port and directory (data is lost: no persistence). */
  restart(): Promise<void>;
  /** Closes its clients, stops the server (SIGTERM, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
  /** What the server printed so far (the last 64 KiB), for diagnosing failures. */
  output(): string;
}

const running = new Set<ManagedRedis>();

/**
 * Starts a `redis-server` on a free port with `--save "" --appendonly no --bind 127.0.0.1` and a
 * temporary `--dir`, and resolves once it answers. Retries on a new port if the chosen one was
 * taken in the meantime.
 *
 * @example
 * const redis = await startRedis({ args: ['--maxmemory', '10mb'] });
 * await redis.client().set('k', 'v');
 * await redis.stop();
 *
 * @throws Error with the server's output when it exits or does not answer in time.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-redis-lock-redis-'));
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const server = new ManagedRedis(await freePort(), dir, options);
    try {
      await server.launch();
      running.add(server);
      return server;
    } catch (error) {
      lastError = error;
      if (!(error instanceof PortInUseError)) break;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError;
}

/** Stops every server started by {@link startRedis} in this process and not stopped yet. */
export async function stopAllRedis(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop()));
}

/** Resolves a port that was free a moment ago: bind port 0, read the port, close. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => (port ? resolve(port) : reject(new Error('freePort: no port assigned'))));
    });
  });
}

class PortInUseError extends Error {}

class ManagedRedis implements RedisServer {
  readonly url: string;
  private child!: ChildProcess;
  private watchdog?: ChildProcess;
  private exitPromise!: Promise<RedisExit>;
  private log = '';
  private readonly clients = new Set<Redis>();
  private stopping?: Promise<void>;

  constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: StartRedisOptions,
  ) {
    this.url = `redis://${HOST}:${port}`;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get exited(): Promise<RedisExit> {
    return this.exitPromise;
  }

  async launch(): Promise<void> {
    // prettier-ignore
    const args = [
      '--port', String(this.port),
      '--bind', HOST,
      '--save', '',
      '--appendonly', 'no',
      '--dir', this.dir,
      '--daemonize', 'no',
      ...(this.options.args ?? []),
    ];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    // Keep draining the pipes for the server's whole life: a full pipe would block its logging.
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

    const timeout = this.options.startTimeout ?? START_TIMEOUT_MS;
    try {
      await waitFor(async () => ended || (await answersAsProcess(this.port, child.pid)), {
        timeout,
        interval: 20,
      });
    } catch {
      await terminate(child, this.exitPromise);
      throw new Error(
        `redis-server on port ${this.port} did not answer within ${timeout} ms\n${this.log}`,
      );
    }
    if (ended) {
      if (spawnError) throw new Error(`could not run redis-server: ${spawnError.message}`);
      const message = `redis-server on port ${this.port} exited at start:\n${this.log}`;
      throw /Address already in use/i.test(this.log)
        ? new PortInUseError(message)
        : new Error(message);
    }
    this.watchdog = startWatchdog(child.pid!, this.dir);
  }

  client(options: RedisOptions = {}): Redis {
    // disconnectTimeout: ioredis's default leaves a 2 s timer behind when a client of a killed
    // server is disconnected, which keeps the test process alive.
    const client = new Redis({ host: HOST, port: this.port, disconnectTimeout: 100, ...options });
    client.on('error', () => undefined);
    this.clients.add(client);
    return client;
  }

  async pause(): Promise<void> {
    this.child.kill('SIGSTOP');
    await waitForState(this.pid, (state) => state === 'T', 'stopped');
  }

  async resume(): Promise<void> {
    this.child.kill('SIGCONT');
    await waitForState(this.pid, (state) => state !== 'T', 'running');
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal);
  }

  async restart(): Promise<void> {
    if (this.stopping) throw new Error(`redis-server on port ${this.port} was stopped`);
    this.stopWatchdog();
    await terminate(this.child, this.exitPromise);
    // The port is ours until someone else grabs it; redis binds with SO_REUSEADDR, so a closed
    // previous socket in TIME_WAIT does not block it.
    await this.launch();
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const client of this.clients) client.disconnect();
      this.clients.clear();
      this.stopWatchdog();
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
    this.stopWatchdog();
    this.child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private stopWatchdog(): void {
    this.watchdog?.kill('SIGKILL');
    this.watchdog = undefined;
  }
}

/**
 * True once the server on `port` is up and is the process `pid` (`INFO server` reports its
 * `process_id`), so a server another test file started on the same port is never mistaken for ours.
 * A server with `requirepass` answers `-NOAUTH`, which is taken as up.
 */
function answersAsProcess(port: number, pid: number | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    let reply = '';
    let settled = false;
    const socket = createConnection({ host: HOST, port });
    const done = (result: boolean): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
    socket.on('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.startsWith('-')) return done(reply.startsWith('-NOAUTH'));
      const match = /process_id:(\d+)\r\n/.exec(reply);
      if (match) done(Number(match[1]) === pid);
    });
  });
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. */
async function terminate(child: ChildProcess, exited: Promise<RedisExit>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    await exited;
    return;
  }
  // A paused server would keep SIGTERM pending forever: let it run first.
  child.kill('SIGCONT');
  child.kill('SIGTERM');
  const escalation = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(escalation);
}

/**
 * A tiny shell that SIGKILLs the server and removes its directory if this process disappears
 * without stopping it (a crashed or force-killed Jest worker). It only acts when the parent is
 * gone, and ends with the server.
 */
function startWatchdog(serverPid: number, dir: string): ChildProcess {
  const script =
    'while kill -0 "$2" 2>/dev/null; do ' +
    'if ! kill -0 "$1" 2>/dev/null; then kill -9 "$2"; rm -rf "$3"; exit 0; fi; sleep 1; done';
  const argv = ['-c', script, 'redis-watchdog', String(process.pid), String(serverPid), dir];
  const watchdog = spawn('sh', argv, { stdio: 'ignore' });
  watchdog.on('error', () => undefined);
  watchdog.unref();
  return watchdog;
}

/** Waits until the Linux scheduler state of `pid` matches; a no-op where /proc is missing. */
async function waitForState(
  pid: number,
  matches: (state: string) => boolean,
  what: string,
): Promise<void> {
  await waitFor(
    () => {
      const state = processState(pid);
      return state === undefined || matches(state);
    },
    { timeout: 2000, interval: 5, message: `redis-server ${pid} to be ${what}` },
  );
}

function processState(pid: number): string | undefined {
  try {
    // /proc/PID/stat is "pid (comm) STATE ...": comm may contain spaces, so split after ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

let exitHookInstalled = false;

/**
 * Kills leftover servers when the process exits. Works for plain Node scripts (benchmarks, tsx);
 * under Jest the sandbox's `process` never emits 'exit', which is why the watchdog exists.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const server of running) server.killNow();
    running.clear();
  });
}

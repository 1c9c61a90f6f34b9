/**
 * Forks TypeScript worker scripts as separate OS processes, for multi-process lock tests.
 *
 * Jest compiles TypeScript through ts-jest inside its own VM, which a forked child does not have,
 * so children load TypeScript with tsx (`node --import tsx`). tsx compiles with esbuild, which
 * does NOT implement `emitDecoratorMetadata`: a worker may run a Nest app (the library's own
 * providers name their tokens), but every constructor dependency of its own classes must use an
 * explicit `@Inject(Token)` (see test/e2e/fixtures/nest-app.worker.ts).
 *
 * Workers talk to the test through IPC (`process.send`, see `worker-ipc.ts`); messages are buffered
 * from the moment of the fork, so {@link nextMessage} never misses one sent early.
 *
 * @example
 * const child = forkWorker('test/support/workers/ping.worker.ts', [redis.url]);
 * const reply = await nextMessage<{ type: string }>(child, (m) => m.type === 'pong');
 * await exited(child);
 */
import { fork, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: workers run there so `--import tsx` resolves from its node_modules. */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUTPUT_LIMIT = 64 * 1024;

/** How a worker process ended. */
export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Waiter {
  predicate: (message: unknown) => boolean;
  deliver: (message: unknown) => void;
}

interface WorkerState {
  inbox: unknown[];
  waiters: Waiter[];
  output: string;
  exit: Promise<WorkerExit>;
}

const states = new WeakMap<ChildProcess, WorkerState>();
const running = new Set<ChildProcess>();

/**
 * Forks `scriptPath` with `node --import tsx`, an IPC channel and piped output.
 *
 * @param scriptPath absolute, or relative to the repository root.
 * @param args command-line arguments, read by the worker from `process.argv.slice(2)`.
 * @param env variables added to (and overriding) the parent's environment.
 * @param loader `'tsx/esm'` compiles only the ES modules, leaving `require` to Node itself: tsx's
 * CommonJS hook would load an ES module a CommonJS file requires as a second copy.
 */
export function forkWorker(
  scriptPath: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
  loader: 'tsx' | 'tsx/esm' = 'tsx',
): ChildProcess {
  const child = fork(resolve(REPO_ROOT, scriptPath), args, {
    cwd: REPO_ROOT,
    // Explicit, so Jest's own flags (--experimental-vm-modules) are not inherited.
    execArgv: ['--import', loader],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const state: WorkerState = {
    inbox: [],
    waiters: [],
    output: '',
    exit: new Promise((done) => {
      child.once('exit', (code, signal) => done({ code, signal }));
      child.once('error', () => done({ code: null, signal: null }));
    }),
  };
  const append = (chunk: Buffer): void => {
    state.output = (state.output + chunk.toString()).slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  child.on('message', (message) => {
    const index = state.waiters.findIndex((waiter) => waiter.predicate(message));
    if (index === -1) state.inbox.push(message);
    else state.waiters.splice(index, 1)[0].deliver(message);
  });
  states.set(child, state);
  running.add(child);
  void state.exit.then(() => running.delete(child));
  return child;
}

/**
 * Resolves with the next message from `child` that `predicate` accepts and that no earlier call
 * has taken, including messages that arrived before this call or before the worker exited.
 *
 * @throws Error when the worker exits or `timeoutMs` passes first; the message includes the
 * worker's output.
 */
export function nextMessage<T = unknown>(
  child: ChildProcess,
  predicate: (message: T) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<T> {
  const state = stateOf(child);
  const accepts = predicate as (message: unknown) => boolean;
  const index = state.inbox.findIndex(accepts);
  if (index !== -1) return Promise.resolve(state.inbox.splice(index, 1)[0] as T);

  return new Promise<T>((resolvePromise, reject) => {
    const fail = (why: string): void => {
      state.waiters = state.waiters.filter((waiter) => waiter !== entry);
      clearTimeout(timer);
      reject(new Error(`worker ${child.pid}: ${why}\n--- worker output ---\n${state.output}`));
    };
    const entry: Waiter = {
      predicate: accepts,
      deliver: (message) => {
        clearTimeout(timer);
        resolvePromise(message as T);
      },
    };
    const timer = setTimeout(() => fail(`no matching message within ${timeoutMs} ms`), timeoutMs);
    state.waiters.push(entry);
    void state.exit.then(({ code, signal }) => {
      if (state.waiters.includes(entry)) {
        fail(`exited (code ${code}, signal ${signal}) before a matching message`);
      }
    });
  });
}

/** Resolves when `child` has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<WorkerExit> {
  return stateOf(child).exit;
}

/** What the worker printed so far (last 64 KiB of stdout and stderr). */
export function workerOutput(child: ChildProcess): string {
  return states.get(child)?.output ?? '';
}

/** SIGKILLs every worker forked by this process that is still running, and waits for them. */
export async function killAllWorkers(): Promise<void> {
  const exits = [...running].map((child) => {
    child.kill('SIGKILL');
    return stateOf(child).exit;
  });
  await Promise.all(exits);
}

function stateOf(child: ChildProcess): WorkerState {
  const state = states.get(child);
  if (!state) throw new Error(`process ${child.pid} was not started by forkWorker`);
  return state;
}

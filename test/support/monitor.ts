/**
 * Redis MONITOR over a plain socket. ioredis 6's `monitor()` can mistake a monitor line that
 * arrives in the same packet as MONITOR's +OK for a stray reply (it switches mode in a promise
 * callback), fail, and leave a connection reconnecting forever; reading the protocol here has no
 * such window: every line after +OK is a command the server ran.
 *
 * @example
 * const monitor = await startMonitor(server.port);
 * monitor.onCommand((args) => seen.push(args)); // ['set', 'lock:{a}', 'token', 'NX', ...]
 * monitor.stop();
 */
import { createConnection, type Socket } from 'node:net';

/** A running MONITOR connection. */
export interface Monitor {
  /**
   * Calls `listener` with each command the server runs, name first (as the server spelled it),
   * and the time the server ran it (Redis' clock, ms since the epoch, with µs in the fraction).
   */
  onCommand(listener: (args: string[], at: number) => void): void;
  stop(): void;
}

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 5_000;

/** Connects to the server on `port`, sends MONITOR and resolves once the server confirmed it. */
export function startMonitor(port: number): Promise<Monitor> {
  return new Promise((resolve, reject) => {
    const socket: Socket = createConnection({ host: HOST, port });
    const listeners: ((args: string[], at: number) => void)[] = [];
    let buffered = '';
    let confirmed = false;
    const timer = setTimeout(
      () => fail(new Error('MONITOR was not confirmed in time')),
      START_TIMEOUT_MS,
    );
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.setEncoding('utf8');
    socket.on('error', (err) => (confirmed ? undefined : fail(err)));
    socket.on('connect', () => socket.write('MONITOR\r\n'));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (!confirmed) {
          if (line !== '+OK') return fail(new Error(`MONITOR answered ${line}`));
          confirmed = true;
          clearTimeout(timer);
          resolve({
            onCommand: (listener) => void listeners.push(listener),
            stop: () => socket.destroy(),
          });
          continue;
        }
        const args = parseMonitorLine(line);
        if (args) for (const listener of listeners) listener(args, monitorLineTime(line));
      }
    });
  });
}

/**
 * `+1700000000.123456 [0 127.0.0.1:5000] "set" "k" "v"` → `['set', 'k', 'v']`: the quoted,
 * backslash-escaped arguments after the client part (`lua` for commands a script ran).
 */
export function parseMonitorLine(line: string): string[] | undefined {
  const start = line.indexOf('] "');
  if (!line.startsWith('+') || start < 0) return undefined;
  const args: string[] = [];
  let i = start + 2;
  while (i < line.length) {
    if (line[i] !== '"') {
      i++;
      continue;
    }
    let arg = '';
    i++;
    while (i < line.length && line[i] !== '"') {
      if (line[i] === '\\') {
        const next = line[i + 1];
        if (next === 'x') {
          arg += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
          i += 4;
          continue;
        }
        arg += ESCAPES[next] ?? next;
        i += 2;
        continue;
      }
      arg += line[i++];
    }
    args.push(arg);
    i++;
  }
  return args;
}

/** `+1700000000.123456 [0 ...] ...` → 1700000000123.456: when the server ran the command (ms). */
export function monitorLineTime(line: string): number {
  return Number(line.slice(1, line.indexOf(' '))) * 1000;
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' };

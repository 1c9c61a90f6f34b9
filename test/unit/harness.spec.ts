import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { exited, forkWorker, killAllWorkers, nextMessage } from '../support/fork-worker.js';
import { startRedis, stopAllRedis, type RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/wait-for.js';

const PING_WORKER = 'test/support/workers/ping.worker.ts';

interface PingReport {
  type: 'pong' | 'error';
  reply?: string;
  pid?: number;
  message?: string;
}

/** Resolves with 'connected' or the socket error code (e.g. 'ECONNREFUSED'). */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('test harness', () => {
  let first: RedisServer;
  let second: RedisServer;

  beforeAll(async () => {
    [first, second] = await Promise.all([startRedis(), startRedis()]);
  });

  afterAll(async () => {
    await killAllWorkers();
    await stopAllRedis();
  });

  describe('startRedis', () => {
    it('starts servers on different free ports, never 6379', () => {
      expect(first.port).not.toBe(second.port);
      expect([first.port, second.port]).not.toContain(6379);
      expect(first.url).toBe(`redis://127.0.0.1:${first.port}`);
    });

    it('starts a server that answers PING and is not persisting', async () => {
      const client = first.client();
      await expect(client.ping()).resolves.toBe('PONG');
      await expect(client.config('GET', 'save')).resolves.toEqual(['save', '']);
      await expect(client.config('GET', 'appendonly')).resolves.toEqual(['appendonly', 'no']);
    });

    it('passes extra arguments to redis-server', async () => {
      const server = await startRedis({ args: ['--maxmemory-policy', 'noeviction'] });
      await expect(server.client().config('GET', 'maxmemory-policy')).resolves.toEqual([
        'maxmemory-policy',
        'noeviction',
      ]);
      await server.stop();
    });
  });

  describe('stop', () => {
    it('ends the process, frees the port and removes the directory', async () => {
      const server = await startRedis();
      const client = server.client();
      await expect(client.ping()).resolves.toBe('PONG');
      await expect(tryConnect(server.port)).resolves.toBe('connected');

      await server.stop();

      await expect(tryConnect(server.port)).resolves.toBe('ECONNREFUSED');
      expect(isAlive(server.pid)).toBe(false);
      expect(existsSync(server.dir)).toBe(false);
      expect(client.status).toBe('end');
      await expect(server.stop()).resolves.toBeUndefined();
    });

    it('stops a paused server too', async () => {
      const server = await startRedis();
      await server.pause();
      await server.stop();
      expect(isAlive(server.pid)).toBe(false);
    });
  });

  describe('pause and resume', () => {
    it('makes commands time out while paused and succeed after resume', async () => {
      const client = first.client({ commandTimeout: 200 });
      await expect(client.ping()).resolves.toBe('PONG');

      await first.pause();
      await expect(client.ping()).rejects.toThrow(/timed out/i);

      await first.resume();
      await expect(client.ping()).resolves.toBe('PONG');
    });
  });

  describe('kill and restart', () => {
    it('reports how the process ended and restarts on the same port', async () => {
      const server = await startRedis();
      const client = server.client();
      await client.set('k', 'v');
      const oldPid = server.pid;

      server.kill('SIGKILL');
      await expect(server.exited).resolves.toEqual({ code: null, signal: 'SIGKILL' });
      await expect(tryConnect(server.port)).resolves.toBe('ECONNREFUSED');

      await server.restart();
      expect(server.pid).not.toBe(oldPid);
      // ioredis reconnects by itself; the data is gone since nothing is persisted.
      await waitFor(() => client.status === 'ready', { message: 'the client to reconnect' });
      await expect(client.get('k')).resolves.toBeNull();
      await server.stop();
    });
  });

  describe('forkWorker', () => {
    it('runs a TypeScript worker in another process that reports over IPC', async () => {
      const child = forkWorker(PING_WORKER, [first.url]);

      const report = await nextMessage<PingReport>(child, (message) => message.type === 'pong');

      expect(report).toEqual({ type: 'pong', reply: 'PONG', pid: child.pid });
      expect(report.pid).not.toBe(process.pid);
      await expect(exited(child)).resolves.toEqual({ code: 0, signal: null });
    });

    it('fails nextMessage with the reason when the worker exits without a matching message', async () => {
      const child = forkWorker(PING_WORKER, [second.url]);
      await expect(
        nextMessage<PingReport>(child, (message) => message.message === 'never sent', 5000),
      ).rejects.toThrow(/exited \(code 0/);
      // The unmatched report stayed in the inbox and can still be taken after the exit.
      await expect(nextMessage<PingReport>(child)).resolves.toMatchObject({ type: 'pong' });
    });
  });

  describe('waitFor', () => {
    it('resolves once the condition holds', async () => {
      let calls = 0;
      await waitFor(() => ++calls >= 3, { interval: 1 });
      expect(calls).toBe(3);
    });

    it('fails after the deadline with the message and the last error', async () => {
      await expect(
        waitFor(
          () => {
            throw new Error('not yet');
          },
          { timeout: 50, message: 'the impossible' },
        ),
      ).rejects.toThrow('timed out after 50 ms waiting for the impossible (last error: not yet)');
    });
  });
});

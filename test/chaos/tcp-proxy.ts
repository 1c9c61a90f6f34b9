/**
 * A TCP proxy in front of one redis-server, written for the chaos run: each worker process gets
 * its own, so its connections can be held back or cut one kind at a time. A connection that has
 * sent SUBSCRIBE (any flavour) is a subscriber (`sub`); every other one is a command connection
 * (`cmd`). That is how the lock client's pub/sub connection (a `duplicate()` it makes itself) is
 * told from the command connection without naming it.
 *
 * Faults:
 * - `delay(role, ms, forMs)`: for `forMs`, every chunk Redis sends to a connection of that role
 *   reaches the client `ms` later (order kept), so one connection lags the other;
 * - `drop(role)`: closes both sides of those connections at once (a lost link);
 * - `upstreamAddresses(role)`: how Redis names those connections (`CLIENT KILL ADDR ...`).
 *
 * @example
 * const proxy = await TcpProxy.start({ host: '127.0.0.1', port: redis.port });
 * proxy.delay('sub', 700, 200);
 * await proxy.close();
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { nowMs } from './records.js';

export type Role = 'cmd' | 'sub';

const HOST = '127.0.0.1';
const SUBSCRIBE = /\r\n(p|s)?subscribe\r\n/i;

interface Link {
  client: Socket;
  upstream: Socket;
  role: Role;
  /** Chunks from Redis not yet passed on, with the time each may go. */
  queue: { chunk: Buffer; at: number }[];
  timer?: NodeJS.Timeout;
}

export class TcpProxy {
  private readonly links = new Set<Link>();
  /** Per role: until when chunks are delayed, and by how much. */
  private readonly delays: Record<Role, { until: number; ms: number }> = {
    cmd: { until: 0, ms: 0 },
    sub: { until: 0, ms: 0 },
  };

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Listens on a free port of 127.0.0.1 and forwards every connection to `target`. */
  static start(target: { host: string; port: number }): Promise<TcpProxy> {
    return new Promise((resolve, reject) => {
      let proxy: TcpProxy;
      const server = createServer((client) => proxy.accept(client, target));
      server.once('error', reject);
      server.listen(0, HOST, () => {
        const address = server.address();
        proxy = new TcpProxy(server, typeof address === 'object' && address ? address.port : 0);
        resolve(proxy);
      });
    });
  }

  /** Holds back what Redis sends to connections of `role` by `ms`, for the next `forMs`. */
  delay(role: Role, ms: number, forMs: number): void {
    this.delays[role] = { until: nowMs() + forMs, ms };
  }

  /** Ends every delay now (chunks already held back still go at their time). */
  clearDelays(): void {
    this.delays.cmd = { until: 0, ms: 0 };
    this.delays.sub = { until: 0, ms: 0 };
  }

  /** Cuts every connection of `role`; returns how many. */
  drop(role: Role): number {
    const links = [...this.links].filter((link) => link.role === role);
    for (const link of links) this.cut(link);
    return links.length;
  }

  /** `ip:port` of the proxy's side of each connection of `role`, as Redis lists its clients. */
  upstreamAddresses(role: Role): string[] {
    return [...this.links]
      .filter((link) => link.role === role && link.upstream.localPort !== undefined)
      .map((link) => `${link.upstream.localAddress}:${link.upstream.localPort}`);
  }

  /** Stops listening and cuts every connection. */
  close(): Promise<void> {
    for (const link of this.links) this.cut(link);
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, target: { host: string; port: number }): void {
    const upstream = createConnection(target);
    const link: Link = { client, upstream, role: 'cmd', queue: [] };
    this.links.add(link);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on('data', (chunk: Buffer) => {
      if (link.role === 'cmd' && SUBSCRIBE.test(chunk.toString('latin1'))) link.role = 'sub';
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => this.toClient(link, chunk));
    const end = () => this.cut(link);
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  }

  private toClient(link: Link, chunk: Buffer): void {
    const delay = this.delays[link.role];
    const now = nowMs();
    const at = now < delay.until ? now + delay.ms : now;
    if (link.queue.length === 0 && at <= now) {
      link.client.write(chunk);
      return;
    }
    link.queue.push({ chunk, at });
    this.schedule(link);
  }

  /** Passes on the chunks whose time came, in order; waits for the next one's. */
  private schedule(link: Link): void {
    if (link.timer) return;
    const now = nowMs();
    while (link.queue.length > 0 && link.queue[0].at <= now) {
      link.client.write(link.queue.shift()!.chunk);
    }
    if (link.queue.length === 0) return;
    link.timer = setTimeout(
      () => {
        link.timer = undefined;
        this.schedule(link);
      },
      Math.max(1, link.queue[0].at - now),
    );
  }

  private cut(link: Link): void {
    if (!this.links.delete(link)) return;
    clearTimeout(link.timer);
    link.client.destroy();
    link.upstream.destroy();
  }
}

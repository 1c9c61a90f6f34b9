/**
 * A real Sentinel group for tests: a master and its replicas (`redis-server` processes started by
 * {@link startRedis}) watched by N Sentinels (see `sentinel-process.ts`), all on free ports of
 * 127.0.0.1 with their own temporary directories; the shared Redis on 6379 is never touched.
 *
 * @example
 * let group: SentinelGroup;
 * beforeAll(async () => {
 *   group = await startSentinelGroup({ replicas: 1, sentinels: 3 });
 * });
 * afterAll(() => stopAllSentinelGroups());
 *
 * Timings are shortened so a failover takes a few seconds: a master is considered down after
 * 1 s without answering (`down-after-milliseconds`). {@link stopAllSentinelGroups} stops every
 * group; `stopAllRedis()` alone would leave the Sentinels and the group's clients running.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { startRedis, type RedisServer } from './redis-server.js';
import { startSentinelProcess, type SentinelProcess } from './sentinel-process.js';
import { waitFor } from './wait-for.js';

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 15_000;

/** Options for {@link startSentinelGroup}. */
export interface StartSentinelGroupOptions {
  /** Replicas of the master. Default 1. */
  replicas?: number;
  /** Sentinels watching the master. Default 3. */
  sentinels?: number;
  /** The name the Sentinels monitor the master under. Default 'mymaster'. */
  masterName?: string;
  /** Sentinels that must agree the master is down. Default: a majority. */
  quorum?: number;
  /** `down-after-milliseconds`: silence before a Sentinel thinks the master is down. Default 1000. */
  downAfter?: number;
  /** `failover-timeout` in ms; a failed failover is retried after twice this. Default 2000. */
  failoverTimeout?: number;
  /** Extra `redis-server` arguments for the master and the replicas. */
  args?: string[];
}

/** An address as the Sentinels report it. */
export interface HostPort {
  host: string;
  port: number;
}

/** A running group started by {@link startSentinelGroup}. */
export interface SentinelGroup {
  /** The master at start-up (after a failover it may be dead or a replica). */
  readonly master: RedisServer;
  /** The replicas at start-up. */
  readonly replicas: RedisServer[];
  /** The Sentinels. */
  readonly sentinels: SentinelProcess[];
  /** `{ host, port }` of every Sentinel, for ioredis' `sentinels` option. */
  readonly sentinelAddresses: HostPort[];
  /** The name the master is monitored under. */
  readonly masterName: string;
  /**
   * A new ioredis client that finds the master through the Sentinels (`{ sentinels, name }`),
   * closed by `stop()`. Errors are ignored (a failover closes its connection); add a listener to
   * observe them.
   */
  client(options?: RedisOptions): Redis;
  /** The master's address as the first answering Sentinel reports it. */
  currentMaster(): Promise<HostPort>;
  /**
   * Resolves with the server promoted once every running Sentinel names a master other than
   * `oldPort` and that server reports `role:master`.
   *
   * @throws Error when that does not happen within `timeout` ms (default 15000).
   */
  waitForFailover(oldPort: number, timeout?: number): Promise<RedisServer>;
  /** Closes its clients and stops the Sentinels, then the servers. Safe to call twice. */
  stop(): Promise<void>;
}

const running = new Set<SentinelGroup>();

/**
 * Starts a master, `replicas` replicas (`--replicaof`) and `sentinels` Sentinels monitoring it,
 * and resolves once every replica's link is up and every Sentinel knows all replicas and all
 * other Sentinels — before that a failover could not find a replica or win a vote.
 *
 * @example
 * const group = await startSentinelGroup();
 * const client = group.client();
 * await client.set('k', 'v');
 * group.master.kill();
 * const promoted = await group.waitForFailover(group.master.port);
 * await client.set('k', 'v2'); // ioredis asks the Sentinels again and reaches `promoted`
 * await group.stop();
 *
 * @throws Error when a process does not start or the group is not ready in time; what was
 *   started so far is stopped.
 */
export async function startSentinelGroup(
  options: StartSentinelGroupOptions = {},
): Promise<SentinelGroup> {
  const { replicas = 1, sentinels = 3, masterName = 'mymaster' } = options;
  const group = new ManagedSentinelGroup(masterName);
  running.add(group);
  try {
    await group.start(replicas, sentinels, options);
    return group;
  } catch (error) {
    await group.stop();
    throw error;
  }
}

/** Stops every group started by {@link startSentinelGroup} in this process and not stopped yet. */
export async function stopAllSentinelGroups(): Promise<void> {
  await Promise.all([...running].map((group) => group.stop()));
}

class ManagedSentinelGroup implements SentinelGroup {
  master!: RedisServer;
  replicas: RedisServer[] = [];
  sentinels: SentinelProcess[] = [];
  sentinelAddresses: HostPort[] = [];
  private readonly clients = new Set<Redis>();
  private readonly admins = new Map<RedisServer | SentinelProcess, Redis>();
  private readonly exitedSentinels = new Set<SentinelProcess>();
  private stopping?: Promise<void>;

  constructor(readonly masterName: string) {}

  async start(replicas: number, sentinels: number, options: StartSentinelGroupOptions) {
    const { quorum = Math.floor(sentinels / 2) + 1, downAfter = 1000 } = options;
    const { failoverTimeout = 2000, args = [] } = options;
    // Replicas sync at once instead of waiting 5 s for more replicas to batch with.
    const serverArgs = ['--repl-diskless-sync-delay', '0', ...args];
    this.master = await startRedis({ args: serverArgs });
    const replicaArgs = ['--replicaof', HOST, String(this.master.port), ...serverArgs];
    this.replicas = await startAll(replicas, () => startRedis({ args: replicaArgs }));
    await this.waitForReplicationLinks();

    const name = this.masterName;
    const config = [
      `sentinel monitor ${name} ${HOST} ${this.master.port} ${quorum}`,
      `sentinel down-after-milliseconds ${name} ${downAfter}`,
      `sentinel failover-timeout ${name} ${failoverTimeout}`,
      `sentinel parallel-syncs ${name} 1`,
    ];
    this.sentinels = await startAll(sentinels, () => startSentinelProcess(config));
    for (const sentinel of this.sentinels) {
      void sentinel.exited.then(() => this.exitedSentinels.add(sentinel));
    }
    this.sentinelAddresses = this.sentinels.map((sentinel) => ({
      host: HOST,
      port: sentinel.port,
    }));
    await this.waitForDiscovery(replicas, sentinels);
  }

  client(options: RedisOptions = {}): Redis {
    const client = new Redis({
      sentinels: this.sentinelAddresses,
      name: this.masterName,
      // disconnect() during a reconnection to a killed master would otherwise keep a 2 s timer
      // (ioredis' default) that holds Jest open after the run.
      disconnectTimeout: 100,
      ...options,
    });
    client.on('error', () => undefined);
    this.clients.add(client);
    return client;
  }

  async currentMaster(): Promise<HostPort> {
    let lastError: unknown = new Error('no Sentinel is running');
    for (const sentinel of this.liveSentinels()) {
      try {
        return await this.masterAddress(sentinel);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  async waitForFailover(oldPort: number, timeout = 15_000): Promise<RedisServer> {
    let seen: string[] = [];
    let promoted: RedisServer | undefined;
    await waitFor(
      async () => {
        const reports = await Promise.all(
          this.liveSentinels().map((sentinel) => this.masterAddress(sentinel)),
        );
        seen = reports.map(({ host, port }) => `${host}:${port}`);
        const ports = new Set(reports.map(({ port }) => port));
        if (ports.size !== 1 || ports.has(oldPort)) return false;
        const [port] = ports;
        promoted = [this.master, ...this.replicas].find((server) => server.port === port);
        if (!promoted) throw new Error(`the Sentinels name an unknown master on port ${port}`);
        const replication = await this.admin(promoted).call('INFO', 'replication');
        return /role:master/.test(String(replication));
      },
      {
        timeout,
        interval: 100,
        message: () =>
          `a failover away from port ${oldPort}; the Sentinels report ${seen.join(', ')}`,
      },
    );
    return promoted!;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const client of this.clients) client.disconnect();
      this.clients.clear();
      // Sentinels first, so none reconfigures a server while it is being stopped.
      await Promise.all(this.sentinels.map((sentinel) => sentinel.stop()));
      // `master` is unset when it failed to start.
      const servers = [this.master, ...this.replicas].filter(Boolean);
      await Promise.all(servers.map((server) => server.stop()));
      running.delete(this);
    })();
    return this.stopping;
  }

  private async waitForReplicationLinks(): Promise<void> {
    await waitFor(
      async () => {
        const infos = await Promise.all(
          this.replicas.map((replica) => this.admin(replica).call('INFO', 'replication')),
        );
        return infos.every((info) => /master_link_status:up/.test(String(info)));
      },
      { timeout: READY_TIMEOUT_MS, message: 'the replicas to sync with the master' },
    );
  }

  /**
   * Replicas are found in the master's INFO at once, but Sentinels find each other through hello
   * messages published every 2 s: this wait is most of the start-up time.
   */
  private async waitForDiscovery(replicas: number, sentinels: number): Promise<void> {
    let last = '';
    await waitFor(
      async () => {
        const views = await Promise.all(
          this.sentinels.map(async (sentinel) => {
            const fields = toRecord(
              await this.admin(sentinel).call('SENTINEL', 'MASTER', this.masterName),
            );
            return `${fields['flags']} replicas=${fields['num-slaves']} others=${fields['num-other-sentinels']}`;
          }),
        );
        last = views.join('; ');
        const expected = `master replicas=${replicas} others=${sentinels - 1}`;
        return views.every((view) => view === expected);
      },
      {
        timeout: READY_TIMEOUT_MS,
        interval: 50,
        message: () => `the Sentinels to know every replica and each other: ${last}`,
      },
    );
  }

  private async masterAddress(sentinel: SentinelProcess): Promise<HostPort> {
    const reply = await this.admin(sentinel).call(
      'SENTINEL',
      'GET-MASTER-ADDR-BY-NAME',
      this.masterName,
    );
    const [host, port] = reply as [string, string];
    return { host, port: Number(port) };
  }

  private liveSentinels(): SentinelProcess[] {
    return this.sentinels.filter((sentinel) => !this.exitedSentinels.has(sentinel));
  }

  /** One short-timeout client per process, so asking a dead one fails instead of hanging. */
  private admin(target: RedisServer | SentinelProcess): Redis {
    let admin = this.admins.get(target);
    if (!admin) {
      admin = target.client({
        commandTimeout: 1000,
        maxRetriesPerRequest: 1,
        disconnectTimeout: 100,
      });
      this.admins.set(target, admin);
    }
    return admin;
  }
}

/** Starts `count` processes in parallel; if one fails, stops the others and rethrows. */
async function startAll<T extends { stop(): Promise<void> }>(
  count: number,
  start: () => Promise<T>,
): Promise<T[]> {
  const results = await Promise.allSettled(Array.from({ length: count }, start));
  const started = results.flatMap((result) =>
    result.status === 'fulfilled' ? [result.value] : [],
  );
  const failed = results.find((result) => result.status === 'rejected');
  if (!failed) return started;
  await Promise.all(started.map((one) => one.stop()));
  throw failed.reason;
}

/** `SENTINEL MASTER` replies a flat `[field, value, ...]` list. */
function toRecord(reply: unknown): Record<string, string> {
  const list = (reply as unknown[]).map(String);
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) record[list[i]] = list[i + 1];
  return record;
}

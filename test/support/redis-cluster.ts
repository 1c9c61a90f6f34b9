/**
 * A real Redis Cluster for tests: N masters (and optional replicas), each a `redis-server` started
 * by {@link startRedis} on a free port of 127.0.0.1 with its own temporary directory (where its
 * `nodes.conf` lands too), so the shared Redis on 6379 is never touched.
 *
 * @example
 * let cluster: RedisCluster;
 * beforeAll(async () => {
 *   cluster = await startCluster({ masters: 3 });
 * });
 * afterAll(() => stopAllClusters());
 *
 * The servers are tracked by `redis-server.ts` like any other (watchdog included), so
 * `stopAllRedis()` stops them too; but only `stop()` / {@link stopAllClusters} also close the
 * `Cluster` clients, which otherwise keep reconnecting and hold Jest open.
 */
import { Cluster, type ClusterOptions, type Redis } from 'ioredis';
import { freePort, startRedis, type RedisServer } from './redis-server.js';
import { waitFor } from './wait-for.js';

const HOST = '127.0.0.1';
const SLOTS = 16384;
const BUS_PORT_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 15_000;

/** Options for {@link startCluster}. */
export interface StartClusterOptions {
  /** Masters sharing the 16384 slots evenly. Default 3 (the least `redis-cli` accepts). */
  masters?: number;
  /** Replicas attached to each master. Default 0. */
  replicasPerMaster?: number;
  /** `cluster-node-timeout` in ms: how fast a dead node is marked failed. Default 1000. */
  nodeTimeout?: number;
  /** Extra `redis-server` arguments for every node. */
  args?: string[];
}

/** A running cluster started by {@link startCluster}. */
export interface RedisCluster {
  /** Every node: the masters first, then the replicas (roles as at start-up). */
  readonly nodes: RedisServer[];
  /** The nodes started as masters, in slot order (the first owns slot 0). */
  readonly masters: RedisServer[];
  /** The nodes started as replicas; those of `masters[i]` come before those of `masters[i + 1]`. */
  readonly replicas: RedisServer[];
  /** `{ host, port }` of every node, for `new Cluster(startupNodes)`. */
  readonly startupNodes: { host: string; port: number }[];
  /**
   * A new ioredis `Cluster` on {@link RedisCluster.startupNodes}, closed by `stop()`. It has a no-op
   * 'error' listener so a stopped node does not flood the log; add your own to observe errors.
   */
  client(options?: ClusterOptions): Cluster;
  /** The node that owns the slot of `key` now, as the cluster reports it (`CLUSTER SLOTS`). */
  masterForKey(key: string): Promise<RedisServer>;
  /** Closes its clients and stops every node. Safe to call twice. */
  stop(): Promise<void>;
}

const running = new Set<RedisCluster>();

/**
 * Starts `masters × (1 + replicasPerMaster)` cluster-enabled servers, joins them and resolves once
 * every node reports `cluster_state:ok`, knows every other node, agrees on the slot layout and each
 * replica's link to its master is up.
 *
 * The cluster is formed directly (`CLUSTER ADDSLOTSRANGE`, `MEET`, `REPLICATE`) rather than with
 * `redis-cli --cluster create`, which sleeps a whole second while the nodes join.
 *
 * @example
 * const cluster = await startCluster({ masters: 3, replicasPerMaster: 1 });
 * const client = cluster.client();
 * await client.set('lock:{order-1}', 'token');
 * const owner = await cluster.masterForKey('lock:{order-1}');
 * await cluster.stop();
 *
 * @throws Error when a node does not start or the cluster is not ready in time; the nodes started
 *   so far are stopped.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<RedisCluster> {
  const { masters = 3, replicasPerMaster = 0, nodeTimeout = 1000, args = [] } = options;
  if (masters < 1 || replicasPerMaster < 0) throw new Error('startCluster: invalid topology');
  const count = masters * (1 + replicasPerMaster);
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => startClusterNode(nodeTimeout, args)),
  );
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const cluster = new ManagedCluster(nodes, masters);
  running.add(cluster);
  try {
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    await cluster.form(replicasPerMaster);
    return cluster;
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

/** Stops every cluster started by {@link startCluster} in this process and not stopped yet. */
export async function stopAllClusters(): Promise<void> {
  await Promise.all([...running].map((cluster) => cluster.stop()));
}

interface ClusterNodeServer {
  server: RedisServer;
  busPort: number;
}

/**
 * Starts one cluster-enabled server. Its bus port is chosen like the data port: the default
 * (port + 10000) may be taken or above 65535 for a port from the ephemeral range.
 */
async function startClusterNode(nodeTimeout: number, args: string[]): Promise<ClusterNodeServer> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= BUS_PORT_ATTEMPTS; attempt++) {
    const busPort = await freePort();
    try {
      // prettier-ignore
      const server = await startRedis({
        args: [
          '--cluster-enabled', 'yes',
          // Relative, so it lands in the server's own --dir (redis chdirs there).
          '--cluster-config-file', 'nodes.conf',
          '--cluster-node-timeout', String(nodeTimeout),
          '--cluster-port', String(busPort),
          // Replicas sync at once instead of waiting 5 s for more replicas to batch with.
          '--repl-diskless-sync-delay', '0',
          // CLUSTER SLOTS lists a replica only once its replication offset is non-zero, which an
          // idle master first moves with its replication ping: every 10 s by default.
          '--repl-ping-replica-period', '1',
          ...args,
        ],
      });
      return { server, busPort };
    } catch (error) {
      lastError = error;
      // The data port is retried by startRedis; a taken bus port looks the same, so retry here.
      if (!/Address already in use/i.test(String(error))) break;
    }
  }
  throw lastError;
}

class ManagedCluster implements RedisCluster {
  readonly nodes: RedisServer[];
  readonly masters: RedisServer[];
  readonly replicas: RedisServer[];
  readonly startupNodes: { host: string; port: number }[];
  private readonly busPorts: number[];
  private readonly admins: Redis[];
  private readonly clients = new Set<Cluster>();
  private stopping?: Promise<void>;

  constructor(started: ClusterNodeServer[], masterCount: number) {
    this.nodes = started.map((node) => node.server);
    this.busPorts = started.map((node) => node.busPort);
    this.masters = this.nodes.slice(0, masterCount);
    this.replicas = this.nodes.slice(masterCount);
    this.startupNodes = this.nodes.map((node) => ({ host: HOST, port: node.port }));
    // A timeout, so asking a killed or paused node fails instead of hanging the caller.
    this.admins = this.nodes.map((node) =>
      node.client({ commandTimeout: 1000, disconnectTimeout: 100 }),
    );
  }

  /** Joins the started nodes into one cluster and waits until it is ready. */
  async form(replicasPerMaster: number): Promise<void> {
    const { admins, masters } = this;
    const ids = (await Promise.all(admins.map((admin) => admin.call('CLUSTER', 'MYID')))).map(
      String,
    );
    // Distinct config epochs up front, as redis-cli does: otherwise all start at 0 and the nodes
    // spend extra rounds resolving the collision before agreeing on slot owners.
    await Promise.all(admins.map((admin, i) => admin.call('CLUSTER', 'SET-CONFIG-EPOCH', i + 1)));
    const ranges = slotRanges(masters.length);
    await Promise.all(
      ranges.map(([start, end], i) => admins[i].call('CLUSTER', 'ADDSLOTSRANGE', start, end)),
    );
    // One node meeting all others is enough: gossip introduces them to each other.
    await Promise.all(
      this.nodes
        .slice(1)
        .map((node, i) => admins[0].call('CLUSTER', 'MEET', HOST, node.port, this.busPorts[i + 1])),
    );
    // CLUSTER REPLICATE fails until the replica has heard of its master: wait for the handshakes.
    await waitFor(async () => (await Promise.all(admins.map(knowsAll(ids)))).every(Boolean), {
      timeout: READY_TIMEOUT_MS,
      message: 'every cluster node to know every other node',
    });
    await Promise.all(
      this.replicas.map((_, r) => {
        const master = Math.floor(r / replicasPerMaster);
        return admins[masters.length + r].call('CLUSTER', 'REPLICATE', ids[master]);
      }),
    );
    // Most of the start-up time is spent here: a master keeps reporting cluster_state:fail for
    // 2 s after it starts (CLUSTER_WRITABLE_DELAY in Redis), whatever the harness does.
    const expected = this.expectedLayout(ranges, replicasPerMaster);
    let last = '';
    await waitFor(
      async () => {
        const states = await Promise.all(admins.map((admin) => nodeState(admin)));
        last = states.join('\n');
        return states.every((state) => state === expected);
      },
      {
        timeout: READY_TIMEOUT_MS,
        interval: 50,
        message: () => `the cluster to be ready:\nexpected ${expected}\ngot\n${last}`,
      },
    );
  }

  client(options: ClusterOptions = {}): Cluster {
    const client = new Cluster(this.startupNodes, {
      ...options,
      // disconnect() during a reconnection to a killed node would otherwise keep a 2 s timer
      // (ioredis' default) that holds Jest open after the run.
      redisOptions: { disconnectTimeout: 100, ...options.redisOptions },
    });
    client.on('error', () => undefined);
    this.clients.add(client);
    return client;
  }

  async masterForKey(key: string): Promise<RedisServer> {
    const slot = Number(await this.ask(['CLUSTER', 'KEYSLOT', key]));
    const layout = (await this.ask(['CLUSTER', 'SLOTS'])) as SlotsReply;
    const owner = layout.find(([start, end]) => start <= slot && slot <= end);
    const node = owner && this.nodes.find((candidate) => candidate.port === Number(owner[2][1]));
    if (!node) throw new Error(`masterForKey: no node owns slot ${slot} of '${key}'`);
    return node;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // disconnect() drops every node connection and cancels reconnection. Its `status` is no
      // proof: ioredis 6 emits 'end' on the first closed node, then goes back to 'close'.
      for (const client of this.clients) client.disconnect();
      this.clients.clear();
      await Promise.all(this.nodes.map((node) => node.stop()));
      running.delete(this);
    })();
    return this.stopping;
  }

  /** Sends a command to the first node that answers: any may have been killed or paused. */
  private async ask(command: [string, ...(string | number)[]]): Promise<unknown> {
    let lastError: unknown = new Error('no node is connected');
    for (const admin of this.admins) {
      if (admin.status !== 'ready') continue;
      try {
        return await admin.call(...command);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  /** What {@link nodeState} reports for every node once the cluster is ready. */
  private expectedLayout(ranges: [number, number][], replicasPerMaster: number): string {
    const slots = ranges.map(([start, end], i) => {
      const own = this.replicas.slice(i * replicasPerMaster, (i + 1) * replicasPerMaster);
      return describeRange(
        start,
        end,
        this.masters[i].port,
        own.map((node) => node.port),
      );
    });
    return `ok nodes=${this.nodes.length} link=up ${slots.join(' ')}`;
  }
}

/** `CLUSTER SLOTS`: `[start, end, [host, port, id, ...], ...replicas]` per range. */
type SlotsReply = [number, number, ...[string, number, string, ...unknown[]][]][];

/** The evenly split `[start, end]` slot range of each master. */
function slotRanges(masters: number): [number, number][] {
  return Array.from({ length: masters }, (_, i) => [
    Math.floor((i * SLOTS) / masters),
    Math.floor(((i + 1) * SLOTS) / masters) - 1,
  ]);
}

function describeRange(start: number, end: number, master: number, replicas: number[]): string {
  return `${start}-${end}@${[master, ...[...replicas].sort((a, b) => a - b)].join(',')}`;
}

/** True when the node knows every id and no handshake with any of them is pending. */
function knowsAll(ids: string[]): (admin: Redis) => Promise<boolean> {
  return async (admin) => {
    const lines = String(await admin.call('CLUSTER', 'NODES'))
      .trim()
      .split('\n');
    const settled = lines.filter((line) => !/handshake|noaddr/.test(line.split(' ')[2]));
    return ids.every((id) => settled.some((line) => line.startsWith(`${id} `)));
  };
}

/**
 * One line summing up what a node believes: its cluster state, how many nodes it knows, whether
 * its replication link is up (masters count as up) and the slot layout with replicas.
 */
async function nodeState(admin: Redis): Promise<string> {
  const [info, slots, replication] = await Promise.all([
    admin.call('CLUSTER', 'INFO').then(String),
    admin.call('CLUSTER', 'SLOTS') as Promise<SlotsReply>,
    admin.call('INFO', 'replication').then(String),
  ]);
  const state = /cluster_state:(\w+)/.exec(info)?.[1];
  const known = /cluster_known_nodes:(\d+)/.exec(info)?.[1];
  const link = /role:master/.test(replication)
    ? 'up'
    : /master_link_status:(\w+)/.exec(replication)?.[1];
  const layout = [...slots]
    .sort((a, b) => a[0] - b[0])
    .map(([start, end, master, ...replicas]) =>
      describeRange(
        start,
        end,
        Number(master[1]),
        replicas.map((replica) => Number(replica[1])),
      ),
    );
  return `${state} nodes=${known} link=${link} ${layout.join(' ')}`;
}

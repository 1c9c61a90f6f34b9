// Whether the Redis nodes the locks live on answer, node by node, and how fast (health checks).
import type { Cluster, Redis } from 'ioredis';
import { NODE_NOT_CONNECTED } from '../../redis-lock.messages.js';
import { monotonicNow } from '../lease/monotonic-clock.js';
import { answerWithin } from '../waiting/race-attempt.js';
import { isCluster, type RedisClient } from './redis-connection.js';

/** Where the locks live: one Redis, one behind Sentinel, a Cluster, or Redlock masters. */
export type LockTopology = 'standalone' | 'sentinel' | 'cluster' | 'redlock' | 'memory';

/**
 * One node's answer to a `PING`.
 *
 * @example
 * const node: NodeProbe = { address: '10.0.0.1:6379', role: 'master', up: true, roundTripMs: 0.4 };
 */
export interface NodeProbe {
  /** `host:port` (for Sentinel, of the master the client is connected to, when it is). */
  readonly address: string;
  readonly role: 'master';
  readonly up: boolean;
  /** Time from sending the `PING` to its answer, in ms; absent when the node did not answer. */
  readonly roundTripMs?: number;
  /** Why the node counts as down (the connection error, or no answer in time). */
  readonly error?: string;
}

/**
 * The lock store's health: `up` when locks can be taken, i.e. every node answers (Redlock: a
 * majority of the masters does).
 *
 * @example
 * const probe = await locks.probe();
 * if (!probe.up) alert(probe.nodes.filter((node) => !node.up));
 */
export interface StoreProbe {
  readonly topology: LockTopology;
  readonly up: boolean;
  /** The slowest round trip among the nodes that answered (ms); absent when none did. */
  readonly roundTripMs?: number;
  readonly nodes: readonly NodeProbe[];
}

/**
 * Sends one `PING` to each node the locks live on (each Cluster master, each Redlock master, the
 * Sentinel master through the client's own connection), each given up on after `timeout` ms.
 *
 * @example
 * const probe = await probeStore([redis], false, 1_000);
 */
export async function probeStore(
  clients: readonly RedisClient[],
  redlock: boolean,
  timeout: number,
): Promise<StoreProbe> {
  const cluster = !redlock && isCluster(clients[0]) ? clients[0] : undefined;
  const probes = cluster
    ? await probeCluster(cluster, timeout)
    : await Promise.all((clients as Redis[]).map((node) => pingNode(node, timeout)));
  const answered = probes.filter((node) => node.up);
  const needed = redlock ? Math.floor(probes.length / 2) + 1 : Math.max(1, probes.length);
  const slowest = Math.max(...answered.map((node) => node.roundTripMs ?? 0));
  return {
    topology: redlock ? 'redlock' : cluster ? 'cluster' : topologyOf(clients[0] as Redis),
    up: answered.length >= needed,
    ...(answered.length > 0 ? { roundTripMs: slowest } : {}),
    nodes: probes,
  };
}

/**
 * Every master the slot map names, as any node that answers tells it: ioredis drops a node it lost
 * the connection to from `nodes()`, so a stopped master would go unreported.
 */
async function probeCluster(cluster: Cluster, timeout: number): Promise<NodeProbe[]> {
  const connected = new Map(cluster.nodes().map((node) => [addressOf(node), node]));
  let masters: string[];
  try {
    const slots = await Promise.any(
      [...connected.values()].map((node) => answerWithin(node.cluster('SLOTS'), timeout)),
    );
    // Per slot range: first and last slot, then the master's host and port, then its replicas.
    const named = slots.map(([, , master]) => (master ? `${master[0]}:${master[1]}` : ''));
    masters = [...new Set(named.filter(Boolean))];
  } catch {
    // No node answers: report the masters the client knows, each down.
    masters = cluster.nodes('master').map(addressOf);
  }
  return Promise.all(
    masters.map((address) => {
      const node = connected.get(address);
      if (node) return pingNode(node, timeout);
      return { address, role: 'master' as const, up: false, error: NODE_NOT_CONNECTED };
    }),
  );
}

function topologyOf(redis: Redis): LockTopology {
  return redis.options.sentinels?.length ? 'sentinel' : 'standalone';
}

async function pingNode(node: Redis, timeout: number): Promise<NodeProbe> {
  const sent = monotonicNow();
  try {
    await answerWithin(node.ping(), timeout);
    const roundTripMs = Math.round((monotonicNow() - sent) * 100) / 100;
    return { address: addressOf(node), role: 'master', up: true, roundTripMs };
  } catch (err) {
    return { address: addressOf(node), role: 'master', up: false, error: (err as Error).message };
  }
}

function addressOf(node: Redis | Cluster): string {
  const { options } = node as Redis;
  if (options.sentinels?.length) {
    // The master Sentinel named: where the connection went, once it went somewhere.
    const { remoteAddress, remotePort } = (node as Redis).stream ?? {};
    return remoteAddress ? `${remoteAddress}:${remotePort}` : `sentinel master "${options.name}"`;
  }
  return options.path ?? `${options.host}:${options.port}`;
}

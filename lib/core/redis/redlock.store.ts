/* Locks on a Redlock quorum of independent masters: a majority grants, renews and releases. */
import type { Redis } from 'ioredis';
import {
  DEFAULT_REDLOCK_DRIFT_FACTOR,
  DEFAULT_REDLOCK_NODE_TIMEOUT,
  REDLOCK_ANSWER_MARGIN,
} from '../../redis-lock.constants.js';
import { trustedLease } from '../lease/monotonic-clock.js';
import { invalidOptionMessage, redlockFailureMessage } from '../../redis-lock.messages.js';
import type { LockStore } from './lock-store.interface.js';
import type { LockTarget } from '../keys/lock-target.js';
import { acquireReply, LockScripts } from './scripts/index.js';
import { answerWithin } from '../waiting/race-attempt.js';
import { isCluster, type RedisClient } from './redis-connection.js';
import { chunks, extendBatch, type Renewal, type RenewalOutcome } from './lock-renewals.js';

/**
 * Redlock: the same lock on N independent Redis masters (3 or 5 in practice).
 *
 * @example
 * const redlock: RedlockOptions = { clients: [a, b, c], nodeTimeout: 50 };
 */
export interface RedlockOptions {
  /** Independent masters (not replicas of each other, not a Cluster). */
  clients: RedisClient[];
  /** Share of the ttl allowed for clock drift between the masters. Default 0.01. */
  driftFactor?: number;
  /** How long one master may take to answer, in ms; keep it far below the ttl. Default 50. */
  nodeTimeout?: number;
}

/** What one master answered, or why it did not. */
type NodeResult<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Locks on a Redlock quorum, the algorithm of the Redis documentation's "Distributed Locks with
 * Redis": the same script runs on every master in parallel, each bounded by `nodeTimeout`; a
 * grant needs a majority (N/2 + 1) and is trusted for ttl minus the time it took minus drift
 * (ttl x driftFactor + 2 ms). A failed attempt is released on every master, including those that
 * seemed to fail (their SET may still land). Extending needs a majority too; releasing goes to all.
 *
 * Not available here, because independent masters share no order: fair queues and pub/sub
 * wake-ups (waiters poll with the retry strategy). Fencing tokens are the largest a majority
 * issued: they grow with Redis' clocks, but no single counter orders them.
 *
 * @example
 * const store = new RedlockStore({ clients: [a, b, c] });
 */
export class RedlockStore implements LockStore {
  readonly supportsQueues = false;
  readonly quorum: number;
  /** A failed acquire runs two rounds (the attempt, then the undo), each up to nodeTimeout. */
  readonly maxAnswerTime: number;
  private readonly clients: RedisClient[];
  private readonly driftFactor: number;
  private readonly nodeTimeout: number;

  /** @throws RangeError on fewer than 2 clients, a Cluster client, or invalid numbers. */
  constructor(options: RedlockOptions) {
    const { clients, driftFactor = DEFAULT_REDLOCK_DRIFT_FACTOR } = options;
    const nodeTimeout = options.nodeTimeout ?? DEFAULT_REDLOCK_NODE_TIMEOUT;
    if (!Array.isArray(clients) || clients.length < 2 || clients.some(isCluster)) {
      throw new RangeError(
        invalidOptionMessage('redlock.clients', clients, 'two or more independent Redis masters'),
      );
    }
    if (!(driftFactor >= 0 && driftFactor < 1)) {
      throw new RangeError(invalidOptionMessage('redlock.driftFactor', driftFactor, '0 to 1'));
    }
    if (!Number.isInteger(nodeTimeout) || nodeTimeout < 1) {
      throw new RangeError(
        invalidOptionMessage('redlock.nodeTimeout', nodeTimeout, 'a positive integer of ms'),
      );
    }
    this.clients = clients;
    this.driftFactor = driftFactor;
    this.nodeTimeout = nodeTimeout;
    this.quorum = Math.floor(clients.length / 2) + 1;
    this.maxAnswerTime = 2 * nodeTimeout + REDLOCK_ANSWER_MARGIN;
  }

  lease(ttl: number): number {
    return trustedLease(ttl, this.driftFactor);
  }

  async acquire(target: LockTarget, token: string, ttl: number): Promise<number> {
    const results = await this.onEveryNode((redis) =>
      LockScripts.acquire.run(redis, target.acquireKeys, [token, ttl]).then(acquireReply),
    );
    const granted = values(results).filter((fence) => (fence as number) > 0) as number[];
    if (granted.length >= this.quorum) return Math.max(...granted);
    // Undo everywhere, also where the answer was lost: a late SET must not linger.
    await this.onEveryNode((redis) =>
      LockScripts.releaseUnqueued.run(redis, target.locks, [token]),
    );
    this.failIfNoMajorityCanAnswer(results, 'acquire');
    const busy = values(results).find((reply) => (reply as number) < 0) as number | undefined;
    return busy ?? -3;
  }

  /**
   * One EXTEND per RENEWAL_BATCH locks on every master, each bounded by `nodeTimeout`; the quorum
   * is judged per lock. A lock is renewed when a majority renewed it, and lost when so many
   * masters refused it that a majority can never hold it again; otherwise (masters that failed or
   * did not answer) its outcome is unknown, an error naming them.
   */
  async extend(renewals: readonly Renewal[], timeout: number): Promise<RenewalOutcome[]> {
    const nodeTimeout = Math.min(timeout, this.nodeTimeout);
    const batches = await Promise.all(
      chunks(renewals).map(async (batch) => {
        const byNode = await Promise.all(
          this.clients.map((redis) => extendBatch(LockScripts.extend, redis, batch, nodeTimeout)),
        );
        return batch.map((_, i) => this.judgeExtend(byNode.map((node, n) => [n, node[i]])));
      }),
    );
    return batches.flat();
  }

  /** One lock's outcome from each master's answer (with the master's index). */
  private judgeExtend(answers: [number, RenewalOutcome][]): RenewalOutcome {
    const extended = answers.filter(([, answer]) => answer === true).length;
    if (extended >= this.quorum) return true;
    const refused = answers.filter(([, answer]) => answer === false).length;
    if (refused > this.clients.length - this.quorum) return false;
    const failures = answers.flatMap(([n, answer]) =>
      answer instanceof Error ? [`${nodeName(this.clients[n])}: ${answer.message}`] : [],
    );
    return new Error(redlockFailureMessage('extend', failures, answers.length, this.quorum));
  }

  async release(target: LockTarget, token: string): Promise<boolean> {
    const results = await this.onEveryNode((redis) =>
      LockScripts.releaseUnqueued.run(redis, target.locks, [token]),
    );
    this.failIfNoMajorityCanAnswer(results, 'release');
    const released = values(results).filter((count) => count === target.locks.length).length;
    return released >= this.quorum;
  }

  async leaveQueue(): Promise<void> {
    // No queues across independent masters.
  }

  async isLocked(lockKey: string): Promise<boolean> {
    const results = await this.onEveryNode((redis) => redis.exists(lockKey));
    this.failIfNoMajorityCanAnswer(results, 'check');
    return values(results).filter((exists) => exists === 1).length >= this.quorum;
  }

  /** Runs `command` on every master at once, each bounded by `nodeTimeout`. */
  private onEveryNode<T>(command: (redis: RedisClient) => Promise<T>): Promise<NodeResult<T>[]> {
    return Promise.all(
      this.clients.map(async (redis): Promise<NodeResult<T>> => {
        try {
          return { ok: true, value: await answerWithin(command(redis), this.nodeTimeout) };
        } catch (err) {
          return { ok: false, error: `${nodeName(redis)}: ${(err as Error).message}` };
        }
      }),
    );
  }

  /** Throws `noMajorityError` when fewer than a majority of the masters answered. */
  private failIfNoMajorityCanAnswer<T>(results: NodeResult<T>[], what: string): void {
    if (values(results).length < this.quorum) throw this.noMajorityError(results, what);
  }

  /** The error naming every master that failed and why. */
  private noMajorityError<T>(results: NodeResult<T>[], what: string): Error {
    const failures = results.flatMap((r) => (r.ok ? [] : [r.error]));
    return new Error(redlockFailureMessage(what, failures, results.length, this.quorum));
  }
}

function values<T>(results: NodeResult<T>[]): T[] {
  return results.flatMap((r) => (r.ok ? [r.value] : []));
}

/** `host:port` of a master, for messages (never credentials). */
function nodeName(redis: RedisClient): string {
  const { host, port, path } = (redis as Redis).options ?? {};
  return path ?? `${host ?? '?'}:${port ?? '?'}`;
}

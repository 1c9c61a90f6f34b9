/**
 * Watches the EXTEND calls a server runs (Redis `MONITOR`) and groups them into renewal rounds,
 * for the batched-renewal specs. Nothing here talks to a Redis the harness did not start.
 */
import { ClusterLockScripts, LockScripts } from '../../lib/core/redis/scripts/index.js';
import { startMonitor, type Monitor } from '../support/monitor.js';

/** One EXTEND call as the server ran it. */
export interface ExtendCall {
  /** Redis' clock, ms. */
  at: number;
  /** The lock keys it touched. */
  keys: string[];
  /** The token of each lock it renewed (ARGV holds token, ttl, key count per lock). */
  tokens: string[];
}

/**
 * EXTEND calls within this many ms of the previous one belong to the same round. One batch's calls
 * are written together, but a starved server (a loaded machine) may run them over 100 ms or so;
 * batches fire a sixth of the ttl apart at least (500 ms at the specs' 3 s).
 */
const ROUND_GAP_MS = 200;

const EXTEND_SOURCES = new Set([LockScripts.extend.source, ClusterLockScripts.extend.source]);
const EXTEND_SHAS = new Set([LockScripts.extend.sha, ClusterLockScripts.extend.sha]);

/** Records every EXTEND call of one server from `start` until `stop`. */
export class ExtendCalls {
  readonly calls: ExtendCall[] = [];

  private constructor(private readonly monitor: Monitor) {}

  static async start(port: number): Promise<ExtendCalls> {
    const recorder = new ExtendCalls(await startMonitor(port));
    recorder.monitor.onCommand((args, at) => {
      const command = args[0].toLowerCase();
      const isExtend =
        (command === 'evalsha' && EXTEND_SHAS.has(args[1])) ||
        (command === 'eval' && EXTEND_SOURCES.has(args[1]));
      if (!isExtend) return;
      const n = Number(args[2]);
      const argv = args.slice(3 + n);
      recorder.calls.push({
        at,
        keys: args.slice(3, 3 + n),
        tokens: argv.filter((_, j) => j % 3 === 0),
      });
    });
    return recorder;
  }

  /**
   * The calls grouped into rounds: consecutive calls less than ROUND_GAP_MS apart (one batch is
   * sent in one go).
   */
  rounds(): ExtendCall[][] {
    const rounds: ExtendCall[][] = [];
    let previous = -Infinity;
    for (const call of this.calls) {
      if (call.at - previous >= ROUND_GAP_MS) rounds.push([]);
      rounds[rounds.length - 1].push(call);
      previous = call.at;
    }
    return rounds;
  }

  stop(): void {
    this.monitor.stop();
  }
}

/** Every token a round renewed, with how often. */
export function renewedIn(round: ExtendCall[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const call of round) {
    for (const token of call.tokens) counts.set(token, (counts.get(token) ?? 0) + 1);
  }
  return counts;
}

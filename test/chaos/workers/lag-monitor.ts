/**
 * Measures the stretches in which this process's event loop did not run (GC, a loaded machine,
 * a SIGSTOP, an injected block), so the checker can tell a stalled process from a library that
 * overran: a timer that should tick every TICK ms and came LAG ms or more late is a stall.
 *
 * @example
 * const monitor = startLagMonitor((start, end) => records.push({ t: 'stall', pid, start, end }));
 * monitor.stop();
 */
import { nowMs } from '../records.js';

const TICK = 10;
/** Lateness (ms) from which a tick counts as a stall; the wait bound's grace covers less. */
export const LAG = 60;

export function startLagMonitor(onStall: (start: number, end: number) => void): {
  stop(): void;
} {
  let last = nowMs();
  const timer = setInterval(() => {
    const now = nowMs();
    if (now - last >= TICK + LAG) onStall(last, now);
    last = now;
  }, TICK);
  return { stop: () => clearInterval(timer) };
}

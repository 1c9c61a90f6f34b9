/**
 * Totals over a chaos run (every round of every seed) and their printing: grants by mode, faults
 * injected by kind, wait outcomes, violations by invariant, restart-window overlaps.
 *
 * @example
 * const totals = new Totals();
 * totals.add(outcome);
 * console.log(totals.text());
 */
import type { Violation } from './checker.js';
import type { RoundOutcome } from './round.js';

type Counts = Record<string, number>;

const bump = (counts: Counts, key: string, by = 1) => void (counts[key] = (counts[key] ?? 0) + by);

export class Totals {
  rounds = 0;
  readonly grants: Counts = {};
  readonly joined: Counts = {};
  readonly faults: Counts = {};
  readonly waits: Counts = {};
  readonly violations: Counts = {};
  restartOverlaps = 0;
  redlockFenceInversions = 0;
  excusedLosses = 0;
  readonly lossExcuses: Counts = {};
  excusedWaits = 0;
  /** Per seed, the first round (its fast-check path) that broke each invariant, and when. */
  readonly failures: { seed: number; path: string; invariant: string; afterMs: number }[] = [];

  add(outcome: RoundOutcome): void {
    const { observations, result } = outcome;
    this.rounds++;
    for (const s of observations.sections) bump(s.joined ? this.joined : this.grants, s.mode);
    for (const f of observations.faults) bump(this.faults, f.kind);
    for (const w of observations.waits) bump(this.waits, w.outcome);
    for (const v of result.violations) bump(this.violations, v.invariant);
    this.restartOverlaps += result.restartOverlaps;
    this.redlockFenceInversions += result.redlockFenceInversions;
    this.excusedLosses += result.excusedLosses;
    for (const [why, n] of Object.entries(result.lossExcuses)) bump(this.lossExcuses, why, n);
    this.excusedWaits += result.excusedWaits;
  }

  get violationCount(): number {
    return Object.values(this.violations).reduce((a, b) => a + b, 0);
  }

  text(): string {
    const line = (counts: Counts) =>
      Object.entries(counts)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none';
    return [
      `rounds: ${this.rounds}`,
      `grants by mode: ${line(this.grants)}`,
      `joined (reentrant) sections by mode: ${line(this.joined)}`,
      `faults injected by kind: ${line(this.faults)}`,
      `waits by outcome: ${line(this.waits)} (timed out: ${this.waits['not-acquired'] ?? 0})`,
      `violations by invariant: ${line(this.violations)} (total ${this.violationCount})`,
      `restart-window overlaps (reported apart): ${this.restartOverlaps}`,
      `Redlock fencing inversions (documented, reported apart): ${this.redlockFenceInversions}`,
      `explained by faults: ${this.excusedLosses} lost renewed locks (${line(this.lossExcuses)}), ` +
        `${this.excusedWaits} late waits`,
    ].join('\n');
  }

  json(): object {
    const { rounds, grants, joined, faults, waits, violations, failures } = this;
    return {
      rounds,
      grants,
      joined,
      faults,
      waits,
      violations,
      violationCount: this.violationCount,
      restartOverlaps: this.restartOverlaps,
      redlockFenceInversions: this.redlockFenceInversions,
      excusedLosses: this.excusedLosses,
      lossExcuses: this.lossExcuses,
      excusedWaits: this.excusedWaits,
      failures,
    };
  }
}

/** The first few violations of a round, one per line, grouped by invariant. */
export function violationText(violations: Violation[], perInvariant = 3): string {
  const shown = new Map<string, number>();
  const lines: string[] = [];
  for (const v of violations) {
    const n = shown.get(v.invariant) ?? 0;
    shown.set(v.invariant, n + 1);
    if (n < perInvariant) lines.push(`  ${v.invariant}: ${v.message}`);
  }
  for (const [invariant, n] of shown) {
    if (n > perInvariant) lines.push(`  ${invariant}: ... ${n - perInvariant} more`);
  }
  return lines.join('\n');
}

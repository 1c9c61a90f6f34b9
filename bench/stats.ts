/** Small statistics helpers for the benchmark; samples are milliseconds unless noted. */

/** Nearest-rank percentile (`p` in 0..100) of an ascending-sorted sample; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** A sorted copy, as a typed array so tens of thousands of samples stay cheap. */
export function sortedCopy(samples: ArrayLike<number>): Float64Array {
  return Float64Array.from(samples).sort();
}

/**
 * Jain's fairness index, (Σx)² / (n·Σx²): 1 when every worker got the same share, 1/n when one
 * worker got everything. NaN when nobody got anything.
 */
export function jainIndex(shares: readonly number[]): number {
  const sum = shares.reduce((a, b) => a + b, 0);
  const sumOfSquares = shares.reduce((a, b) => a + b * b, 0);
  return sumOfSquares === 0 ? NaN : (sum * sum) / (shares.length * sumOfSquares);
}

/** Milliseconds on a monotonic clock. */
export const now = (): number => performance.now();

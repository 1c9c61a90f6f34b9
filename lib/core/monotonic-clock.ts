/** Monotonic milliseconds: lease arithmetic must not jump with the wall clock. */
export const monotonicNow = (): number => performance.now();

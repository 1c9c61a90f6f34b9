import { jest } from '@jest/globals';
import { exponentialBackoff, fixedDelay } from '../../lib/core/waiting/retry.strategies.js';

/** Upper bound of the full-jitter delay before attempt n + 1. */
const bound = (base: number, cap: number, n: number) => Math.min(cap, base * 2 ** (n - 1));

describe('fixedDelay', () => {
  it('returns the interval for every attempt', () => {
    const retry = fixedDelay(120);
    expect([1, 2, 3, 10, 1000].map(retry)).toEqual([120, 120, 120, 120, 120]);
  });

  it('accepts 0 (retry at once)', () => {
    expect(fixedDelay(0)(1)).toBe(0);
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects %p with a RangeError', (value) => {
    expect(() => fixedDelay(value)).toThrow(RangeError);
    expect(() => fixedDelay(value)).toThrow(`Retry interval must be a finite number`);
  });
});

describe('exponentialBackoff', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('stays within [0, min(cap, base * 2^(n-1))] for every attempt', () => {
    const base = 10;
    const cap = 300;
    const retry = exponentialBackoff({ base, cap });
    for (let n = 1; n <= 12; n++) {
      for (let i = 0; i < 500; i++) {
        const delay = retry(n);
        expect(delay).not.toBeNull();
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(bound(base, cap, n));
      }
    }
  });

  it('reaches exactly the bound at the top of the random range and 0 at the bottom', () => {
    const retry = exponentialBackoff({ base: 10, cap: 300 });
    jest.spyOn(Math, 'random').mockReturnValue(0);
    expect([1, 2, 6].map(retry)).toEqual([0, 0, 0]);
    // Math.random() < 1; a value just below 1 gives just below the bound.
    jest.spyOn(Math, 'random').mockReturnValue(1 - Number.EPSILON);
    expect(retry(1)).toBeCloseTo(10, 6);
    expect(retry(2)).toBeCloseTo(20, 6);
    expect(retry(5)).toBeCloseTo(160, 6);
    expect(retry(6)).toBeCloseTo(300, 6); // 320 capped
    expect(retry(100)).toBeCloseTo(300, 6);
  });

  it('spreads delays over the whole range (full jitter, not a fixed fraction)', () => {
    const retry = exponentialBackoff({ base: 100, cap: 100 });
    const delays = Array.from({ length: 2000 }, () => retry(1) as number);
    const min = Math.min(...delays);
    const max = Math.max(...delays);
    const mean = delays.reduce((sum, d) => sum + d, 0) / delays.length;
    // 2000 uniform samples: the chance of missing either 10 % tail is 2 * 0.9^2000 ≈ 0.
    expect(min).toBeLessThan(10);
    expect(max).toBeGreaterThan(90);
    expect(mean).toBeGreaterThan(40);
    expect(mean).toBeLessThan(60);
    expect(new Set(delays).size).toBeGreaterThan(1900);
  });

  it('defaults to base 25 ms and cap 500 ms', () => {
    const retry = exponentialBackoff();
    jest.spyOn(Math, 'random').mockReturnValue(1 - Number.EPSILON);
    expect(retry(1)).toBeCloseTo(25, 6);
    expect(retry(5)).toBeCloseTo(400, 6);
    expect(retry(6)).toBeCloseTo(500, 6);
  });

  it('stays finite and capped for huge attempt numbers', () => {
    const retry = exponentialBackoff({ base: 1000, cap: 2000 });
    for (const n of [31, 100, 1e6, Number.MAX_SAFE_INTEGER]) {
      const delay = retry(n) as number;
      expect(Number.isFinite(delay)).toBe(true);
      expect(delay).toBeLessThanOrEqual(2000);
    }
  });

  it.each([
    [{ base: -1 }, 'base'],
    [{ base: Number.NaN }, 'base'],
    [{ cap: -5 }, 'cap'],
    [{ cap: Number.POSITIVE_INFINITY }, 'cap'],
  ])('rejects %p with a RangeError naming %s', (options, name) => {
    expect(() => exponentialBackoff(options)).toThrow(RangeError);
    expect(() => exponentialBackoff(options)).toThrow(`Retry ${name} must be`);
  });
});

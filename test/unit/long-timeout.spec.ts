import { jest } from '@jest/globals';
import { setLongTimeout } from '../../lib/core/lease/long-timeout.js';
import { MAX_TIMER_DELAY } from '../../lib/redis-lock.constants.js';

describe('setLongTimeout', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('is needed: Jest fake timers, like Node, run a plain setTimeout of 2^31 ms after 1 ms', () => {
    const fired = jest.fn();
    setTimeout(fired, 2 ** 31);
    jest.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it.each([0, 1, 1_000, MAX_TIMER_DELAY])('fires after %p ms, not a ms earlier', (ms) => {
    const fired = jest.fn();
    setLongTimeout(fired, ms);
    if (ms > 0) {
      jest.advanceTimersByTime(ms - 1);
      expect(fired).not.toHaveBeenCalled();
    }
    jest.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it.each([2 ** 31, 2 * MAX_TIMER_DELAY, 3 * MAX_TIMER_DELAY + 7])(
    'fires a delay past 2^31 - 1 (%p ms) once, at its end, through timers of at most 2^31 - 1 ms',
    (ms) => {
      const fired = jest.fn();
      setLongTimeout(fired, ms);
      for (let left = ms - 1; left > 0; left -= Math.min(left, MAX_TIMER_DELAY)) {
        // One timer at a time, never longer than Node keeps.
        expect(jest.getTimerCount()).toBe(1);
        jest.advanceTimersByTime(Math.min(left, MAX_TIMER_DELAY));
        expect(fired).not.toHaveBeenCalled();
      }
      jest.advanceTimersByTime(1);
      expect(fired).toHaveBeenCalledTimes(1);
      expect(jest.getTimerCount()).toBe(0);
    },
  );

  it.each([Number.MAX_SAFE_INTEGER, Infinity])('%p ms does not fire within 100 chunks', (ms) => {
    const fired = jest.fn();
    setLongTimeout(fired, ms);
    for (let i = 0; i < 100; i++) jest.advanceTimersByTime(MAX_TIMER_DELAY);
    expect(fired).not.toHaveBeenCalled();
    expect(jest.getTimerCount()).toBe(1);
  });

  it('clear() stops it in a later chunk', () => {
    const fired = jest.fn();
    const timer = setLongTimeout(fired, 2 * MAX_TIMER_DELAY + 10);
    jest.advanceTimersByTime(MAX_TIMER_DELAY + 5);
    timer.clear();
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(2 * MAX_TIMER_DELAY);
    expect(fired).not.toHaveBeenCalled();
  });

  it('treats a negative delay as 0, as setTimeout does', () => {
    const fired = jest.fn();
    setLongTimeout(fired, -5);
    jest.advanceTimersByTime(0);
    expect(fired).toHaveBeenCalledTimes(1);
  });
});

import { hostname } from 'node:os';

/** Everything the sample app reads from the environment, parsed once at startup. */
export interface SampleConfig {
  /** Name of this process in logs and responses (`INSTANCE`, default `<host>:<pid>`). */
  instance: string;
  /** HTTP port (`PORT`, default 3000). */
  port: number;
  /** Redis connection URL (`REDIS_URL`, default `redis://127.0.0.1:6379`). */
  redisUrl: string;
  /**
   * Start of every Redis key the app writes (`KEY_PREFIX`, default `sample:`). Locks live under
   * `<prefix>lock:`, ledger data under `<prefix>ledger:`, so two apps can share one Redis.
   */
  keyPrefix: string;
  /** How long a simulated payment takes, in ms (`PAY_MS`, default 300). */
  payMs: number;
  /** How long a payment waits for a busy order lock before 423 (`ORDER_WAIT_MS`, default 0). */
  orderWaitMs: number;
  /** Period of the report job in ms (`REPORT_INTERVAL_MS`, default 10000; 0 disables it). */
  reportIntervalMs: number;
  /** How long generating one report takes, in ms (`REPORT_MS`, default 500). */
  reportMs: number;
}

/** Injection token for the {@link SampleConfig} of this process. */
export const SAMPLE_CONFIG = 'SAMPLE:CONFIG';

/**
 * Parses the environment into a {@link SampleConfig}.
 * @throws Error when a numeric variable is not a non-negative integer.
 */
export function loadSampleConfig(env: NodeJS.ProcessEnv = process.env): SampleConfig {
  return {
    instance: env.INSTANCE || `${hostname()}:${process.pid}`,
    port: readInt(env, 'PORT', 3000),
    redisUrl: env.REDIS_URL || 'redis://127.0.0.1:6379',
    keyPrefix: env.KEY_PREFIX ?? 'sample:',
    payMs: readInt(env, 'PAY_MS', 300),
    orderWaitMs: readInt(env, 'ORDER_WAIT_MS', 0),
    reportIntervalMs: readInt(env, 'REPORT_INTERVAL_MS', 10_000),
    reportMs: readInt(env, 'REPORT_MS', 500),
  };
}

/**
 * The configuration of this process. Decorator options are fixed when a class is defined, so
 * `@Lock` options that come from the environment must read this object rather than inject it.
 */
export const sampleConfig: SampleConfig = loadSampleConfig();

/** Hides the password of a Redis URL so it can be logged. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparsable REDIS_URL>';
  }
}

function readInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(
      `${name} must be a non-negative integer (milliseconds or a port), got "${raw}"`,
    );
  }
  return value;
}

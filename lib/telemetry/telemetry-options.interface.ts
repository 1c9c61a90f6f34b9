/**
 * How lock keys appear in spans: `'full'` as given (the default); `'redacted'` keeps the first
 * segment and hides the rest (`order:42` becomes `order:*`), for keys that carry personal data;
 * a function returns what to show for each key. Metrics never carry keys (one series per key
 * would be unbounded).
 *
 * @example
 * const keys: TelemetryKeys = (key) => key.replace(/\d+/g, '#'); // 'user:17:cart' -> 'user:#:cart'
 */
export type TelemetryKeys = 'full' | 'redacted' | ((key: string) => string);

/**
 * `telemetry` in the module options. OpenTelemetry spans and metrics are recorded when
 * `@opentelemetry/api` is installed and an SDK is registered; otherwise nothing is recorded and
 * nothing is spent. `telemetry: false` turns them off even then.
 *
 * @example
 * RedisLockModule.forRoot({ redis: 'redis://localhost:6379', telemetry: { keys: 'redacted' } });
 */
export interface RedisLockTelemetryOptions {
  /** How keys appear in span attributes. Default `'full'`. */
  keys?: TelemetryKeys;
}

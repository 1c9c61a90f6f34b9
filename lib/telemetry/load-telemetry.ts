// Loads the OpenTelemetry instrumentation when `@opentelemetry/api` is installed, and only then.
import type { LockObserver } from '../core/lock-observer.js';
import { invalidOptionMessage } from '../redis-lock.messages.js';
import { LockTelemetry, type OpenTelemetryApi } from './lock.telemetry.js';
import type { RedisLockTelemetryOptions } from './telemetry-options.interface.js';

/** Imports the optional peer; a seam for tests that pretend it is not installed. */
export type ApiLoader = () => Promise<OpenTelemetryApi>;

const importApi: ApiLoader = () => import('@opentelemetry/api');

/**
 * The lock observer for the module's `telemetry` option: OpenTelemetry instrumentation when
 * `@opentelemetry/api` can be imported, none when it is not installed or `telemetry` is false.
 * @throws TypeError when `telemetry.keys` is not `'full'`, `'redacted'` or a function.
 * @example
 * const observer = await loadLockTelemetry({ keys: 'redacted' });
 */
export async function loadLockTelemetry(
  options: RedisLockTelemetryOptions | false | undefined,
  load: ApiLoader = importApi,
): Promise<LockObserver | undefined> {
  if (options === false) return undefined;
  const keys = options?.keys ?? 'full';
  if (keys !== 'full' && keys !== 'redacted' && typeof keys !== 'function') {
    throw new TypeError(
      invalidOptionMessage('telemetry.keys', keys, "'full', 'redacted' or a function"),
    );
  }
  let api: OpenTelemetryApi;
  try {
    api = await load();
  } catch (err) {
    // Not installed: an optional peer (ERR_MODULE_NOT_FOUND from `import`, MODULE_NOT_FOUND from
    // the CommonJS build's `require` and from Jest's resolver). Anything else (a broken install)
    // is worth seeing.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return undefined;
    throw err;
  }
  return new LockTelemetry(api, keys);
}

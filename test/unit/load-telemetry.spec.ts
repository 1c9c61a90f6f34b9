/**
 * `loadLockTelemetry`: OpenTelemetry instrumentation when the API can be imported, none when it is
 * not installed or turned off, and a clear error for a bad `telemetry.keys`.
 */
import * as api from '@opentelemetry/api';
import { loadLockTelemetry } from '../../lib/telemetry/load-telemetry.js';
import { LockTelemetry } from '../../lib/telemetry/lock.telemetry.js';

const notInstalled = () =>
  Promise.reject(Object.assign(new Error('Cannot find package'), { code: 'ERR_MODULE_NOT_FOUND' }));
/** As the CommonJS build's `require` (and Jest's resolver, in a CommonJS app's tests) fails. */
const notInstalledForRequire = () =>
  Promise.reject(Object.assign(new Error('Cannot find module'), { code: 'MODULE_NOT_FOUND' }));

describe('loadLockTelemetry', () => {
  it('instruments when @opentelemetry/api can be imported', async () => {
    expect(await loadLockTelemetry(undefined)).toBeInstanceOf(LockTelemetry);
    expect(await loadLockTelemetry({ keys: 'redacted' }, async () => api)).toBeInstanceOf(
      LockTelemetry,
    );
  });

  it('observes nothing when the API is not installed, or telemetry is false', async () => {
    expect(await loadLockTelemetry(undefined, notInstalled)).toBeUndefined();
    expect(await loadLockTelemetry(undefined, notInstalledForRequire)).toBeUndefined();
    expect(await loadLockTelemetry(false)).toBeUndefined();
  });

  it('lets any other failure to load the API through', async () => {
    const broken = () => Promise.reject(new SyntaxError('broken install'));
    await expect(loadLockTelemetry(undefined, broken)).rejects.toThrow('broken install');
  });

  it('refuses a telemetry.keys that is not full, redacted or a function, naming it', async () => {
    await expect(loadLockTelemetry({ keys: 'hashed' as 'full' })).rejects.toThrow(
      /telemetry\.keys.*hashed/,
    );
  });
});

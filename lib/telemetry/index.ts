export type { RedisLockTelemetryOptions, TelemetryKeys } from './telemetry-options.interface.js';

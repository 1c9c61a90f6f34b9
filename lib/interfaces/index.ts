export * from './lock-handle.interface.js';
export * from './lock-options.interface.js';
export * from './redis-lock-module-options.interface.js';
export * from './retry-strategy.interface.js';
export * from './lock-error-factory.interface.js';
export * from './permit-handle.interface.js';
export * from './permit-options.interface.js';

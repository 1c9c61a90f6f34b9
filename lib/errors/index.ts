export * from './lock.errors.js';
export * from './lock-mode.error.js';

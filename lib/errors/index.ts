export * from './lock.errors.js';
export * from './semaphore.errors.js';
export * from './lock-mode.error.js';

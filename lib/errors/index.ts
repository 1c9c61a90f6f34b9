export * from './lock.errors.js';
export * from './semaphore.errors.js';

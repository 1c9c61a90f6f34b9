export * from './lock.decorator.js';
export * from './semaphore.decorator.js';

export * from './lock.decorator.js';

import { LockError } from './lock.errors.js';

/**
 * A read-write lock (`mode: 'read' | 'write'`) was asked for where it cannot be given: a write
 * lock inside a read lock on the same key in one call chain (an upgrade, which would deadlock two
 * upgraders), or on a backend without read-write locks (Redlock, the in-memory store). A bug to
 * fix, not a busy lock: `@Lock` lets it through as a server error.
 *
 * @example
 * await locks.run('doc:1', async () => {
 *   await locks.run('doc:1', write, { mode: 'write' }); // rejects with LockModeError
 * }, { mode: 'read' });
 */
export class LockModeError extends LockError {}

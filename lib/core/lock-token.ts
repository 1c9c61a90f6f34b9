import { randomBytes } from 'node:crypto';
import { TOKEN_BYTES } from '../redis-lock.constants.js';

/** Tokens drawn from one `randomBytes` call: a call per token was a seventh of an uncontended lock. */
const TOKENS_PER_DRAW = 256;

let pool = Buffer.alloc(0);
let offset = 0;

/**
 * A fresh lock token: 128 bits from the operating system's CSPRNG (`crypto.randomBytes`), as 32
 * hex characters. Bytes are drawn in batches and each byte is used once.
 *
 * @example
 * await redis.set(key, newLockToken(), 'PX', ttl, 'NX');
 */
export function newLockToken(): string {
  if (offset + TOKEN_BYTES > pool.length) {
    pool = randomBytes(TOKEN_BYTES * TOKENS_PER_DRAW);
    offset = 0;
  }
  const token = pool.toString('hex', offset, offset + TOKEN_BYTES);
  offset += TOKEN_BYTES;
  return token;
}

/* Random identities: the lock client's id, each lock's token, a queued waiter's channel. */
import { randomBytes } from 'node:crypto';
import { CLIENT_ID_BYTES, TOKEN_BYTES } from '../../redis-lock.constants.js';

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

/**
 * A lock client's id: 64 random bits as 16 hex characters, put before each token the client makes
 * (see CLIENT_ID_BYTES), so a token names the client whose waiter it is.
 *
 * @example
 * const clientId = newClientId();
 * const token = clientId + newLockToken(); // 48 hex characters, 128 of their bits random
 */
export function newClientId(): string {
  return randomBytes(CLIENT_ID_BYTES).toString('hex');
}

/**
 * Where a release tells a queued waiter it is its turn: the key's channel and the waiter's client
 * id (the start of its token). Every waiter of that client for the key listens there and keeps
 * the messages that are its own token (see `tellWaiter`).
 *
 * @example
 * waiterChannel('lock:{a}:released', token); // 'lock:{a}:released:' + the token's client id
 */
export function waiterChannel(keyChannel: string, token: string): string {
  return `${keyChannel}:${token.slice(0, 2 * CLIENT_ID_BYTES)}`;
}

/* Runs a Lua script by SHA (loading it when Redis lacks it) and explains foreign-key replies. */
import { createHash } from 'node:crypto';
import type { RedisClient } from '../redis-connection.js';
import { FOREIGN_KEY_ERROR } from '../../../redis-lock.constants.js';
import { foreignKeyMessage } from '../../../redis-lock.messages.js';

/**
 * A Lua script run by SHA (EVALSHA), loaded with EVAL on first use or after a server restart
 * (NOSCRIPT). Unlike `defineCommand`, it adds nothing to a client the user passed in.
 */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  run(redis: RedisClient, keys: readonly string[], args: (string | number)[]): Promise<unknown> {
    const n = keys.length;
    // One handler for both (no promise hop added to every call): a script's own error reply, or
    // a server that lost the script.
    return redis.evalsha(this.sha, n, ...keys, ...args).catch((err: unknown) => {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) explainForeignKey(err);
      return redis.eval(this.source, n, ...keys, ...args).catch(explainForeignKey);
    });
  }
}

/** Rethrows a script's FOREIGN_KEY_ERROR reply as a message a user can act on; others as they are. */
function explainForeignKey(err: unknown): never {
  const found = err instanceof Error && FOREIGN_KEY_REPLY.exec(err.message);
  if (!found) throw err;
  throw new Error(foreignKeyMessage(found[3], found[1], found[2]), { cause: err });
}

/**
 * The error for one lock of an EXTEND batch whose result is a FOREIGN_KEY_ERROR text.
 *
 * @example
 * foreignKeyError('LOCKKEY string hash lock:{a}').message; // 'Redis key "lock:{a}" should be ...'
 */
export function foreignKeyError(text: string): Error {
  const found = FOREIGN_KEY_REPLY.exec(text);
  return new Error(found ? foreignKeyMessage(found[3], found[1], found[2]) : text);
}

/** `FOREIGN_KEY_ERROR <kind> <type found> <key>`: the key is last, as it may contain spaces. */
const FOREIGN_KEY_REPLY = new RegExp(`^${FOREIGN_KEY_ERROR} (\\S+) (\\S+) ([\\s\\S]*)$`);

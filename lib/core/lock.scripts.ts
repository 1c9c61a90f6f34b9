import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Every Lua script the library runs, in one place. Each compares the caller's token before it
 * touches the key, so an owner whose lease ran out can never delete or extend the lock of the
 * owner that took the key after it.
 */

/** KEYS[1] lock key; ARGV[1] token. Deletes the key only if the token matches. Returns 1 or 0. */
const RELEASE = `
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0`;

/**
 * KEYS[1] lock key; ARGV[1] token; ARGV[2] new lease in ms. Resets the lease only if the token
 * matches; a missing key is not re-created. Returns 1 or 0.
 */
const EXTEND = `
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0`;

/**
 * A Lua script run by SHA (EVALSHA), loaded with EVAL on first use or after a server restart
 * (NOSCRIPT). Unlike `defineCommand`, it adds nothing to a client the user passed in.
 */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

/** The scripts, ready to run. */
export const LockScripts = {
  release: new LuaScript(RELEASE),
  extend: new LuaScript(EXTEND),
} as const;

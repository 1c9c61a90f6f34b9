/* The module's optional `failFast` check: Redis must answer before the app starts serving. */
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { isTimerDelay } from './core/lease/long-timeout.js';
import type { RedisConnection } from './core/redis/redis-connection.js';
import { answerWithin, NoAnswerError } from './core/waiting/race-attempt.js';
import { LockError } from './errors/lock.errors.js';
import type { RedisLockModuleOptions } from './interfaces/redis-lock-module-options.interface.js';
import {
  DEFAULT_CONNECT_TIMEOUT,
  MAX_TIMER_DELAY,
  REDIS_LOCK_CONNECTION,
} from './redis-lock.constants.js';
import {
  invalidOptionMessage,
  noAnswerWithinMessage,
  startupUnreachableMessage,
  timerDelayExpected,
} from './redis-lock.messages.js';
import { REDIS_LOCK_MODULE_OPTIONS } from './redis-lock.module-definition.js';

/**
 * With `failFast: true`, makes `app.init()` (and so `app.listen()`) reject unless Redis answers
 * a PING within `connectTimeout` ms: a wrong URL or password stops the deploy instead of serving
 * 503s. With `redlock`, a majority of the masters must answer. Off by default.
 *
 * @example
 * RedisLockModule.forRoot({ redis: process.env.REDIS_URL, failFast: true, connectTimeout: 3_000 });
 */
@Injectable()
export class RedisStartupCheck implements OnModuleInit {
  constructor(
    @Inject(REDIS_LOCK_MODULE_OPTIONS) private readonly options: RedisLockModuleOptions,
    @Inject(REDIS_LOCK_CONNECTION) private readonly connections: RedisConnection[],
  ) {}

  /**
   * @throws LockError when too few servers answer; its message holds no URL, host or
   * password, only the error codes (ECONNREFUSED, WRONGPASS...) or the time waited.
   */
  async onModuleInit(): Promise<void> {
    // Nothing to reach with the in-memory store of `forTest`.
    if (!this.options.failFast || this.connections.length === 0) return;
    const timeout = this.options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
    const outcomes = await Promise.all(
      this.connections.map((connection) =>
        answerWithin(connection.client.ping(), timeout).then(
          () => undefined,
          (err: unknown) => reasonOf(err, timeout),
        ),
      ),
    );
    const reasons = outcomes.filter((reason): reason is string => reason !== undefined);
    const needed = Math.floor(this.connections.length / 2) + 1;
    const answered = this.connections.length - reasons.length;
    if (answered >= needed) return;
    // Nest runs no shutdown hook after a failed init: stop our clients reconnecting here.
    await Promise.all(this.connections.map((connection) => connection.close()));
    const message = startupUnreachableMessage(answered, needed, [...new Set(reasons)]);
    throw new LockError(message);
  }
}

/**
 * Checks `connectTimeout` before anything connects.
 * @throws RangeError on a value that is not a delay Node's timers keep.
 */
export function checkConnectTimeout(value: unknown): void {
  if (value !== undefined && !isTimerDelay(value)) {
    throw new RangeError(
      invalidOptionMessage('connectTimeout', value, timerDelayExpected(MAX_TIMER_DELAY)),
    );
  }
}

/**
 * Only a code: ioredis' messages name the host and port, which come from the URL (a password may
 * sit next to them in the configuration), so none of their text is shown.
 */
function reasonOf(err: unknown, timeout: number): string {
  if (err instanceof NoAnswerError) return noAnswerWithinMessage(timeout);
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  const message = err instanceof Error ? err.message : '';
  // Redis' own refusals start with an upper-case code: WRONGPASS, NOAUTH, LOADING...
  const redisCode = /^[A-Z]{3,}\b/.exec(message)?.[0];
  return redisCode ?? (err instanceof Error ? err.name : 'error');
}

/*
 * Every message the library shows a user, side by side. None takes a lock token: tokens never
 * appear in errors, logs or responses.
 */

export const notAcquiredMessage = (key: string, waitedMs: number, aborted: boolean) =>
  aborted
    ? `Waiting for lock "${key}" was aborted after ${waitedMs} ms.`
    : waitedMs > 0
      ? `Lock "${key}" is held by another owner; gave up after waiting ${waitedMs} ms.`
      : `Lock "${key}" is held by another owner.`;

export const lockLostMessage = (key: string, why: string) => `Lock "${key}" was lost: ${why}.`;

export const LOST_TAKEN = 'the key was deleted or is now held by another owner';
export const LOST_LEASE_EXPIRED = 'its lease ran out before it was renewed or released';
export const LOST_UNREACHABLE = 'Redis stayed unreachable until its lease ran out';
export const LOST_RELEASED = 'it was released';

export const unavailableMessage = (key: string, cause: string) =>
  `Redis is unavailable, so lock "${key}" could not be handled: ${cause}`;

export const attemptTimeoutMessage = (ms: number) => `Redis did not answer within ${ms} ms.`;

/** Why an acquire or wait failed: the lock client was closed (or is draining for a shutdown). */
export const CLIENT_CLOSED = 'the lock client was closed';

/** Why an acquire failed whose grant came too late to use, and no time was left to try again. */
export const LEASE_RAN_OUT_BEFORE_USE =
  'Redis answered so slowly that the lease of the lock granted ran out before it could be used.';

/** Why a wait ended as unavailable: none of its attempts got an answer before its deadline. */
export const NO_ANSWER_DURING_WAIT =
  'Redis answered none of the attempts made before the wait timed out.';

export const invalidOptionMessage = (option: string, value: unknown, expected: string) =>
  `Invalid lock option "${option}": got ${describe(value)}, expected ${expected}.`;

/** What `ttl`, `extend(ttl)` and `fairQueueTimeout` accept: delays Node's timers can keep. */
export const timerDelayExpected = (max: number) =>
  `a positive integer of milliseconds, at most ${max} ` +
  `(about ${Math.floor(max / 8_640_000) / 10} days, the longest timer Node keeps)`;

export const invalidExtendTtlMessage = (ttl: unknown, expected: string) =>
  `extend(ttl): got ${describe(ttl)}, expected ${expected}.`;

export const invalidKeyMessage = (key: unknown) =>
  `Invalid lock key ${describe(key)}: expected a non-empty string of at most 1024 characters.`;

export const badPlaceholderValueMessage = (
  where: string,
  placeholder: string,
  value: unknown,
  reason: string,
) =>
  `Cannot build the lock key of ${where}: placeholder {{${placeholder}}} resolved to ${describe(value)}, ${reason}. ` +
  'The method was not run.';

export const badKeyFunctionResultMessage = (where: string, value: unknown) =>
  `Cannot build the lock key of ${where}: the key function returned ${describe(value)}, ` +
  'expected a non-empty string of at most 1024 characters. The method was not run.';

export const keyFunctionThrewMessage = (where: string, err: unknown) =>
  `Cannot build the lock key of ${where}: the key function threw: ${
    err instanceof Error ? err.message : String(err)
  }. The method was not run.`;

export const templateSyntaxMessage = (where: string, template: string, problem: string) =>
  `@Lock('${template}') on ${where}: ${problem}`;

export const unknownPlaceholderMessage = (
  where: string,
  template: string,
  placeholder: string,
  available: string[],
) =>
  templateSyntaxMessage(
    where,
    template,
    `placeholder {{${placeholder}}} names no parameter of the method. ` +
      `Available: ${available.length ? available.join(', ') : '(the method takes no parameters)'}.`,
  );

export const secondLockMessage = (where: string) =>
  `${where} has more than one @Lock. Their locks would be taken one after the other, so two ` +
  'calls naming the same keys in opposite orders could deadlock. Give one @Lock an array of ' +
  "keys, which takes them all at once: @Lock(['account:{{from}}', 'account:{{to}}']).";

export const wrappedMethodMessage = (problem: string) =>
  `${problem} The method @Lock sees does not take the declared parameters: another decorator ` +
  'below @Lock seems to have replaced it with a wrapper. Put @Lock nearest the method (below ' +
  'the wrapping decorator) so it sees the method itself, or use argument indexes ({{0}}).';

export const missingLockServiceMessage = (where: string) =>
  `${where} is decorated with @Lock but its instance has no LockService. Create it through Nest ` +
  '(as a provider or controller of a module that can see RedisLockModule) rather than with `new`; ' +
  'the method was not run.';

export const fakeLockServiceMessage = (where: string) =>
  `${where} is decorated with @Lock, but the LockService it got has neither the lock client of the ` +
  'real one nor a `run(key, fn, options)` method. A LockService replaced in a test ' +
  '(overrideProvider(LockService).useValue(fake)) must implement `run` and call `fn` to run the ' +
  'method, or use RedisLockModule.forTest(); the method was not run.';

export const ownerAppsClosedMessage = (where: string) =>
  `${where} is decorated with @Lock, but every app that provides its instance (a useValue or ` +
  'useFactory provider) is shutting down or closed; the method was not run. Call it while an app ' +
  'that provides it is running.';

export const notAMethodMessage = (where: string) =>
  `@Lock on ${where}: only instance methods can be locked.`;

export const badOnNotAcquiredMessage = (where: string, value: unknown) =>
  `@Lock on ${where}: onNotAcquired must be 'throw' or 'skip', got ${describe(value)}.`;

/** A `@Lock` option the client refuses, found where the class is defined. */
export const badLockOptionMessage = (where: string, problem: string) =>
  `@Lock on ${where}: ${problem} Fix it in the decorator; the app does not start with it.`;

export const unknownLockOptionMessage = (where: string, option: string, known: readonly string[]) =>
  `@Lock on ${where}: unknown option "${option}". Known options: ${known.join(', ')}.`;

export const lockOptionsNotObjectMessage = (where: string, value: unknown) =>
  `@Lock on ${where}: the options must be an object, got ${describe(value)}.`;

/** Shown by Nest when a class with `@Lock` is built in an app without RedisLockModule. */
export const LOCK_SERVICE_PROPERTY_NAME =
  'LockService of @Lock: add RedisLockModule.forRoot({ redis }) to the imports of the root module';

export const missingModuleOptionsMessage = (value: unknown) =>
  `RedisLockModule.forRoot() needs options, got ${describe(value)}: give ` +
  "{ redis: 'redis://host:6379' } (a URL, ioredis options or client) or { redlock: { clients } }. " +
  'There is no default Redis.';

export const startupUnreachableMessage = (answered: number, needed: number, reasons: string[]) =>
  `RedisLockModule (failFast): ${answered} of the ${needed} Redis server(s) needed answered at ` +
  `startup (${reasons.join('; ')}). Check the redis option, or leave failFast off to start ` +
  'anyway and answer 503 until Redis is reachable.';

export const noAnswerWithinMessage = (ms: number) => `no answer within ${ms} ms`;

export const unsupportedReturnTypeMessage = (where: string, returnType: string) =>
  `@Lock on ${where}: it is declared to return ${returnType}, but a locked method can only run ` +
  'once the lock is taken, which waits on Redis, so it cannot return a plain value: it would ' +
  'silently return a Promise instead. Make the method async (or declare it to return ' +
  'Promise<...> or Observable<...>) and await its result where it is called.';

export const skippedMessage = (where: string, key: string) =>
  `Skipped ${where}: lock "${key}" is held elsewhere (onNotAcquired: 'skip').`;

export const redisErrorWarning = (cause: string) =>
  `Redis connection error: ${cause}. Locks cannot be taken until it is back.`;

export const REDIS_RECOVERED = 'Redis connection is back.';

export const UNAVAILABLE_RESPONSE =
  'The lock service is unavailable; the request was not processed.';

/** What a client is told when its request's values cannot make a lock key (the log has why). */
export const BAD_KEY_RESPONSE = 'Invalid lock key input.';

export const lockLostWarning = (key: string, why: string) =>
  `Lock "${key}" was lost while held: ${why}. Work still running under it is no longer exclusive.`;

export const wakeUpsUnavailableWarning = (cause: string) =>
  `Pub/sub wake-ups are unavailable (${cause}); waiters poll with their retry strategy until they are back.`;

export const WAKE_UPS_RESTORED = 'Pub/sub wake-ups are back.';

/** What each kind of key a lock script checks should hold (see FOREIGN_KEY_ERROR). */
const KEY_ROLES: Record<string, string> = {
  string: "a lock key (a string holding the owner's token)",
  zset: 'a fair queue (a sorted set)',
  fence: 'a fencing counter (a decimal integer)',
  semaphore: "a semaphore's holders (a sorted set)",
  rwlock: "a read-write lock's holders (a sorted set)",
};

export const foreignKeyMessage = (key: string, kind: string, found: string) => {
  // One key used as a plain lock and as a read-write lock: say so, not "something else wrote it".
  if (kind === 'string' && found === 'zset') return rwKindMixMessage(key, 'plain');
  if (kind === 'rwlock' && found === 'string') return rwKindMixMessage(key, 'rw');
  const holds =
    kind === 'fence' && found === 'string'
      ? 'a string that is not such an integer'
      : `a value of type ${found}`;
  return (
    `Redis key "${key}" should be ${KEY_ROLES[kind] ?? kind} or absent, but holds ${holds}: ` +
    'something other than this library writes it. Nothing was changed; delete or rename that ' +
    'key, or give the locks another keyPrefix.'
  );
};

export const crossSlotMessage = (keys: string) =>
  `Cannot lock "${keys}" together in fair mode on Redis Cluster: the keys hash to different ` +
  'slots, and a fair lock can only span one slot. Give them a common hash tag, e.g. ' +
  '"{account}:1" and "{account}:2".';

export const connectionChoiceMessage = (both: boolean) =>
  both
    ? 'RedisLockModule: give either `redis` or `redlock`, not both.'
    : 'RedisLockModule: give `redis` (a URL, ioredis options or client) or `redlock: { clients }`.';

export const MEMORY_WITH_REDIS_MESSAGE =
  'RedisLockModule: `memory` (an in-memory store, for tests) replaces `redis` and `redlock`; give one.';

/** Shown instead of the URL, which may hold a password. */
export const UNPARSABLE_REDIS_URL =
  'RedisLockModule: the Redis URL could not be parsed. Percent-encode special characters in the ' +
  'user name and password (# / ? @ : % and spaces), e.g. with encodeURIComponent(password), or ' +
  'pass ioredis options ({ host, port, password }) instead. The URL is not shown: it may hold a ' +
  'password.';

export const FAIR_UNAVAILABLE_WARNING =
  'fair: true needs one Redis or a Cluster; with redlock, busy locks are granted as in the default mode.';

export const redlockFailureMessage = (
  what: string,
  failures: string[],
  nodes: number,
  quorum: number,
) =>
  `Redlock could not ${what} on a majority (${quorum} of ${nodes}) of the masters; ` +
  `${failures.length} failed: ${failures.join('; ')}`;

export const notReplicatedMessage = (acknowledged: number, replicas: number, timeout: number) =>
  `only ${acknowledged} of the ${replicas} replica(s) required by waitForReplicas acknowledged the lock within ${timeout} ms; it was released`;

export const releaseFailedWarning = (key: string, cause: string) =>
  `Could not release lock "${key}" (${cause}); it will expire when its lease runs out.`;

export const drainTimedOutWarning = (timeout: number, keys: readonly string[]) =>
  `Shutdown: ${keys.length} lock(s) still held after waiting ${timeout} ms (drainTimeout) for ` +
  `their work to finish: ${keys.map((key) => `"${key}"`).join(', ')}. Releasing them now; ` +
  'work still running under them is no longer exclusive.';

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    return value.length > 40 ? `a string of ${value.length} characters` : `"${value}"`;
  }
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return `${typeof value} ${String(value)}`;
}

/** Health: a Cluster master the slot map names, to which the client holds no connection. */
export const NODE_NOT_CONNECTED = 'the client has no connection to this node';

export const sseGuardOrderWarning = (where: string) =>
  `${where}: a guard bound with @UseGuards above @Lock runs after the lock's SSE guard, so the ` +
  'lock is taken once the stream has started, and a refusal is a 200 stream with one error ' +
  'event instead of a 423. Put @UseGuards below @Lock (or on the class) to answer 423.';

// Semaphores.

export const permitNotAcquiredMessage = (
  key: string,
  permits: number,
  waitedMs: number,
  aborted: boolean,
) =>
  aborted
    ? `Waiting for a permit of semaphore "${key}" was aborted after ${waitedMs} ms.`
    : `All ${permits} permit(s) of semaphore "${key}" are held` +
      (waitedMs > 0 ? `; gave up after waiting ${waitedMs} ms.` : '.');

export const permitsExpected = 'a positive integer';

/** Why semaphores are refused with Redlock or the in-memory store. */
export const semaphoreUnsupportedMessage = (backend: string) =>
  `Semaphores are not supported with ${backend}: their holders must live on one Redis (also ` +
  'through Sentinel) or a Redis Cluster, where one script counts them. Use `redis` for them.';

export const semaphoreUnsupportedAtStartupMessage = (methods: readonly string[], why: string) =>
  `@Semaphore on ${methods.join(', ')}: ${why}`;

/** A `@Semaphore` definition refused where the class is defined. */
export const badSemaphoreMessage = (where: string, problem: string) =>
  `@Semaphore on ${where}: ${problem} Fix it in the decorator; the app does not start with it.`;

export const semaphoreOptionsExpected = (value: unknown) =>
  `the options must be an object with "permits", got ${describe(value)}.`;

export const unknownSemaphoreOptionMessage = (option: string, known: readonly string[]) =>
  `unknown option "${option}". Known options: ${known.join(', ')}.`;

export const badSemaphoreOnNotAcquiredMessage = (value: unknown) =>
  `onNotAcquired must be 'throw' or 'skip', got ${describe(value)}.`;

export const SEMAPHORE_ONE_KEY =
  'a semaphore takes one key template (or key function), not an array.';

export const SEMAPHORE_NOT_A_METHOD = 'only instance methods can hold a permit.';

// Read-write locks (`mode`).
export const rwSingleKeyMessage = (key: unknown) =>
  `A read-write lock (mode: 'read' | 'write') is on one key, got ${describe(key)}; ` +
  'take several read-write locks one after another, or a plain multi-key lock.';

export const rwUpgradeMessage = (key: string) =>
  `Lock "${key}" is held for reading in this call chain and cannot be upgraded to writing: two ` +
  'readers upgrading at once would wait for each other forever. Release the read lock first, ' +
  "or take it with mode: 'write' from the start.";

export const rwUnsupportedMessage = (backend: string) =>
  `Read-write locks (mode: 'read' | 'write') need one Redis, Sentinel or a Cluster; ${backend} ` +
  'is not supported. Use plain locks (no mode) there.';

export const rwKindMixMessage = (key: string, usedAs: 'plain' | 'rw') =>
  `Redis key "${key}" is a ${usedAs === 'plain' ? "read-write lock (taken with mode: 'read' or 'write')" : 'plain lock (taken without mode)'}` +
  ` and cannot be taken ${usedAs === 'plain' ? 'without mode' : "with mode: 'read' or 'write'"}: use one kind of lock per key.`;

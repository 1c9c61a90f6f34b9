import { LOCK_SERVICE_PROPERTY_NAME } from './redis-lock.messages.js';

/** Reflect-metadata key under which `@Lock` stores its definition on the decorated method. */
export const LOCK_METADATA = 'REDIS_LOCK:LOCK';
/** Metadata key of `@Semaphore`. */
export const SEMAPHORE_METADATA = 'REDIS_LOCK:SEMAPHORE';

/** Injection token of the ioredis connections (or clients passed in) the module locks with. */
export const REDIS_LOCK_CONNECTION = 'REDIS_LOCK:CONNECTION';

/**
 * Property on instances of classes that use `@Lock`, filled by Nest's property injection with
 * that app's `LockService`. A symbol, so it never clashes with user properties; from the global
 * registry (`Symbol.for`), so the package's ES module and CommonJS builds, when both are loaded,
 * name the same property. Its description is what Nest names when it cannot fill it (the app
 * does not import RedisLockModule), so it says what to do.
 */
export const LOCK_SERVICE_PROPERTY = Symbol.for(LOCK_SERVICE_PROPERTY_NAME);

/**
 * Injection token under which `RedisLockModule` also provides its `LockService`, and which `@Lock`
 * injects. A string, the same in both builds of the package, where the `LockService` class is
 * not: a class decorated through one copy works in an app whose module came from the other.
 */
export const LOCK_SERVICE_TOKEN = 'REDIS_LOCK:LockService';

/** Context name of the module's `Logger`. */
export const REDIS_LOCK_LOGGER_CONTEXT = 'RedisLock';

/** Defaults of the module options (milliseconds). */
export const DEFAULT_KEY_PREFIX = 'lock:';
export const DEFAULT_TTL = 30_000;
export const DEFAULT_WAIT_TIMEOUT = 0;

/**
 * The longest delay a Node timer keeps (2^31 - 1 ms, about 24.8 days): a longer one fires after
 * 1 ms. Longer waits re-arm their timer in steps of at most this (`setLongTimeout`); `ttl`,
 * `extend(ttl)` and `fairQueueTimeout`, which set the watchdog's and the lease's timers, are
 * refused above it.
 */
export const MAX_TIMER_DELAY = 2 ** 31 - 1;

/**
 * Default of the module's `drainTimeout`: how long shutdown lets locked work still running finish
 * before it releases the locks (ms). Well inside Kubernetes' default 30 s grace period, leaving
 * room for the bounded release and QUIT steps that follow.
 */
export const DEFAULT_DRAIN_TIMEOUT = 10_000;

/** Longest `drainTimeout` (ms): Node fires a longer timer after 1 ms instead. */
export const MAX_DRAIN_TIMEOUT = MAX_TIMER_DELAY;

/**
 * How long closing a connection the module created waits for Redis to answer QUIT before it drops
 * the socket (ms). Every command someone waited for was answered or given up on by then, so
 * nothing is lost; a healthy Redis answers in well under a millisecond.
 */
export const QUIT_TIMEOUT = 1_000;

/** Default for `fairQueueTimeout`: how long a silent fair waiter keeps its place (ms). */
export const DEFAULT_FAIR_QUEUE_TIMEOUT = 5_000;

/** A fair waiter refreshes its place this many times per `fairQueueTimeout`. */
export const QUEUE_REFRESHES_PER_TIMEOUT = 3;

/**
 * How long a key's fencing counter outlives its last grant (ms). Tokens keep increasing after it
 * expires (they are seeded from Redis' clock); the counter guards against that clock stepping
 * back, and bounds the memory one-off keys (order ids, say) leave behind.
 */
export const FENCE_RETENTION = 3_600_000;

/**
 * Redis steps each key's fencing counter by this much per grant, leaving the numbers in between
 * to the locks passed on within a process: every token is still strictly greater than all earlier
 * ones. Fixed for the whole fleet (clients with another stride could hand out the same token), so
 * it leaves room for the most passes any client may be configured with.
 */
export const FENCE_STRIDE = 16;

/** Most passes one grant gets, whatever `maxLocalPasses` allows: the numbers a grant leaves free. */
export const MAX_LOCAL_PASSES = FENCE_STRIDE - 1;

/**
 * Default of `maxLocalPasses`: how many times in a row a released lock may go straight to the
 * next waiter of the same process (no round trip, no wake-up of another process) before it goes
 * back to Redis, where the other processes' waiters are in line. A hand-over to another process
 * costs tens of passes, so more passes serve more grants per second; fewer shorten the other
 * processes' wait for their turn. 5: measured in bench/ (4 processes x 3 workers on one key),
 * about 1.5 % more grants per second than 3 for about 110 ms more p99 wait (350 against 240).
 */
export const DEFAULT_LOCAL_PASSES = 5;

/**
 * A lock taken over (passed on, or handed over in Redis) whose lease left is short of the taker's
 * ttl by at most this share of it is not extended: a holder with the same ttl passes it on with
 * all but the few ms it held it, and a command per pass to win those back is not worth its cost.
 */
export const LEASE_SHORTFALL = 0.01;

/** A lock with less lease left than this (ms) is released in Redis, not passed on. */
export const MIN_PASSED_LEASE = 100;

/** Default retry: exponential backoff with full jitter between these bounds (milliseconds). */
export const DEFAULT_RETRY_BASE = 25;
export const DEFAULT_RETRY_CAP = 500;

/**
 * An acquire attempt gets this long (or the ttl, if shorter) for Redis to answer before it is
 * abandoned as unavailable; a key the abandoned attempt sets later is released.
 */
export const ATTEMPT_TIMEOUT = 2_000;

/** How long past a wait's deadline its last attempt may take to be answered (milliseconds). */
export const FINAL_ATTEMPT_GRACE = 50;

/** Longest value a template placeholder may contribute to a key, and the longest whole key. */
export const MAX_KEY_PART_LENGTH = 256;
export const MAX_KEY_LENGTH = 1_024;

/**
 * Error code a lock script answers with, before it writes anything, when a key it must use was
 * written by someone else (a hash where its fencing counter should be, say); the client turns it
 * into `foreignKeyMessage`.
 */
export const FOREIGN_KEY_ERROR = 'LOCKKEY';

/**How long a locked call whose return type was not declared keeps its lock for the Observable it
 * returned, waiting for a subscription (ms). Nest and callers that subscribe as soon as they have
 * it do so within microseconds, and the stream then runs under the same lock as the call; an
 * Observable nobody subscribes to blocks others no longer than this. A later subscription takes
 * the lock again.
 */
export const SUBSCRIBE_GRACE = 250;

/** Default `connectTimeout` of the module's `failFast` check at startup (ms). */
export const DEFAULT_CONNECT_TIMEOUT = 5_000;

/** Random bytes in a lock token (128 bits). */
export const TOKEN_BYTES = 16;

/**
 * Bytes of a lock client's id, which starts each of its tokens (as hex, twice as many
 * characters): a release tells a queued waiter its turn on a channel of the waiter's client,
 * named from the waiter's token, so a client subscribes once per key, not once per wait.
 */
export const CLIENT_ID_BYTES = 8;

/** Watchdog rhythm: the lease is renewed every ttl / RENEW_DIVISOR (Redisson's rhythm). */
export const RENEW_DIVISOR = 3;

/**
 * Renewals go in batches: when the watchdog renews one lock, it also renews every other lock of
 * the client whose renewal falls due within ttl / RENEW_EARLY_DIVISOR (of that lock's own ttl), so
 * a renewal may go up to half a renewal period early, never late. Locks renewed together fall due
 * together again, so after one period the held locks renew in few rounds (see docs/protocol.md).
 */
export const RENEW_EARLY_DIVISOR = 6;

/**
 * Most locks renewed by one EXTEND call (Redisson renews up to 100 per call): enough that 10,000
 * held locks cost 100 calls a round, few enough that one call holds Redis well under a millisecond.
 */
export const RENEWAL_BATCH = 100;

/**
 * A grant of ttl ms is trusted for ttl x LEASE_DRIFT_FACTOR + LEASE_DRIFT_MS less, counted from
 * when its command was sent: the client's clock may run slower than Redis' and its timers fire
 * late by a few ms, so the client must think the lease over before Redis does (see `trustedLease`).
 */
export const LEASE_DRIFT_FACTOR = 0.01;
export const LEASE_DRIFT_MS = 2;

/** Redlock defaults: share of the ttl allowed for clock drift, and one master's answer time (ms). */
export const DEFAULT_REDLOCK_DRIFT_FACTOR = LEASE_DRIFT_FACTOR;
export const DEFAULT_REDLOCK_NODE_TIMEOUT = 50;

/** Redlock: slack on top of its per-node timeouts before a whole call counts as unanswered (ms). */
export const REDLOCK_ANSWER_MARGIN = 100;

/**
 * Most renewals sent in one turn of the event loop: a round of 10,000 held locks goes out in
 * slices of this many, one turn apart, so requests served by the same process wait for a slice,
 * not for the whole round. Each slice's leases count from its own send.
 */
export const RENEWAL_SLICE = 1_000;

/** Instrumentation scope of the library's OpenTelemetry spans and metrics. */
export const TELEMETRY_SCOPE = 'nestjs-redis-lock';

/** Injection token of the lock observer the module builds (OpenTelemetry, or none). */
export const REDIS_LOCK_OBSERVER = 'REDIS_LOCK:OBSERVER';

/**
 * Bucket bounds (seconds) of the wait and hold duration histograms: from a lock taken on the
 * first attempt (sub-millisecond) to long jobs.
 */
export const DURATION_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];

/** How long the health indicator waits for each node's answer by default (ms). */
export const DEFAULT_HEALTH_TIMEOUT = 1_000;

/**
 * How long a lock the SSE guard took before the response started waits for its handler to adopt
 * it (ms): past that (pipes or interceptors slower than this, a handler that never runs) it is
 * released, and the handler, if it runs, locks for itself.
 */
export const SSE_PARKED_LOCK_TIMEOUT = 10_000;

/**
 * Nest's metadata keys the SSE guard reads (those of `@nestjs/common/constants`, the same since
 * Nest 7): `@Sse`, the route's param decorators, and the pipes and guards bound to a handler.
 */
export const NEST_METADATA = {
  sse: '__sse__',
  routeArgs: '__routeArguments__',
  customRouteArgs: '__customRouteArgs__',
  pipes: '__pipes__',
  guards: '__guards__',
} as const;

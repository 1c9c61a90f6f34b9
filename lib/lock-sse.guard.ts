/* Takes the lock of an `@Lock` `@Sse` handler before the response starts, so a refusal is a 423. */
import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { sharedAcrossCopies } from './copies.shared.js';
import type { LockMetadata } from './decorators/lock.decorator.js';
import { InvalidLockKeyError, LockError } from './errors/lock.errors.js';
import type { RedisLockModuleOptions } from './interfaces/redis-lock-module-options.interface.js';
import { clientOf } from './locked-by-service.js';
import type { LockService } from './lock.service.js';
import { lockTransportError, stockLockAnswer } from './lock-transport-error.js';
import {
  LOCK_METADATA,
  LOCK_SERVICE_TOKEN,
  NEST_METADATA,
  REDIS_LOCK_LOGGER_CONTEXT,
} from './redis-lock.constants.js';
import { sseGuardOrderWarning } from './redis-lock.messages.js';
import { REDIS_LOCK_MODULE_OPTIONS } from './redis-lock.module-definition.js';
import { rawRouteArguments } from './route-arguments.js';
import { parkLock, type ParkedOutcome, type RawResponse } from './sse-lock.parking.js';

/** Marks the guard class of each build of the package, for the order check. */
const SSE_GUARD = Symbol.for('REDIS_LOCK:SSE_GUARD');
/** The property name of each `@Lock` method, by the function `@Lock` installed (both builds). */
const methodKeys = sharedAcrossCopies(
  'REDIS_LOCK:METHOD_KEYS',
  () => new WeakMap<object, string | symbol>(),
);
/** Handlers already warned about: once each. */
const warned = new WeakSet<object>();

/**
 * Records the property name of a method `@Lock` wrapped: Nest keeps its route arguments under it.
 *
 * @example
 * rememberMethodKey(wrapped, propertyKey);
 */
export function rememberMethodKey(method: object, propertyKey: string | symbol): void {
  methodKeys.set(method, propertyKey);
}

/**
 * Bound by `@Lock` to its method; acts only on an `@Sse` route handler. Nest commits the headers
 * of an event stream right after subscribing to it, before Redis answers a lock taken there, so a
 * refusal would come as a `200` stream with one `error` event (which an `EventSource` answers by
 * reconnecting). This guard takes the lock first, with the method's `@Lock` options and the key
 * built from the request as the route's param decorators read it (before pipes), and throws the
 * answer `LockInterceptor` would give (423 with `Retry-After`, 503; the module's `errorFactory`
 * when set) before any byte of the stream. The lock is parked for the request, and the handler
 * runs under it only if the key it builds from its piped arguments is the same; otherwise it is
 * released and the handler locks its own key. A parked lock is released when the response ends
 * or after SSE_PARKED_LOCK_TIMEOUT ms, if the handler never took it.
 *
 * It stands aside (the handler locks as on any route) when the raw key cannot be built, with
 * `onNotAcquired: 'skip'`, with a fake `LockService`, and when a guard bound to the method runs
 * after it (`@UseGuards` above `@Lock`): it must not lock for a request those guards refuse. When
 * a pipe bound to the route could change the key, a refusal waits for the handler too.
 *
 * @example
 * // Bound by @Lock; nothing to do:
 * @Sse(':id/events')
 * @Lock('feed:{{id}}')
 * events(@Param('id') id: string): Observable<MessageEvent> { ... }
 */
@Injectable()
export class LockSseGuard implements CanActivate {
  static readonly [SSE_GUARD] = true;

  private readonly logger = new Logger(REDIS_LOCK_LOGGER_CONTEXT);

  @Optional()
  @Inject(LOCK_SERVICE_TOKEN)
  private readonly lockService?: LockService;

  @Optional()
  @Inject(REDIS_LOCK_MODULE_OPTIONS)
  private readonly moduleOptions?: RedisLockModuleOptions;

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const handler = context.getHandler();
    if (!Reflect.getMetadata(NEST_METADATA.sse, handler)) return true;
    const metadata = Reflect.getMetadata(LOCK_METADATA, handler) as LockMetadata | undefined;
    const propertyKey = methodKeys.get(handler);
    const client = this.lockService && clientOf(this.lockService);
    if (!metadata || propertyKey === undefined || !client) return true;
    const { onNotAcquired, ...lockOptions } = metadata.options;
    if (onNotAcquired === 'skip' || this.guardsRunAfter(handler, metadata.where)) return true;

    let key: ReturnType<LockMetadata['resolveKey']>;
    let pipeable: boolean;
    try {
      const raw = rawRouteArguments(context, propertyKey);
      pipeable = raw.pipeable;
      key = metadata.resolveKey(raw.args);
    } catch {
      // The handler builds the key from the values its pipes give it, and answers for it.
      return true;
    }
    const http = context.switchToHttp();
    const request = http.getRequest<object>();
    // Fastify's reply has the Node response under `raw`; Express' response is one.
    const response = http.getResponse<RawResponse & { raw?: RawResponse }>();
    const park = (outcome: ParkedOutcome) =>
      parkLock(request, response.raw ?? response, {
        method: metadata,
        client,
        key,
        outcome,
      });
    try {
      park({ scope: await client.enter(key, lockOptions) });
      return true;
    } catch (err) {
      // A raw value over the key length limit: the handler answers for its piped one.
      if (err instanceof InvalidLockKeyError) return true;
      if (!(err instanceof LockError)) throw err;
      // A pipe may yet change the key: the handler, once it has it, answers with this refusal
      // only if the key is the same.
      if (pipeable) {
        park({ error: err });
        return true;
      }
      throw await lockTransportError(err, context, this.moduleOptions, (e, c) =>
        stockLockAnswer(e, c, this.logger),
      );
    }
  }

  /** Whether a guard bound to the method comes after this one (an `@UseGuards` above `@Lock`). */
  private guardsRunAfter(handler: object, where: string): boolean {
    const guards = (Reflect.getMetadata(NEST_METADATA.guards, handler) ?? []) as unknown[];
    const last = guards.map(isSseGuard).lastIndexOf(true);
    if (last === guards.length - 1) return false;
    if (!warned.has(handler)) {
      warned.add(handler);
      this.logger.warn(sseGuardOrderWarning(where));
    }
    return true;
  }
}

function isSseGuard(guard: unknown): boolean {
  const type = typeof guard === 'function' ? guard : (guard as object | null)?.constructor;
  return typeof type === 'function' && Object.hasOwn(type, SSE_GUARD);
}

import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { catchError, from, mergeMap, throwError, type Observable } from 'rxjs';
import { LockError } from './errors/lock.errors.js';
import type { RedisLockModuleOptions } from './interfaces/redis-lock-module-options.interface.js';
import { converterOf, joinChain, STOCK_INTERCEPTOR } from './lock-interceptor.chain.js';
import { runInApp } from './lock-owners.registry.js';
import { LockService } from './lock.service.js';
import { lockTransportError, stockLockAnswer } from './lock-transport-error.js';
import { REDIS_LOCK_LOGGER_CONTEXT } from './redis-lock.constants.js';
import { REDIS_LOCK_MODULE_OPTIONS } from './redis-lock.module-definition.js';
import { withParkedLock } from './sse-lock.parking.js';

/**
 * Turns the lock errors of `@Lock` handlers into answers of the handler's transport: HTTP 423
 * Locked when busy, 503 when Redis is unavailable, 400 when a key cannot be built (a plain
 * message: the log names the method and placeholder); the same as
 * `RpcException`/`WsException` for microservice and gateway handlers. Registered globally by
 * `RedisLockModule`. It maps lock errors from any handler, so a controller that calls
 * `LockService` itself answers 423 too; other errors pass through untouched.
 *
 * Locking itself happens in the method `@Lock` wraps, which receives the arguments the param
 * decorators and pipes produced, so the key uses exactly the values the handler sees.
 *
 * Only one `LockInterceptor` converts a given error, wherever they are bound (globally, on the
 * class, on the method, by `@Lock` itself): the outermost subclass of it in the handler's chain,
 * or the outermost stock one when there is no subclass. So to shape the answers, override
 * `toTransportError` in a subclass and register it globally (`APP_INTERCEPTOR`) or with
 * `@UseInterceptors` on the class or method, in any order; or give the module an `errorFactory`.
 * A 423 over HTTP carries `Retry-After` (whole seconds, rounded up) when the holder's lease left
 * is known.
 *
 * @example
 * @Injectable()
 * export class TeapotLockInterceptor extends LockInterceptor {
 *   protected override async toTransportError(error: LockError, context: ExecutionContext) {
 *     if (error instanceof LockNotAcquiredError) return new ImATeapotException();
 *     return super.toTransportError(error, context);
 *   }
 * }
 */
@Injectable()
export class LockInterceptor implements NestInterceptor {
  /** Tells the stock class (of either build of the package) from a user's subclass. */
  static readonly [STOCK_INTERCEPTOR] = true;

  private readonly logger = new Logger(REDIS_LOCK_LOGGER_CONTEXT);

  /*
   * Injected as properties, so a subclass's constructor need not pass them on; optional, as a
   * stock instance bound by @Lock in a module that cannot see RedisLockModule's providers.
   */
  @Optional()
  @Inject(REDIS_LOCK_MODULE_OPTIONS)
  private readonly moduleOptions?: RedisLockModuleOptions;

  /** The app's service: a useValue instance shared by several apps locks through this one. */
  @Optional()
  @Inject(LockService)
  private readonly lockService?: LockService;

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    // Every interceptor of the chain joins before the handler runs, so when an error comes back
    // through them, each knows which one of them converts it.
    joinChain(context, this);
    // The handler runs as this app's work: a useValue instance shared with other apps that it
    // calls locks through this app (see lockServiceOf).
    // An @Sse handler finds the lock its guard parked for this request (see LockSseGuard).
    const request =
      context.getType() === 'http' ? context.switchToHttp().getRequest<object>() : undefined;
    return runInApp(this.lockService, () => withParkedLock(request, () => next.handle())).pipe(
      catchError((error: unknown) =>
        error instanceof LockError && converterOf(context) === this
          ? from(this.toTransportError(error, context)).pipe(mergeMap((e) => throwError(() => e)))
          : throwError(() => error),
      ),
    );
  }

  /**
   * The exception to throw in place of `error` for the handler's transport: the module's
   * `errorFactory`'s if it has one, else the stock answer. Sets `Retry-After` on an HTTP 423.
   */
  protected async toTransportError(error: LockError, context: ExecutionContext): Promise<unknown> {
    return lockTransportError(error, context, this.moduleOptions, (e, c) =>
      this.stockTransportError(e, c),
    );
  }

  /** The documented 423 / 503 / 400 answers, as HTTP, RPC or WS exceptions. */
  protected async stockTransportError(error: LockError, context: ExecutionContext) {
    return stockLockAnswer(error, context, this.logger);
  }
}

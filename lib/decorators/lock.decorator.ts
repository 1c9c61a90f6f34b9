import { Inject, Logger, SetMetadata, UseGuards, UseInterceptors } from '@nestjs/common';
import { Observable } from 'rxjs';
import type { KeyResolver, LockKey } from '../core/keys/key-template.js';
import { declaredReturn } from '../declared-return.js';
import { callLocked, observeLocked, type LockedCallOptions } from '../locked-call.js';
import { callThrough, clientOf, observeThrough, runnerOf } from '../locked-by-service.js';
import { LockTemplateError } from '../errors/lock.errors.js';
import { claimLockedMethod, compileForMethod } from './lock-stacking.js';
import type { LockDecoratorOptions } from '../interfaces/lock-options.interface.js';
import { LockInterceptor } from '../lock.interceptor.js';
import { LockSseGuard, rememberMethodKey } from '../lock-sse.guard.js';
import { adoptParked, parkedRequest } from '../sse-lock.parking.js';
import { lockServiceOf } from '../lock-owners.registry.js';
import { checkLockOptions, checkRwKey } from './lock-options.check.js';
import {
  LOCK_METADATA,
  LOCK_SERVICE_PROPERTY,
  LOCK_SERVICE_TOKEN,
  REDIS_LOCK_LOGGER_CONTEXT,
} from '../redis-lock.constants.js';
import {
  notAMethodMessage,
  skippedMessage,
  unsupportedReturnTypeMessage,
} from '../redis-lock.messages.js';

/**
 * What `@Lock` records on a method; read through `LockMetadataAccessor` (or `Reflector` with
 * `LOCK_METADATA` in your own enhancers).
 *
 * @example
 * const lock = reflector.get<LockMetadata | undefined>(LOCK_METADATA, context.getHandler());
 */
export interface LockMetadata {
  /** The template (or key function), or several for a multi-key lock. */
  readonly key: LockKey | readonly LockKey[];
  readonly options: LockDecoratorOptions;
  /** `Class.method()`, for messages. */
  readonly where: string;
  readonly resolveKey: KeyResolver;
}

/** @internal any method a decorator wraps. */
export type AnyMethod = (...args: unknown[]) => unknown;

const logger = new Logger(REDIS_LOCK_LOGGER_CONTEXT);

/**
 * Runs the method under a distributed lock: acquire, renew while it runs, release when its result
 * settles (an Observable: when it completes, errors or is unsubscribed).
 *
 * Taking the lock waits on Redis, so the locked method is asynchronous: it must be `async`, or be
 * declared to return `Promise<T>` or `Observable<T>`. One declared to return an Observable returns
 * one, which takes the lock on each subscription. Any other returns a Promise. A method declared
 * to return a plain value (`: number`, `: string`, a class) is refused where the class is
 * defined. When the return type is not known (no annotation, `void`, `any`, a union or alias; or a
 * build without decorator metadata: esbuild, SWC, tsx) and the method returns an Observable, the
 * Promise resolves to an Observable that runs under the lock: subscribed at once (as Nest does),
 * under the lock the call ran under until the stream ends; if nobody subscribes within 250 ms,
 * the lock is released, and a later subscription takes it again.
 *
 * The key is a template whose `{{placeholders}}` name a parameter (`{{id}}`, `{{dto.customer.id}}`)
 * or an argument index (`{{0}}`), or a function given the same arguments. On a controller a
 * parameter is what its param decorator supplies after pipes; on a provider, the argument passed.
 * An array of templates locks all its keys at once (all or nothing, in a stable order, so two
 * calls naming the same keys in opposite orders cannot deadlock).
 *
 * Works on controllers (HTTP 423 when busy, 503 when Redis is down, 400 on a bad key value) and on
 * any provider method, however it is called: cron ticks, queue consumers, `this.service.method()`.
 * The method is wrapped where the class is defined and the class gets the app's `LockService` by
 * property injection, so it works whatever copies the method later (schedulers, queue workers).
 *
 * @throws LockTemplateError at class definition, for a malformed template, an unknown parameter, an
 * invalid or unknown option (`ttl: '5000'`, `waitTimeout: -1`, `tll`), a declared return type
 * that is neither a Promise nor an Observable, or a second @Lock on the method (use one @Lock
 * with an array of keys). Put @Lock nearest the method, below decorators that wrap it, so its
 * placeholders see the method's own parameters.
 * @example
 * @Post(':id/pay')
 * @Lock('order:{{id}}', { ttl: 10_000, waitTimeout: 2_000 })
 * pay(@Param('id') id: string) { ... }
 *
 * @Lock('report:nightly', { onNotAcquired: 'skip' })
 * async buildNightlyReport() { ... }
 *
 * @Lock(['account:{{from}}', 'account:{{to}}'], { waitTimeout: 5_000 })
 * transfer(from: string, to: string, amount: number) { ... }
 */
export function Lock(
  key: LockKey | readonly LockKey[],
  options: LockDecoratorOptions = {},
): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    const isStatic = typeof target === 'function';
    const className = isStatic ? (target as { name: string }).name : target.constructor.name;
    const where = `${className}.${String(propertyKey)}()`;
    const original = descriptor.value as unknown;
    if (typeof original !== 'function' || isStatic) {
      throw new LockTemplateError(notAMethodMessage(where));
    }
    checkLockOptions(where, options);
    claimLockedMethod(target, propertyKey, where);
    checkRwKey(where, key, options);
    const declared = declaredReturn(
      original,
      Reflect.getMetadata('design:returntype', target, propertyKey),
    );
    if (typeof declared === 'object') {
      throw new LockTemplateError(unsupportedReturnTypeMessage(where, declared.unsupported));
    }
    const metadata: LockMetadata = {
      key,
      options,
      where,
      resolveKey: compileForMethod(key, original as AnyMethod, target, propertyKey, where),
    };
    // A method declared to return an Observable must return one; any other returns a promise.
    const wrapped = lockedMethod(original as AnyMethod, metadata, declared === 'observable');
    copyFunctionIdentity(original as AnyMethod, wrapped);
    descriptor.value = wrapped as never;
    SetMetadata(LOCK_METADATA, metadata)(target, propertyKey, descriptor);
    // Bound here as well as globally: a microservice connected to an HTTP app without
    // `inheritAppConfig` does not get the app's global interceptors. On providers it is inert.
    UseInterceptors(LockInterceptor)(target, propertyKey, descriptor);
    // On an @Sse route, takes the lock before the response starts (a refusal is then a 423); inert
    // elsewhere. After the guards of decorators below this one, so they run first.
    rememberMethodKey(wrapped, propertyKey);
    UseGuards(LockSseGuard)(target, propertyKey, descriptor);
    injectLockService(target);
    return descriptor;
  };
}

/** @internal also wraps `@Semaphore` methods (their options carry `permits`). */
export function lockedMethod(
  original: AnyMethod,
  metadata: LockMetadata,
  returnsObservable: boolean,
) {
  const { onNotAcquired, ...lockOptions } = metadata.options;
  const options: LockedCallOptions = {
    ...lockOptions,
    onSkip:
      onNotAcquired === 'skip'
        ? (key) => logger.debug(skippedMessage(metadata.where, key))
        : undefined,
  };
  return function (this: object | undefined, ...args: unknown[]): unknown {
    const invoke = () => original.apply(this, args);
    // Now: the Observable may be subscribed outside the request's async context.
    const request = parkedRequest();
    const locked = () => {
      const service = lockServiceOf(this, metadata.where);
      const key = metadata.resolveKey(args);
      // A test's fake LockService has no client: the method runs through its `run`.
      const client = clientOf(service);
      if (!client) return { runner: runnerOf(service, metadata.where), key };
      // What LockSseGuard got before the response started, if for this very key.
      const parked = adoptParked(request, metadata, client, key);
      if (parked?.error) throw parked.error;
      return { client, key, scope: parked?.scope };
    };
    if (returnsObservable) {
      return new Observable((subscriber) => {
        const { client, runner, key, scope } = locked();
        const stream = client
          ? observeLocked(client, key, options, invoke, scope)
          : observeThrough(runner!, key, options, invoke);
        return stream.subscribe(subscriber);
      });
    }
    return (async () => {
      const { client, runner, key, scope } = locked();
      if (!client) return callThrough(runner!, key, options, invoke);
      return callLocked(client, key, options, invoke, scope);
    })();
  };
}

/** Keeps the name and every metadata key (routes, guards, pipes...) decorators set before us. */
export function copyFunctionIdentity(from: AnyMethod, to: AnyMethod): void {
  Object.defineProperty(to, 'name', { value: from.name });
  for (const metadataKey of Reflect.getOwnMetadataKeys(from)) {
    Reflect.defineMetadata(metadataKey, Reflect.getOwnMetadata(metadataKey, from), to);
  }
}

/**
 * Marks a prototype whose class already has the property injection. On the prototype, under a
 * registry symbol, rather than in a module-level set: both builds of the package see it.
 */
const INJECTED = Symbol.for('REDIS_LOCK:SERVICE_INJECTED');

/**
 * One property injection per class: each instance gets its own app's LockService. By the string
 * token, which the module of either build of the package provides (see LOCK_SERVICE_TOKEN).
 */
export function injectLockService(prototype: object): void {
  if (Object.hasOwn(prototype, INJECTED)) return;
  Object.defineProperty(prototype, INJECTED, { value: true });
  Inject(LOCK_SERVICE_TOKEN)(prototype, LOCK_SERVICE_PROPERTY);
}

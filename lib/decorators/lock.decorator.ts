import { Inject, Logger, SetMetadata, UseInterceptors } from '@nestjs/common';
import { Observable } from 'rxjs';
import { compileKeyTemplate, type KeyResolver, type LockKey } from '../core/keys/key-template.js';
import { declaredReturn } from '../declared-return.js';
import { callLocked, observeLocked, type LockedCallOptions } from '../locked-call.js';
import { callThrough, clientOf, observeThrough, runnerOf } from '../locked-by-service.js';
import { getParameterNames } from '../core/keys/parameter-names.js';
import { LockError, LockTemplateError } from '../errors/lock.errors.js';
import type { LockOptions } from '../interfaces/lock-options.interface.js';
import { LockInterceptor } from '../lock.interceptor.js';
import { LockService } from '../lock.service.js';
import { checkLockOptions, checkRwKey } from './lock-options.check.js';
import {
  LOCK_METADATA,
  LOCK_SERVICE_PROPERTY,
  REDIS_LOCK_LOGGER_CONTEXT,
} from '../redis-lock.constants.js';
import {
  missingLockServiceMessage,
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
  readonly options: LockOptions;
  /** `Class.method()`, for messages. */
  readonly where: string;
  readonly resolveKey: KeyResolver;
}

type AnyMethod = (...args: unknown[]) => unknown;

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
 * invalid or unknown option (`ttl: '5000'`, `waitTimeout: -1`, `tll`) or a declared return type
 * that is neither a Promise nor an Observable.
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
  options: LockOptions = {},
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
      resolveKey: compileKeyTemplate(key, getParameterNames(original as AnyMethod), where),
    };
    // A method declared to return an Observable must return one; any other returns a promise.
    const wrapped = lockedMethod(original as AnyMethod, metadata, declared === 'observable');
    copyFunctionIdentity(original as AnyMethod, wrapped);
    descriptor.value = wrapped as never;
    SetMetadata(LOCK_METADATA, metadata)(target, propertyKey, descriptor);
    // Bound here as well as globally: a microservice connected to an HTTP app without
    // `inheritAppConfig` does not get the app's global interceptors. On providers it is inert.
    UseInterceptors(LockInterceptor)(target, propertyKey, descriptor);
    injectLockService(target);
    return descriptor;
  };
}

function lockedMethod(original: AnyMethod, metadata: LockMetadata, returnsObservable: boolean) {
  const { onNotAcquired, ...lockOptions } = metadata.options;
  const options: LockedCallOptions = {
    ...lockOptions,
    onSkip:
      onNotAcquired === 'skip'
        ? (key) => logger.debug(skippedMessage(metadata.where, key))
        : undefined,
  };
  return function (this: Record<symbol, LockService | undefined>, ...args: unknown[]): unknown {
    const invoke = () => original.apply(this, args);
    const locked = () => {
      const service = this?.[LOCK_SERVICE_PROPERTY];
      if (!service) throw new LockError(missingLockServiceMessage(metadata.where));
      const key = metadata.resolveKey(args);
      // A test's fake LockService has no client: the method runs through its `run`.
      const client = clientOf(service);
      return client ? { client, key } : { runner: runnerOf(service, metadata.where), key };
    };
    if (returnsObservable) {
      return new Observable((subscriber) => {
        const { client, runner, key } = locked();
        const stream = client
          ? observeLocked(client, key, options, invoke)
          : observeThrough(runner!, key, options, invoke);
        return stream.subscribe(subscriber);
      });
    }
    return (async () => {
      const { client, runner, key } = locked();
      if (!client) return callThrough(runner!, key, options, invoke);
      return callLocked(client, key, options, invoke);
    })();
  };
}

/** Keeps the name and every metadata key (routes, guards, pipes...) decorators set before us. */
function copyFunctionIdentity(from: AnyMethod, to: AnyMethod): void {
  Object.defineProperty(to, 'name', { value: from.name });
  for (const metadataKey of Reflect.getOwnMetadataKeys(from)) {
    Reflect.defineMetadata(metadataKey, Reflect.getOwnMetadata(metadataKey, from), to);
  }
}

const injected = new WeakSet<object>();

/** One property injection per class: each instance gets its own app's LockService. */
function injectLockService(prototype: object): void {
  if (injected.has(prototype)) return;
  injected.add(prototype);
  Inject(LockService)(prototype, LOCK_SERVICE_PROPERTY);
}

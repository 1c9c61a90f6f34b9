import { SetMetadata, UseInterceptors } from '@nestjs/common';
import { compileKeyTemplate, type LockKey } from '../core/keys/key-template.js';
import { getParameterNames } from '../core/keys/parameter-names.js';
import { declaredReturn } from '../declared-return.js';
import { LockTemplateError } from '../errors/lock.errors.js';
import type { LockDecoratorOptions } from '../interfaces/lock-options.interface.js';
import type { PermitOptions } from '../interfaces/permit-options.interface.js';
import { LockInterceptor } from '../lock.interceptor.js';
import { SEMAPHORE_METADATA } from '../redis-lock.constants.js';
import {
  badSemaphoreMessage,
  SEMAPHORE_NOT_A_METHOD,
  SEMAPHORE_ONE_KEY,
  unsupportedReturnTypeMessage,
} from '../redis-lock.messages.js';
import {
  copyFunctionIdentity,
  injectLockService,
  lockedMethod,
  type AnyMethod,
  type LockMetadata,
} from './lock.decorator.js';
import { checkSemaphoreOptions } from './semaphore-options.check.js';

/**
 * Options of `@Semaphore`: `permits` (N) and those of `@Lock` but `fair`.
 *
 * @example
 * const options: SemaphoreOptions = { permits: 5, waitTimeout: 2_000, onNotAcquired: 'throw' };
 */
export interface SemaphoreOptions extends PermitOptions {
  /** As for `@Lock`: `'throw'` (default; HTTP 423 when all permits are held) or `'skip'`. */
  onNotAcquired?: LockDecoratorOptions['onNotAcquired'];
}

/**
 * What `@Semaphore` records on a method (under `SEMAPHORE_METADATA`); `options.permits` is N.
 *
 * @example
 * const semaphore = reflector.get<SemaphoreMetadata | undefined>(SEMAPHORE_METADATA, handler);
 */
export interface SemaphoreMetadata extends LockMetadata {
  readonly options: SemaphoreOptions;
}

/**
 * Runs the method holding one of `permits` permits of a semaphore: at most N calls run at once
 * across every process, e.g. 5 concurrent calls to a rate-limited payment API. Each call has its
 * own lease, renewed while it runs, so a crashed process's permits come back when their leases
 * end; the permit is given back when the result settles. Everything else is as `@Lock`: key
 * templates and options checked where the class is defined, the method made asynchronous,
 * controllers and providers alike, `onNotAcquired: 'throw' | 'skip'`, HTTP 423 when all permits
 * are held (503 when Redis is down, 400 on a bad key value), RPC and WebSocket errors likewise.
 * Not with Redlock: the app refuses to start. Not reentrant: a nested call takes another permit.
 *
 * @throws LockTemplateError at class definition: an array of keys, a malformed template, an
 * invalid or unknown option (`permits: 0`, `fair`), a plain declared return type.
 * @example
 * @Post('charge')
 * @Semaphore('payments-api', { permits: 5, waitTimeout: 2_000 })
 * charge(@Body() order: OrderDto) { ... }
 *
 * @Semaphore('tenant:{{tenantId}}:exports', { permits: 2, onNotAcquired: 'skip' })
 * async exportReport(tenantId: string) { ... }
 */
export function Semaphore(key: LockKey, options: SemaphoreOptions): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    const isStatic = typeof target === 'function';
    const className = isStatic ? (target as { name: string }).name : target.constructor.name;
    const where = `${className}.${String(propertyKey)}()`;
    const original = descriptor.value as unknown;
    if (typeof original !== 'function' || isStatic) {
      throw new LockTemplateError(badSemaphoreMessage(where, SEMAPHORE_NOT_A_METHOD));
    }
    if (Array.isArray(key))
      throw new LockTemplateError(badSemaphoreMessage(where, SEMAPHORE_ONE_KEY));
    checkSemaphoreOptions(where, options);
    const declared = declaredReturn(
      original,
      Reflect.getMetadata('design:returntype', target, propertyKey),
    );
    if (typeof declared === 'object') {
      const message = unsupportedReturnTypeMessage(where, declared.unsupported);
      throw new LockTemplateError(message.replace('@Lock on', '@Semaphore on'));
    }
    const metadata: SemaphoreMetadata = {
      key,
      options,
      where,
      resolveKey: compileKeyTemplate(key, getParameterNames(original as AnyMethod), where),
    };
    // The lock's wrapper: `permits` in its options makes each call hold a permit, not the lock.
    const wrapped = lockedMethod(original as AnyMethod, metadata, declared === 'observable');
    copyFunctionIdentity(original as AnyMethod, wrapped);
    descriptor.value = wrapped as never;
    SetMetadata(SEMAPHORE_METADATA, metadata)(target, propertyKey, descriptor);
    UseInterceptors(LockInterceptor)(target, propertyKey, descriptor);
    injectLockService(target);
    return descriptor;
  };
}

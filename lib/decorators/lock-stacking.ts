/*
 * @Lock stacked with other decorators: one @Lock per method, and a template compiled against a
 * wrapper another decorator installed says so instead of listing the wrapper's parameters.
 */
import { getParameterNames, type ParameterList } from '../core/keys/parameter-names.js';
import { compileKeyTemplate, type KeyResolver, type LockKey } from '../core/keys/key-template.js';
import { LockTemplateError } from '../errors/lock.errors.js';
import { secondLockMessage, wrappedMethodMessage } from '../redis-lock.messages.js';

/**
 * Marks the methods that have a @Lock, on the class and method name rather than on the function,
 * which a wrapping decorator between two @Locks replaces. A registry symbol: a @Lock of each build
 * of the package on one method is still two.
 */
const LOCKED_METHOD = Symbol.for('REDIS_LOCK:LOCKED_METHOD');

/**
 * Claims the method for this @Lock. Two @Locks would take their locks one after the other, so two
 * calls naming the same keys in opposite orders could deadlock; the array form takes them at once.
 *
 * @throws LockTemplateError when the method already has a @Lock (its own, not an overridden one).
 * @example
 * claimLockedMethod(Orders.prototype, 'pay', 'Orders.pay()');
 */
export function claimLockedMethod(target: object, propertyKey: string | symbol, where: string) {
  if (Reflect.getOwnMetadata(LOCKED_METHOD, target, propertyKey)) {
    throw new LockTemplateError(secondLockMessage(where));
  }
  Reflect.defineMetadata(LOCKED_METHOD, true, target, propertyKey);
}

/**
 * Compiles `key` against the parameters of `method`, the function @Lock is given.
 *
 * @throws LockTemplateError as `compileKeyTemplate`, naming a wrapping decorator as the likely
 * cause when `method` looks like another decorator's wrapper rather than the declared method.
 * @example
 * const resolveKey = compileForMethod('order:{{id}}', method, Orders.prototype, 'pay', 'Orders.pay()');
 */
export function compileForMethod(
  key: LockKey | readonly LockKey[],
  method: (...args: never[]) => unknown,
  target: object,
  propertyKey: string | symbol,
  where: string,
): KeyResolver {
  const params = getParameterNames(method);
  try {
    return compileKeyTemplate(key, params, where);
  } catch (err) {
    if (err instanceof LockTemplateError && looksWrapped(params, target, propertyKey)) {
      throw new LockTemplateError(wrappedMethodMessage(err.message));
    }
    throw err;
  }
}

/**
 * Whether the parameters seen differ from the declared ones: TypeScript records the declaration's
 * parameter types (`design:paramtypes`), a wrapper is usually `(...args)`. Without that metadata
 * (esbuild, SWC), a lone rest parameter is taken as a wrapper.
 */
function looksWrapped(params: ParameterList, target: object, propertyKey: string | symbol) {
  const declared = Reflect.getMetadata('design:paramtypes', target, propertyKey) as
    unknown[] | undefined;
  if (!declared) return params.hasRest && params.names.length === 1;
  return (
    declared.length !== params.names.length ||
    (params.hasRest && declared[declared.length - 1] !== Array)
  );
}

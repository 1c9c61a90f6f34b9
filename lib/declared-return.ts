/** What a method is declared to return, as far as can be told where its class is defined. */
import { isObservable } from 'rxjs';

/**
 * `'promise'` and `'observable'`: declared so (or `async`). `'unknown'`: nothing says; the method
 * may return anything. `{ unsupported }`: declared to return a plain value, named.
 */
export type DeclaredReturn = 'promise' | 'observable' | 'unknown' | { unsupported: string };

/**
 * Reads `design:returntype` (TypeScript's `emitDecoratorMetadata`) and whether the method is
 * `async`. What TypeScript emits, checked with `tsc` and with `transpileModule` (ts-jest, and
 * other one-file-at-a-time builds):
 * - `Promise` for `: Promise<T>` and for an `async` method without annotation;
 * - the class for `: Observable<T>`, `: Subject<T>` (a value import of rxjs);
 * - `Number`, `String`, `Boolean`, a class... for a plain value type;
 * - `undefined` (`void 0`) for no annotation, `: void` and generators: the two cannot be told
 *   apart, and unannotated methods returning a promise are common, so both are 'unknown';
 * - `Object` or `Function` for what it cannot name at runtime: `any`, `unknown`, unions (even
 *   `Promise<T> | undefined`), type aliases, interfaces (`PromiseLike<T>`), a type-only import of
 *   `Observable`: 'unknown' too, since these are often promises or Observables.
 * esbuild, SWC without its metadata option and tsx emit nothing: 'unknown' unless `async`.
 *
 * @example
 * const declared = declaredReturn(descriptor.value, Reflect.getMetadata('design:returntype', target, key));
 */
export function declaredReturn(method: unknown, returnType: unknown): DeclaredReturn {
  // Whatever it is annotated with (an alias, say), an async function returns a promise.
  if (typeof method === 'function' && method.constructor?.name === 'AsyncFunction') {
    return 'promise';
  }
  if (typeof returnType !== 'function' || returnType === Object || returnType === Function) {
    return 'unknown';
  }
  const prototype = (returnType as { prototype?: unknown }).prototype;
  // By shape rather than identity: a Promise subclass, or an Observable of another rxjs copy.
  if (typeof (prototype as { then?: unknown } | undefined)?.then === 'function') return 'promise';
  if (isObservable(prototype)) return 'observable';
  return { unsupported: returnType.name || 'an anonymous class' };
}

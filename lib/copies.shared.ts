/* State that both builds of the package (ES module and CommonJS), loaded in one process, share. */

/**
 * The one `T` of the process named `name`: made by the first copy of the package that asks, found
 * by the other under the same registry symbol. For module state whose identity must hold across
 * copies (which app provides an instance, which interceptor converts an error).
 *
 * @example
 * const owners = sharedAcrossCopies('REDIS_LOCK:OWNERS', () => new WeakMap<object, unknown[]>());
 */
export function sharedAcrossCopies<T>(name: string, create: () => T): T {
  const registry = globalThis as Record<symbol, T | undefined>;
  const key = Symbol.for(name);
  return (registry[key] ??= create());
}

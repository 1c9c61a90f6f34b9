/**
 * `instanceof` for the library's errors that holds across the package's two builds.
 *
 * The package ships an ES module build and a CommonJS build. A process can load both (a CommonJS
 * app whose ES module dependency imports the package), and each has its own error classes: an
 * error thrown by one copy would fail `instanceof` against the other copy's class, so a `catch`,
 * an exception filter (`@Catch(LockNotAcquiredError)`) or the interceptor of the other copy would
 * miss it. Each library error class therefore carries a brand, a string shared by both copies, and
 * each error records the brands of its classes under a registry symbol (`Symbol.for`), which both
 * copies see as the same key. A class's `Symbol.hasInstance` accepts its own instances as usual,
 * and an instance of the other copy that carries its brand.
 */

/** Static property of a library error class: its brand (own property, never inherited). */
const BRAND = Symbol.for('nestjs-redis-lock:error-brand');
/** Property of a library error: the brands of the classes it is an instance of. */
const BRANDS = Symbol.for('nestjs-redis-lock:error-brands');

type Branded = { readonly [BRAND]?: string };
type ErrorClass = abstract new (...args: never) => unknown;

/**
 * Gives a library error class its brand. Call once per class, right after it is defined; a
 * user's subclass has no brand of its own, so it keeps the ordinary `instanceof`.
 *
 * @example
 * export class LockLostError extends LockError {}
 * brandErrorClass(LockLostError, 'LockLostError');
 */
export function brandErrorClass(errorClass: ErrorClass, name: string): void {
  Object.defineProperty(errorClass, BRAND, { value: `nestjs-redis-lock:${name}` });
}

/**
 * Records on a new error the brands of every class it was constructed as (`new.target` and its
 * ancestors). Not enumerable, so it shows neither in logs nor in serialised errors.
 *
 * @example
 * constructor(message: string) { super(message); recordBrands(this, new.target); }
 */
export function recordBrands(error: Error, constructedAs: ErrorClass): void {
  const brands: string[] = [];
  for (let c: unknown = constructedAs; typeof c === 'function'; c = Object.getPrototypeOf(c)) {
    if (Object.hasOwn(c, BRAND)) brands.push((c as Branded)[BRAND]!);
  }
  Object.defineProperty(error, BRANDS, { value: Object.freeze(brands) });
}

/**
 * `value instanceof errorClass`, also true for an error of the other build of the package that
 * was constructed as the class of the same brand.
 *
 * @example
 * static [Symbol.hasInstance](value: unknown) { return isBrandedInstance(this, value); }
 */
export function isBrandedInstance(errorClass: ErrorClass, value: unknown): boolean {
  if (Function.prototype[Symbol.hasInstance].call(errorClass, value)) return true;
  if (!Object.hasOwn(errorClass, BRAND) || typeof value !== 'object' || value === null) {
    return false;
  }
  const brands = (value as { [BRANDS]?: unknown })[BRANDS];
  return Array.isArray(brands) && brands.includes((errorClass as Branded)[BRAND]);
}

/* Which of the LockInterceptors around one handler call converts its lock errors. */
import type { ExecutionContext } from '@nestjs/common';
import { sharedAcrossCopies } from './copies.shared.js';

/**
 * Nest hands the same context to every interceptor of one call, outermost first. Shared by both
 * builds of the package: a global interceptor of one and a @Lock-bound one of the other join one
 * chain.
 */
const chains = sharedAcrossCopies(
  'REDIS_LOCK:INTERCEPTOR_CHAINS',
  () => new WeakMap<ExecutionContext, object[]>(),
);

/** Marks the stock LockInterceptor class of each build (an own static property, not inherited). */
export const STOCK_INTERCEPTOR = Symbol.for('REDIS_LOCK:STOCK_INTERCEPTOR');

function isStock(interceptor: object): boolean {
  return Object.prototype.hasOwnProperty.call(interceptor.constructor, STOCK_INTERCEPTOR);
}

/**
 * Records `interceptor` as part of the call's chain (outermost first).
 *
 * @example
 * joinChain(context, this);
 */
export function joinChain(context: ExecutionContext, interceptor: object): void {
  const chain = chains.get(context);
  if (chain) chain.push(interceptor);
  else chains.set(context, [interceptor]);
}

/**
 * The one interceptor of the call's chain that converts a lock error: the outermost whose class
 * is not a stock LockInterceptor of either build (a user's subclass: it was put there to change the answer, wherever it was
 * bound), else the outermost. Only one conversion runs, so a stock interceptor bound closer to
 * the handler (by `@Lock`) never answers in a subclass's place.
 *
 * @example
 * if (converterOf(context) === this) return this.toTransportError(error, context);
 */
export function converterOf(context: ExecutionContext): object | undefined {
  const chain = chains.get(context) ?? [];
  return chain.find((interceptor) => !isStock(interceptor)) ?? chain[0];
}

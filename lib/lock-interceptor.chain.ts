/* Which of the LockInterceptors around one handler call converts its lock errors. */
import type { ExecutionContext } from '@nestjs/common';

/** Nest hands the same context to every interceptor of one call, outermost first. */
const chains = new WeakMap<ExecutionContext, object[]>();

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
 * is not `stock` (a user's subclass: it was put there to change the answer, wherever it was
 * bound), else the outermost. Only one conversion runs, so a stock interceptor bound closer to
 * the handler (by `@Lock`) never answers in a subclass's place.
 *
 * @example
 * if (converterOf(context, LockInterceptor) === this) return this.toTransportError(error, context);
 */
export function converterOf(context: ExecutionContext, stock: abstract new () => object) {
  const chain = chains.get(context) ?? [];
  return chain.find((interceptor) => interceptor.constructor !== stock) ?? chain[0];
}

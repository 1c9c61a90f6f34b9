/* The Retry-After header of a 423, from the holder's lease left. */
import type { ExecutionContext } from '@nestjs/common';

/** What Express' `res` and Fastify's `reply` share for setting a header. */
interface HeaderSetter {
  header(name: string, value: string): unknown;
  /** Node's response (Express), or under `raw` (Fastify). */
  headersSent?: boolean;
  raw?: { headersSent?: boolean };
}

/**
 * Sets `Retry-After` on the HTTP response of `context` to the holder's lease left in whole
 * seconds, rounded up (at least 1), as @nestjs/throttler does on its 429; nothing when the lease
 * is not known, or when the response has started already (a refused `@Sse` stream whose
 * headers went out first: its error event carries the refusal).
 *
 * @example
 * setRetryAfter(context, error.leaseLeftMs); // 2300 ms -> "Retry-After: 3"
 */
export function setRetryAfter(context: ExecutionContext, leaseLeftMs: number | undefined): void {
  if (leaseLeftMs === undefined || !Number.isFinite(leaseLeftMs)) return;
  const response = context.switchToHttp().getResponse<Partial<HeaderSetter>>();
  if (typeof response?.header !== 'function') return;
  if (response.headersSent || response.raw?.headersSent) return;
  response.header('Retry-After', String(Math.max(1, Math.ceil(leaseLeftMs / 1000))));
}

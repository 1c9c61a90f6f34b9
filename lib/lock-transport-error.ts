/* The answer a lock error gets on its handler's transport: 423, 503 or 400, as HTTP, RPC or WS. */
import {
  BadRequestException,
  HttpException,
  HttpStatus,
  ServiceUnavailableException,
  type ExecutionContext,
  type LoggerService,
} from '@nestjs/common';
import {
  InvalidLockKeyError,
  LockNotAcquiredError,
  LockUnavailableError,
  type LockError,
} from './errors/lock.errors.js';
import type { RedisLockModuleOptions } from './interfaces/redis-lock-module-options.interface.js';
import { BAD_KEY_RESPONSE, UNAVAILABLE_RESPONSE } from './redis-lock.messages.js';
import { setRetryAfter } from './retry-after.header.js';

/** HTTP-style status of each lock error, used for every transport. */
const STATUS = {
  notAcquired: { statusCode: HttpStatus.LOCKED, error: 'Locked' },
  unavailable: { statusCode: HttpStatus.SERVICE_UNAVAILABLE, error: 'Service Unavailable' },
  badKey: { statusCode: HttpStatus.BAD_REQUEST, error: 'Bad Request' },
} as const;

/**
 * The exception to throw in place of `error`: the module's `errorFactory`'s if it has one, else
 * `stock`'s. Sets `Retry-After` on an HTTP 423. What `LockInterceptor.toTransportError` and the
 * SSE guard answer.
 *
 * @example
 * throw await lockTransportError(error, context, moduleOptions, (e, c) => stockLockAnswer(e, c, logger));
 */
export async function lockTransportError(
  error: LockError,
  context: ExecutionContext,
  moduleOptions: RedisLockModuleOptions | undefined,
  stock: (error: LockError, context: ExecutionContext) => Promise<unknown>,
): Promise<unknown> {
  if (error instanceof LockNotAcquiredError && context.getType() === 'http') {
    setRetryAfter(context, error.leaseLeftMs);
  }
  const factory = moduleOptions?.errorFactory;
  return factory ? factory(error, context) : stock(error, context);
}

/**
 * The documented 423 / 503 / 400 answers, as HTTP, RPC or WS exceptions; any other error as is.
 *
 * @example
 * throw await stockLockAnswer(error, context, logger);
 */
export async function stockLockAnswer(
  error: LockError,
  context: ExecutionContext,
  logger: LoggerService,
): Promise<unknown> {
  const status = statusOf(error);
  if (!status) return error;
  if (error instanceof LockUnavailableError || error instanceof InvalidLockKeyError) {
    logger.warn(error.message);
  }
  // A client gets no Redis detail, nor class and method names; the log above has them.
  const message =
    error instanceof LockUnavailableError
      ? UNAVAILABLE_RESPONSE
      : error instanceof InvalidLockKeyError
        ? BAD_KEY_RESPONSE
        : error.message;
  const body = { statusCode: status.statusCode, message, error: status.error };
  switch (context.getType<string>()) {
    case 'rpc': {
      const { RpcException } = await import('@nestjs/microservices');
      return new RpcException(body);
    }
    case 'ws': {
      const { WsException } = await import('@nestjs/websockets');
      return new WsException(body);
    }
    default:
      return error instanceof LockUnavailableError
        ? new ServiceUnavailableException(body)
        : error instanceof InvalidLockKeyError
          ? new BadRequestException(body)
          : new HttpException(body, status.statusCode);
  }
}

function statusOf(error: LockError) {
  if (error instanceof LockNotAcquiredError) return STATUS.notAcquired;
  if (error instanceof LockUnavailableError) return STATUS.unavailable;
  if (error instanceof InvalidLockKeyError) return STATUS.badKey;
  return undefined;
}

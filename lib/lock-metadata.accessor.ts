import { Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { LockMetadata } from './decorators/lock.decorator.js';
import type { SemaphoreMetadata } from './decorators/semaphore.decorator.js';
import { LOCK_METADATA, SEMAPHORE_METADATA } from './redis-lock.constants.js';

/**
 * The one place the Nest layer reads `@Lock` metadata.
 *
 * @example
 * const lock = accessor.getLockMetadata(context.getHandler());
 */
@Injectable()
export class LockMetadataAccessor {
  // Explicit tokens: the library's providers resolve even where no decorator metadata is emitted
  // (esbuild/tsx running the sources).
  constructor(@Inject(Reflector) private readonly reflector: Reflector) {}

  getLockMetadata(method: object | undefined): LockMetadata | undefined {
    return method
      ? this.reflector.get<LockMetadata | undefined>(LOCK_METADATA, method as never)
      : undefined;
  }

  getSemaphoreMetadata(method: object | undefined): SemaphoreMetadata | undefined {
    return method
      ? this.reflector.get<SemaphoreMetadata | undefined>(SEMAPHORE_METADATA, method as never)
      : undefined;
  }
}

import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { RedisLockClient } from './core/redis-lock.client.js';
import type { LockMetadata } from './decorators/lock.decorator.js';
import { LockModeError } from './errors/lock-mode.error.js';
import { LockMetadataAccessor } from './lock-metadata.accessor.js';
import { LockService } from './lock.service.js';
import { LOCK_SERVICE_PROPERTY, REDIS_LOCK_LOGGER_CONTEXT } from './redis-lock.constants.js';

/**
 * Checks at startup that every instance with `@Lock` methods can lock. Instances Nest built get
 * their `LockService` by property injection; instances made by a `useFactory`/`useValue` provider
 * are not injected, so the explorer hands them this app's service.
 */
@Injectable()
export class LockExplorer implements OnModuleInit {
  private readonly logger = new Logger(REDIS_LOCK_LOGGER_CONTEXT);

  constructor(
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(MetadataScanner) private readonly scanner: MetadataScanner,
    @Inject(LockMetadataAccessor) private readonly accessor: LockMetadataAccessor,
    @Inject(LockService) private readonly lockService: LockService,
  ) {}

  onModuleInit(): void {
    const wrappers = [...this.discovery.getControllers(), ...this.discovery.getProviders()];
    let locked = 0;
    for (const wrapper of wrappers) {
      const instance = wrapper.instance as Record<PropertyKey, unknown> | undefined;
      // Request-scoped instances do not exist yet; property injection covers each one later.
      if (!instance || typeof instance !== 'object' || !wrapper.isDependencyTreeStatic()) continue;
      const prototype = Object.getPrototypeOf(instance) as object;
      const methods = this.scanner
        .getAllMethodNames(prototype)
        .filter((name) => this.accessor.getLockMetadata(instance[name] as object));
      if (methods.length === 0) continue;
      this.checkModes(
        methods.map((name) => this.accessor.getLockMetadata(instance[name] as object)!),
      );
      locked += methods.length;
      if (!instance[LOCK_SERVICE_PROPERTY]) {
        Object.defineProperty(instance, LOCK_SERVICE_PROPERTY, { value: this.lockService });
      }
    }
    this.logger.debug(`${locked} @Lock method(s) ready.`);
  }

  /** `@Lock(key, { mode })` on a backend without read-write locks fails the startup, naming it. */
  private checkModes(locks: LockMetadata[]): void {
    const moded = locks.find((lock) => lock.options.mode !== undefined);
    // A fake LockService (tests) may have no client: it answers for itself.
    const refused =
      moded && (this.lockService.client as RedisLockClient | undefined)?.rwUnsupported;
    if (moded && refused) throw new LockModeError(`${moded.where}: ${refused}`);
  }
}

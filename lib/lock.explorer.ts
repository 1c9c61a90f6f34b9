import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import type { RedisLockClient } from './core/redis-lock.client.js';
import { LockModeError } from './errors/lock-mode.error.js';
import { LockMetadataAccessor } from './lock-metadata.accessor.js';
import { registerLockOwner } from './lock-owners.registry.js';
import { LockService } from './lock.service.js';
import { REDIS_LOCK_LOGGER_CONTEXT } from './redis-lock.constants.js';
import { LockError } from './errors/lock.errors.js';
import { semaphoreUnsupportedAtStartupMessage } from './redis-lock.messages.js';

type FactoryFn = (...deps: unknown[]) => unknown;

/** How many locked methods a prototype has, and which of them hold semaphore permits. */
interface LockedMethods {
  readonly count: number;
  readonly semaphores: readonly string[];
  /** `@Lock(key, { mode })` methods: read-write locks. */
  readonly readWrite: readonly string[];
}

const NONE: LockedMethods = { count: 0, semaphores: [], readWrite: [] };

/**
 * Checks at startup that every instance with `@Lock` methods can lock. Instances Nest built from
 * their class get their `LockService` by property injection; the others (`useValue`, which
 * several apps may share, and `useFactory` of any scope) are registered as provided by this app,
 * so their calls lock through an open app that provides them (see `lockServiceOf`).
 */
@Injectable()
export class LockExplorer implements OnModuleInit {
  private readonly logger = new Logger(REDIS_LOCK_LOGGER_CONTEXT);
  /** Prototypes known to have, or not to have, `@Lock`/`@Semaphore` methods, and which. */
  private readonly lockedPrototypes = new WeakMap<object, LockedMethods>();

  constructor(
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(MetadataScanner) private readonly scanner: MetadataScanner,
    @Inject(LockMetadataAccessor) private readonly accessor: LockMetadataAccessor,
    @Inject(LockService) private readonly lockService: LockService,
  ) {}

  onModuleInit(): void {
    const wrappers = [...this.discovery.getControllers(), ...this.discovery.getProviders()];
    let locked = 0;
    const semaphores = new Set<string>();
    const readWrite = new Set<string>();
    for (const wrapper of wrappers) {
      if (wrapper.isFactory && (wrapper.isTransient || !wrapper.isDependencyTreeStatic())) {
        this.registerWhatItMakes(wrapper);
        continue;
      }
      // Request-scoped class instances do not exist yet; property injection covers each one.
      if (!wrapper.isDependencyTreeStatic()) continue;
      const found = this.register(wrapper.instance);
      locked += found.count;
      for (const where of found.semaphores) semaphores.add(where);
      for (const where of found.readWrite) readWrite.add(where);
    }
    this.checkModes([...readWrite]);
    // Redlock cannot hold semaphores: refused now rather than on the first call.
    const refused = semaphores.size > 0 && this.lockService.client.semaphoresRefused();
    if (refused) {
      throw new LockError(semaphoreUnsupportedAtStartupMessage([...semaphores], refused));
    }
    this.logger.debug(`${locked} @Lock/@Semaphore method(s) ready.`);
  }

  /**
   * A scoped factory makes its instances after startup (per request, per consumer): each one it
   * makes from now on is registered as it is made. Nest calls the factory through the wrapper's
   * public `metatype` each time it builds an instance, so that is where we hook in. Transient
   * instances already made for singletons are registered now.
   */
  private registerWhatItMakes(wrapper: InstanceWrapper): void {
    for (const made of wrapper.getStaticTransientInstances()) this.register(made?.instance);
    const factory = wrapper.metatype as FactoryFn;
    const register = (instance: unknown) => {
      this.register(instance);
      return instance;
    };
    wrapper.metatype = function registeringFactory(...deps: unknown[]) {
      const made = factory(...deps);
      return made instanceof Promise ? made.then(register) : register(made);
    };
  }

  /** Registers the instance if it has `@Lock`/`@Semaphore` methods; returns what it has. */
  private register(instance: unknown): LockedMethods {
    if (!instance || typeof instance !== 'object') return NONE;
    const prototype = Object.getPrototypeOf(instance) as object | null;
    if (!prototype) return NONE;
    let methods = this.lockedPrototypes.get(prototype);
    if (methods === undefined) {
      const semaphores: string[] = [];
      const readWrite: string[] = [];
      const count = this.scanner.getAllMethodNames(prototype).filter((name) => {
        const method = (instance as Record<string, object>)[name];
        const semaphore = this.accessor.getSemaphoreMetadata(method);
        if (semaphore) semaphores.push(semaphore.where);
        const lock = this.accessor.getLockMetadata(method);
        if (lock?.options.mode !== undefined) readWrite.push(lock.where);
        return semaphore || lock;
      }).length;
      methods = { count, semaphores, readWrite };
      this.lockedPrototypes.set(prototype, methods);
    }
    if (methods.count > 0) registerLockOwner(instance, this.lockService);
    return methods;
  }

  /** `@Lock(key, { mode })` on a backend without read-write locks fails the startup, naming it. */
  private checkModes(readWrite: readonly string[]): void {
    if (readWrite.length === 0) return;
    // A fake LockService (tests) may have no client: it answers for itself.
    const refused = (this.lockService.client as RedisLockClient | undefined)?.rwUnsupported;
    if (refused) throw new LockModeError(`${readWrite[0]}: ${refused}`);
  }
}

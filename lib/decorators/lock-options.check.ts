/* Checks `@Lock` options where the class is defined, with the lock client's own rules. */
import { resolveLockOptions, type ResolvedLockOptions } from '../core/lock-options.resolver.js';
import { LockTemplateError } from '../errors/lock.errors.js';
import type { LockDecoratorOptions } from '../interfaces/lock-options.interface.js';
import {
  rwSingleKeyMessage,
  badLockOptionMessage,
  badOnNotAcquiredMessage,
  lockOptionsNotObjectMessage,
  unknownLockOptionMessage,
} from '../redis-lock.messages.js';

/** Every option `@Lock` takes: a misspelt one would otherwise be ignored without a word. */
const KNOWN_OPTIONS: readonly (keyof LockDecoratorOptions)[] = [
  'ttl',
  'waitTimeout',
  'retry',
  'fair',
  'autoRenew',
  'signal',
  'onNotAcquired',
  'mode',
];

/*
 * Stand-ins for the module's defaults, which are not known yet: valid values, so that only the
 * options the decorator gives are judged.
 */
const VALID_DEFAULTS: ResolvedLockOptions = {
  ttl: 1,
  waitTimeout: 0,
  retry: () => null,
  autoRenew: true,
  fair: false,
};

/**
 * Checks the options of `@Lock` on `where` (`Class.method()`) with the rules every lock call
 * applies, so a bad value stops the app where the class is defined instead of failing requests.
 *
 * @throws LockTemplateError naming `where`, the option and its value.
 * @example
 * checkLockOptions('Orders.pay()', { ttl: 10_000 }); // passes
 * checkLockOptions('Orders.pay()', { ttl: '5000' } as never); // throws LockTemplateError
 */
export function checkLockOptions(where: string, options: unknown): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new LockTemplateError(lockOptionsNotObjectMessage(where, options));
  }
  for (const name of Object.keys(options)) {
    if (!(KNOWN_OPTIONS as string[]).includes(name)) {
      throw new LockTemplateError(unknownLockOptionMessage(where, name, KNOWN_OPTIONS));
    }
  }
  const { onNotAcquired, ...lockOptions } = options as LockDecoratorOptions;
  if (onNotAcquired !== undefined && !['throw', 'skip'].includes(onNotAcquired)) {
    throw new LockTemplateError(badOnNotAcquiredMessage(where, onNotAcquired));
  }
  try {
    resolveLockOptions(lockOptions, VALID_DEFAULTS);
  } catch (err) {
    if (!(err instanceof RangeError || err instanceof TypeError)) throw err;
    throw new LockTemplateError(badLockOptionMessage(where, err.message));
  }
}

/**
 * A read-write lock (`mode`) is on one key: `@Lock([...], { mode })` stops the app where the class
 * is defined, not at its first call.
 *
 * @throws LockTemplateError naming `where`.
 * @example
 * checkRwKey('Docs.read()', 'doc:{{id}}', { mode: 'read' }); // passes
 * checkRwKey('Docs.read()', ['a', 'b'], { mode: 'read' }); // throws LockTemplateError
 */
export function checkRwKey(where: string, key: unknown, options: LockDecoratorOptions): void {
  if (options.mode !== undefined && Array.isArray(key)) {
    throw new LockTemplateError(`${where}: ${rwSingleKeyMessage(key)}`);
  }
}

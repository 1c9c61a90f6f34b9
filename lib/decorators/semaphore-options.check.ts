/* Checks `@Semaphore` options where the class is defined, with the semaphore calls' own rules. */
import type { ResolvedLockOptions } from '../core/lock-options.resolver.js';
import { resolvePermitOptions } from '../core/semaphore/permit-options.resolver.js';
import { LockTemplateError } from '../errors/lock.errors.js';
import type { SemaphoreOptions } from './semaphore.decorator.js';
import {
  badSemaphoreMessage,
  badSemaphoreOnNotAcquiredMessage,
  semaphoreOptionsExpected,
  unknownSemaphoreOptionMessage,
} from '../redis-lock.messages.js';

/** Every option `@Semaphore` takes: a misspelt one would otherwise be ignored without a word. */
const KNOWN_OPTIONS: readonly (keyof SemaphoreOptions)[] = [
  'permits',
  'ttl',
  'waitTimeout',
  'retry',
  'autoRenew',
  'signal',
  'onNotAcquired',
];

/* Valid stand-ins for the module's defaults, not known yet: only the decorator's options are judged. */
const VALID_DEFAULTS: ResolvedLockOptions = {
  ttl: 1,
  waitTimeout: 0,
  retry: () => null,
  autoRenew: true,
  fair: false,
};

/**
 * Checks the options of `@Semaphore` on `where` (`Class.method()`), so a bad value stops the app
 * where the class is defined instead of failing calls.
 *
 * @throws LockTemplateError naming `where`, the option and its value.
 * @example
 * checkSemaphoreOptions('Payments.charge()', { permits: 5 }); // passes
 * checkSemaphoreOptions('Payments.charge()', { permits: 0 }); // throws LockTemplateError
 */
export function checkSemaphoreOptions(where: string, options: unknown): void {
  const refuse = (problem: string) => new LockTemplateError(badSemaphoreMessage(where, problem));
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw refuse(semaphoreOptionsExpected(options));
  }
  for (const name of Object.keys(options)) {
    if (!(KNOWN_OPTIONS as string[]).includes(name)) {
      throw refuse(unknownSemaphoreOptionMessage(name, KNOWN_OPTIONS));
    }
  }
  const { onNotAcquired, ...permitOptions } = options as SemaphoreOptions;
  if (onNotAcquired !== undefined && !['throw', 'skip'].includes(onNotAcquired)) {
    throw refuse(badSemaphoreOnNotAcquiredMessage(onNotAcquired));
  }
  try {
    resolvePermitOptions(permitOptions, VALID_DEFAULTS);
  } catch (err) {
    if (!(err instanceof RangeError || err instanceof TypeError)) throw err;
    throw refuse(err.message);
  }
}

/* A handle's AbortSignal, which looks at the lease each time it is read. */

/** AbortSignal's own `aborted` getter, which a handle's signal wraps. */
const nativeAborted = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;

/**
 * An AbortController whose signal calls `checkLease` before `aborted` or `throwIfAborted()` is
 * read, so a lease that ran out while the event loop was blocked shows at once, not one timer
 * phase later (`checkLease` aborts the controller when it finds the lease gone).
 *
 * @example
 * const controller = leaseController(() => this.isHeld());
 */
export function leaseController(checkLease: () => void): AbortController {
  const controller = new AbortController();
  const { signal } = controller;
  Object.defineProperty(signal, 'aborted', {
    get: () => {
      checkLease();
      return nativeAborted.call(signal) as boolean;
    },
  });
  signal.throwIfAborted = () => {
    checkLease();
    AbortSignal.prototype.throwIfAborted.call(signal);
  };
  return controller;
}

/**
 * The abort reason of a released lock's signal.
 *
 * @example
 * controller.abort(releasedReason('order:1'));
 */
export function releasedReason(key: string): DOMException {
  return new DOMException(`Lock "${key}" was released.`, 'AbortError');
}

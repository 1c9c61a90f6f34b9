/**
 * @Lock stacked with itself or with a decorator that wraps the method: a second @Lock is refused
 * (two locks taken one after the other can deadlock), and a template that cannot see the method's
 * parameters through another decorator's wrapper says that is why.
 */
import { Lock, LockTemplateError } from '../../lib/index.js';

type AnyMethod = (...args: unknown[]) => unknown;

/** A decorator that replaces the method with a wrapper, as logging or tracing decorators do. */
function Traced(): MethodDecorator {
  return (_target, _key, descriptor) => {
    const original = descriptor.value as unknown as AnyMethod;
    descriptor.value = function (this: unknown, ...args: unknown[]) {
      return original.apply(this, args);
    } as never;
    return descriptor;
  };
}

function definitionError(define: () => unknown): LockTemplateError {
  try {
    define();
  } catch (error) {
    expect(error).toBeInstanceOf(LockTemplateError);
    return error as LockTemplateError;
  }
  throw new Error('the class was defined without an error');
}

describe('two @Lock on one method', () => {
  it.each([
    { keys: 'named placeholders', outer: 'account:{{to}}', inner: 'account:{{from}}' },
    { keys: 'argument indexes', outer: 'account:{{1}}', inner: 'account:{{0}}' },
    { keys: 'fixed keys', outer: 'ledger', inner: 'accounts' },
  ])('are refused with $keys, pointing to the array form', ({ outer, inner }) => {
    const error = definitionError(() => {
      class Transfers {
        @Lock(outer)
        @Lock(inner)
        async transfer(from: string, to: string) {
          return `${from} -> ${to}`;
        }
      }
      return Transfers;
    });

    expect(error.message).toContain('Transfers.transfer()');
    expect(error.message).toContain('more than one @Lock');
    expect(error.message).toContain('array');
    expect(error.message).not.toContain('Available: args');
  });

  it('are refused with another wrapping decorator between them', () => {
    const error = definitionError(() => {
      class Transfers {
        @Lock('ledger')
        @Traced()
        @Lock('accounts')
        async transfer() {
          return 'done';
        }
      }
      return Transfers;
    });

    expect(error.message).toContain('more than one @Lock');
  });

  it('an override in a subclass may have its own @Lock', () => {
    const define = () => {
      class Base {
        @Lock('base:{{id}}')
        async run(id: string) {
          return id;
        }
      }
      class Derived extends Base {
        @Lock('derived:{{id}}')
        override async run(id: string) {
          return id;
        }
      }
      return Derived;
    };

    expect(define).not.toThrow();
  });
});

describe('@Lock above a decorator that wraps the method', () => {
  it('names the wrapping decorator as the cause when a placeholder names a parameter', () => {
    const error = definitionError(() => {
      class Orders {
        @Lock('order:{{id}}')
        @Traced()
        async pay(id: string, amount: number) {
          return { id, amount };
        }
      }
      return Orders;
    });

    expect(error.message).toContain('Orders.pay()');
    expect(error.message).toContain('{{id}}');
    expect(error.message).toContain('another decorator');
    expect(error.message).toContain('Put @Lock nearest the method');
  });

  it('is accepted below it, where it sees the method itself', () => {
    const define = () => {
      class Orders {
        @Traced()
        @Lock('order:{{id}}')
        async pay(id: string, amount: number) {
          return { id, amount };
        }
      }
      return Orders;
    };

    expect(define).not.toThrow();
  });
});

import { compileKeyTemplate } from '../../lib/core/keys/key-template.js';
import { getParameterNames, type ParameterList } from '../../lib/core/keys/parameter-names.js';
import { InvalidLockKeyError, LockError, LockTemplateError } from '../../lib/errors/lock.errors.js';

const WHERE = 'Orders.pay()';

/** The parameter list of a real class method, read the way `@Lock` reads it. */
class Orders {
  pay(id: string, dto: { customer?: { id?: unknown } | null }): [string, unknown] {
    return [id, dto];
  }
  none(): void {}
  restOf(first: string, ...others: unknown[]): unknown[] {
    return [first, others];
  }
  destructured(id: string, { amount }: { amount: number }): number {
    return Number(id) + amount;
  }
}

const PAY = getParameterNames(Orders.prototype.pay);
const params = (...names: (string | null)[]): ParameterList => ({ names, hasRest: false });

function keyOf(template: string, args: unknown[], list: ParameterList = PAY): string {
  return compileKeyTemplate(template, list, WHERE)(args) as string;
}

/** The error `fn` throws, failing the test when it throws nothing. */
function thrownBy(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw, but nothing was thrown');
}

describe('compileKeyTemplate', () => {
  describe('building keys', () => {
    it('fills {{id}} with the argument of the parameter named id', () => {
      expect(keyOf('order:{{id}}', ['42', {}])).toBe('order:42');
    });

    it('walks properties: {{dto.customer.id}}', () => {
      expect(keyOf('customer:{{dto.customer.id}}', ['1', { customer: { id: 'c-7' } }])).toBe(
        'customer:c-7',
      );
    });

    it('fills {{0}} with the first argument, by index', () => {
      expect(keyOf('order:{{0}}', ['42', {}])).toBe('order:42');
    });

    it('walks properties from an index: {{1.id}}', () => {
      const list = getParameterNames(Orders.prototype.destructured);
      expect(list.names).toEqual(['id', null]);
      expect(keyOf('amount:{{1.amount}}', ['1', { amount: 5 }], list)).toBe('amount:5');
      expect(keyOf('x:{{1.id}}', ['a', { id: 'b' }])).toBe('x:b');
    });

    it('keeps single braces literal, so Redis Cluster hash tags pass through', () => {
      expect(keyOf('{orders}:{{id}}', ['42', {}])).toBe('{orders}:42');
    });

    it('reads {{{id}}} as a literal brace around a placeholder', () => {
      expect(keyOf('{{{id}}}', ['42', {}])).toBe('{42}');
    });

    it('ignores whitespace inside the braces', () => {
      expect(keyOf('order:{{ id }}:{{  dto.customer.id\t}}', ['42', { customer: { id: 7 } }])).toBe(
        'order:42:7',
      );
    });

    it('combines several placeholders and literals in order', () => {
      expect(keyOf('a{{id}}b{{1.customer.id}}c{{0}}', ['1', { customer: { id: '2' } }])).toBe(
        'a1b2c1',
      );
    });

    it('accepts a template without placeholders', () => {
      expect(keyOf('report:nightly', [])).toBe('report:nightly');
    });

    it('allows numbers, bigints and booleans, written as strings', () => {
      expect(keyOf('n:{{id}}', [42, {}])).toBe('n:42');
      expect(keyOf('n:{{id}}', [0, {}])).toBe('n:0');
      expect(keyOf('n:{{id}}', [-1.5, {}])).toBe('n:-1.5');
      expect(keyOf('n:{{id}}', [12345678901234567890n, {}])).toBe('n:12345678901234567890');
      expect(keyOf('n:{{id}}', [true, {}])).toBe('n:true');
    });

    it('accepts a value of exactly 256 characters', () => {
      const id = 'x'.repeat(256);
      expect(keyOf('order:{{id}}', [id, {}])).toBe(`order:${id}`);
    });

    it('allows an index beyond the declared parameters when the method has a rest parameter', () => {
      const list = getParameterNames(Orders.prototype.restOf);
      expect(list.hasRest).toBe(true);
      expect(keyOf('x:{{3}}', ['a', 'b', 'c', 'd'], list)).toBe('x:d');
    });

    it('calls a key function with the arguments', () => {
      const resolve = compileKeyTemplate((id: string, n: number) => `k:${id}:${n}`, PAY, WHERE);
      expect(resolve(['a', 3])).toBe('k:a:3');
    });

    it('builds one key per template of an array, in the order given (a multi-key lock)', () => {
      const transfer = params('from', 'to');
      const resolve = compileKeyTemplate(
        ['account:{{to}}', 'account:{{from}}', (from: string) => `ledger:${from}`],
        transfer,
        'Bank.transfer()',
      );
      expect(resolve(['a', 'b'])).toEqual(['account:b', 'account:a', 'ledger:a']);
    });
  });

  describe('definition-time errors (LockTemplateError)', () => {
    it('names the class, the method, the placeholder and the available parameters for an unknown name', () => {
      const where = `${Orders.name}.${Orders.prototype.pay.name}()`;
      const err = thrownBy(() => compileKeyTemplate('order:{{orderId}}', PAY, where));
      expect(err).toBeInstanceOf(LockTemplateError);
      expect(err).toBeInstanceOf(LockError);
      expect(err.name).toBe('LockTemplateError');
      expect(err.message).toContain('Orders.pay()');
      expect(err.message).toContain('{{orderId}}');
      expect(err.message).toMatch(/Available: id, dto\b/);
    });

    it('checks every template of an array at definition, naming the one at fault', () => {
      const err = thrownBy(() =>
        compileKeyTemplate(['order:{{id}}', 'customer:{{customerId}}'], PAY, WHERE),
      );
      expect(err).toBeInstanceOf(LockTemplateError);
      expect(err.message).toContain('Orders.pay()');
      expect(err.message).toContain('{{customerId}}');
      expect(err.message).toContain("@Lock('customer:{{customerId}}')");
    });

    it('refuses an empty array of keys', () => {
      const err = thrownBy(() => compileKeyTemplate([], PAY, WHERE));
      expect(err).toBeInstanceOf(LockTemplateError);
      expect(err.message).toMatch(/Orders\.pay\(\).*list of keys is empty/);
    });

    it('says so when the method takes no parameters', () => {
      const list = getParameterNames(Orders.prototype.none);
      const err = thrownBy(() => compileKeyTemplate('x:{{id}}', list, 'Orders.none()'));
      expect(err).toBeInstanceOf(LockTemplateError);
      expect(err.message).toContain('(the method takes no parameters)');
    });

    it('does not offer a destructured parameter by a name it does not have', () => {
      const list = getParameterNames(Orders.prototype.destructured);
      const err = thrownBy(() => compileKeyTemplate('x:{{amount}}', list, WHERE));
      expect(err).toBeInstanceOf(LockTemplateError);
      expect(err.message).toMatch(/Available: id\.$/);
    });

    it('rejects an unclosed {{', () => {
      const err = thrownBy(() => compileKeyTemplate('order:{{id', PAY, WHERE));
      expect(err).toBeInstanceOf(LockTemplateError);
      expect(err.message).toMatch(/not closed with \}\}/);
      expect(err.message).toContain(WHERE);
    });

    it.each([
      ['an empty placeholder', 'x:{{}}'],
      ['a blank placeholder', 'x:{{  }}'],
      ['a trailing dot', 'x:{{dto.}}'],
      ['a leading dot', 'x:{{.id}}'],
      ['a double dot', 'x:{{dto..id}}'],
      ['a call', 'x:{{id()}}'],
      ['brackets', 'x:{{dto[0]}}'],
      ['spaces inside the path', 'x:{{dto . id}}'],
      ['a dash', 'x:{{dto-id}}'],
    ])('rejects a bad path: %s', (_what, template) => {
      const err = thrownBy(() => compileKeyTemplate(template, PAY, WHERE));
      expect(err).toBeInstanceOf(LockTemplateError);
      expect(err.message).toContain('is not a parameter name or index');
    });

    it('rejects an index beyond the declared parameters', () => {
      const err = thrownBy(() => compileKeyTemplate('x:{{2}}', PAY, WHERE));
      expect(err).toBeInstanceOf(LockTemplateError);
      expect(err.message).toContain('points at argument 2');
      expect(err.message).toContain('declares 2 parameter(s)');
      // The last declared index is fine.
      expect(() => compileKeyTemplate('x:{{1}}', PAY, WHERE)).not.toThrow();
    });

    it('rejects an empty template', () => {
      expect(() => compileKeyTemplate('', PAY, WHERE)).toThrow(LockTemplateError);
    });

    it('fails when compiled, before any call', () => {
      let calls = 0;
      const list = params('id');
      expect(() => {
        compileKeyTemplate('x:{{nope}}', list, WHERE);
        calls++;
      }).toThrow(LockTemplateError);
      expect(calls).toBe(0);
    });
  });

  describe('call-time errors (InvalidLockKeyError)', () => {
    const resolve = compileKeyTemplate('order:{{id}}', params('id'), WHERE);

    it('fails a multi-key call when any one of its keys cannot be built', () => {
      const both = compileKeyTemplate(['a:{{from}}', 'a:{{to}}'], params('from', 'to'), WHERE);
      const err = thrownBy(() => both(['x', undefined]));
      expect(err).toBeInstanceOf(InvalidLockKeyError);
      expect(err.message).toContain('{{to}}');
    });

    it.each<[string, unknown, RegExp]>([
      ['undefined', undefined, /resolved to undefined, so the value is missing/],
      ['null', null, /resolved to null, so the value is missing/],
      ['an object', { id: 1 }, /resolved to an object, and only strings and numbers/],
      ['an array', [1], /resolved to an array/],
      ['an empty string', '', /empty value cannot identify a lock/],
      ['NaN', Number.NaN, /resolved to number NaN, which cannot identify a lock/],
      ['Infinity', Number.POSITIVE_INFINITY, /number Infinity/],
      ['a function', () => 1, /only strings and numbers/],
      ['a symbol', Symbol('s'), /only strings and numbers/],
      [
        'a 257-character string',
        'x'.repeat(257),
        /a string of 257 characters, longer than the 256/,
      ],
    ])('rejects %s', (_what, value, message) => {
      const err = thrownBy(() => resolve([value]));
      expect(err).toBeInstanceOf(InvalidLockKeyError);
      expect(err.message).toMatch(message);
      expect(err.message).toContain(WHERE);
      expect(err.message).toContain('{{id}}');
      expect(err.message).toContain('The method was not run.');
    });

    it('rejects a path that runs through a missing object', () => {
      const err = thrownBy(() => keyOf('c:{{dto.customer.id}}', ['1', { customer: null }]));
      expect(err).toBeInstanceOf(InvalidLockKeyError);
      expect(err.message).toContain('{{dto.customer.id}}');
      expect(err.message).toContain('so the value is missing');
      expect(() => keyOf('c:{{dto.customer.id}}', ['1', {}])).toThrow(InvalidLockKeyError);
      expect(() => keyOf('c:{{dto.customer.id}}', ['1', undefined])).toThrow(InvalidLockKeyError);
    });

    it('wraps a key function that throws, keeping the cause', () => {
      const boom = new Error('no tenant');
      const keyFn = compileKeyTemplate(
        () => {
          throw boom;
        },
        PAY,
        WHERE,
      );
      const err = thrownBy(() => keyFn([]));
      expect(err).toBeInstanceOf(InvalidLockKeyError);
      expect(err.message).toContain('the key function threw: no tenant');
      expect(err.message).toContain(WHERE);
      expect(err.cause).toBe(boom);
    });

    it.each<[string, unknown]>([
      ['a number', 42],
      ['undefined', undefined],
      ['null', null],
      ['an object', { key: 'a' }],
      ['an empty string', ''],
      ['a string over 1024 characters', 'k'.repeat(1025)],
    ])('rejects a key function returning %s', (_what, value) => {
      const keyFn = compileKeyTemplate(() => value as string, PAY, WHERE);
      const err = thrownBy(() => keyFn([]));
      expect(err).toBeInstanceOf(InvalidLockKeyError);
      expect(err.message).toContain('the key function returned');
    });

    it('accepts a key function result of exactly 1024 characters', () => {
      const key = 'k'.repeat(1024);
      expect(compileKeyTemplate(() => key, PAY, WHERE)([])).toBe(key);
    });
  });
});

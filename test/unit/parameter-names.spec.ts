import { getParameterNames } from '../../lib/core/keys/parameter-names.js';

type Fn = (...args: never[]) => unknown;

/** Reads the parameters the way `@Lock` does, from `Function.prototype.toString`. */
const names = (fn: Fn) => getParameterNames(fn);

describe('getParameterNames', () => {
  it('reads plain parameters of a class method', () => {
    class Orders {
      pay(id: string, amount: number): string {
        return id + amount;
      }
    }
    expect(names(Orders.prototype.pay)).toEqual({ names: ['id', 'amount'], hasRest: false });
  });

  it('reads a method without parameters', () => {
    class Jobs {
      nightly(): void {}
    }
    expect(names(Jobs.prototype.nightly)).toEqual({ names: [], hasRest: false });
  });

  it('reads parameters with default values, including calls, commas and arrows in them', () => {
    const pick = (a: number, b: number) => a + b;
    function f(a = 1, b = pick(1, 2), c = [1, 2], d = { x: 1, y: 2 }, e = (v: number) => v) {
      return [a, b, c, d, e];
    }
    expect(names(f)).toEqual({ names: ['a', 'b', 'c', 'd', 'e'], hasRest: false });
  });

  it('marks destructured parameters as null, keeping their positions', () => {
    function f({ id }: { id: string }, [first]: string[], plain: number, { a } = { a: 1 }) {
      return [id, first, plain, a];
    }
    expect(names(f)).toEqual({ names: [null, null, 'plain', null], hasRest: false });
  });

  it('reads a rest parameter', () => {
    function f(first: string, ...others: string[]) {
      return [first, others];
    }
    expect(names(f)).toEqual({ names: ['first', 'others'], hasRest: true });
  });

  it('reads a destructured rest parameter as null with hasRest', () => {
    function f(first: string, ...[a, b]: string[]) {
      return [first, a, b];
    }
    expect(names(f)).toEqual({ names: ['first', null], hasRest: true });
  });

  it('ignores block and line comments, including comments holding parentheses and commas', () => {
    // Built from source so the comments survive compilation.
    const f = new Function(
      'return function f(/* (x, y) */ a, // b) c,\n b /* ) */, /* , */ c) { return a; }',
    )() as Fn;
    expect(names(f)).toEqual({ names: ['a', 'b', 'c'], hasRest: false });
  });

  it('is not confused by strings holding parentheses, commas, brackets and quotes', () => {
    function f(a = ')', b = '(,', c = "]}'", d = `),(`, e = "it's )", g = 1) {
      return [a, b, c, d, e, g];
    }
    expect(names(f)).toEqual({ names: ['a', 'b', 'c', 'd', 'e', 'g'], hasRest: false });
  });

  it('is not confused by a default string that looks like a comment', () => {
    function f(url = 'http://example.com/(x)', glob = 'src/*.ts', id = 'x') {
      return [url, glob, id];
    }
    expect(names(f)).toEqual({ names: ['url', 'glob', 'id'], hasRest: false });
  });

  it('reads async methods, async functions and async arrows', () => {
    class Orders {
      async pay(id: string, amount: number): Promise<string> {
        return id + amount;
      }
    }
    async function g(x: number, y: number) {
      return x + y;
    }
    const h = async (p: number, q: number) => p + q;
    expect(names(Orders.prototype.pay)).toEqual({ names: ['id', 'amount'], hasRest: false });
    expect(names(g)).toEqual({ names: ['x', 'y'], hasRest: false });
    expect(names(h)).toEqual({ names: ['p', 'q'], hasRest: false });
  });

  it('reads generator and static methods', () => {
    class C {
      *items(from: number, to: number) {
        yield from + to;
      }
      static make(kind: string) {
        return kind;
      }
    }
    expect(names(C.prototype.items)).toEqual({ names: ['from', 'to'], hasRest: false });
    expect(names(C.make)).toEqual({ names: ['kind'], hasRest: false });
  });

  it('skips a computed method name that holds parentheses', () => {
    const name = 'run';
    class C {
      [name.toUpperCase() + String(1)](jobId: string, attempt: number) {
        return jobId + attempt;
      }
    }
    const method = (C.prototype as unknown as Record<string, Fn>).RUN1;
    expect(names(method)).toEqual({ names: ['jobId', 'attempt'], hasRest: false });
  });

  it('reads names containing $ and _', () => {
    function f($id: string, _tenant: string, a1$_: number) {
      return [$id, _tenant, a1$_];
    }
    expect(names(f)).toEqual({ names: ['$id', '_tenant', 'a1$_'], hasRest: false });
  });

  it('tolerates a trailing comma', () => {
    const f = new Function('return function f(a, b,) {}')() as Fn;
    expect(names(f)).toEqual({ names: ['a', 'b'], hasRest: false });
  });
});

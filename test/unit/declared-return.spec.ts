/**
 * What `declaredReturn` makes of the `design:returntype` this test file was compiled with (ts-jest
 * emits decorator metadata one file at a time, as other transpile-only builds do), and of none.
 */
import 'reflect-metadata';
// A value import: TypeScript can name Observable at runtime only through one.
import { Observable, of, Subject } from 'rxjs';
import type { Observable as ObservableType } from 'rxjs';
import { declaredReturn } from '../../lib/declared-return.js';

class Receipt {
  constructor(readonly id: string) {}
}
type Pending = Promise<number>;
interface Thing {
  id: string;
}

/** Makes TypeScript emit `design:returntype` for the method, and nothing else. */
const metadataOnly: MethodDecorator = () => undefined;

class Annotated {
  @metadataOnly async asyncNoAnnotation() {
    return 1;
  }
  @metadataOnly async asyncAlias(): Pending {
    return 1;
  }
  @metadataOnly promise(): Promise<number> {
    return Promise.resolve(1);
  }
  @metadataOnly observable(): Observable<number> {
    return of(1);
  }
  @metadataOnly subject(): Subject<number> {
    return new Subject();
  }
  @metadataOnly noAnnotation() {
    return of(1);
  }
  @metadataOnly voidType(): void {}
  @metadataOnly typeOnlyObservable(): ObservableType<number> {
    return of(1);
  }
  @metadataOnly unknownType(): unknown {
    return 1;
  }
  @metadataOnly union(): Promise<number> | Observable<number> {
    return of(1);
  }
  @metadataOnly alias(): Pending {
    return Promise.resolve(1);
  }
  @metadataOnly iface(): Thing {
    return { id: '1' };
  }
  @metadataOnly num(): number {
    return 1;
  }
  @metadataOnly str(): string {
    return '';
  }
  @metadataOnly flag(): boolean {
    return true;
  }
  @metadataOnly receipt(): Receipt {
    return new Receipt('1');
  }
}

const declared = (name: keyof Annotated) =>
  declaredReturn(
    Annotated.prototype[name],
    Reflect.getMetadata('design:returntype', Annotated.prototype, name),
  );

describe('declaredReturn', () => {
  it.each([
    ['asyncNoAnnotation', 'promise'],
    ['asyncAlias', 'promise'],
    ['promise', 'promise'],
    ['observable', 'observable'],
    ['subject', 'observable'],
    ['noAnnotation', 'unknown'],
    ['voidType', 'unknown'],
    ['typeOnlyObservable', 'unknown'],
    ['unknownType', 'unknown'],
    ['union', 'unknown'],
    ['alias', 'unknown'],
    ['iface', 'unknown'],
    ['num', { unsupported: 'Number' }],
    ['str', { unsupported: 'String' }],
    ['flag', { unsupported: 'Boolean' }],
    ['receipt', { unsupported: 'Receipt' }],
  ] as const)('%s() is %j', (name, expected) => {
    expect(declared(name)).toEqual(expected);
  });

  it('without metadata (esbuild, SWC, tsx): promise when async, unknown otherwise', () => {
    expect(declaredReturn(async () => 1, undefined)).toBe('promise');
    expect(declaredReturn(() => of(1), undefined)).toBe('unknown');
    expect(declaredReturn(function plain() {}, undefined)).toBe('unknown');
  });

  it('recognises a Promise subclass and an Observable of another rxjs copy by their shape', () => {
    class Deferred<T> extends Promise<T> {}
    class ForeignObservable {
      subscribe() {}
      lift() {}
    }
    expect(declaredReturn(() => undefined, Deferred)).toBe('promise');
    expect(declaredReturn(() => undefined, ForeignObservable)).toBe('observable');
  });
});

/**
 * A @Lock template that cannot work fails where the class is defined (when its file is imported),
 * so an app with one never starts. Each class is defined inside a function so the throw is caught.
 */
import { Controller, Param, Post } from '@nestjs/common';
import { Observable, of, Subject } from 'rxjs';
import { Lock, LockTemplateError } from '../../lib/index.js';

class Receipt {
  constructor(readonly id: string) {}
}

describe('@Lock template errors at class definition', () => {
  it('names the class, the method, the placeholder and the available parameters for an unknown one', () => {
    const defineCheckout = () => {
      @Controller('checkout')
      class CheckoutController {
        @Post(':id/pay')
        @Lock('order:{{orderId}}')
        pay(@Param('id') id: string, @Param('amount') amount: string) {
          return { id, amount };
        }
      }
      return CheckoutController;
    };

    let error: unknown;
    try {
      defineCheckout();
    } catch (caught) {
      error = caught;
    }

    expect(error).toBeInstanceOf(LockTemplateError);
    const { message } = error as LockTemplateError;
    expect(message).toContain('CheckoutController');
    expect(message).toContain('pay()');
    expect(message).toContain('{{orderId}}');
    expect(message).toContain('Available: id, amount.');
  });

  it.each([
    { template: 'order:{{id', problem: /not closed/ },
    { template: 'order:{{id-x}}', problem: /not a parameter name/ },
    { template: 'order:{{2}}', problem: /argument 2/ },
    { template: '', problem: /empty/ },
  ])('rejects the malformed template "$template"', ({ template, problem }) => {
    const define = () => {
      class Orders {
        @Lock(template)
        pay(id: string) {
          return id;
        }
      }
      return Orders;
    };

    expect(define).toThrow(LockTemplateError);
    expect(define).toThrow(problem);
    expect(define).toThrow('Orders.pay()');
  });

  it('refuses a method declared to return a plain value, saying why and what to do, and only such a method', () => {
    const defineTotals = () => {
      class Totals {
        @Lock('totals:{{id}}')
        total(id: string): number {
          return id.length;
        }
      }
      return Totals;
    };

    expect(defineTotals).toThrow(LockTemplateError);
    expect(defineTotals).toThrow('Totals.total()');
    expect(defineTotals).toThrow('declared to return Number');
    expect(defineTotals).toThrow('cannot return a plain value');
    expect(defineTotals).toThrow('Make the method async');
    const defineOthers = [
      () => {
        class Labels {
          @Lock('label')
          label(): string {
            return 'a';
          }
        }
        return Labels;
      },
      () => {
        class Receipts {
          @Lock('receipt')
          issue(): Receipt {
            return new Receipt('1');
          }
        }
        return Receipts;
      },
    ];
    expect(defineOthers[0]).toThrow('declared to return String');
    expect(defineOthers[1]).toThrow('declared to return Receipt');

    // Only those: async, Promise, Observable, and return types nothing is known of are accepted.
    const defineAccepted = () => {
      class Accepted {
        @Lock('a')
        async asyncNoAnnotation() {
          return 1;
        }
        @Lock('b')
        promise(): Promise<number> {
          return Promise.resolve(1);
        }
        @Lock('c')
        observable(): Observable<number> {
          return of(1);
        }
        @Lock('d')
        subject(): Subject<number> {
          return new Subject();
        }
        @Lock('e')
        noAnnotation() {
          return Promise.resolve(1);
        }
        @Lock('f')
        maybe(): Promise<number> | undefined {
          return undefined;
        }
      }
      return Accepted;
    };

    expect(defineAccepted).not.toThrow();
  });
});

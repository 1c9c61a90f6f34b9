/**
 * A @Lock template that cannot work fails where the class is defined (when its file is imported),
 * so an app with one never starts. Each class is defined inside a function so the throw is caught.
 */
import { Controller, Param, Post } from '@nestjs/common';
import { Lock, LockTemplateError } from '../../lib/index.js';

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
});

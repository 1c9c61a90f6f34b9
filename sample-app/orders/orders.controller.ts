import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { Lock } from '../../lib/index.js';
import { sampleConfig } from '../app.config.js';
import type { OrderLedger, PaymentReceipt } from './payment.interface.js';
import { OrdersService } from './orders.service.js';

@Controller('orders')
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  /**
   * Pays an order. One payment per order at a time across all instances: a second request for
   * the same order waits up to `ORDER_WAIT_MS` for the lock, then gets `423 Locked`. Requests
   * for other orders are not held up. `503` means Redis could not be reached.
   */
  @Post(':id/pay')
  @HttpCode(200)
  @Lock('order:{{id}}', { ttl: 5_000, waitTimeout: sampleConfig.orderWaitMs })
  pay(@Param('id') id: string): Promise<PaymentReceipt> {
    return this.orders.pay(id);
  }

  /** Lists the payments recorded for an order by any instance. */
  @Get(':id')
  findOne(@Param('id') id: string): Promise<OrderLedger> {
    return this.orders.findOne(id);
  }
}

import { Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockService } from '../../lib/index.js';
import { SAMPLE_CONFIG, type SampleConfig } from '../app.config.js';
import { LedgerRepository } from './ledger.repository.js';
import type { OrderLedger, PaymentReceipt } from './payment.interface.js';

/** Pays orders and keeps their ledger. */
@Injectable()
export class OrdersService {
  private readonly logger = new Logger(OrdersService.name);

  constructor(
    @Inject(SAMPLE_CONFIG) private readonly config: SampleConfig,
    private readonly lockService: LockService,
    private readonly ledger: LedgerRepository,
  ) {}

  /**
   * Simulates a payment that takes `PAY_MS`, then records it. The caller holds the order lock
   * (see `OrdersController.pay`), so two payments of one order never run at the same time.
   */
  async pay(order: string): Promise<PaymentReceipt> {
    const startedAt = Date.now();
    await sleep(this.config.payMs);
    const receipt: PaymentReceipt = {
      order,
      instance: this.config.instance,
      startedAt,
      finishedAt: Date.now(),
    };
    await this.record(receipt);
    this.logger.log(
      `order ${order} paid by ${receipt.instance} in ${receipt.finishedAt - startedAt} ms`,
    );
    return receipt;
  }

  /** Reads the ledger of an order; a read needs no lock. */
  async findOne(order: string): Promise<OrderLedger> {
    return { order, payments: await this.ledger.read(order) };
  }

  /**
   * Appends to the ledger under its own lock, taken directly with `LockService.run`: any code
   * path that changes the ledger (payments, refunds, imports) serialises on `ledger:<id>`.
   */
  private async record(receipt: PaymentReceipt): Promise<void> {
    await this.lockService.run(
      `ledger:${receipt.order}`,
      async () => {
        const payments = await this.ledger.read(receipt.order);
        payments.push(receipt);
        await this.ledger.write(receipt.order, payments);
      },
      { ttl: 2_000, waitTimeout: 2_000 },
    );
  }
}

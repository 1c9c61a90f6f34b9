import { Module } from '@nestjs/common';
import { LedgerRepository } from './ledger.repository.js';
import { OrdersController } from './orders.controller.js';
import { OrdersService } from './orders.service.js';

@Module({
  controllers: [OrdersController],
  providers: [OrdersService, LedgerRepository],
})
export class OrdersModule {}

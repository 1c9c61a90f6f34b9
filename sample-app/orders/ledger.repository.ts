import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  ServiceUnavailableException,
} from '@nestjs/common';
import { Redis } from 'ioredis';
import { SAMPLE_CONFIG, type SampleConfig } from '../app.config.js';
import type { PaymentReceipt } from './payment.interface.js';

/**
 * Stores each order's payments as one JSON value in Redis, shared by all instances. Reading,
 * appending and writing back is not atomic, so callers hold the `ledger:<id>` lock around it.
 */
@Injectable()
export class LedgerRepository implements OnApplicationShutdown {
  private readonly logger = new Logger(LedgerRepository.name);
  private readonly redis: Redis;
  private lastError?: string;

  constructor(@Inject(SAMPLE_CONFIG) private readonly config: SampleConfig) {
    // Fail a command after one reconnect attempt instead of queueing it until Redis is back.
    this.redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    this.redis.on('error', (error: Error) => {
      if (error.message === this.lastError) return; // once per outage, not once per retry
      this.lastError = error.message;
      this.logger.warn(`ledger connection error: ${error.message}`);
    });
    this.redis.on('ready', () => (this.lastError = undefined));
  }

  /** @throws ServiceUnavailableException (503) when Redis cannot be reached. */
  async read(order: string): Promise<PaymentReceipt[]> {
    const raw = await this.call(() => this.redis.get(this.key(order)));
    return raw ? (JSON.parse(raw) as PaymentReceipt[]) : [];
  }

  /** @throws ServiceUnavailableException (503) when Redis cannot be reached. */
  async write(order: string, payments: PaymentReceipt[]): Promise<void> {
    await this.call(() => this.redis.set(this.key(order), JSON.stringify(payments)));
  }

  /** The app created this connection, so the app closes it, without waiting on a dead Redis. */
  async onApplicationShutdown(): Promise<void> {
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => undefined);
    this.redis.disconnect();
  }

  private async call<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw new ServiceUnavailableException('The order ledger is unavailable.', { cause: error });
    }
  }

  private key(order: string): string {
    return `${this.config.keyPrefix}ledger:${order}`;
  }
}

/** What `POST /orders/:id/pay` answers: who ran the payment and when its critical section ran. */
export interface PaymentReceipt {
  order: string;
  instance: string;
  /** Epoch ms when the payment started, i.e. just after the order lock was taken. */
  startedAt: number;
  /** Epoch ms when the payment finished, just before the order lock is released. */
  finishedAt: number;
}

/** What `GET /orders/:id` answers: every payment recorded for the order, by any instance. */
export interface OrderLedger {
  order: string;
  payments: PaymentReceipt[];
}

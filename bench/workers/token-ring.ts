/**
 * The floor of the fair row: not a lock, the least a FIFO hand-over among these processes can
 * cost on this machine. A token goes round the processes in a fixed order. A process passes it to
 * its next waiter by resolving a promise, up to `perTurn` grants a turn, then to the next process
 * with one PUBLISH. No queue, no script, no lease, no check of any kind: everything a correct fair
 * lock does on top costs more. In the bench's steady state (every worker asks again right after
 * its release) it grants in the order fair mode does at best, a process's workers one after the
 * other, so its waits are the critical sections plus what this machine adds to each hand-over:
 * waking a process, and the pauses it gets from the scheduler and the hypervisor.
 *
 * @example
 * const ring = await TokenRing.join(redis, { index: 0, processes: 4, perTurn: 3 });
 * const release = await ring.acquire(round); // null when the round ended first
 */
import type { Redis } from 'ioredis';
import type { RoundSettings } from './contenders.js';

/** Where this process stands in the ring. */
export interface RingPlace {
  /** 0 .. processes - 1; process 0 holds the token when a round starts. */
  index: number;
  processes: number;
  /** Grants a process hands out per turn before the token moves on: its worker count. */
  perTurn: number;
}

type Grant = (granted: boolean) => void;

const CHANNEL = 'bench:token-ring:';

export class TokenRing {
  /** 'away': another process has the token; 'idle': this one has it and nobody holds it. */
  private state: 'away' | 'idle' | 'held' = 'away';
  private readonly waiting: Grant[] = [];
  private grantsThisTurn = 0;
  /** Rounds are told apart by their settings object; a token names the round it belongs to. */
  private round?: RoundSettings;
  private roundNumber = 0;
  /** Tokens that arrived before this process saw their round start. */
  private readonly early = new Set<number>();

  private constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly place: RingPlace,
  ) {}

  /** Subscribes to this process's channel; resolves once Redis confirmed it. */
  static async join(redis: Redis, place: RingPlace): Promise<TokenRing> {
    const subscriber = redis.duplicate();
    const ring = new TokenRing(redis, subscriber, place);
    subscriber.on('message', (_channel: string, message: string) => ring.arrived(Number(message)));
    await subscriber.subscribe(CHANNEL + place.index);
    return ring;
  }

  /** Waits for the token. Resolves with its release, or `null` when the round ended first. */
  async acquire(round: RoundSettings): Promise<(() => Promise<void>) | null> {
    if (round !== this.round) this.start(round);
    if (round.signal.aborted) return null;
    if (this.state === 'idle') {
      this.state = 'held';
      this.grantsThisTurn = 0;
    } else {
      const granted = await new Promise<boolean>((resolve) => this.waiting.push(resolve));
      if (!granted) return null;
    }
    return () => this.release();
  }

  close(): void {
    this.subscriber.disconnect();
  }

  private start(round: RoundSettings): void {
    this.round = round;
    this.roundNumber++;
    this.grantsThisTurn = 0;
    const mine = this.place.index === 0 || this.early.delete(this.roundNumber);
    this.state = mine ? 'idle' : 'away';
    round.signal.addEventListener('abort', () => {
      for (const grant of this.waiting.splice(0)) grant(false);
    });
  }

  private async release(): Promise<void> {
    this.grantsThisTurn++;
    const next = this.grantsThisTurn < this.place.perTurn ? this.waiting.shift() : undefined;
    if (next) return next(true);
    this.state = 'away';
    const to = (this.place.index + 1) % this.place.processes;
    await this.redis.publish(CHANNEL + to, String(this.roundNumber));
  }

  private arrived(round: number): void {
    if (round > this.roundNumber) this.early.add(round);
    if (round !== this.roundNumber || this.round?.signal.aborted) return;
    this.grantsThisTurn = 0;
    const next = this.waiting.shift();
    this.state = next ? 'held' : 'idle';
    next?.(true);
  }
}

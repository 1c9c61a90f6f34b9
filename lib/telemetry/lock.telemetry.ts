// OpenTelemetry spans and metrics of locks: the core's LockObserver, recording through the OTel API.
import type * as OTel from '@opentelemetry/api';
import type {
  AcquireObservation,
  AcquireOutcome,
  AcquireStarted,
  HoldObservation,
  LockObserver,
} from '../core/lock-observer.js';
import { DURATION_BUCKETS, TELEMETRY_SCOPE } from '../redis-lock.constants.js';
import type { TelemetryKeys } from './telemetry-options.interface.js';

/** The `@opentelemetry/api` module, loaded by the caller (it is an optional peer dependency). */
export type OpenTelemetryApi = typeof OTel;

/** The metric instruments, made from a meter that records. */
interface Instruments {
  acquisitions: OTel.Counter;
  waitDuration: OTel.Histogram;
  holdDuration: OTel.Histogram;
  held: OTel.UpDownCounter;
  lost: OTel.Counter;
  renewals: OTel.Counter;
}

/**
 * Records, through the OpenTelemetry API, a `lock.acquire` span per acquisition (waiting
 * included) and a `lock.hold` span per held lock, both children of the span active when the
 * acquisition started, with `lock.key`, `lock.mode` and `lock.outcome`; and the metrics
 * `lock.acquisitions` (by outcome), `lock.wait.duration` and `lock.hold.duration` (seconds),
 * `lock.held`, `lock.lost` and `lock.renewals`. While no SDK is registered it observes nothing:
 * each acquisition costs a look at the global providers.
 *
 * @example
 * const observer = new LockTelemetry(await import('@opentelemetry/api'), 'redacted');
 * const client = new RedisLockClient({ redis, observer });
 */
export class LockTelemetry implements LockObserver {
  /** What the API answers while no SDK is registered. */
  private readonly noopTracing: OTel.TracerProvider;
  private readonly noopMeter: OTel.Meter;
  private tracing?: OTel.TracerProvider;
  private meters?: OTel.MeterProvider;
  private tracer?: OTel.Tracer;
  private instruments?: Instruments;
  private readonly showKey: (key: string) => string;

  constructor(
    private readonly api: OpenTelemetryApi,
    keys: TelemetryKeys = 'full',
  ) {
    this.noopTracing = new api.ProxyTracerProvider().getDelegate();
    this.noopMeter = api.createNoopMeter();
    this.showKey = keys === 'full' ? (key) => key : keys === 'redacted' ? redactKey : keys;
  }

  acquireStarted(event: AcquireStarted): AcquireObservation | undefined {
    if (!this.recording()) return undefined;
    const { api, tracer, instruments } = this;
    const parent = api.context.active();
    const key = event.keys.map((one) => this.showKey(String(one))).join(', ');
    const mode = { 'lock.mode': event.mode };
    const span = tracer?.startSpan(
      'lock.acquire',
      {
        kind: api.SpanKind.INTERNAL,
        attributes: { 'lock.key': key, ...mode, 'lock.wait_timeout': event.waitTimeout },
      },
      parent,
    );
    return {
      ended: (outcome, waitedMs, handle) => {
        const labels = { ...mode, 'lock.outcome': outcome };
        instruments?.acquisitions.add(1, labels);
        instruments?.waitDuration.record(waitedMs / 1000, labels);
        if (span) this.endAcquireSpan(span, outcome);
        if (outcome !== 'acquired') return undefined;
        const hold = tracer?.startSpan(
          'lock.hold',
          {
            kind: api.SpanKind.INTERNAL,
            attributes: {
              'lock.key': key,
              ...mode,
              ...(handle ? { 'lock.fencing_token': handle.fencingToken.toString() } : {}),
            },
          },
          parent,
        );
        instruments?.held.add(1, mode);
        return this.observeHold(hold, mode, instruments);
      },
    };
  }

  private observeHold(
    span: OTel.Span | undefined,
    mode: OTel.Attributes,
    instruments: Instruments | undefined,
  ): HoldObservation {
    return {
      renewed: () => {
        instruments?.renewals.add(1, mode);
        span?.addEvent('lock.renewed');
      },
      ended: (outcome, heldMs, reason) => {
        const labels = { ...mode, 'lock.outcome': outcome };
        instruments?.held.add(-1, mode);
        instruments?.holdDuration.record(heldMs / 1000, labels);
        if (outcome === 'lost') instruments?.lost.add(1, mode);
        if (!span) return;
        span.setAttribute('lock.outcome', outcome);
        if (outcome === 'lost')
          span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: reason });
        span.end();
      },
    };
  }

  private endAcquireSpan(span: OTel.Span, outcome: AcquireOutcome): void {
    span.setAttribute('lock.outcome', outcome);
    // Busy and aborted are answers, not failures; Redis not answering is one.
    if (outcome === 'unavailable' || outcome === 'error' || outcome === 'invalid') {
      span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: outcome });
    }
    span.end();
  }

  /**
   * Whether a tracer or meter provider records, following the global ones: an SDK may be
   * registered (or replaced) after the module starts.
   */
  private recording(): boolean {
    const { trace, metrics, ProxyTracerProvider } = this.api;
    const global = trace.getTracerProvider();
    const tracing = global instanceof ProxyTracerProvider ? global.getDelegate() : global;
    if (tracing !== this.tracing) {
      this.tracing = tracing;
      this.tracer = tracing === this.noopTracing ? undefined : tracing.getTracer(TELEMETRY_SCOPE);
    }
    const meters = metrics.getMeterProvider();
    if (meters !== this.meters) {
      this.meters = meters;
      const meter = meters.getMeter(TELEMETRY_SCOPE);
      this.instruments = meter === this.noopMeter ? undefined : instrumentsOf(meter);
    }
    return this.tracer !== undefined || this.instruments !== undefined;
  }
}

/** `'redacted'`: the first segment of the key, the rest hidden (`order:42` -> `order:*`). */
export function redactKey(key: string): string {
  const colon = key.indexOf(':');
  return colon < 0 ? '*' : `${key.slice(0, colon)}:*`;
}

function instrumentsOf(meter: OTel.Meter): Instruments {
  const seconds = { unit: 's', advice: { explicitBucketBoundaries: DURATION_BUCKETS } };
  return {
    acquisitions: meter.createCounter('lock.acquisitions', {
      description: 'Lock acquisitions, by outcome.',
      unit: '{acquisition}',
    }),
    waitDuration: meter.createHistogram('lock.wait.duration', {
      description: 'Time from asking for a lock to the outcome, waiting included.',
      ...seconds,
    }),
    holdDuration: meter.createHistogram('lock.hold.duration', {
      description: 'Time a lock was held, from its grant to its release or loss.',
      ...seconds,
    }),
    held: meter.createUpDownCounter('lock.held', {
      description: 'Locks held now by this process.',
      unit: '{lock}',
    }),
    lost: meter.createCounter('lock.lost', {
      description: 'Locks lost while held (lease ran out, key taken).',
      unit: '{lock}',
    }),
    renewals: meter.createCounter('lock.renewals', {
      description: 'Lease renewals (watchdog and extend).',
      unit: '{renewal}',
    }),
  };
}

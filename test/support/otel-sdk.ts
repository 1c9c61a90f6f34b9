/**
 * A registered OpenTelemetry SDK for tests: spans go to an in-memory exporter, metrics are read on
 * demand. Registering it is what turns the library's instrumentation on.
 */
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  MeterProvider,
  MetricReader,
  type DataPoint,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';

/** A reader that exports nothing by itself: tests collect when they look. */
class OnDemandReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** One recorded data point of a metric: its attributes and value (a number, or a histogram). */
export interface Point {
  attributes: Record<string, unknown>;
  value: DataPoint<unknown>['value'];
}

export interface OtelSdk {
  /** Finished spans, oldest first. */
  spans(name?: string): ReadableSpan[];
  /** The data points of a metric of the library's scope, by metric name. */
  points(metric: string): Promise<Point[]>;
  /** Unregisters the SDK (the API's no-op providers are back). */
  shutdown(): Promise<void>;
}

/** Registers tracer, meter and context manager globally. */
export function registerOtelSdk(): OtelSdk {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(tracerProvider);
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    spans: (name) =>
      exporter.getFinishedSpans().filter((span) => name === undefined || span.name === name),
    async points(metric) {
      const { resourceMetrics } = await reader.collect();
      const found = resourceMetrics.scopeMetrics
        .flatMap((scope) => scope.metrics)
        .filter((data) => data.descriptor.name === metric);
      return found.flatMap((data) =>
        (data.dataPoints as DataPoint<unknown>[]).map((point) => ({
          attributes: point.attributes,
          value: point.value,
        })),
      );
    },
    async shutdown() {
      trace.disable();
      metrics.disable();
      context.disable();
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}

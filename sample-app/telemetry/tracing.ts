// OpenTelemetry for the sample app, on when OTEL_TRACE=tree: a span per request, lock spans below.
import type { INestApplication } from '@nestjs/common';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { SpanTreeExporter } from './span-tree.exporter.js';

/**
 * Registers a tracer provider that prints each trace as a tree. RedisLockModule records its
 * `lock.acquire` and `lock.hold` spans as soon as a provider is registered. A real app would use
 * `@opentelemetry/sdk-node` with an OTLP exporter and the HTTP instrumentation instead.
 *
 * @example
 * if (process.env.OTEL_TRACE === 'tree') startTracing();
 */
export function startTracing(): void {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new SpanTreeExporter())] }),
  );
}

/**
 * A span per HTTP request, active while the request is handled (what the HTTP instrumentation
 * would give), so the lock spans of a request hang below it.
 *
 * @example
 * traceRequests(app);
 */
export function traceRequests(app: INestApplication): void {
  const tracer = trace.getTracer('sample-app');
  app.use((request: HttpRequest, response: HttpResponse, next: () => void) => {
    tracer.startActiveSpan(`${request.method} ${request.path}`, (span) => {
      response.on('finish', () => {
        span.setAttribute('http.response.status_code', response.statusCode);
        span.end();
      });
      next();
    });
  });
}

/** What the middleware reads of Express' request and response. */
interface HttpRequest {
  method: string;
  path: string;
}
interface HttpResponse {
  statusCode: number;
  on(event: 'finish', listener: () => void): void;
}

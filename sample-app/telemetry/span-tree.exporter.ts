// Prints each finished trace as a tree of spans, for reading a trace in the terminal.
import { Logger } from '@nestjs/common';
import { ExportResultCode, hrTimeToMilliseconds, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

/**
 * Keeps the spans of each trace until its root span ends, then logs the trace as a tree with each
 * span's duration and `lock.*` attributes.
 *
 * @example
 * new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new SpanTreeExporter())] });
 */
export class SpanTreeExporter implements SpanExporter {
  private readonly logger = new Logger('Trace');
  private readonly traces = new Map<string, ReadableSpan[]>();

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    for (const span of spans) {
      const { traceId } = span.spanContext();
      const trace = this.traces.get(traceId) ?? [];
      trace.push(span);
      this.traces.set(traceId, trace);
      if (!span.parentSpanContext) {
        this.traces.delete(traceId);
        this.logger.log(`\n${render(span, trace, '')}`);
      }
    }
    done({ code: ExportResultCode.SUCCESS });
  }

  async shutdown(): Promise<void> {
    this.traces.clear();
  }
}

function render(span: ReadableSpan, trace: ReadableSpan[], indent: string): string {
  const id = span.spanContext().spanId;
  const children = trace
    .filter((child) => child.parentSpanContext?.spanId === id)
    .sort((a, b) => hrTimeToMilliseconds(a.startTime) - hrTimeToMilliseconds(b.startTime));
  const lines = [
    `${span.name}  ${hrTimeToMilliseconds(span.duration).toFixed(1)} ms${describe(span)}`,
  ];
  children.forEach((child, i) => {
    const last = i === children.length - 1;
    const sub = render(child, trace, indent + (last ? '   ' : '│  '));
    lines.push(`${indent}${last ? '└─ ' : '├─ '}${sub}`);
  });
  return lines.join('\n');
}

function describe(span: ReadableSpan): string {
  const lock = Object.entries(span.attributes).filter(([name]) => name.startsWith('lock.'));
  const status = span.status.message ? `  status=ERROR (${span.status.message})` : '';
  return (lock.length ? '  ' + lock.map(([k, v]) => `${k}=${String(v)}`).join(' ') : '') + status;
}

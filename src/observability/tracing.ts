/**
 * Spans through @opentelemetry/api. Without a registered SDK the API is a
 * no-op (near-zero cost); main.ts loads the SDK (otel-sdk.ts: tracer provider,
 * AsyncLocalStorage context manager, OTLP exporter) only when an OTLP endpoint
 * is configured. Spans started inside `fn` (across awaits) are its children.
 */
import { SpanStatusCode, trace, type Attributes, type Span } from "@opentelemetry/api";

const tracer = () => trace.getTracer("finetune-operator");

export async function traced<T>(name: string, fn: (span: Span) => Promise<T>, attributes?: Attributes): Promise<T> {
  return tracer().startActiveSpan(name, attributes ? { attributes } : {}, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * Spans through @opentelemetry/api. Without a registered SDK the API is a
 * no-op (near-zero cost); main.ts registers an OTLP exporter only when an
 * endpoint is configured.
 */
import { SpanStatusCode, trace, type Attributes } from "@opentelemetry/api";

const tracer = () => trace.getTracer("finetune-operator");

export async function traced<T>(name: string, fn: () => Promise<T>, attributes?: Attributes): Promise<T> {
  return tracer().startActiveSpan(name, attributes ? { attributes } : {}, async (span) => {
    try {
      return await fn();
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
      throw err;
    } finally {
      span.end();
    }
  });
}

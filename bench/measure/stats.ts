/** Distributions: nearest-rank percentiles over a sample, as the report prints them. */

export interface Distribution {
  count: number;
  min: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile (p in 0..100) of an ascending-sorted sample; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Summary of a sample (values in any unit); undefined when the sample is empty. */
export function distribution(values: readonly number[]): Distribution | undefined {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return undefined;
  const sorted = [...v].sort((a, b) => a - b);
  return {
    count: sorted.length,
    min: sorted[0]!,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1]!,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
  };
}

/** Events per minute between the first and last timestamp (ms); undefined for fewer than two. */
export function perMinute(timestampsMs: readonly number[], sinceMs?: number): number | undefined {
  if (timestampsMs.length === 0) return undefined;
  const start = sinceMs ?? Math.min(...timestampsMs);
  const end = Math.max(...timestampsMs);
  if (end <= start) return undefined;
  return (timestampsMs.length / (end - start)) * 60_000;
}

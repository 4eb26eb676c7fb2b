/**
 * A small Prometheus registry: counters, histograms and callback gauges with labels, written in the text
 * exposition format (0.0.4) exactly as @opentelemetry/exporter-prometheus wrote them before (prometheus.test.ts
 * checks the two against each other), so dashboards and alerts keep working.
 *
 * Why not the OpenTelemetry SDK here: /metrics is always served, and the SDK's metrics pipeline (MeterProvider,
 * views, aggregators, the exporter, resources and their detectors, semantic conventions) cost the operator about
 * 3 MiB of RSS at start and a hash of every attribute set on every measurement, for a text page that this file
 * writes from a few Maps. The SDK is still used, loaded on demand, when metrics are pushed over OTLP.
 */

export type Labels = Readonly<Record<string, string>>;

export interface Counter {
  /** Adds `value` (negative values are ignored: a counter only goes up). */
  add(value: number, labels?: Labels): void;
}

export interface Histogram {
  /** Counts `value` into the first bucket whose upper bound is at least `value` (negative values are ignored). */
  record(value: number, labels?: Labels): void;
}

/** What a gauge's callback is given at each scrape: call it once per series. */
export type Observe = (value: number, labels?: Labels) => void;

interface Series<V> {
  labels: Labels;
  value: V;
}

interface HistogramValue {
  count: number;
  sum: number;
  /** Per bucket (not cumulative); the last one is +Inf. */
  counts: number[];
}

interface CounterFamily {
  kind: "counter";
  name: string;
  help: string;
  series: Map<string, Series<number>>;
}
interface HistogramFamily {
  kind: "histogram";
  name: string;
  help: string;
  bounds: readonly number[];
  series: Map<string, Series<HistogramValue>>;
}
interface GaugeFamily {
  kind: "gauge";
  name: string;
  help: string;
  collect: (observe: Observe) => void;
}
type Family = CounterFamily | HistogramFamily | GaugeFamily;

const NO_LABELS: Labels = {};

/** One key per label set; labels are always given in the same order by the same call site. */
function seriesKey(labels: Labels): string {
  let key = "";
  for (const name in labels) key += `${name}\u0000${labels[name]}\u0001`;
  return key;
}

export class PrometheusRegistry {
  readonly #families: Family[] = [];

  /** A counter; its exposed name gets `_total` appended, as the OpenTelemetry exporter did. */
  counter(name: string, help: string): Counter {
    const family: CounterFamily = { kind: "counter", name: name.endsWith("_total") ? name : `${name}_total`, help, series: new Map() };
    this.#families.push(family);
    return {
      add(value, labels = NO_LABELS) {
        if (!(value >= 0)) return;
        const key = seriesKey(labels);
        const s = family.series.get(key);
        if (s) s.value += value;
        else family.series.set(key, { labels, value });
      },
    };
  }

  histogram(name: string, help: string, bounds: readonly number[]): Histogram {
    const family: HistogramFamily = { kind: "histogram", name, help, bounds, series: new Map() };
    this.#families.push(family);
    return {
      record(value, labels = NO_LABELS) {
        if (!(value >= 0)) return;
        const key = seriesKey(labels);
        let s = family.series.get(key);
        if (!s) {
          s = { labels, value: { count: 0, sum: 0, counts: new Array<number>(bounds.length + 1).fill(0) } };
          family.series.set(key, s);
        }
        let i = 0;
        while (i < bounds.length && value > bounds[i]!) i++;
        s.value.counts[i]! += 1;
        s.value.count += 1;
        s.value.sum += value;
      },
    };
  }

  /** A gauge whose series are what `collect` observes at each scrape (a series it no longer observes is gone). */
  gauge(name: string, help: string, collect: (observe: Observe) => void): void {
    this.#families.push({ kind: "gauge", name, help, collect });
  }

  /** The text exposition; a metric with no series is left out. */
  render(): string {
    let out = "";
    for (const f of this.#families) {
      let lines = "";
      switch (f.kind) {
        case "counter":
          for (const s of f.series.values()) lines += sample(f.name, s.labels, s.value);
          break;
        case "histogram":
          for (const s of f.series.values()) lines += histogramSamples(f.name, f.bounds, s);
          break;
        case "gauge": {
          const observed = new Map<string, Series<number>>();
          f.collect((value, labels = NO_LABELS) => void observed.set(seriesKey(labels), { labels, value }));
          for (const s of observed.values()) lines += sample(f.name, s.labels, s.value);
          break;
        }
      }
      if (lines) out += `# HELP ${f.name} ${escapeText(f.help)}\n# TYPE ${f.name} ${f.kind}\n${lines}`;
    }
    return out || "# no registered metrics";
  }
}

function histogramSamples(name: string, bounds: readonly number[], s: Series<HistogramValue>): string {
  let out = sample(`${name}_count`, s.labels, s.value.count) + sample(`${name}_sum`, s.labels, s.value.sum);
  let cumulative = 0;
  for (let i = 0; i <= bounds.length; i++) {
    cumulative += s.value.counts[i]!;
    out += sample(`${name}_bucket`, s.labels, cumulative, i < bounds.length ? String(bounds[i]) : "+Inf");
  }
  return out;
}

function sample(name: string, labels: Labels, value: number, le?: string): string {
  let text = "";
  for (const label in labels) text += `${text ? "," : ""}${label}="${escapeLabelValue(labels[label]!)}"`;
  if (le !== undefined) text += `${text ? "," : ""}le="${le}"`;
  return `${name}${text ? `{${text}}` : ""} ${formatValue(value)}\n`;
}

function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** HELP text: backslash and newline escaped. */
function escapeText(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Label values: backslash, newline and double quote escaped. */
function escapeLabelValue(value: string): string {
  return escapeText(value).replace(/"/g, '\\"');
}

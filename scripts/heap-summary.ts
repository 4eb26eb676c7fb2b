/**
 * Where a process's heap goes, by constructor: reads a V8 .heapsnapshot (from `v8.getHeapSnapshot()`,
 * `v8.writeHeapSnapshot()` or `node --heapsnapshot-signal=SIGUSR2`) and prints the top entries by self size,
 * objects grouped by constructor name, other node types (strings, code, arrays, closures...) by type.
 *
 *   node scripts/heap-summary.ts file.heapsnapshot [--top 25]
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapEntry {
  what: string;
  count: number;
  bytes: number;
}

/** Self sizes summed by constructor (objects) or by node type (everything else), largest first. */
export function summarizeHeap(snap: Snapshot): { total: number; entries: HeapEntry[] } {
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf("type");
  const iName = fields.indexOf("name");
  const iSize = fields.indexOf("self_size");
  const groups = new Map<string, HeapEntry>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!]!;
    const size = snap.nodes[i + iSize]!;
    total += size;
    const what = type === "object" ? snap.strings[snap.nodes[i + iName]!]! : `(${type})`;
    const g = groups.get(what) ?? { what, count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    groups.set(what, g);
  }
  return { total, entries: [...groups.values()].sort((a, b) => b.bytes - a.bytes) };
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({ options: { top: { type: "string", default: "25" } }, allowPositionals: true });
  const file = positionals[0];
  if (!file) throw new Error("usage: node scripts/heap-summary.ts file.heapsnapshot [--top N]");
  const { total, entries } = summarizeHeap(JSON.parse(readFileSync(file, "utf8")) as Snapshot);
  const mib = (b: number) => (b / 2 ** 20).toFixed(2);
  process.stdout.write(`heap: ${mib(total)} MiB in the snapshot\n\n| constructor / type | objects | MiB | share |\n|---|---|---|---|\n`);
  for (const e of entries.slice(0, Number(values.top)))
    process.stdout.write(`| ${e.what} | ${e.count} | ${mib(e.bytes)} | ${((100 * e.bytes) / total).toFixed(1)} % |\n`);
}

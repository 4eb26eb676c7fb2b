/**
 * The control plane's own complaints, for a failed e2e run: the warning and error lines of each
 * component's log (klog "W"/"E" lines, kwok's and the provisioner's JSON levels), grouped by their
 * shape so that a flood of one message prints once with a count. CI shows only the test output, so
 * this is what tells a stalled binder, a node gone NotReady or a kwok backlog apart afterwards.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { componentNames } from "./processes.ts";

/** Is this log line a warning or an error? */
export function isComplaint(line: string): boolean {
  if (/^[WE]\d{4} /.test(line)) return true; // klog
  return /"level":"(WARN|ERROR)"/.test(line) || /"msg":"[^"]*(fail|error)/i.test(line);
}

/** What a repeat of the same complaint has in common: klog's source line and message; a JSON log's level, message and stage. */
export function shapeOf(line: string): string {
  const klog = line.match(/^[WE]\d{4} [\d:.]+\s+\d+ ([^\]]+)\] ("(?:[^"\\]|\\.)*")?/);
  if (klog) return `${klog[1]} ${klog[2] ?? ""}`;
  const field = (name: string) => line.match(new RegExp(`"${name}":"((?:[^"\\\\]|\\\\.)*)"`))?.[1] ?? "";
  return `${field("level")} ${field("msg")} ${field("stage")}`;
}

/** A JSON log line without its source location (kwok's is longer than the message); other lines as they are. */
function readable(line: string): string {
  if (!line.startsWith("{")) return line;
  try {
    const { source: _source, ...rest } = JSON.parse(line) as Record<string, unknown>;
    return JSON.stringify(rest);
  } catch {
    return line;
  }
}

/** Up to `perComponent` groups of complaints per component log, most frequent first, each with its count and newest instance. */
export function logDigest(logsDir: string, perComponent = 8): string {
  const out: string[] = [];
  for (const name of componentNames) {
    const file = join(logsDir, `${name}.log`);
    if (!existsSync(file)) continue;
    const groups = new Map<string, { count: number; last: string }>();
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (!isComplaint(line)) continue;
      const key = shapeOf(line);
      const g = groups.get(key) ?? { count: 0, last: "" };
      g.count++;
      g.last = line;
      groups.set(key, g);
    }
    if (groups.size === 0) continue;
    out.push(`--- ${name}: ${groups.size} kinds of warnings/errors`);
    for (const g of [...groups.values()].sort((a, b) => b.count - a.count).slice(0, perComponent)) out.push(`${g.count}× ${readable(g.last).slice(0, 400)}`);
  }
  return out.join("\n");
}

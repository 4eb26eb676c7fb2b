/**
 * A watch event's text (or an API answer's) without its object's `metadata.managedFields`, cut out before the text
 * is parsed.
 *
 * Why: managedFields is 40-45 % of every pod and Job event the API server sends (the creator's entry mirrors the
 * whole spec), the informers drop it right after parsing, and parsing the watch streams was the operator's largest
 * CPU cost in a burst. Cutting the text takes a few `indexOf` scans, not a second parser.
 *
 * How the cut is found, from how the API server writes JSON:
 * - metadata's keys come before spec and status, and managedFields is never its first key (typed kinds write
 *   ObjectMeta in struct order, name first and managedFields last; custom resources are written with sorted keys);
 *   so a `"managedFields":[{` found after the first `"spec":` is not metadata's (an object written without
 *   managedFields, whose spec holds such a key: a custom resource's free-form config could) and is left alone;
 * - managedFields is an array of objects whose values hold no arrays (manager, operation, apiVersion, time,
 *   fieldsType, subresource, and fieldsV1, a tree of objects), so the first `}]` that ends it is its end, and
 *   what follows is `}` (the end of metadata) or `,` (the next key, for custom resources);
 * - a `}]` inside a string is possible (a fieldsV1 key names a list item, e.g. an env var `A}]`): then the text
 *   around the cut is no longer JSON, because such a key's text always holds escaped quotes (`\"`) that the cut
 *   leaves outside any string. {@link parseWatchLine} then parses the whole line, so the answer is the same.
 */
const START = ',"managedFields":[{';
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;

/** `line` without the first object's managedFields, or `line` itself when none is found where expected. */
export function withoutManagedFields(line: string): string {
  const start = line.indexOf(START);
  if (start < 0) return line;
  const spec = line.indexOf('"spec":');
  if (spec >= 0 && spec < start) return line;
  const end = line.indexOf("}]", start + START.length);
  if (end < 0) return line;
  const next = line.charCodeAt(end + 2);
  if (next !== CLOSE_BRACE && next !== COMMA) return line;
  return line.slice(0, start) + line.slice(end + 2);
}

type WatchEvent = { type?: string; object?: { metadata?: { managedFields?: unknown } } };
type Metadata = { managedFields?: unknown } | undefined;

/**
 * Parses one watch event line; with `dropManagedFields`, its object comes without managedFields (parsed from the
 * cut text, or from the whole line when the cut text is not JSON). Throws a SyntaxError for a line that is not JSON.
 */
export function parseWatchLine(line: string, dropManagedFields: boolean): WatchEvent {
  if (!dropManagedFields) return JSON.parse(line) as WatchEvent;
  return parseCut<WatchEvent>(line, (event) => event?.object?.metadata);
}

/**
 * Parses an API answer holding one object (a create's, a status update's) without its managedFields, the same way:
 * the operator reads only metadata and spec from such answers.
 */
export function parseObjectWithoutManagedFields<T>(text: string): T {
  return parseCut<T & { metadata?: Metadata }>(text, (obj) => obj?.metadata);
}

/** The cut text parsed, or (when the cut met a "}]" inside a string) the whole text parsed and managedFields deleted. */
function parseCut<T>(text: string, metadataOf: (parsed: T) => Metadata): T {
  const cut = withoutManagedFields(text);
  if (cut !== text) {
    try {
      return JSON.parse(cut) as T;
    } catch {
      // the whole text below
    }
  }
  const parsed = JSON.parse(text) as T;
  const metadata = metadataOf(parsed);
  if (metadata?.managedFields) delete metadata.managedFields;
  return parsed;
}

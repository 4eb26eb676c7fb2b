/**
 * "Did you mean ...?" for misspelt config keys and enum values.
 */

/**
 * Optimal-string-alignment Damerau-Levenshtein distance: insertions, deletions,
 * substitutions and swaps of two adjacent characters each cost 1. Swaps matter because
 * `lrea` for `lear`-style slips are the most common key typo.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  // Three rolling rows: the swap rule looks two rows back.
  let prev2: number[] = [];
  let prev: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, (prev2[j - 2] ?? 0) + 1);
      }
      cur.push(d);
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[b.length] ?? Math.max(a.length, b.length);
}

/** Case and `-`/`_` do not count as typos: YAML keys are snake_case, CLI flags kebab-case. */
function normalize(s: string): string {
  return s.toLowerCase().replaceAll("-", "_");
}

/**
 * How far a candidate may be from the input and still be offered. Short strings get one
 * edit (otherwise `bf16` would "match" half the vocabulary); longer ones a quarter of
 * their length, capped at 3.
 */
export function maxDistanceFor(input: string): number {
  return Math.max(1, Math.min(3, Math.floor(input.length / 4)));
}

/**
 * The candidate closest to `input`, or undefined when nothing is within
 * {@link maxDistanceFor}. Ties go to the earlier candidate, so callers list the more
 * common spellings first. An exact match is not a suggestion.
 */
export function suggest(input: string, candidates: Iterable<string>): string | undefined {
  if (input.length === 0 || input.length > 200) return undefined; // not a typo of a key
  const wanted = normalize(input);
  const limit = maxDistanceFor(wanted);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate === input) return undefined;
    // Cheap length filter before the quadratic distance.
    if (Math.abs(candidate.length - wanted.length) > limit) continue;
    const d = editDistance(wanted, normalize(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

/** `did you mean \`x\`?` or the empty string, ready to append to a message. */
export function didYouMean(input: string, candidates: Iterable<string>): string {
  const s = suggest(input, candidates);
  return s === undefined ? "" : ` (did you mean \`${s}\`?)`;
}

/**
 * Scalar spellings for the YAML tests: every YAML 1.1 implicit type, the spellings where the `yaml` package's 1.1
 * schema and PyYAML part ways, and a seeded random sweep over the characters numbers, booleans and dates are made of.
 * Expectations never live here: real PyYAML gives them.
 */

/** Spellings picked by hand: each is a place where two YAML readers are known to differ. */
export const HAND_PICKED: readonly string[] = [
  // booleans: YAML 1.1 has yes/no/on/off in three cases; PyYAML has no y/n
  ..."yes Yes YES yEs no No NO on On ON off Off OFF true True TRUE tRue false False FALSE y Y n N".split(" "),
  // integers: underscores, bases, base 60, leading zeros, signs
  ..."500_000 1_000_000 1__0 _1 1_ 0_ 00 007 09 08 0755 0o17 0O17 0b101 0b_1 0b2 0x1F 0X1F 0x_1F 0x +0 -0 +12 -12 1:30 -1:30 0:30 190:20:30 1:60 1:5 01:30 9007199254740993".split(
    " ",
  ),
  // floats: YAML 1.1 wants a dot and a signed exponent
  ..."2e-4 2E-4 1e5 1e+5 1.0e5 1.0e+5 1.0e-5 1.e-3 1.5E+3 .5 -.5 +.5 1. -1. 0. 1_000.5 1.5_5 0.1 3.14 1:30.5 -1:30.5 .inf -.inf +.inf .Inf .INF .iNf inf -inf .nan .NaN .NAN -.nan nan NaN 1e 1e- e5 . .. 1.2.3 12e3 6.02e+23 6.02E23".split(
    " ",
  ),
  // null
  ..."~ null Null NULL nULL None none".split(" "),
  // timestamps
  "2024-01-01",
  "2024-1-1",
  "2024-01-1",
  "2001-12-14t21:59:43.10-05:00",
  "2001-12-14T21:59:43Z",
  "2001-12-14 21:59:43.10 -5",
  "2001-12-15 2:59:43.10",
  "20240101",
  "2024-13-45",
  // the rest: the merge and value indicators, look-alikes of numbers, things that need quoting
  "=",
  "<<",
  "1,000",
  "1 000",
  "0x1F_",
  "- a",
  "a: b",
  "#x",
  "a #b",
  "@x",
  "`x",
  "%x",
  "!x",
  "&x",
  "*x",
  "|",
  ">",
  "'x",
  '"x',
  "[x]",
  "{x}",
  "?",
  "? x",
  "-",
  "--",
  "---",
  "...",
  "x\ty",
  " x",
  "x ",
  "",
  "é",
  "日本",
  "a\nb",
  "a\n\nb\n",
  "\u0085",
  "\u2028",
  "\u00a0",
  "\t",
];

/** mulberry32: a small seeded PRNG, so every run checks the same random spellings. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` random words over the characters of YAML numbers, booleans and timestamps (no spaces: plain-safe). */
export function randomSpellings(count: number, seed = 16): string[] {
  const alphabet = "0123456789_.:+-eExXbBoOnNyYsS";
  const next = rng(seed);
  const out = new Set<string>();
  while (out.size < count) {
    const len = 1 + Math.floor(next() * 7);
    let s = "";
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(next() * alphabet.length)];
    // A leading '-' then more is fine plain; a lone '-' or one followed by a space is a sequence entry, not a scalar.
    if (s === "-" || s.startsWith("- ")) continue;
    out.add(s);
  }
  return [...out];
}

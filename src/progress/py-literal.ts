/**
 * A tiny parser for the Python literals the HF Trainer prints as its metric
 * line: `{'loss': 1.23, 'grad_norm': np.float64(0.4), 'epoch': 0.1}`. It is
 * the TypeScript twin of progress_parse.py's parse_metrics_dict (ast.literal_eval
 * after rewriting numpy scalars, tensors and nan/inf): the same lines give
 * the same numbers on the push path and the log path. Pure, never throws,
 * never evaluates anything; non-finite numbers become null.
 */

/** Longest dict repr we look at (progress_parse.py uses the same cap). */
const MAX_DICT_CHARS = 20_000;
const MAX_DEPTH = 16;

type PyValue = number | string | boolean | null | PyValue[] | { [key: string]: PyValue };

class Fail extends Error {}

/**
 * The metric dict in one output segment, or undefined when there is none or
 * it is not a plain literal (a cut-off line, a repr of an object, code).
 */
export function parseMetricsDict(segment: string): Record<string, PyValue> | undefined {
  let start = segment.indexOf("{'");
  if (start < 0) start = segment.indexOf('{"');
  if (start < 0) return undefined;
  const end = segment.lastIndexOf("}");
  if (end <= start || end - start > MAX_DICT_CHARS) return undefined;
  const text = segment.slice(start, end + 1);
  try {
    const p = new Parser(text);
    const value = p.value(0);
    p.skipSpace();
    if (p.pos !== text.length) return undefined;
    if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
    return value;
  } catch {
    return undefined;
  }
}

class Parser {
  readonly text: string;
  pos = 0;

  constructor(text: string) {
    this.text = text;
  }

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  #expect(ch: string): void {
    this.skipSpace();
    if (this.text[this.pos] !== ch) throw new Fail(`expected ${ch}`);
    this.pos++;
  }

  #peek(): string | undefined {
    this.skipSpace();
    return this.text[this.pos];
  }

  value(depth: number): PyValue {
    if (depth > MAX_DEPTH) throw new Fail("too deep");
    const ch = this.#peek();
    if (ch === "{") return this.#dict(depth);
    if (ch === "[") return this.#sequence(depth, "[", "]");
    if (ch === "(") return this.#sequence(depth, "(", ")");
    if (ch === "'" || ch === '"') return this.#string();
    return this.#atom(depth);
  }

  #dict(depth: number): { [key: string]: PyValue } {
    this.#expect("{");
    const out: { [key: string]: PyValue } = {};
    if (this.#peek() === "}") {
      this.pos++;
      return out;
    }
    for (;;) {
      const ch = this.#peek();
      if (ch !== "'" && ch !== '"') throw new Fail("dict keys must be strings");
      const key = this.#string();
      this.#expect(":");
      out[key] = this.value(depth + 1);
      const next = this.#peek();
      this.pos++;
      if (next === "}") return out;
      if (next !== ",") throw new Fail("expected , or }");
      if (this.#peek() === "}") {
        this.pos++;
        return out;
      }
    }
  }

  #sequence(depth: number, open: string, close: string): PyValue[] {
    this.#expect(open);
    const out: PyValue[] = [];
    if (this.#peek() === close) {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      const next = this.#peek();
      this.pos++;
      if (next === close) return out;
      if (next !== ",") throw new Fail(`expected , or ${close}`);
      if (this.#peek() === close) {
        this.pos++;
        return out;
      }
    }
  }

  #string(): string {
    const quote = this.text[this.pos]!;
    this.pos++;
    let out = "";
    while (this.pos < this.text.length) {
      const ch = this.text[this.pos++]!;
      if (ch === quote) return out;
      if (ch === "\n") break;
      if (ch === "\\") {
        const esc = this.text[this.pos++];
        if (esc === undefined) break;
        out += esc === "n" ? "\n" : esc === "t" ? "\t" : esc;
      } else out += ch;
    }
    throw new Fail("unterminated string");
  }

  /**
   * Numbers, True/False/None, nan/inf, and the wrappers Python prints around
   * scalars: np.float64(0.4), numpy.int64(3), tensor(0.3, device='cuda:0').
   */
  #atom(depth: number): PyValue {
    const rest = this.text.slice(this.pos);
    const num = /^[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)/.exec(rest);
    if (num) {
      this.pos += num[0].length;
      const n = Number(num[0]);
      return Number.isFinite(n) ? n : null;
    }
    const word = /^-?[A-Za-z_][A-Za-z0-9_.]*/.exec(rest);
    if (!word) throw new Fail("unexpected character");
    this.pos += word[0].length;
    switch (word[0]) {
      case "True":
        return true;
      case "False":
        return false;
      case "None":
        return null;
      // Kept as the non-finite numbers they are: a NaN loss is news (loss health), and finite() drops them elsewhere.
      case "nan":
      case "-nan":
        return Number.NaN;
      case "inf":
        return Number.POSITIVE_INFINITY;
      case "-inf":
        return Number.NEGATIVE_INFINITY;
    }
    // np.float64(x) / numpy.float32(x) / tensor(x, device=...): the first argument is the value.
    if (/^(?:np|numpy)\.[a-z_]+\d*$/.test(word[0]) || word[0] === "tensor") {
      this.#expect("(");
      const inner = this.value(depth + 1);
      // tensor(...) may carry keyword arguments (device='cuda:0', dtype=torch.bfloat16): skip to the matching ")".
      this.#skipArguments();
      return typeof inner === "number" || inner === null ? inner : null;
    }
    throw new Fail(`not a literal: ${word[0]}`);
  }

  #skipArguments(): void {
    let depth = 0;
    let quote: string | undefined;
    while (this.pos < this.text.length) {
      const ch = this.text[this.pos++]!;
      if (quote) {
        if (ch === quote) quote = undefined;
        continue;
      }
      if (ch === "'" || ch === '"') quote = ch;
      else if (ch === "(") depth++;
      else if (ch === ")") {
        if (depth === 0) return;
        depth--;
      }
    }
    throw new Fail("unterminated call");
  }
}

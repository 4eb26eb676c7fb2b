/**
 * The TypeScript side of judge.py: one long-lived Python process (Axolotl's imports take ~20 s) answering many
 * questions, one JSON line each way, in order.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { axolotlDir } from "./env.ts";

/** A value in judge.py's tagged JSON. */
export type Tagged = null | boolean | number | string | Tagged[] | { [key: string]: Tagged };

export interface LoadResult {
  value?: Tagged;
  error?: string;
}

export interface Verdict {
  valid: boolean;
  type?: string;
  message?: string;
  /** pydantic's error locations (key paths), empty for errors raised by plain code. */
  locs?: string[][];
}

export type ValidateItem = { text: string } | { config: Tagged };

export class Judge {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  #stderr = "";

  private constructor(python: string) {
    this.#child = spawn(python, ["-u", join(axolotlDir, "judge.py")], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, PYTHONWARNINGS: "ignore" } });
    this.#child.stderr.on("data", (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-4000);
    });
    createInterface({ input: this.#child.stdout }).on("line", (line) => {
      const next = this.#waiting.shift();
      if (!next) return;
      const res = JSON.parse(line) as { fatal?: string };
      if (res.fatal) next.reject(new Error(`judge.py: ${res.fatal}`));
      else next.resolve(res);
    });
    this.#child.on("close", (code) => {
      for (const w of this.#waiting.splice(0)) w.reject(new Error(`judge.py exited ${code}: ${this.#stderr}`));
    });
  }

  static start(python: string): Judge {
    return new Judge(python);
  }

  #ask<T>(req: unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push({ resolve: resolve as (v: unknown) => void, reject });
      this.#child.stdin.write(`${JSON.stringify(req)}\n`);
    });
  }

  /** yaml.safe_load of each text. */
  async load(texts: string[]): Promise<LoadResult[]> {
    return (await this.#ask<{ results: LoadResult[] }>({ op: "load", texts })).results;
  }

  /** Axolotl's validate_config on each item. */
  async validate(items: ValidateItem[]): Promise<Verdict[]> {
    return (await this.#ask<{ results: Verdict[] }>({ op: "validate", items })).results;
  }

  /** Axolotl's config schema and its bundled plugins' argument schemas. */
  async schema(): Promise<{
    axolotl: string;
    pydantic: string;
    schema: Record<string, unknown>;
    plugins: Record<string, unknown>;
    vocabulary: Record<string, unknown>;
  }> {
    return this.#ask({ op: "schema" });
  }

  /** Every validator of Axolotl's config models ("validation.py Class.function") and the config keys it reads. */
  async validators(): Promise<Record<string, string[]>> {
    return (await this.#ask<{ validators: Record<string, string[]> }>({ op: "validators" })).validators;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#child.exitCode !== null) return resolve();
      this.#child.once("close", () => resolve());
      this.#child.stdin.end();
    });
  }
}

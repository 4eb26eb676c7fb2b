/**
 * The validator's result type and the collector the rule functions append to.
 */

export type Severity = "error" | "warning";

export interface ValidationIssue {
  severity: Severity;
  /** Key path in the config: `load_in_4bit`, `datasets[1].type`, `fsdp_config.fsdp_version`; "" for the root. */
  path: string;
  message: string;
}

export class Issues {
  readonly list: ValidationIssue[] = [];

  error(path: string, message: string): void {
    this.list.push({ severity: "error", path, message });
  }

  warning(path: string, message: string): void {
    this.list.push({ severity: "warning", path, message });
  }
}

/** `parent.key`, or `key` at the root. */
export function join(parent: string, key: string): string {
  return parent === "" ? key : `${parent}.${key}`;
}

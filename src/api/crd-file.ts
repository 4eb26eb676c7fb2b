import { stringify } from "yaml";
import { buildCrd } from "./crd.ts";

export const CRD_PATH = new URL("../../crds/finetune.dev_finetunejobs.yaml", import.meta.url);

export function renderCrdYaml(): string {
  return "# Generated from src/api/schema.ts by `npm run generate`. Do not edit.\n" + stringify(buildCrd(), { lineWidth: 0 });
}

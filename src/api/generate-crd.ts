/** Writes crds/finetune.dev_finetunejobs.yaml from the zod schemas (npm run generate). */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderCrdYaml, CRD_PATH } from "./crd-file.ts";

writeFileSync(fileURLToPath(CRD_PATH), renderCrdYaml());
console.log(`wrote ${fileURLToPath(CRD_PATH)}`);

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_TRAINER_IMAGE } from "../api/group.ts";
import { CONFIG_KEYS, definition, keySchema, PLUGIN_KEYS, SCHEMA_AXOLOTL_VERSION } from "./schema.ts";

describe("the generated Axolotl schema", () => {
  it("is for the Axolotl version the default trainer image pins", () => {
    // The image tag is <axolotl version>[-suffix]; a bump must come with `npm run generate:axolotl-schema`.
    assert.equal(SCHEMA_AXOLOTL_VERSION, DEFAULT_TRAINER_IMAGE.split(":")[1]!.split("-")[0]);
  });

  it("holds the whole config model, its definitions and the bundled plugins' keys", () => {
    assert.ok(CONFIG_KEYS.length > 300, `${CONFIG_KEYS.length} keys`);
    for (const key of ["base_model", "learning_rate", "datasets", "fsdp_config", "model_config"]) assert.ok(keySchema(key), key);
    assert.ok(definition("SFTDataset").properties?.path);
    assert.equal(PLUGIN_KEYS.get("liger_rms_norm"), "axolotl.integrations.liger.LigerPlugin");
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parse } from "yaml";

import { LABEL_ATTEMPT, LABEL_COMPONENT, LABEL_JOB_NAME, LABEL_STAGE } from "../api/group.ts";
import { validateSpec } from "../validation/job.ts";
import { CHAT_PORT, chatConfig, renderChatConfigMap, renderChatPod } from "./chat.ts";
import type { RenderInput } from "./children.ts";

const CONFIG = {
  base_model: "meta-llama/Llama-3.1-8B",
  adapter: "qlora",
  load_in_4bit: true,
  lora_r: 16,
  micro_batch_size: 1,
  gradient_accumulation_steps: 4,
  learning_rate: 0.0002,
  datasets: [{ path: "data.jsonl", type: "alpaca" }],
  output_dir: "/finetune/output/model",
};
const { spec } = validateSpec({ config: CONFIG, storage: { cache: { existingClaim: "hf-cache" } } });
const input: RenderInput = { job: { name: "llama", namespace: "ml", uid: "u-1" }, spec: spec!, axolotlConfig: CONFIG, settings: { launcherSource: {} } };

describe("chat pod", () => {
  it("runs axolotl inference --gradio on the adapter, on the claim and cache, without the launcher or a stage label", () => {
    const pod = renderChatPod(input, { name: "llama-chat-abc", merged: false });
    const c = pod.spec!.containers[0]!;
    assert.deepEqual(c.command, ["axolotl", "inference", "/etc/finetune-chat/config.yaml", "--lora-model-dir=/finetune/output/model", "--gradio"]);
    assert.deepEqual(c.ports, [{ name: "gradio", containerPort: CHAT_PORT }]);
    assert.ok(!c.volumeMounts!.some((m) => m.mountPath.includes("launcher")));
    assert.ok(c.volumeMounts!.some((m) => m.mountPath === "/finetune/output"));
    assert.ok(pod.spec!.volumes!.some((v) => v.persistentVolumeClaim?.claimName === "hf-cache"));
    assert.equal(pod.spec!.volumes!.find((v) => v.name === "finetune-config")?.configMap?.name, "llama-chat-abc");
    assert.equal(c.resources?.limits?.["nvidia.com/gpu"], "1");
    assert.ok(!c.env!.some((e) => e.name.startsWith("FINETUNE_")));
    const labels = pod.metadata!.labels!;
    assert.equal(labels[LABEL_JOB_NAME], "llama");
    assert.equal(labels[LABEL_COMPONENT], "chat");
    assert.equal(labels[LABEL_STAGE], undefined, "the planner counts stage pods by this label");
    assert.equal(labels[LABEL_ATTEMPT], undefined);
    assert.deepEqual(
      pod.metadata!.ownerReferences?.map((o) => [o.kind, o.name, o.controller]),
      [["FineTuneJob", "llama", undefined]],
    );
  });

  it("keeps Gradio private (no public share link, loopback only) and points --merged at the merged model", () => {
    const adapter = parse(renderChatConfigMap(input, CONFIG, { name: "x", merged: false }).data!["config.yaml"]!) as Record<string, unknown>;
    assert.deepEqual([adapter.gradio_share, adapter.gradio_server_name, adapter.gradio_server_port], [false, "127.0.0.1", CHAT_PORT]);
    assert.equal(adapter.adapter, "qlora");
    const merged = chatConfig(CONFIG, true);
    assert.equal(merged.base_model, "/finetune/output/model/merged");
    assert.equal(merged.adapter, undefined);
    assert.equal(merged.load_in_4bit, undefined);
    assert.ok(!renderChatPod(input, { name: "x", merged: true }).spec!.containers[0]!.command!.some((a) => a.startsWith("--lora-model-dir")));
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";

import type { Stage } from "../api/group.ts";
import { GENERAL_HINTS, matchFailure, type HintContext } from "./hints.ts";

const ctx = (text: string, more: Partial<HintContext> = {}): HintContext => ({ stage: "train", text, ...more });

const CUDA_OOM = [
  "  File \"/usr/local/lib/python3.11/site-packages/torch/nn/modules/linear.py\", line 125, in forward",
  "    return F.linear(input, self.weight, self.bias)",
  "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.96 GiB. GPU 0 has a total capacity of 79.10 GiB of which 1.02 GiB is free.",
].join("\n");
const NCCL_WATCHDOG =
  "[rank3]:[E1015 10:21:07.123456 ProcessGroupNCCL.cpp:616] [Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1204, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=1800000) ran for 1800095 milliseconds before timing out.";
const CONFIG_REJECTED = [
  "Traceback (most recent call last):",
  "pydantic_core._pydantic_core.ValidationError: 1 validation error for AxolotlInputConfig",
  "micro_batch_size",
  "  Input should be greater than 0 [type=greater_than, input_value=0, input_type=int]",
].join("\n");
const SIZE_MISMATCH = [
  "RuntimeError: Error(s) in loading state_dict for PeftModelForCausalLM:",
  "\tsize mismatch for base_model.model.model.embed_tokens.weight: copying a param with shape torch.Size([128258, 4096]) from checkpoint, the shape in current model is torch.Size([128256, 4096]).",
].join("\n");

interface Case {
  name: string;
  ctx: HintContext;
  reason: string | undefined;
  permanent?: boolean;
  hint?: RegExp;
}

const CASES: Case[] = [
  // CUDA OOM
  { name: "CUDA out of memory", ctx: ctx(CUDA_OOM, { exitCode: 1 }), reason: "GPUOutOfMemory", permanent: false, hint: /micro_batch_size.*gradient_checkpointing/s },
  { name: "torch.cuda.OutOfMemoryError", ctx: ctx("torch.cuda.OutOfMemoryError: oops"), reason: "GPUOutOfMemory" },
  { name: "CUBLAS alloc failure", ctx: ctx("RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"), reason: "GPUOutOfMemory" },
  { name: "ROCm HIP OOM", ctx: ctx("torch.OutOfMemoryError: HIP out of memory."), reason: "GPUOutOfMemory" },
  { name: "CUDA OOM wins over exit 137 (the GPU ran out first)", ctx: ctx(CUDA_OOM, { exitCode: 137 }), reason: "GPUOutOfMemory" },
  // Host RAM
  { name: "exit 137 = host RAM", ctx: ctx("", { exitCode: 137 }), reason: "HostOutOfMemory", permanent: false, hint: /host RAM.*spec\.resources\.memory/s },
  { name: "OOMKilled = host RAM", ctx: ctx("loading shards", { exitCode: 1, containerReason: "OOMKilled" }), reason: "HostOutOfMemory" },
  // NCCL
  { name: "NCCL watchdog timeout", ctx: ctx(NCCL_WATCHDOG, { exitCode: 1 }), reason: "NCCLTimeout", permanent: false, hint: /ddp_timeout.*NCCL_DEBUG=INFO/s },
  { name: "NCCL timed out", ctx: ctx("NCCL communicator was aborted: NCCL operation timed out"), reason: "NCCLTimeout" },
  { name: "DistBackendError", ctx: ctx("torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp"), reason: "NCCLTimeout" },
  // DeepSpeed
  { name: "DeepSpeed world size", ctx: ctx("AssertionError: DeepSpeed ZeRO requires world_size > 1"), reason: "DeepSpeedWorldSize", permanent: true, hint: /gpusPerNode/ },
  { name: "DeepSpeed on a single GPU", ctx: ctx("ValueError: deepspeed cannot be used with a single GPU"), reason: "DeepSpeedWorldSize" },
  // Merge
  { name: "size mismatch at merge", ctx: ctx(SIZE_MISMATCH, { stage: "merge", exitCode: 1 }), reason: "MergeSizeMismatch", permanent: true, hint: /embedding size/ },
  { name: "size mismatch outside merge is not a merge mismatch", ctx: ctx(SIZE_MISMATCH, { stage: "train", exitCode: 1 }), reason: undefined },
  { name: "merge OOMKilled", ctx: ctx("", { stage: "merge", exitCode: 137, containerReason: "OOMKilled" }), reason: "MergeOutOfMemory", permanent: false, hint: /merge\.onCPU/ },
  { name: "merge CUDA OOM", ctx: ctx(CUDA_OOM, { stage: "merge", exitCode: 1 }), reason: "MergeOutOfMemory" },
  { name: "merge exit 137", ctx: ctx("", { stage: "merge", exitCode: 137 }), reason: "MergeOutOfMemory" },
  // Config rejected
  { name: "pydantic ValidationError for AxolotlInputConfig", ctx: ctx(CONFIG_REJECTED, { exitCode: 1 }), reason: "ConfigRejected", permanent: true, hint: /kubectl finetune validate/ },
  { name: "validation errors (plural)", ctx: ctx("3 validation errors for AxolotlInputConfig"), reason: "ConfigRejected" },
  { name: "Please set micro_batch_size", ctx: ctx("ValueError: Please set micro_batch_size"), reason: "ConfigRejected" },
  { name: "config rejected at preprocess", ctx: ctx(CONFIG_REJECTED, { stage: "preprocess" }), reason: "ConfigRejected" },
  { name: "config rejected wins over exit 137", ctx: ctx(CONFIG_REJECTED, { exitCode: 137 }), reason: "ConfigRejected" },
  // Datasets
  { name: "dataset not found", ctx: ctx("FileNotFoundError: [Errno 2] No such file or directory: 'data/train.jsonl'"), reason: "DatasetNotFound", permanent: true, hint: /datasets\[\]\.path/ },
  { name: "Hub dataset repository not found", ctx: ctx("huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error. (Request ID: Root=1-6)\n\nRepository Not Found for url: https://huggingface.co/api/datasets/acme/private-set/revision/main."), reason: "DatasetNotFound" },
  { name: "datasets DatasetNotFoundError", ctx: ctx("datasets.exceptions.DatasetNotFoundError: Dataset 'acme/typo' doesn't exist on the Hub or cannot be accessed."), reason: "DatasetNotFound" },
  { name: "missing parquet file", ctx: ctx("FileNotFoundError: Unable to find '/data/corpus/train-00000.parquet'"), reason: "DatasetNotFound" },
  // Models and other files
  { name: "Hub model repository not found", ctx: ctx("huggingface_hub.errors.RepositoryNotFoundError: 404 Client Error.\n\nRepository Not Found for url: https://huggingface.co/meta-llama/Llama-3.1-8B-Typo/resolve/main/config.json."), reason: "ModelNotFound", permanent: true, hint: /base_model/ },
  { name: "not a valid model identifier", ctx: ctx("OSError: meta-llama/Llama-3-8b is not a local folder and is not a valid model identifier listed on 'https://huggingface.co/models'"), reason: "ModelNotFound" },
  { name: "gated model", ctx: ctx("huggingface_hub.errors.GatedRepoError: 403 Client Error. Cannot access gated repo for url https://huggingface.co/meta-llama/Llama-3.1-8B/resolve/main/config.json."), reason: "ModelNotFound", hint: /huggingFaceToken/ },
  { name: "missing deepspeed json is not a dataset", ctx: ctx("FileNotFoundError: [Errno 2] No such file or directory: 'deepspeed_configs/zero3.json'"), reason: "FileNotFound", permanent: true, hint: /volumeMounts/ },
  { name: "missing dataset folder", ctx: ctx("FileNotFoundError: [Errno 2] No such file or directory: '/mnt/datasets/alpaca/'"), reason: "DatasetNotFound" },
  { name: "missing chat template file", ctx: ctx("FileNotFoundError: [Errno 2] No such file or directory: '/workspace/templates/chatml.jinja'"), reason: "FileNotFound" },
  // No final model
  { name: "no final model (launcher exit 3)", ctx: ctx("exited 0 without a final model: interrupted? (no 'Training completed!' log line)", { exitCode: 3 }), reason: "NoFinalModel", permanent: false, hint: /resumes from the newest complete checkpoint/ },
  { name: "no final model needs exit 3", ctx: ctx("exited 0 without a final model", { exitCode: 1 }), reason: undefined },
  { name: "exit 3 alone is not no-final-model", ctx: ctx("something else", { exitCode: 3 }), reason: undefined },
  // Nothing known
  { name: "plain traceback", ctx: ctx("Traceback (most recent call last):\nRuntimeError: boom", { exitCode: 1 }), reason: undefined },
  { name: "empty", ctx: ctx(""), reason: undefined },
];

describe("matchFailure", () => {
  for (const c of CASES) {
    it(c.name, () => {
      const sig = matchFailure(c.ctx);
      assert.equal(sig?.reason, c.reason, JSON.stringify(sig));
      if (c.permanent !== undefined) assert.equal(sig?.permanent, c.permanent);
      if (c.hint) assert.match(sig!.hint, c.hint);
    });
  }

  it("every recognised failure has a non-empty hint, and permanence is a boolean", () => {
    for (const c of CASES.filter((x) => x.reason)) {
      const sig = matchFailure(c.ctx)!;
      assert.ok(sig.hint.length > 20, c.name);
      assert.equal(typeof sig.permanent, "boolean");
    }
  });

  it("is case-insensitive on log text", () => {
    assert.equal(matchFailure(ctx("cuda OUT OF MEMORY"))?.reason, "GPUOutOfMemory");
  });

  it("retryable vs permanent: only failures a retry cannot fix are permanent", () => {
    const permanent = new Set(CASES.filter((c) => c.reason && matchFailure(c.ctx)!.permanent).map((c) => c.reason));
    assert.deepEqual([...permanent].toSorted(), ["ConfigRejected", "DatasetNotFound", "DeepSpeedWorldSize", "FileNotFound", "MergeSizeMismatch", "ModelNotFound"]);
  });

  it("stage is honoured for stage-specific rules only", () => {
    for (const stage of ["preprocess", "train", "merge"] as Stage[]) {
      assert.equal(matchFailure(ctx(NCCL_WATCHDOG, { stage }))?.reason, "NCCLTimeout", stage);
    }
  });

  it("has general hints", () => {
    assert.match(GENERAL_HINTS.eosMismatch, /eos_token/);
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import type { Stage } from "../api/group.ts";
import { GENERAL_HINTS, matchFailure, type HintContext } from "./hints.ts";

const ctx = (text: string, more: Partial<HintContext> = {}): HintContext => ({ stage: "train", text, ...more });

const CUDA_OOM = [
  '  File "/usr/local/lib/python3.11/site-packages/torch/nn/modules/linear.py", line 125, in forward',
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

/**
 * Real error text for each "Common Errors" entry of the Axolotl guide. Where it comes from is noted per string:
 * either the exact message fragments from the sources installed in the real-Axolotl venv
 * (~/.cache/finetune-operator/axolotl-0.18.0-py3.11: torch 2.12.1, transformers 5.14.1, peft 0.19.1), joined the way
 * the raising code joins them (numbers filled in), or the output of a real run saved in testdata/errors (README there).
 */
const realError = (file: string) => readFileSync(new URL(`./testdata/errors/${file}`, import.meta.url), "utf8");
const REAL = {
  // torch/lib/libc10_cuda.so (c10/cuda/CUDACachingAllocator.cpp, the OutOfMemoryError raised by malloc): the fragments
  // "CUDA out of memory. Tried to allocate ", ". GPU ", " has a total capacity of ", " of which ", " is free. ",
  // " is reserved by PyTorch but unallocated.", " PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid
  // fragmentation." (`strings libc10_cuda.so`); Python sees it as torch.OutOfMemoryError (torch/cuda/__init__.py:
  // OutOfMemoryError = torch._C.OutOfMemoryError).
  cudaOom:
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which 1.05 GiB is free. " +
    "Including non-PyTorch memory, this process has 78.13 GiB memory in use. Of the allocated memory 75.20 GiB is allocated by PyTorch, and 2.41 GiB is reserved by PyTorch but unallocated. " +
    "If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for Memory Management  (https://docs.pytorch.org/docs/stable/notes/cuda.html#optimizing-memory-usage-with-pytorch-cuda-alloc-conf)",
  // Same library, the per-process memory fraction variant.
  cudaOomFraction:
    "torch.OutOfMemoryError: CUDA out of memory. Allocation was preemptively rejected because it would exceed per_process_memory_fraction limit. Requested size: 1073741824",
  // torch/distributed/elastic/multiprocessing/errors/__init__.py: ProcessFailure.__post_init__ message
  // f"Signal {-self.exitcode} ({self.signal_name()}) received by PID {self.pid}" inside _FAILURE_FORMAT_TEMPLATE.
  torchrunSigkill: [
    "[0]:",
    "  time      : 2026-12-01_20:41:07",
    "  host      : ftj-train-0-0",
    "  rank      : 0 (local_rank: 0)",
    "  exitcode  : -9 (pid: 311)",
    "  error_file: <N/A>",
    "  traceback : Signal 9 (SIGKILL) received by PID 311",
  ].join("\n"),
  // Real run (testdata/errors/merge-size-mismatch.txt): torch/nn/modules/module.py load_state_dict, "size mismatch for
  // {key}: copying a param with shape ... from checkpoint, the shape in current model is ...", on a PEFT model.
  mergeSizeMismatch: realError("merge-size-mismatch.txt"),
  // Real run (testdata/errors/flash-attn-not-installed.txt): transformers/modeling_utils.py _flash_attn_import_error.
  flashAttnMissing: realError("flash-attn-not-installed.txt"),
  // flash_attn/flash_attn_interface.py `import flash_attn_2_cuda as flash_attn_cuda` against a torch it was not built
  // for; the loader's message as reported from a real run in Dao-AILab/flash-attention#966 (flash-attn 2.3.0, torch 2.3).
  flashAttnAbi:
    "ImportError: /usr/local/lib/python3.10/dist-packages/flash_attn_2_cuda.cpython-310-x86_64-linux-gnu.so: undefined symbol: _ZN3c104cuda9SetDeviceEi",
  // flash-attention csrc/flash_attn/flash_api.cpp: TORCH_CHECK(is_sm90 || is_sm8x, "FlashAttention only supports Ampere GPUs or newer.")
  flashAttnOldGpu: "RuntimeError: FlashAttention only supports Ampere GPUs or newer.",
  // Real run (testdata/errors/mpi4py-missing.txt), the import deepspeed/comm/comm.py mpi_discovery() makes.
  mpi4pyMissing: realError("mpi4py-missing.txt"),
  // deepspeed/comm/comm.py init_distributed: utils.logger.info(...) right before mpi_discovery().
  deepspeedNoLauncher:
    "[2026-12-01 20:41:07,123] [INFO] [comm.py:700:init_distributed] Not using the DeepSpeed or dist launchers, attempting to detect MPI environment...",
};

interface Case {
  name: string;
  ctx: HintContext;
  reason: string | undefined;
  permanent?: boolean;
  hint?: RegExp;
}

const CASES: Case[] = [
  // The guide's "Common Errors", each against real text (REAL above says where each string comes from).
  {
    name: "real: CUDA OOM (c10 caching allocator)",
    ctx: ctx(REAL.cudaOom, { exitCode: 1 }),
    reason: "GPUOutOfMemory",
    permanent: false,
    hint: /micro_batch_size: 1.*gradient_checkpointing.*QLoRA.*sequence_len/s,
  },
  { name: "real: CUDA OOM (memory fraction)", ctx: ctx(REAL.cudaOomFraction, { exitCode: 1 }), reason: "GPUOutOfMemory" },
  {
    name: "real: worker SIGKILL in torchrun's report",
    ctx: ctx(REAL.torchrunSigkill, { exitCode: 1 }),
    reason: "HostOutOfMemory",
    permanent: false,
    hint: /2x the model/,
  },
  { name: "exit -9 (a Python parent's view of SIGKILL)", ctx: ctx("", { exitCode: -9 }), reason: "HostOutOfMemory" },
  {
    name: "real: size mismatch at merge (torch load_state_dict on a PEFT model)",
    ctx: ctx(REAL.mergeSizeMismatch, { stage: "merge", exitCode: 1 }),
    reason: "MergeSizeMismatch",
    permanent: true,
    hint: /shrink_embeddings: true/,
  },
  {
    name: "real: flash-attn not installed (transformers)",
    ctx: ctx(REAL.flashAttnMissing, { exitCode: 1 }),
    reason: "FlashAttentionUnavailable",
    permanent: true,
    hint: /flash_attention: false.*matches its torch and CUDA/s,
  },
  { name: "real: flash-attn built for another torch/CUDA", ctx: ctx(REAL.flashAttnAbi, { exitCode: 1 }), reason: "FlashAttentionUnavailable" },
  { name: "real: flash-attn on a pre-Ampere GPU", ctx: ctx(REAL.flashAttnOldGpu, { exitCode: 1 }), reason: "FlashAttentionUnavailable" },
  {
    name: "real: mpi4py missing (DeepSpeed without a launcher)",
    ctx: ctx(REAL.mpi4pyMissing, { exitCode: 1 }),
    reason: "DeepSpeedWorldSize",
    permanent: true,
    hint: /Remove `deepspeed`/,
  },
  { name: "real: DeepSpeed falls back to MPI discovery", ctx: ctx(REAL.deepspeedNoLauncher, { exitCode: 1 }), reason: "DeepSpeedWorldSize" },
  // Older cases (some text below predates the real-text rule and was written by hand; the real cases above cover each entry).
  // CUDA OOM
  {
    name: "CUDA out of memory",
    ctx: ctx(CUDA_OOM, { exitCode: 1 }),
    reason: "GPUOutOfMemory",
    permanent: false,
    hint: /micro_batch_size.*gradient_checkpointing/s,
  },
  { name: "torch.cuda.OutOfMemoryError", ctx: ctx("torch.cuda.OutOfMemoryError: oops"), reason: "GPUOutOfMemory" },
  {
    name: "CUBLAS alloc failure",
    ctx: ctx("RuntimeError: CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
    reason: "GPUOutOfMemory",
  },
  { name: "ROCm HIP OOM", ctx: ctx("torch.OutOfMemoryError: HIP out of memory."), reason: "GPUOutOfMemory" },
  { name: "CUDA OOM wins over exit 137 (the GPU ran out first)", ctx: ctx(CUDA_OOM, { exitCode: 137 }), reason: "GPUOutOfMemory" },
  // Host RAM
  { name: "exit 137 = host RAM", ctx: ctx("", { exitCode: 137 }), reason: "HostOutOfMemory", permanent: false, hint: /host RAM.*spec\.resources\.memory/s },
  { name: "OOMKilled = host RAM", ctx: ctx("loading shards", { exitCode: 1, containerReason: "OOMKilled" }), reason: "HostOutOfMemory" },
  // NCCL
  { name: "NCCL watchdog timeout", ctx: ctx(NCCL_WATCHDOG, { exitCode: 1 }), reason: "NCCLTimeout", permanent: false, hint: /ddp_timeout.*NCCL_DEBUG=INFO/s },
  { name: "NCCL timed out", ctx: ctx("NCCL communicator was aborted: NCCL operation timed out"), reason: "NCCLTimeout" },
  {
    name: "DistBackendError",
    ctx: ctx("torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp"),
    reason: "NCCLTimeout",
  },
  // DeepSpeed
  {
    name: "DeepSpeed world size",
    ctx: ctx("AssertionError: DeepSpeed ZeRO requires world_size > 1"),
    reason: "DeepSpeedWorldSize",
    permanent: true,
    hint: /gpusPerNode/,
  },
  { name: "DeepSpeed on a single GPU", ctx: ctx("ValueError: deepspeed cannot be used with a single GPU"), reason: "DeepSpeedWorldSize" },
  // Merge
  {
    name: "size mismatch at merge",
    ctx: ctx(SIZE_MISMATCH, { stage: "merge", exitCode: 1 }),
    reason: "MergeSizeMismatch",
    permanent: true,
    hint: /embedding size/,
  },
  { name: "size mismatch outside merge is not a merge mismatch", ctx: ctx(SIZE_MISMATCH, { stage: "train", exitCode: 1 }), reason: undefined },
  {
    name: "merge OOMKilled",
    ctx: ctx("", { stage: "merge", exitCode: 137, containerReason: "OOMKilled" }),
    reason: "MergeOutOfMemory",
    permanent: false,
    hint: /merge\.onCPU/,
  },
  { name: "merge CUDA OOM", ctx: ctx(CUDA_OOM, { stage: "merge", exitCode: 1 }), reason: "MergeOutOfMemory" },
  { name: "merge exit 137", ctx: ctx("", { stage: "merge", exitCode: 137 }), reason: "MergeOutOfMemory" },
  // Config rejected
  {
    name: "pydantic ValidationError for AxolotlInputConfig",
    ctx: ctx(CONFIG_REJECTED, { exitCode: 1 }),
    reason: "ConfigRejected",
    permanent: true,
    hint: /kubectl finetune validate/,
  },
  { name: "validation errors (plural)", ctx: ctx("3 validation errors for AxolotlInputConfig"), reason: "ConfigRejected" },
  { name: "Please set micro_batch_size", ctx: ctx("ValueError: Please set micro_batch_size"), reason: "ConfigRejected" },
  { name: "config rejected at preprocess", ctx: ctx(CONFIG_REJECTED, { stage: "preprocess" }), reason: "ConfigRejected" },
  { name: "config rejected wins over exit 137", ctx: ctx(CONFIG_REJECTED, { exitCode: 137 }), reason: "ConfigRejected" },
  // Datasets
  {
    name: "dataset not found",
    ctx: ctx("FileNotFoundError: [Errno 2] No such file or directory: 'data/train.jsonl'"),
    reason: "DatasetNotFound",
    permanent: true,
    hint: /datasets\[\]\.path/,
  },
  {
    name: "Hub dataset repository not found",
    ctx: ctx(
      "huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error. (Request ID: Root=1-6)\n\nRepository Not Found for url: https://huggingface.co/api/datasets/acme/private-set/revision/main.",
    ),
    reason: "DatasetNotFound",
  },
  {
    name: "datasets DatasetNotFoundError",
    ctx: ctx("datasets.exceptions.DatasetNotFoundError: Dataset 'acme/typo' doesn't exist on the Hub or cannot be accessed."),
    reason: "DatasetNotFound",
  },
  { name: "missing parquet file", ctx: ctx("FileNotFoundError: Unable to find '/data/corpus/train-00000.parquet'"), reason: "DatasetNotFound" },
  // Models and other files
  {
    name: "Hub model repository not found",
    ctx: ctx(
      "huggingface_hub.errors.RepositoryNotFoundError: 404 Client Error.\n\nRepository Not Found for url: https://huggingface.co/meta-llama/Llama-3.1-8B-Typo/resolve/main/config.json.",
    ),
    reason: "ModelNotFound",
    permanent: true,
    hint: /base_model/,
  },
  {
    name: "not a valid model identifier",
    ctx: ctx("OSError: meta-llama/Llama-3-8b is not a local folder and is not a valid model identifier listed on 'https://huggingface.co/models'"),
    reason: "ModelNotFound",
  },
  {
    name: "gated model",
    ctx: ctx(
      "huggingface_hub.errors.GatedRepoError: 403 Client Error. Cannot access gated repo for url https://huggingface.co/meta-llama/Llama-3.1-8B/resolve/main/config.json.",
    ),
    reason: "ModelNotFound",
    hint: /huggingFaceToken/,
  },
  {
    name: "missing deepspeed json is not a dataset",
    ctx: ctx("FileNotFoundError: [Errno 2] No such file or directory: 'deepspeed_configs/zero3.json'"),
    reason: "FileNotFound",
    permanent: true,
    hint: /volumeMounts/,
  },
  { name: "missing dataset folder", ctx: ctx("FileNotFoundError: [Errno 2] No such file or directory: '/mnt/datasets/alpaca/'"), reason: "DatasetNotFound" },
  {
    name: "missing chat template file",
    ctx: ctx("FileNotFoundError: [Errno 2] No such file or directory: '/workspace/templates/chatml.jinja'"),
    reason: "FileNotFound",
  },
  // No final model
  {
    name: "no final model (launcher exit 3)",
    ctx: ctx("exited 0 without a final model: interrupted? (no 'Training completed!' log line)", { exitCode: 3 }),
    reason: "NoFinalModel",
    permanent: false,
    hint: /resumes from the newest complete checkpoint/,
  },
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
    assert.deepEqual([...permanent].toSorted(), [
      "ConfigRejected",
      "DatasetNotFound",
      "DeepSpeedWorldSize",
      "FileNotFound",
      "FlashAttentionUnavailable",
      "MergeSizeMismatch",
      "ModelNotFound",
    ]);
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

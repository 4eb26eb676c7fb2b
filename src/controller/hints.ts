/**
 * Known failure signatures of Axolotl runs and what to change, from the
 * Axolotl guide's troubleshooting section. Matched against the exit code, the
 * container's termination reason and the log tail the launcher reports.
 */
import type { Stage } from "../api/group.ts";
import { Reason } from "./reasons.ts";

export interface FailureSignature {
  reason: Reason;
  /** A retry with the same config cannot succeed. */
  permanent: boolean;
  hint: string;
}

interface Rule extends FailureSignature {
  matches(ctx: HintContext): boolean;
}

export interface HintContext {
  stage: Stage;
  exitCode?: number;
  containerReason?: string;
  /** The signal that ended a training process, from torchrun's report (the launcher's termination message). */
  workerSignal?: string;
  text: string;
}

const has = (re: RegExp) => (ctx: HintContext) => re.test(ctx.text);

/** Paths named by "No such file" / FileNotFoundError lines. */
function missingFiles(text: string): string[] {
  const paths: string[] = [];
  for (const m of text.matchAll(/(?:FileNotFoundError|No such file or directory)[^\n'"]{0,120}['"]([^'"\n]{1,500})['"]/gi)) paths.push(m[1]!);
  return paths;
}

/** Data files and dataset folders; configs (DeepSpeed JSON, templates) are not datasets even when they are JSON. */
function looksLikeDataset(path: string): boolean {
  if (/deepspeed|config|template|tokenizer|\.jinja$|\.ya?ml$/i.test(path)) return false;
  return /\.(jsonl?|parquet|csv|tsv|arrow|txt)$/i.test(path) || /(^|\/)(data|datasets?)\//i.test(path);
}

const RULES: Rule[] = [
  {
    reason: Reason.ConfigRejected,
    permanent: true,
    matches: has(
      /validation errors? for AxolotlInputConfig|pydantic(_core)?\.?_?\w*\.?ValidationError|AxolotlConfigWasNotValid|Please set (micro_batch_size|base_model|datasets)/i,
    ),
    hint: "Axolotl rejected the config at start-up; fix the key named in the message (`kubectl finetune validate` catches most of these before any GPU is allocated).",
  },
  {
    reason: Reason.MergeSizeMismatch,
    permanent: true,
    matches: (ctx) => ctx.stage === "merge" && /size mismatch for/i.test(ctx.text),
    hint: "The adapter and base model disagree on embedding size (tokens were added in training). Set `shrink_embeddings: true` in the config (the guide's fix) or merge against the resized base model; check `special_tokens`/`tokens` in the config.",
  },
  {
    reason: Reason.MergeOutOfMemory,
    permanent: false,
    matches: (ctx) => ctx.stage === "merge" && (ctx.exitCode === 137 || ctx.containerReason === "OOMKilled" || /out of memory/i.test(ctx.text)),
    hint: "Merging needs the full base model in memory. Set spec.merge.onCPU: true and raise spec.resources.memory (host RAM for the whole model in bf16), or keep the default memory_efficient merge method.",
  },
  {
    reason: Reason.GPUOutOfMemory,
    permanent: false,
    matches: has(/CUDA out of memory|torch\.(cuda\.)?OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED|HIP out of memory/i),
    // The remedies in the order the Axolotl guide gives them, cheapest change to the run first.
    hint: "GPU memory ran out. In this order: 1) micro_batch_size: 1 (raise gradient_accumulation_steps to keep the effective batch), 2) gradient_checkpointing: true, 3) QLoRA (adapter: qlora, load_in_4bit: true), 4) a shorter sequence_len.",
  },
  {
    reason: Reason.HostOutOfMemory,
    permanent: false,
    // The kernel's OOM killer sends SIGKILL: to the container (exit 137, OOMKilled) or, when it picks one training
    // process, to a torchrun worker, which torchrun reports while itself exiting 1.
    // A Python parent sees a child killed by signal 9 as returncode -9, and torchrun's failure report prints
    // "Signal 9 (SIGKILL) received by PID" (torch/distributed/elastic/multiprocessing/errors/__init__.py).
    matches: (ctx) =>
      ctx.exitCode === 137 ||
      ctx.exitCode === -9 ||
      ctx.containerReason === "OOMKilled" ||
      ctx.workerSignal === "SIGKILL" ||
      /Signal 9 \(SIGKILL\) received by PID/.test(ctx.text),
    hint: "A process was killed for host RAM (SIGKILL: exit 137 / -9, OOMKilled, or a training process killed under torchrun), not GPU memory. Give the pod host RAM of at least 2x the model's size (spec.resources.memory), lower dataloader_num_workers, or enable preprocessing so tokenization does not run inside every rank.",
  },
  {
    reason: Reason.NCCLTimeout,
    permanent: false,
    matches: has(/Watchdog caught collective operation timeout|NCCL.{0,80}time(d)? ?out|ProcessGroupNCCL.{0,80}Timeout|DistBackendError/i),
    hint: "A collective timed out (one rank stalled or the network between nodes failed). Keep spec.preprocess.enabled so ranks do not tokenize while others wait, raise ddp_timeout, and set NCCL_DEBUG=INFO in spec.env to see which link failed.",
  },
  {
    reason: Reason.DeepSpeedWorldSize,
    permanent: true,
    // DeepSpeed started without a distributed launcher (one GPU) falls back to MPI discovery, which imports mpi4py
    // (deepspeed/comm/comm.py init_distributed -> mpi_discovery: "Not using the DeepSpeed or dist launchers,
    // attempting to detect MPI environment..." then `from mpi4py import MPI`).
    matches: has(
      /deepspeed.{0,120}(world[_ ]size|single gpu|requires at least 2)|No module named '?mpi4py|Not using the DeepSpeed or dist launchers, attempting to detect MPI environment/i,
    ),
    hint: "DeepSpeed (and the MPI4PY it falls back to) is for several GPUs: it needs a world size of at least 2 (nodes x gpusPerNode). Remove `deepspeed` from the config for a single GPU, or raise gpusPerNode; do not install mpi4py to work around it.",
  },
  {
    reason: Reason.FlashAttentionUnavailable,
    permanent: true,
    // Either the package is missing (transformers' _flash_attn_import_error, or a plain ModuleNotFoundError from an
    // Axolotl monkeypatch) or its compiled extension was built for another torch/CUDA ("flash_attn_2_cuda...so:
    // undefined symbol", raised by flash_attn/flash_attn_interface.py `import flash_attn_2_cuda`), or the GPU is too
    // old for it (csrc/flash_attn/flash_api.cpp TORCH_CHECK "FlashAttention only supports Ampere GPUs or newer.").
    matches: has(
      /FlashAttention\d* has been toggled on, but it cannot be used|No module named '?flash_attn|flash_attn\w*\.\S*so: undefined symbol|undefined symbol:.{0,200}flash_attn|FlashAttention only supports Ampere GPUs or newer/i,
    ),
    hint: "Flash Attention could not be loaded (not installed in the image, or built for another CUDA/torch version). Set `flash_attention: false` (or `attn_implementation: sdpa`) in the config, or use an image whose flash-attn build matches its torch and CUDA (the pinned axolotlai/axolotl tags ship one).",
  },
  {
    reason: Reason.DatasetNotFound,
    permanent: true,
    // A missing local file counts as a dataset only when it looks like one; other missing files get the general hint below.
    matches: (ctx) =>
      /DatasetNotFoundError|Couldn't find a dataset|Repository Not Found for url: \S*huggingface\.co\/(api\/)?datasets\//i.test(ctx.text) ||
      missingFiles(ctx.text).some(looksLikeDataset),
    hint: "A dataset path could not be found. Check datasets[].path, that the dataset volume is mounted (spec.volumes/volumeMounts) and, for private Hub datasets, spec.secrets.huggingFaceToken.",
  },
  {
    reason: Reason.ModelNotFound,
    permanent: true,
    matches: has(
      /Repository Not Found|RepositoryNotFoundError|GatedRepoError|is not a local folder and is not a valid model identifier|does not appear to have a file named (config\.json|pytorch_model\.bin|model\.safetensors)/i,
    ),
    hint: "The base model (or tokenizer) could not be loaded from the Hub. Check base_model / tokenizer_config for typos; for gated or private models accept the licence on the Hub and set spec.secrets.huggingFaceToken.",
  },
  {
    reason: Reason.FileNotFound,
    permanent: true,
    matches: has(/FileNotFoundError|No such file or directory/i),
    hint: "A file the config names does not exist inside the pod (the path is in the message above). Paths are resolved in the trainer's working directory; mount what it needs with spec.volumes/volumeMounts or spec.storage.cache.",
  },
  {
    reason: Reason.NoFinalModel,
    permanent: false,
    matches: (ctx) => ctx.exitCode === 3 && /without a final model|NoFinalModel/i.test(ctx.text),
    hint: "The trainer exited 0 without saving the final model (interrupted). The next attempt resumes from the newest complete checkpoint.",
  },
];

export function matchFailure(ctx: HintContext): FailureSignature | undefined {
  const rule = RULES.find((r) => r.matches(ctx));
  return rule ? { reason: rule.reason, permanent: rule.permanent, hint: rule.hint } : undefined;
}

/** Hints that apply to a stage rather than to one failure, e.g. EOS mismatch is seen in outputs, not logs. */
export const GENERAL_HINTS = {
  eosMismatch:
    "Garbage or endless generations after training usually mean the EOS token of the chat template and the tokenizer disagree: set special_tokens.eos_token to the template's end-of-turn token.",
};

#!/usr/bin/env python3
"""finetune-operator trainer launcher.

Shipped to every trainer pod in a ConfigMap and run as

    python3 /etc/finetune-launcher/launcher.py -- <command...>

It wraps each stage's command (preprocess, train, smoke, merge) and:

* train only: picks the newest COMPLETE checkpoint (node rank 0 decides, the
  other ranks read the decision from the shared output dir) and inserts
  ``--resume-from-checkpoint <path>`` after the config path;
* runs the command as a child process in its own process group, passing its
  stdout/stderr through unchanged while keeping a bounded tail;
* on SIGTERM asks Axolotl for a checkpoint through the dynamic-checkpoint
  trigger file, forwards SIGTERM, and SIGKILLs before the grace period ends;
* checks that a train run that exited 0 really left a final model;
* writes a JSON termination message (<= 4096 bytes) for the operator;
* parses training progress from the child's output and POSTs it (rank 0);
* smoke only: runs ``axolotl inference`` once per prompt (it reads one prompt
  until end of input), feeding the prompt on stdin, and records the answers.

Standard library only; Python 3.10+.

Contract
--------
argv: ``launcher.py -- <command...>`` (the leading ``--`` is optional).
Environment (set by the operator):
  FINETUNE_STAGE                 preprocess | train | smoke | merge
  FINETUNE_SMOKE_PROMPTS         smoke: JSON list of prompts; FINETUNE_SMOKE_ANSWERS_FILE: where the answers go (JSON)
  FINETUNE_OUTPUT_DIR            absolute output_dir on the shared (RWX) filesystem
  FINETUNE_ATTEMPT               attempt number (default 0)
  FINETUNE_NODE_RANK/NNODES      node rank (default 0) / node count (default 1)
  FINETUNE_DYNAMIC_CHECKPOINT    "true": on SIGTERM create the dynamic-checkpoint trigger file first:
                                 <output_dir>/<FINETUNE_DYNAMIC_CHECKPOINT_TRIGGER or axolotl_checkpoint.save>
  FINETUNE_TERMINATION_GRACE_SECONDS  the pod's terminationGracePeriodSeconds (default 30)
  FINETUNE_REQUIRE_FINAL_MODEL   "true": exit 0 without a final model -> exit 3 (node rank 0)
  FINETUNE_PREFETCH_MODEL / _REVISION   preprocess: snapshot_download this Hub model into HF_HOME first
  FINETUNE_PROGRESS_URL / _TOKEN_FILE / _CA_FILE   optional progress endpoint (rank 0, train)
  FINETUNE_TERMINATION_LOG       default /dev/termination-log
  Optional tuning: FINETUNE_RESUME_WAIT_SECONDS (600), FINETUNE_RESUME_MISMATCH_GRACE_SECONDS (60),
  FINETUNE_RESUME_POLL_SECONDS (0.5), FINETUNE_SIGTERM_SAFETY_SECONDS (10),
  FINETUNE_PROGRESS_INTERVAL_SECONDS (5), FINETUNE_DYNAMIC_CHECKPOINT_TRIGGER (the config's
  dynamic_checkpoint.trigger_file_path, relative to output_dir).
stdout lines (one JSON object each):
  FINETUNE_RESUME {"checkpoint": path|null, "step": int|null, "skipped": [{"path", "reason"}]}  (train)
  FINETUNE_SHUTDOWN {"signal", "trigger", "triggerCreated", "triggerConsumed", "savedCheckpoint",
                     "forwardedAfterSeconds", "killed"}                                       (after SIGTERM)
Own diagnostics go to stderr prefixed "[finetune-launcher]".
Exit code: the child's (signal N -> 128+N); 3 = exited 0 without a final model; 4 = node rank 0's
resume decision never appeared; 2 = no command; 126/127 = command not executable / not found.
Termination message (JSON, <= 4096 bytes): stage, exitCode, attempt, resumeFrom, resumeStep,
finalModel (bool, null when not checked), reason (Completed | Failed | Signalled | NoFinalModel),
message, childExitCode, signal, nodeRank, [finalModelPath], [smoke {answers [{prompt, answer, stopped, chars}], file}
(prompts and answers truncated)], [workerSignal, workerExitCode] (the root cause in
torchrun's failure report: torchrun exits 1 even when a worker was SIGKILLed), tail (last ~40 ANSI-free lines plus
up to 10 older error lines; oldest dropped first to fit).
Progress POST body (JSON): stage, attempt, nodeRank, resumeFrom, resumeStep, phase, step,
totalSteps, epoch, loss, evalLoss, learningRate, gradNorm, tokensPerSecond, tokensPerSecondPerGpu,
etaSeconds, trainLoss, checkpoints [{"step", "path", "complete"}], final, timestamp, and on the
final POST also exitCode, reason, finalModel.

Checkpoint layouts: what this file relies on
---------------------------------------------
Read from the upstream sources (huggingface/transformers ``trainer.py``,
huggingface/accelerate ``utils/fsdp_utils.py``, deepspeedai/DeepSpeed
``runtime/engine.py``, pytorch ``distributed/checkpoint/filesystem.py``,
axolotl-ai-cloud/axolotl ``train.py`` and ``utils/callbacks/dynamic_checkpoint.py``):

* ``Trainer._save_checkpoint`` writes ``<output_dir>/checkpoint-<global_step>``
  (``PREFIX_CHECKPOINT_DIR = "checkpoint"``) in this order: ``save_model``
  (weights, config, tokenizer, ``training_args.bin``), then, unless
  ``save_only_model``, ``_save_optimizer_and_scheduler`` + scaler + RNG state,
  and LAST ``trainer_state.json`` (``TrainerState.save_to_json``, contains
  ``global_step``).  A checkpoint whose ``trainer_state.json`` is missing or
  not valid JSON was cut off (or is still being written).
* ``Trainer._save`` logs ``"Saving model checkpoint to {output_dir}"`` at the
  START of a save (logger.info; invisible when transformers logs at WARNING).
* Weights (``save_pretrained``): ``adapter_model.safetensors`` /
  ``adapter_model.bin`` (PEFT), ``model.safetensors`` / ``pytorch_model.bin``,
  or shards ``model-0000i-of-0000n.safetensors`` listed in the ``weight_map`` of
  ``model.safetensors.index.json`` (``pytorch_model.bin.index.json`` for .bin).
* Optimizer (``_save_optimizer_and_scheduler``): plain/DDP ``optimizer.pt`` and
  ``scheduler.pt``.  ``_load_optimizer_and_scheduler`` only restores the
  optimizer when ``scheduler.pt`` is ALSO present (except DeepSpeed), so a
  checkpoint without ``scheduler.pt`` is treated as incomplete.
* FSDP (accelerate ``save_fsdp_model`` / ``save_fsdp_optimizer``):
  FULL_STATE_DICT -> ``pytorch_model_fsdp.bin`` (``pytorch_model_fsdp_<i>.bin``)
  and ``optimizer.bin`` (``optimizer_<i>.bin``); LOCAL_STATE_DICT ->
  ``pytorch_model_fsdp_rank<r>.bin``; SHARDED_STATE_DICT -> directories
  ``pytorch_model_fsdp_0/`` and ``optimizer_0/`` written with
  ``torch.distributed.checkpoint`` whose ``FileSystemWriter.finish`` writes
  ``.metadata`` last (tmp file + rename): a sharded dir without ``.metadata`` is
  incomplete.
* DeepSpeed (``DeepSpeedEngine.save_checkpoint(checkpoint-N)``): tag
  ``global_step<N>/`` with ``mp_rank_XX_model_states.pt`` (ZeRO-3:
  ``zero_pp_rank_<dp>_mp_rank_XX_model_states.pt``) and
  ``[bf16_]zero_pp_rank_<dp>_mp_rank_XX_optim_states.pt``; rank 0 writes the
  ``latest`` file (content: the tag) after all of its own files.  ZeRO stage 0
  (optimizer inside model_states, no ``*optim_states.pt``) is not accepted.
* Axolotl's ``determine_resume_checkpoint`` (auto_resume_from_checkpoints)
  picks the numerically highest ``checkpoint-*`` without checking it (and
  ``int()`` fails on non-numeric suffixes), hence this launcher.
* Axolotl's SIGINT handler (local rank 0) calls ``save_pretrained(output_dir)``
  and exits 0: weights in output_dir after exit 0 are not proof of completion;
  the launcher also uses the log lines "Starting trainer...", "Training
  completed! Saving trained model to ..." and "Model successfully saved to ...".
* ``DynamicCheckpointCallback``: Axolotl's rank 0 checks
  ``<output_dir>/axolotl_checkpoint.save`` every ``check_interval`` steps,
  deletes it when found and sets ``control.should_save`` (the save happens
  after the trigger disappears).
"""

from __future__ import annotations

import ast
import collections
import datetime
import json
import math
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request

LOG_PREFIX = "[finetune-launcher]"

DEFAULT_TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LOG_MAX_BYTES = 4096
TAIL_MAX_LINES = 40
TAIL_MAX_PINNED = 10
TAIL_LINE_MAX_CHARS = 400
DEFAULT_TRIGGER_FILENAME = "axolotl_checkpoint.save"
DEFAULT_GRACE_SECONDS = 30
DEFAULT_SAFETY_SECONDS = 10
MIN_SAVE_WINDOW_SECONDS = 3
KILL_BEFORE_DEADLINE_SECONDS = 2
DEFAULT_RESUME_WAIT_SECONDS = 600
DEFAULT_RESUME_MISMATCH_GRACE_SECONDS = 60
DEFAULT_PROGRESS_INTERVAL_SECONDS = 5.0
PROGRESS_POST_TIMEOUT_SECONDS = 2.0
PROGRESS_FAILURE_LOG_INTERVAL_SECONDS = 60.0
CHECKPOINT_SCAN_INTERVAL_SECONDS = 30.0
MAX_SKIPPED_REPORTED = 20
MAX_CHECKPOINTS_REPORTED = 20
MAX_PENDING_SEGMENT_BYTES = 65536

EXIT_USAGE = 2
EXIT_NO_FINAL_MODEL = 3
EXIT_RESUME_TIMEOUT = 4
EXIT_LAUNCHER_ERROR = 5

STAGES = ("preprocess", "train", "smoke", "merge")

# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

_ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences (colours, cursor movement, OSC titles)."""
    if "\x1b" not in text:
        return text
    return _ANSI_RE.sub("", text)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _utc_now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except (ValueError, AttributeError):
        return f"SIG{signum}"


def _nonempty_file(path: str) -> bool:
    try:
        return os.path.isfile(path) and os.path.getsize(path) > 0
    except OSError:
        return False


def _children_map() -> dict:
    """ppid -> [pid] from /proc (Linux); empty when /proc is unavailable."""
    children: dict = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return children
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                data = fh.read()
            ppid = int(data.rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    return children


def descendants(pid: int) -> list:
    """All live descendants of ``pid`` (any session/process group)."""
    cmap = _children_map()
    found, stack = [], [pid]
    while stack:
        for child in cmap.get(stack.pop(), []):
            if child not in found and child != pid:
                found.append(child)
                stack.append(child)
    return found


def kill_pids(pids, sig=signal.SIGKILL) -> None:
    """Signal each pid and the process group it leads (torchrun workers are session leaders)."""
    for pid in pids:
        for fn in (os.killpg, os.kill):
            try:
                fn(pid, sig)
            except (ProcessLookupError, PermissionError, OSError):
                pass


def become_child_subreaper() -> bool:
    """Orphaned grandchildren (e.g. torchrun workers) get re-parented to us, so we can find and reap them."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except Exception:  # noqa: BLE001 - best effort (non-Linux, no libc)
        return False


class Console:
    """Serialises writes to our stdout/stderr between pump threads and logs."""

    def __init__(self, stdout=None, stderr=None):
        self._out = stdout if stdout is not None else getattr(sys.stdout, "buffer", None)
        self._err = stderr if stderr is not None else getattr(sys.stderr, "buffer", None)
        self._out_lock = threading.Lock()
        self._err_lock = threading.Lock()
        self._out_ok = self._out is not None
        self._err_ok = self._err is not None

    def write(self, which: str, data: bytes) -> None:
        if which == "stdout":
            with self._out_lock:
                if self._out_ok:
                    try:
                        self._out.write(data)
                        self._out.flush()
                    except (OSError, ValueError):
                        self._out_ok = False  # keep draining the child even if our stdout broke
        else:
            with self._err_lock:
                if self._err_ok:
                    try:
                        self._err.write(data)
                        self._err.flush()
                    except (OSError, ValueError):
                        self._err_ok = False


# --------------------------------------------------------------------------
# Tail kept for the termination message
# --------------------------------------------------------------------------

# Lines worth keeping even when they scroll out of the last-N window.
_ERROR_LINE_RE = re.compile(
    r"(Error|Exception|Traceback|CUDA out of memory|NCCL|[Tt]imed? ?out|Killed|SIGKILL|SIGTERM|"
    r"Signal \d+|exitcode|Segmentation fault|No space left|ChildFailedError|FAILED|"
    r"exited 0 without a final model)"
)
_PROGRESS_BAR_RE = re.compile(r"\d+%\|.*\|\s*[\d.]+[kMGT]?/[\d.]+[kMGT]?\s*\[")


class Tail:
    """Bounded, thread-safe tail of meaningful output lines (ANSI stripped).

    Keeps the last ``max_lines`` lines plus up to ``max_pinned`` older
    error-looking lines (exception messages, NCCL errors) so that a long
    torchrun failure summary does not push the real error out.
    """

    def __init__(self, max_lines: int = TAIL_MAX_LINES, max_pinned: int = TAIL_MAX_PINNED):
        self._lock = threading.Lock()
        self._seq = 0
        self._recent: collections.deque = collections.deque(maxlen=max_lines)
        self._pinned: collections.deque = collections.deque(maxlen=max_pinned)

    def add(self, text: str) -> None:
        text = strip_ansi(text).replace("\t", "    ").rstrip()
        if not text.strip():
            return
        if _PROGRESS_BAR_RE.search(text):
            return  # tqdm bars are noise for failure classification
        if len(text) > TAIL_LINE_MAX_CHARS:
            text = text[: TAIL_LINE_MAX_CHARS - 1] + "\u2026"
        pinned = bool(_ERROR_LINE_RE.search(text))
        with self._lock:
            self._seq += 1
            entry = (self._seq, text, pinned)
            self._recent.append(entry)
            if pinned:
                self._pinned.append(entry)

    def entries(self) -> list:
        with self._lock:
            merged = {e[0]: e for e in self._pinned}
            merged.update({e[0]: e for e in self._recent})
        return [merged[k] for k in sorted(merged)]

    def lines(self) -> list:
        return [e[1] for e in self.entries()]


_TORCHRUN_ROOT_CAUSE = "Root Cause (first observed failure)"
_TORCHRUN_SIGNAL_RE = re.compile(r"Signal (\d+) \((SIG[A-Z0-9]+)\) received by PID (\d+)")
_TORCHRUN_EXITCODE_RE = re.compile(r"^\s*exitcode\s*:\s*(-?\d+)")
_TORCHRUN_RANK_RE = re.compile(r"^\s*rank\s*:\s*(\d+)")


def worker_failure(lines: list):
    """The root cause in torchrun's failure report, when a worker process failed.

    torchrun exits 1 whatever happened to a worker, so a worker killed by a signal (the host OOM killer's SIGKILL)
    is visible only in the report it prints (torch.distributed.elastic ``ChildFailedError``):
    ``exitcode  : -9 (pid: 123)`` and ``traceback : Signal 9 (SIGKILL) received by PID 123`` under
    ``Root Cause (first observed failure):``. Returns {"signal", "exitCode", "rank"} (None where unknown) or None.
    """
    start = 0
    for i, line in enumerate(lines):
        if _TORCHRUN_ROOT_CAUSE in line:
            start = i + 1
    found = {"signal": None, "exitCode": None, "rank": None}
    for line in lines[start:]:
        if found["rank"] is None and (m := _TORCHRUN_RANK_RE.match(line)):
            found["rank"] = int(m.group(1))
        if found["exitCode"] is None and (m := _TORCHRUN_EXITCODE_RE.match(line)):
            found["exitCode"] = int(m.group(1))
        if found["signal"] is None and (m := _TORCHRUN_SIGNAL_RE.search(line)):
            found["signal"] = m.group(2)
        if found["exitCode"] is not None and found["signal"] is not None:
            break
    if found["signal"] is None and found["exitCode"] is not None and found["exitCode"] < 0:
        found["signal"] = _signal_name(-found["exitCode"])
    return found if found["exitCode"] is not None or found["signal"] is not None else None


def build_termination_message(fields: dict, tail_entries: list, max_bytes: int = TERMINATION_LOG_MAX_BYTES) -> bytes:
    """Serialise ``fields`` + tail into at most ``max_bytes`` UTF-8 bytes.

    Tail lines are dropped oldest first (unpinned lines before pinned error
    lines) until the message fits.
    """
    entries = list(tail_entries)
    msg = dict(fields)
    while True:
        msg["tail"] = [e[1] for e in entries]
        data = json.dumps(msg, ensure_ascii=False).encode("utf-8")
        if len(data) <= max_bytes:
            return data
        if not entries:
            break
        drop = next((i for i, e in enumerate(entries) if not e[2]), 0)
        del entries[drop]
    # Still too big without any tail: shorten the free-text fields.
    for key in ("message", "resumeFrom", "finalModelPath"):
        if isinstance(msg.get(key), str) and len(msg[key]) > 200:
            msg[key] = msg[key][:199] + "\u2026"
    data = json.dumps(msg, ensure_ascii=False).encode("utf-8")
    if len(data) <= max_bytes:
        return data
    minimal = {k: fields.get(k) for k in ("stage", "exitCode", "attempt", "reason")}
    minimal.update({"resumeFrom": None, "resumeStep": None, "finalModel": fields.get("finalModel"), "tail": []})
    return json.dumps(minimal, ensure_ascii=False).encode("utf-8")[:max_bytes]


# --------------------------------------------------------------------------
# Smoke test: `axolotl inference` output
# --------------------------------------------------------------------------

INFERENCE_BANNER = "Give me an instruction (Ctrl + D to submit):"
_SEPARATOR_RE = re.compile(r"^={40,}\s*$")
SMOKE_PROMPT_CHARS = 80
SMOKE_ANSWER_CHARS = 200


def read_tokenizer_tokens(model_dir):
    """(eos token text, every special token text) from the tokenizer files Axolotl writes into output_dir."""
    eos, special = None, set()

    def content(tok):
        if isinstance(tok, dict):
            tok = tok.get("content")
        return tok if isinstance(tok, str) and tok else None

    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        try:
            with open(os.path.join(model_dir, name), encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        eos = eos or content(data.get("eos_token"))
        for key in ("bos_token", "eos_token", "pad_token", "unk_token"):
            if content(data.get(key)):
                special.add(content(data.get(key)))
        added = data.get("added_tokens_decoder")
        if isinstance(added, dict):
            for tok in added.values():
                if isinstance(tok, dict) and tok.get("special") and content(tok):
                    special.add(content(tok))
    return eos, sorted(special, key=len, reverse=True)


def parse_inference_output(stdout: str, prompt: str, eos_token=None, special_tokens=()) -> dict:
    """The answer to one prompt from `axolotl inference` stdout (axolotl/cli/inference.py do_inference).

    After the banner and a separator it reads the prompt; then prints a separator, the streamed prompt and generation,
    a separator, and the decoded whole sequence (special tokens included). The answer is what follows the prompt in
    that decoded sequence; ``stopped`` says whether it ended with the EOS token (None when EOS is unknown), i.e.
    whether generation stopped by itself rather than at the token limit.
    """
    lines = stdout.replace("\r\n", "\n").split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip() == INFERENCE_BANNER), None)
    blocks, current = [], None
    for line in lines[(start or 0) + 1 :]:
        if _SEPARATOR_RE.match(line):
            if current is not None:
                blocks.append(current)
            current = []
        elif current is not None:
            current.append(line)
    # blocks: [prompt read (empty: the prompt came on stdin), streamed, decoded, <next banner>...]
    texts = ["\n".join(b).strip("\n") for b in blocks]
    decoded = texts[2] if len(texts) > 2 else (texts[-1] if texts else "")
    if len(texts) > 2 and texts[2].strip() == INFERENCE_BANNER:
        decoded = texts[1]
    at = decoded.rfind(prompt.strip()) if prompt.strip() else -1
    raw = decoded[at + len(prompt.strip()) :] if at >= 0 else decoded
    stopped = raw.rstrip().endswith(eos_token) if eos_token else None
    answer = raw
    for tok in special_tokens:
        answer = answer.replace(tok, "")
    return {"answer": answer.strip(), "stopped": stopped}


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def write_termination_log(path: str, data: bytes, log) -> bool:
    """Write the termination message; never raises."""
    try:
        with open(path, "wb") as fh:
            fh.write(data)
        return True
    except Exception as exc:  # noqa: BLE001 - must never crash the launcher
        try:
            log(f"could not write termination message to {path}: {exc}")
        except Exception:  # noqa: BLE001
            pass
        return False


# --------------------------------------------------------------------------
# Checkpoint inspection
# --------------------------------------------------------------------------

CHECKPOINT_DIR_RE = re.compile(r"^checkpoint-(\d+)$")
_SHARD_RE = re.compile(r"^(model|pytorch_model|adapter_model)-(\d+)-of-(\d+)\.(safetensors|bin)$")
_FSDP_MODEL_DIR_RE = re.compile(r"^pytorch_model_fsdp(?:_\d+)?$")
_FSDP_MODEL_FILE_RE = re.compile(r"^pytorch_model_fsdp(?:_\d+)?(?:_rank\d+)?\.bin$")
_FSDP_OPTIM_DIR_RE = re.compile(r"^optimizer_\d+$")
_FSDP_OPTIM_FILE_RE = re.compile(r"^optimizer(?:_\d+)?\.bin$")
_DS_TAG_DIR_RE = re.compile(r"^global_step\d+$")
_DS_ZERO_OPTIM_RE = re.compile(r"^(?:bf16_)?zero_pp_rank_(\d+)_mp_rank_(\d+)_optim_states\.pt$")
_DS_ZERO_MODEL_RE = re.compile(r"^zero_pp_rank_(\d+)_mp_rank_(\d+)_model_states\.pt$")
_INDEX_FILES = (
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
    "adapter_model.safetensors.index.json",
)
_SINGLE_WEIGHT_FILES = (
    "adapter_model.safetensors",
    "adapter_model.bin",
    "model.safetensors",
    "pytorch_model.bin",
)
DCP_METADATA = ".metadata"


class Incomplete(Exception):
    """A checkpoint (or final model) is not complete; str(exc) is the reason."""


def _listdir(path: str) -> set:
    try:
        return set(os.listdir(path))
    except FileNotFoundError:
        raise Incomplete("directory disappeared while reading") from None
    except NotADirectoryError:
        raise Incomplete("not a directory") from None
    except OSError as exc:
        raise Incomplete(f"cannot list directory: {exc.strerror or exc}") from None


def _check_index(path: str, index_name: str) -> str:
    """Validate a sharded-weights index: every shard in weight_map must exist."""
    index_path = os.path.join(path, index_name)
    try:
        with open(index_path, "r", encoding="utf-8") as fh:
            index = json.load(fh)
    except (OSError, ValueError) as exc:
        raise Incomplete(f"{index_name} is unreadable or not valid JSON ({type(exc).__name__})") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise Incomplete(f"{index_name} has no weight_map")
    shards = sorted({str(v) for v in weight_map.values()})
    missing = [s for s in shards if not _nonempty_file(os.path.join(path, s))]
    if missing:
        raise Incomplete(
            f"sharded weights incomplete: {len(missing)} of {len(shards)} shards listed in {index_name} "
            f"missing or empty (e.g. {missing[0]})"
        )
    return index_name


def _check_dcp_dir(path: str, name: str, what: str) -> None:
    if not os.path.isfile(os.path.join(path, name, DCP_METADATA)):
        raise Incomplete(f"{what} directory {name}/ has no {DCP_METADATA} (sharded save interrupted)")


def _check_deepspeed(path: str, entries: set) -> tuple:
    """Return (weights_desc, optim_desc) for a DeepSpeed checkpoint, or raise."""
    latest = os.path.join(path, "latest")
    if "latest" not in entries:
        raise Incomplete("DeepSpeed global_step directory without a 'latest' file (save interrupted)")
    try:
        with open(latest, "r", encoding="utf-8") as fh:
            tag = fh.read().strip()
    except (OSError, ValueError) as exc:
        raise Incomplete(f"DeepSpeed 'latest' file unreadable ({type(exc).__name__})") from None
    if not tag or "/" in tag or tag in (".", ".."):
        raise Incomplete("DeepSpeed 'latest' file is empty or invalid")
    tag_dir = os.path.join(path, tag)
    if not os.path.isdir(tag_dir):
        raise Incomplete(f"DeepSpeed tag directory {tag}/ named by 'latest' is missing")
    files = _listdir(tag_dir)
    model_states = sorted(f for f in files if f.endswith("model_states.pt") and _nonempty_file(os.path.join(tag_dir, f)))
    optim_states = sorted(f for f in files if f.endswith("optim_states.pt") and _nonempty_file(os.path.join(tag_dir, f)))
    if not model_states:
        raise Incomplete(f"DeepSpeed {tag}/ has no *model_states.pt")
    if not optim_states:
        raise Incomplete(f"DeepSpeed {tag}/ has no *optim_states.pt (optimizer state missing)")
    optim_ranks = {int(m.group(1)) for m in map(_DS_ZERO_OPTIM_RE.match, optim_states) if m}
    if optim_ranks and optim_ranks != set(range(max(optim_ranks) + 1)):
        gaps = sorted(set(range(max(optim_ranks) + 1)) - optim_ranks)
        raise Incomplete(f"DeepSpeed {tag}/ is missing ZeRO optimizer shards for data-parallel ranks {gaps[:8]}")
    model_ranks = {int(m.group(1)) for m in map(_DS_ZERO_MODEL_RE.match, model_states) if m}
    if model_ranks:
        if model_ranks != set(range(max(model_ranks) + 1)):
            gaps = sorted(set(range(max(model_ranks) + 1)) - model_ranks)
            raise Incomplete(f"DeepSpeed {tag}/ is missing ZeRO-3 model shards for ranks {gaps[:8]}")
        if optim_ranks and model_ranks != optim_ranks:
            raise Incomplete(f"DeepSpeed {tag}/ has {len(model_ranks)} ZeRO-3 model shards but {len(optim_ranks)} optimizer shards")
    return f"deepspeed {tag}/", f"deepspeed {tag}/*optim_states.pt"


def _check_weights(path: str, entries: set, allow_fsdp_dir: bool = True) -> list:
    """Return the list of weight forms found; raise Incomplete on a broken one."""
    found = []
    indexed_families = set()
    for index_name in _INDEX_FILES:
        if index_name in entries:
            found.append(_check_index(path, index_name))
            indexed_families.add(index_name.split(".")[0])
    for name in sorted(entries):
        m = _SHARD_RE.match(name)
        if m and m.group(1) not in indexed_families:
            raise Incomplete(f"sharded weight file {name} without its index json (save interrupted)")
    for name in _SINGLE_WEIGHT_FILES:
        if name in entries:
            if not _nonempty_file(os.path.join(path, name)):
                raise Incomplete(f"{name} is empty (still being written?)")
            found.append(name)
    for name in sorted(entries):
        full = os.path.join(path, name)
        if allow_fsdp_dir and _FSDP_MODEL_DIR_RE.match(name) and os.path.isdir(full):
            _check_dcp_dir(path, name, "FSDP sharded model")
            found.append(name + "/")
        elif _FSDP_MODEL_FILE_RE.match(name):
            if not _nonempty_file(full):
                raise Incomplete(f"{name} is empty (still being written?)")
            found.append(name)
    return found


def inspect_checkpoint(path: str) -> dict:
    """Check one ``checkpoint-N`` directory without modifying anything.

    Returns ``{"complete": bool, "reason": str|None, "globalStep": int|None,
    "weights": [...], "optimizer": [...]}``.
    """
    result = {"complete": False, "reason": None, "globalStep": None, "weights": [], "optimizer": []}
    try:
        if not os.path.isdir(path):
            raise Incomplete("not a directory")
        entries = _listdir(path)
        # 1. trainer_state.json: written last by Trainer._save_checkpoint.
        if "trainer_state.json" not in entries:
            raise Incomplete("trainer_state.json missing (checkpoint cut off or still being written)")
        try:
            with open(os.path.join(path, "trainer_state.json"), "r", encoding="utf-8") as fh:
                state = json.load(fh)
        except (OSError, ValueError) as exc:
            raise Incomplete(
                f"trainer_state.json is not valid JSON (truncated or still being written: {type(exc).__name__})"
            ) from None
        step = state.get("global_step") if isinstance(state, dict) else None
        if not isinstance(step, int) or isinstance(step, bool):
            raise Incomplete("trainer_state.json has no integer global_step")
        result["globalStep"] = step

        # 2. DeepSpeed engine state (weights + optimizer shards), if any.
        deepspeed = "latest" in entries or any(
            _DS_TAG_DIR_RE.match(n) and os.path.isdir(os.path.join(path, n)) for n in entries
        )
        weights = _check_weights(path, entries)
        optimizer = []
        if deepspeed:
            ds_weights, ds_optim = _check_deepspeed(path, entries)
            weights.append(ds_weights)
            optimizer.append(ds_optim)
        if not weights:
            raise Incomplete(
                "no model weights (adapter_model.*, model*.safetensors, pytorch_model*.bin, "
                "FSDP pytorch_model_fsdp*, DeepSpeed global_step*/)"
            )

        # 3. Optimizer state.
        if "optimizer.pt" in entries:
            if not _nonempty_file(os.path.join(path, "optimizer.pt")):
                raise Incomplete("optimizer.pt is empty (still being written?)")
            optimizer.append("optimizer.pt")
        for name in sorted(entries):
            full = os.path.join(path, name)
            if _FSDP_OPTIM_DIR_RE.match(name) and os.path.isdir(full):
                _check_dcp_dir(path, name, "FSDP sharded optimizer")
                optimizer.append(name + "/")
            elif _FSDP_OPTIM_FILE_RE.match(name):
                if not _nonempty_file(full):
                    raise Incomplete(f"{name} is empty (still being written?)")
                optimizer.append(name)
        if not optimizer:
            raise Incomplete(
                "no optimizer state (optimizer.pt, FSDP optimizer_0/ or optimizer*.bin, DeepSpeed *optim_states.pt): "
                "saved with save_only_model, or cut off"
            )
        # 4. Trainer restores the optimizer only together with scheduler.pt (non-DeepSpeed).
        if not deepspeed and not _nonempty_file(os.path.join(path, "scheduler.pt")):
            raise Incomplete("scheduler.pt missing or empty (Trainer would not restore the optimizer)")

        result.update(complete=True, weights=weights, optimizer=optimizer)
    except Incomplete as exc:
        result["reason"] = str(exc)
    except Exception as exc:  # noqa: BLE001 - never crash on odd filesystem states
        result["reason"] = f"unexpected error while inspecting: {type(exc).__name__}: {exc}"
    return result


def list_checkpoints(output_dir: str | None) -> list:
    """``[(step, path)]`` of ``checkpoint-<int>`` entries, newest (highest step) first."""
    if not output_dir:
        return []
    try:
        names = os.listdir(output_dir)
    except OSError:
        return []
    found = []
    for name in names:
        m = CHECKPOINT_DIR_RE.match(name)
        if m:
            found.append((int(m.group(1)), os.path.join(output_dir, name)))
    found.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return found


def select_checkpoint(output_dir: str | None, min_step_exclusive: int | None = None) -> dict:
    """Newest complete checkpoint: ``{"checkpoint", "step", "skipped"}``.

    Newer incomplete checkpoints are reported in ``skipped`` with a reason;
    nothing is ever deleted or modified.
    """
    skipped = []
    for step, path in list_checkpoints(output_dir):
        if min_step_exclusive is not None and step <= min_step_exclusive:
            break
        info = inspect_checkpoint(path)
        if info["complete"]:
            return {"checkpoint": path, "step": step, "skipped": skipped[:MAX_SKIPPED_REPORTED]}
        skipped.append({"path": path, "reason": info["reason"]})
    return {"checkpoint": None, "step": None, "skipped": skipped[:MAX_SKIPPED_REPORTED]}


def find_final_model(output_dir: str | None) -> tuple:
    """Is a final model in output_dir?  Returns ``(found: bool, description)``.

    Accepts ``adapter_model.safetensors``/``.bin`` (adapters), ``model.safetensors``,
    a ``model.safetensors.index.json`` / ``pytorch_model.bin.index.json`` whose
    shards are all present, ``pytorch_model.bin``, or an FSDP sharded
    ``pytorch_model_fsdp_0/`` with ``.metadata`` (fsdp_final_state_dict_type:
    SHARDED_STATE_DICT).  ``adapter_config.json``/``config.json`` alone are not
    enough: Axolotl writes them before training starts.
    """
    if not output_dir:
        return False, "FINETUNE_OUTPUT_DIR is not set"
    try:
        if not os.path.isdir(output_dir):
            return False, f"{output_dir} does not exist"
        entries = _listdir(output_dir)
        weights = [w for w in _check_weights(output_dir, entries) if not _FSDP_MODEL_FILE_RE.match(w.rstrip("/"))]
    except Incomplete as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001
        return False, f"unexpected error while looking for the final model: {exc}"
    if not weights:
        return False, "no adapter_model.*, model*.safetensors or pytorch_model*.bin in output_dir"
    return True, os.path.join(output_dir, weights[0].rstrip("/"))


# --------------------------------------------------------------------------
# Resume decision (shared across nodes)
# --------------------------------------------------------------------------


class ResumeAborted(Exception):
    """A terminating signal arrived while waiting for the resume decision."""


class ResumeTimeout(Exception):
    pass


def decision_path(output_dir: str, attempt: int) -> str:
    return os.path.join(output_dir, ".finetune", f"resume-attempt-{attempt}.json")


def write_json_atomic(path: str, obj) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp.{socket.gethostname()}.{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # best effort: persist the rename
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def read_decision(path: str):
    """Parse a decision file; None when absent, partial or malformed."""
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    ckpt, step = data.get("checkpoint"), data.get("step")
    if ckpt is not None and not isinstance(ckpt, str):
        return None
    if step is not None and (not isinstance(step, int) or isinstance(step, bool)):
        return None
    skipped = data.get("skipped")
    data["skipped"] = skipped if isinstance(skipped, list) else []
    return data


def resolve_resume(cfg: "Config", log, should_abort=lambda: False, sleep=time.sleep, clock=time.monotonic) -> dict:
    """Node rank 0 decides and publishes; other ranks wait for that decision.

    Non-zero ranks also compute their own view of the newest complete
    checkpoint.  A decision file that disagrees with it may be stale (written
    by an earlier pod of the same attempt), so they keep waiting up to
    ``resume_mismatch_grace`` seconds for rank 0 to rewrite it, then accept
    rank 0's choice anyway: rank 0 is the authority.
    """
    if not cfg.output_dir:
        log("FINETUNE_OUTPUT_DIR is not set: starting without resume")
        return {"checkpoint": None, "step": None, "skipped": [], "source": "none"}
    path = decision_path(cfg.output_dir, cfg.attempt)
    if cfg.node_rank == 0:
        choice = select_checkpoint(cfg.output_dir)
        decision = {
            "attempt": cfg.attempt,
            "checkpoint": choice["checkpoint"],
            "step": choice["step"],
            "skipped": choice["skipped"],
            "decidedBy": socket.gethostname(),
            "decidedAt": _utc_now_iso(),
            "nnodes": cfg.nnodes,
        }
        try:
            write_json_atomic(path, decision)
        except OSError as exc:
            log(f"could not publish the resume decision to {path}: {exc}")
        decision["source"] = "decided"
        return decision

    start = clock()
    own = select_checkpoint(cfg.output_dir)["checkpoint"]
    own_checked = start
    announced = False
    while True:
        if should_abort():
            raise ResumeAborted()
        now = clock()
        decision = read_decision(path)
        if decision is not None:
            if decision.get("checkpoint") == own:
                decision["source"] = "rank0"
                return decision
            if now - start >= min(cfg.resume_mismatch_grace, cfg.resume_wait):
                log(
                    f"resume decision in {path} ({decision.get('checkpoint')}) differs from this node's view "
                    f"({own}); using rank 0's decision"
                )
                decision["source"] = "rank0"
                return decision
        if now - start >= cfg.resume_wait:
            raise ResumeTimeout(f"node rank 0 did not publish {path} within {cfg.resume_wait:g}s")
        if not announced:
            log(f"waiting for node rank 0 to publish the resume decision {path}")
            announced = True
        if now - own_checked >= 10:
            own = select_checkpoint(cfg.output_dir)["checkpoint"]
            own_checked = now
        sleep(cfg.resume_poll)


def insert_resume_arg(cmd: list, checkpoint: str) -> tuple:
    """Insert ``--resume-from-checkpoint <path>`` right after the config path.

    The config path is the argument after ``train`` (``axolotl train CFG``) or
    after ``-m axolotl.cli.train``.  Returns ``(new_cmd, note)``.
    """
    end = cmd.index("--") if "--" in cmd else len(cmd)
    for arg in cmd[:end]:
        if arg in ("--resume-from-checkpoint", "--resume_from_checkpoint") or arg.startswith(
            ("--resume-from-checkpoint=", "--resume_from_checkpoint=")
        ):
            return list(cmd), "command already has --resume-from-checkpoint; left unchanged"
    for i, arg in enumerate(cmd[:end]):
        if arg == "train" or arg.endswith("axolotl.cli.train"):
            if i + 1 < end:
                return cmd[: i + 2] + ["--resume-from-checkpoint", checkpoint] + cmd[i + 2 :], None
            return list(cmd), "no config path after 'train'; --resume-from-checkpoint not inserted"
    return list(cmd), "no 'train' subcommand found; --resume-from-checkpoint not inserted"


# --------------------------------------------------------------------------
# Progress parsing
# --------------------------------------------------------------------------

_MAX_STEPS_RE = re.compile(r"Maximum number of steps set at (\d+)")
_SAVING_RE = re.compile(r"Saving model checkpoint to (\S+)")
_TQDM_RE = re.compile(
    r"(?:(?P<pct>\d{1,3})%\|[^|]*\|\s*)?(?P<n>\d+)/(?P<total>\d+)\s*"
    r"\[(?P<elapsed>[\d:]+)<(?P<remaining>[\d:]+|\?)\s*,\s*(?:[\d.]+|\?)\s*(?:s/it|it/s)"
)
_TAG_PREFIX_RE = re.compile(r"^(?:\s*\[[^\]]*\]\s*:?)+")
_NUMPY_SCALAR_RE = re.compile(r"\b(?:np|numpy)\.[a-z_]+\d*\(\s*([^()]*?)\s*\)")
_TENSOR_RE = re.compile(r"\btensor\(\s*([^(),]*?)\s*(?:,[^()]*)?\)")
_NONFINITE_RE = re.compile(r"(?<![\w'\"])-?(?:nan|inf)(?![\w'\"])")
_METRIC_KEYS = {"loss", "eval_loss", "learning_rate", "grad_norm", "epoch", "train_runtime", "train_loss"}
_GLOBAL_TOKENS_KEYS = ("tokens_per_second", "train_tokens_per_second", "tokens/train_per_sec")
_PER_GPU_TOKENS_KEYS = ("tokens/train_per_sec_per_gpu",)


_NUMERIC_STRING_RE = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


def _number(value):
    """A finite metric value. transformers 5 logs floats as strings ({'loss': '6.707'}); older versions as floats."""
    if isinstance(value, str) and _NUMERIC_STRING_RE.match(value):
        value = float(value) if any(c in value for c in ".eE") else int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def parse_duration(text: str):
    """``1:10:11`` -> 4211, ``09:08`` -> 548, ``?`` -> None."""
    if not text or text == "?":
        return None
    total = 0
    try:
        for part in text.split(":"):
            total = total * 60 + int(part)
    except ValueError:
        return None
    return total


def parse_metrics_dict(segment: str):
    """Parse an HF Trainer log dict repr (``{'loss': 1.2, ...}``) safely."""
    start = segment.find("{'")
    if start < 0:
        start = segment.find('{"')
    if start < 0:
        return None
    end = segment.rfind("}")
    if end <= start or end - start > 20000:
        return None
    candidate = segment[start : end + 1]
    candidate = _NUMPY_SCALAR_RE.sub(r"\1", candidate)
    candidate = _TENSOR_RE.sub(r"\1", candidate)
    candidate = _NONFINITE_RE.sub("None", candidate)
    try:
        obj = ast.literal_eval(candidate)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        return None
    return obj


class ProgressTracker:
    """Thread-safe progress state fed with ANSI-stripped output segments."""

    def __init__(self):
        self._lock = threading.Lock()
        self.changed = threading.Event()
        self._version = 0
        self._state = {
            "phase": "starting",
            "step": None,
            "totalSteps": None,
            "epoch": None,
            "loss": None,
            "evalLoss": None,
            "learningRate": None,
            "gradNorm": None,
            "tokensPerSecond": None,
            "tokensPerSecondPerGpu": None,
            "etaSeconds": None,
            "trainLoss": None,
            # The step each training loss was logged at (keys the operator's loss history, so a resent report adds
            # nothing), and the step of the first NaN/inf loss, which JSON cannot carry as a value.
            "lossStep": None,
            "lossNonFiniteStep": None,
            "checkpoints": [],
        }
        self._checkpoints = {}  # step -> {"step", "path", "complete"}
        self._bar_total = None
        self.saw_trainer_start = False
        self.saw_training_completed = False
        self.saw_model_saved = False

    # -- updates -------------------------------------------------------
    def _set(self, key, value) -> bool:
        if self._state.get(key) != value:
            self._state[key] = value
            return True
        return False

    def _bump(self):
        self._version += 1
        self.changed.set()

    def feed(self, segment: str) -> None:
        if not segment:
            return
        try:
            with self._lock:
                if self._feed_locked(segment):
                    self._bump()
        except Exception:  # noqa: BLE001 - malformed lines never break the launcher
            pass

    def _feed_locked(self, seg: str) -> bool:
        changed = False
        if "Maximum number of steps set at" in seg:
            m = _MAX_STEPS_RE.search(seg)
            if m and self._bar_total is None:
                changed |= self._set("totalSteps", int(m.group(1)))
        if "Starting trainer" in seg:
            self.saw_trainer_start = True
            changed |= self._set("phase", "training")
        if "Training completed!" in seg:
            self.saw_training_completed = True
            changed |= self._set("phase", "saving")
        if "Model successfully saved to" in seg:
            self.saw_model_saved = True
            changed |= self._set("phase", "saved")
        if "Saving model checkpoint to" in seg:
            m = _SAVING_RE.search(seg)
            if m:
                path = m.group(1).rstrip(".,;:'\")")
                cm = CHECKPOINT_DIR_RE.match(os.path.basename(path.rstrip("/")))
                if cm:
                    changed |= self._add_checkpoint(int(cm.group(1)), path.rstrip("/"), False)
        if "{" in seg and "}" in seg:
            metrics = parse_metrics_dict(seg)
            if metrics and _METRIC_KEYS.intersection(metrics):
                changed |= self._apply_metrics(metrics)
        if "/" in seg and "<" in seg and "[" in seg:
            changed |= self._apply_tqdm(seg)
        return changed

    def _apply_metrics(self, d: dict) -> bool:
        changed = False
        if "loss" in d:
            raw = d["loss"]
            # A bare nan/inf was turned into None by parse_metrics_dict; transformers 5 logs it as a string.
            non_finite = raw is None or (isinstance(raw, str) and raw.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"))
            at = d.get("step") if isinstance(d.get("step"), int) and not isinstance(d.get("step"), bool) else (self._state["step"] or 0)
            if non_finite and self._state["lossNonFiniteStep"] is None:
                changed |= self._set("lossNonFiniteStep", at)
            elif _number(raw) is not None:
                changed |= self._set("lossStep", at)
        for src, dst in (
            ("loss", "loss"),
            ("eval_loss", "evalLoss"),
            ("learning_rate", "learningRate"),
            ("grad_norm", "gradNorm"),
            ("epoch", "epoch"),
            ("train_loss", "trainLoss"),
        ):
            if src in d:
                raw = d[src]
                # nan/inf arrive as bare names (older transformers; replaced by None above) or as strings (5.x).
                if isinstance(raw, str) and raw.strip().lower().lstrip("+-") in ("nan", "inf"):
                    raw = None
                value = _number(raw)
                if value is not None or raw is None:
                    changed |= self._set(dst, value)
        step = d.get("step")
        if isinstance(step, int) and not isinstance(step, bool) and step >= (self._state["step"] or 0):
            changed |= self._set("step", step)
        for key in _GLOBAL_TOKENS_KEYS:
            if _number(d.get(key)) is not None:
                changed |= self._set("tokensPerSecond", _number(d[key]))
                break
        for key in _PER_GPU_TOKENS_KEYS:
            if _number(d.get(key)) is not None:
                changed |= self._set("tokensPerSecondPerGpu", _number(d[key]))
                break
        return changed

    def _apply_tqdm(self, seg: str) -> bool:
        m = _TQDM_RE.search(seg)
        if not m:
            return False
        prefix = _TAG_PREFIX_RE.sub("", seg[: m.start()]).strip()
        if prefix:
            return False  # bars with a description are dataset/download bars, not the training loop
        n, total = int(m.group("n")), int(m.group("total"))
        if total <= 0 or n > total:
            return False
        if self._bar_total is None:
            # HF's training bar is created on_train_begin, right after "Starting trainer...";
            # eval bars only show up later and have a different total.
            self._bar_total = total
        elif total != self._bar_total:
            return False
        changed = self._set("totalSteps", total)
        if n >= (self._state["step"] or 0):
            changed |= self._set("step", n)
        changed |= self._set("etaSeconds", parse_duration(m.group("remaining")))
        if self._state["phase"] == "starting":
            changed |= self._set("phase", "training")
        return changed

    def _add_checkpoint(self, step: int, path: str, complete: bool) -> bool:
        current = self._checkpoints.get(step)
        if current is not None and current["path"] == path and (current["complete"] or not complete):
            return False
        self._checkpoints[step] = {"step": step, "path": path, "complete": bool(complete or (current or {}).get("complete"))}
        for old in sorted(self._checkpoints)[:-MAX_CHECKPOINTS_REPORTED]:
            del self._checkpoints[old]
        self._state["checkpoints"] = [dict(self._checkpoints[s]) for s in sorted(self._checkpoints)]
        return True

    def add_complete_checkpoints(self, items) -> None:
        with self._lock:
            changed = False
            for step, path in items:
                changed |= self._add_checkpoint(step, path, True)
            if changed:
                self._bump()

    def known_complete_step(self):
        with self._lock:
            steps = [s for s, c in self._checkpoints.items() if c["complete"]]
            return max(steps) if steps else None

    def snapshot(self) -> tuple:
        with self._lock:
            state = json.loads(json.dumps(self._state))
            return state, self._version


# --------------------------------------------------------------------------
# Progress reporting
# --------------------------------------------------------------------------


class ProgressReporter(threading.Thread):
    """Background POSTer: at most one POST per interval, newest state only."""

    def __init__(self, tracker: ProgressTracker, cfg: "Config", log, base_fields: dict, scan_dir: str | None = None):
        super().__init__(name="finetune-progress", daemon=True)
        self.tracker = tracker
        self.cfg = cfg
        self._log = log
        self.base_fields = dict(base_fields)
        self.scan_dir = scan_dir
        self._stop_event = threading.Event()
        self._final_fields = None
        self._opener = None
        self.posts = 0
        self.failures = 0
        self._last_failure_log = None
        self._suppressed = 0

    # -- HTTP ----------------------------------------------------------
    def _build_opener(self):
        handlers = [urllib.request.ProxyHandler({})]  # in-cluster endpoint: never via HTTP(S)_PROXY
        if self.cfg.progress_url.lower().startswith("https"):
            try:
                ctx = ssl.create_default_context(cafile=self.cfg.progress_ca_file or None)
            except (OSError, ssl.SSLError) as exc:
                self._failure(f"cannot load CA file {self.cfg.progress_ca_file}: {exc}")
                ctx = ssl.create_default_context()
            handlers.append(urllib.request.HTTPSHandler(context=ctx))
        return urllib.request.build_opener(*handlers)

    def _token(self):
        if not self.cfg.progress_token_file:
            return None
        try:
            with open(self.cfg.progress_token_file, "r", encoding="utf-8") as fh:
                token = fh.read().strip()
            return token or None
        except OSError as exc:
            self._failure(f"cannot read token file {self.cfg.progress_token_file}: {exc.strerror or exc}")
            return None

    def _failure(self, text: str) -> None:
        self.failures += 1
        now = time.monotonic()
        if self._last_failure_log is None or now - self._last_failure_log >= PROGRESS_FAILURE_LOG_INTERVAL_SECONDS:
            extra = f" ({self._suppressed} similar messages suppressed)" if self._suppressed else ""
            self._log(f"progress report failed: {text}{extra}", tail=False)
            self._last_failure_log = now
            self._suppressed = 0
        else:
            self._suppressed += 1

    def post(self, payload: dict) -> bool:
        try:
            if self._opener is None:
                self._opener = self._build_opener()
            body = json.dumps(payload).encode("utf-8")
            headers = {"Content-Type": "application/json"}
            token = self._token()
            if token:
                headers["Authorization"] = f"Bearer {token}"
            req = urllib.request.Request(self.cfg.progress_url, data=body, headers=headers, method="POST")
            with self._opener.open(req, timeout=PROGRESS_POST_TIMEOUT_SECONDS) as resp:
                resp.read(65536)
            self.posts += 1
            return True
        except urllib.error.HTTPError as exc:
            self._failure(f"POST {self.cfg.progress_url}: HTTP {exc.code}")
        except Exception as exc:  # noqa: BLE001 - never disturb training
            self._failure(f"POST {self.cfg.progress_url}: {type(exc).__name__}: {exc}")
        return False

    def _payload(self, state: dict, final: bool) -> dict:
        payload = dict(self.base_fields)
        payload.update(state)
        payload["final"] = final
        payload["timestamp"] = _utc_now_iso()
        if final and self._final_fields:
            payload.update(self._final_fields)
        return payload

    # -- loop ----------------------------------------------------------
    def _scan(self) -> None:
        if not self.scan_dir:
            return
        try:
            known = self.tracker.known_complete_step()
            items = []
            for step, path in list_checkpoints(self.scan_dir):
                if known is not None and step <= known:
                    break
                if inspect_checkpoint(path)["complete"]:
                    items.append((step, path))
            if items:
                self.tracker.add_complete_checkpoints(items)
        except Exception:  # noqa: BLE001
            pass

    def run(self) -> None:
        interval = self.cfg.progress_interval
        last_post = None
        last_version = None
        last_scan = time.monotonic()
        try:
            while not self._stop_event.is_set():
                self.tracker.changed.wait(timeout=1.0)
                if self._stop_event.is_set():
                    break
                now = time.monotonic()
                if now - last_scan >= CHECKPOINT_SCAN_INTERVAL_SECONDS:
                    self._scan()
                    last_scan = now
                if last_post is not None and now - last_post < interval:
                    self._stop_event.wait(interval - (now - last_post))
                    continue
                self.tracker.changed.clear()
                state, version = self.tracker.snapshot()
                if version == last_version:
                    continue
                self.post(self._payload(state, final=False))
                last_post = time.monotonic()
                last_version = version
            self._scan()
            state, _ = self.tracker.snapshot()
            self.post(self._payload(state, final=True))
        except Exception as exc:  # noqa: BLE001
            self._failure(f"reporter error: {exc}")

    def finish(self, final_fields: dict, timeout: float) -> None:
        """Ask for the final POST and wait (bounded) for it."""
        self._final_fields = dict(final_fields)
        self._stop_event.set()
        self.tracker.changed.set()
        self.join(timeout)


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


# Run with the image's Python, which has huggingface_hub (the launcher itself uses the standard library only).
# The files transformers loads a model and tokenizer from; not the duplicate `original/` weights some repos carry.
PREFETCH_CODE = """
import sys
from huggingface_hub import snapshot_download
path = snapshot_download(
    repo_id=sys.argv[1],
    revision=sys.argv[2] or None,
    allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken", "*.py", "tokenizer*"],
    ignore_patterns=["original/*"],
)
print(f"[finetune-launcher] cached {sys.argv[1]} at {path}", file=sys.stderr)
"""


class Config:
    def __init__(self, env=None, log=None):
        env = os.environ if env is None else env
        warn = log or (lambda msg: None)

        def integer(name, default, minimum=None):
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                value = int(float(raw.strip()))
            except ValueError:
                warn(f"ignoring invalid {name}={raw!r}; using {default}")
                return default
            if minimum is not None and value < minimum:
                warn(f"ignoring out-of-range {name}={raw!r}; using {default}")
                return default
            return value

        def number(name, default, minimum=0.0):
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                value = float(raw.strip())
            except ValueError:
                warn(f"ignoring invalid {name}={raw!r}; using {default}")
                return default
            return value if value >= minimum and math.isfinite(value) else default

        self.stage = (env.get("FINETUNE_STAGE") or "").strip().lower()
        out = (env.get("FINETUNE_OUTPUT_DIR") or "").strip()
        self.output_dir = os.path.abspath(out) if out else None
        self.attempt = integer("FINETUNE_ATTEMPT", 0, 0)
        self.node_rank = integer("FINETUNE_NODE_RANK", 0, 0)
        self.nnodes = integer("FINETUNE_NNODES", 1, 1)
        self.dynamic_checkpoint = _truthy(env.get("FINETUNE_DYNAMIC_CHECKPOINT"))
        # Axolotl's DynamicCheckpointCallback watches Path(output_dir) / trigger_file_path, so the same join here
        # (an absolute trigger_file_path stays absolute, as with pathlib).
        self.trigger_filename = (env.get("FINETUNE_DYNAMIC_CHECKPOINT_TRIGGER") or "").strip() or DEFAULT_TRIGGER_FILENAME
        self.grace = number("FINETUNE_TERMINATION_GRACE_SECONDS", DEFAULT_GRACE_SECONDS)
        self.safety = number("FINETUNE_SIGTERM_SAFETY_SECONDS", DEFAULT_SAFETY_SECONDS)
        self.require_final_model = _truthy(env.get("FINETUNE_REQUIRE_FINAL_MODEL"))
        self.smoke_prompts = []
        raw_prompts = (env.get("FINETUNE_SMOKE_PROMPTS") or "").strip()
        if raw_prompts:
            try:
                prompts = json.loads(raw_prompts)
                self.smoke_prompts = [p for p in prompts if isinstance(p, str) and p.strip()] if isinstance(prompts, list) else []
            except ValueError:
                warn("ignoring FINETUNE_SMOKE_PROMPTS: not a JSON list of strings")
        self.smoke_answers_file = (env.get("FINETUNE_SMOKE_ANSWERS_FILE") or "").strip() or None
        self.prefetch_model = (env.get("FINETUNE_PREFETCH_MODEL") or "").strip() or None
        self.prefetch_revision = (env.get("FINETUNE_PREFETCH_REVISION") or "").strip() or None
        self.progress_url = (env.get("FINETUNE_PROGRESS_URL") or "").strip() or None
        self.progress_token_file = (env.get("FINETUNE_PROGRESS_TOKEN_FILE") or "").strip() or None
        self.progress_ca_file = (env.get("FINETUNE_PROGRESS_CA_FILE") or "").strip() or None
        self.progress_interval = number("FINETUNE_PROGRESS_INTERVAL_SECONDS", DEFAULT_PROGRESS_INTERVAL_SECONDS, 0.05)
        self.termination_log = (env.get("FINETUNE_TERMINATION_LOG") or "").strip() or DEFAULT_TERMINATION_LOG
        self.resume_wait = number("FINETUNE_RESUME_WAIT_SECONDS", DEFAULT_RESUME_WAIT_SECONDS)
        self.resume_mismatch_grace = number(
            "FINETUNE_RESUME_MISMATCH_GRACE_SECONDS", DEFAULT_RESUME_MISMATCH_GRACE_SECONDS
        )
        self.resume_poll = number("FINETUNE_RESUME_POLL_SECONDS", 0.5, 0.01)
        if self.stage and self.stage not in STAGES:
            warn(f"unknown FINETUNE_STAGE={self.stage!r}; running the command without stage-specific behaviour")

    @property
    def is_train(self) -> bool:
        return self.stage == "train"

    @property
    def trigger_path(self):
        return os.path.join(self.output_dir, self.trigger_filename) if self.output_dir else None

    def shutdown_timing(self) -> tuple:
        """(save window, kill-at) in seconds after SIGTERM."""
        kill_at = max(self.grace - KILL_BEFORE_DEADLINE_SECONDS, 1.0)
        save_window = max(self.grace - self.safety, MIN_SAVE_WINDOW_SECONDS)
        save_window = min(save_window, max(kill_at - 1.0, 0.0))
        return save_window, kill_at


# --------------------------------------------------------------------------
# Child process supervision
# --------------------------------------------------------------------------


class StreamPump(threading.Thread):
    """Copies a child pipe to our stream unchanged; feeds lines to tail/progress.

    Segments end at ``\\r`` or ``\\n`` (tqdm redraws with ``\\r``); the tail
    receives, per ``\\n``-terminated line, the last non-empty segment.
    """

    def __init__(self, pipe, which: str, console: Console, tail: Tail, tracker: ProgressTracker | None):
        super().__init__(name=f"finetune-pump-{which}", daemon=True)
        self.pipe = pipe
        self.which = which
        self.console = console
        self.tail = tail
        self.tracker = tracker

    def _segment(self, raw: bytes, line_last: list) -> None:
        text = strip_ansi(raw.decode("utf-8", "replace"))
        if text.strip():
            line_last[0] = text
            if self.tracker is not None:
                self.tracker.feed(text)

    def run(self) -> None:
        fd = self.pipe.fileno()
        pending = b""
        line_last = [None]
        try:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except InterruptedError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                self.console.write(self.which, chunk)
                pending += chunk
                while True:
                    idx_n, idx_r = pending.find(b"\n"), pending.find(b"\r")
                    cands = [i for i in (idx_n, idx_r) if i >= 0]
                    if not cands:
                        break
                    idx = min(cands)
                    seg, sep, pending = pending[:idx], pending[idx : idx + 1], pending[idx + 1 :]
                    self._segment(seg, line_last)
                    if sep == b"\n":
                        if line_last[0] is not None:
                            self.tail.add(line_last[0])
                        line_last = [None]
                if len(pending) > MAX_PENDING_SEGMENT_BYTES:
                    self._segment(pending, line_last)
                    pending = b""
        except Exception:  # noqa: BLE001 - keep going: output must never stall the child
            pass
        finally:
            try:
                if pending:
                    self._segment(pending, line_last)
                if line_last[0] is not None:
                    self.tail.add(line_last[0])
            except Exception:  # noqa: BLE001
                pass
            try:
                self.pipe.close()
            except OSError:
                pass


class Launcher:
    def __init__(self, argv: list, env=None, console: Console | None = None):
        self.argv = list(argv)
        self.env = dict(os.environ if env is None else env)
        self.console = console or Console()
        self.tail = Tail()
        self.cfg = Config(self.env, log=self.log)
        self.pending_signals: collections.deque = collections.deque()
        self.received_signal = None
        self.child = None
        self.tracker = ProgressTracker() if self.cfg.is_train else None
        self.reporter = None
        self.resume = {"checkpoint": None, "step": None, "skipped": []}
        self.shutdown = None

    # -- output ----------------------------------------------------------
    def log(self, message: str, tail: bool = True) -> None:
        text = f"{LOG_PREFIX} {message}"
        self.console.write("stderr", (text + "\n").encode("utf-8", "replace"))
        if tail:
            self.tail.add(text)

    def emit(self, tag: str, obj) -> None:
        """Machine-readable single line on stdout."""
        self.console.write("stdout", f"{tag} {json.dumps(obj)}\n".encode("utf-8", "replace"))

    # -- signals -----------------------------------------------------------
    def _on_signal(self, signum, _frame) -> None:
        self.pending_signals.append(signum)

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, self._on_signal)
            except (ValueError, OSError):
                pass

    def _signal_group(self, sig: int) -> None:
        if self.child is None or self.child.poll() is not None:
            return
        try:
            os.killpg(self.child.pid, sig)
        except (ProcessLookupError, PermissionError, OSError):
            try:
                self.child.send_signal(sig)
            except (ProcessLookupError, OSError):
                pass

    # -- model cache -------------------------------------------------------
    def prefetch_model(self) -> bool:
        """Downloads the base model into HF_HOME (the shared cache claim) before `axolotl preprocess`.

        Axolotl's own pre-download in preprocess loads the model on the meta device, which fails under
        transformers 5 ("Skipping model pre-download"), so every training node would download the model itself.
        Best effort: a failure is logged and preprocessing goes on. Returns False only when a signal arrived.
        """
        repo, revision = self.cfg.prefetch_model, self.cfg.prefetch_revision
        if _truthy(self.env.get("HF_HUB_OFFLINE")) or os.path.isdir(repo):
            return True
        self.log(f"downloading {repo}{'@' + revision if revision else ''} into {self.env.get('HF_HOME') or 'the Hugging Face cache'}")
        started = time.monotonic()
        try:
            proc = subprocess.Popen([sys.executable, "-c", PREFETCH_CODE, repo, revision or ""], env=self.env, start_new_session=True)
        except OSError as exc:
            self.log(f"cannot start the model download ({exc}); preprocessing without it")
            return True
        while proc.poll() is None:
            if self.pending_signals:
                kill_pids([proc.pid])
                proc.wait()
                self.log(f"{_signal_name(self.pending_signals[0])} received while downloading {repo}; stopped")
                return False
            time.sleep(0.2)
        took = time.monotonic() - started
        if proc.returncode == 0:
            self.log(f"{repo} is in the cache ({took:.0f}s)")
        else:
            self.log(f"could not download {repo} (exit {proc.returncode}, {took:.0f}s); each training node will download it")
        return True

    # -- main ------------------------------------------------------------
    def parse_command(self) -> list:
        argv = self.argv
        if argv and argv[0] == "--":
            argv = argv[1:]
        return argv

    def run(self) -> int:
        cmd = self.parse_command()
        if not cmd:
            self.log("usage: launcher.py -- <command...>")
            return self.finish(EXIT_USAGE, None, reason="Failed", message="no command given")
        self.install_signal_handlers()

        # 1. Resume decision (train only).
        if self.cfg.is_train:
            try:
                self.resume = resolve_resume(self.cfg, self.log, should_abort=lambda: bool(self.pending_signals))
            except ResumeAborted:
                sig = self.pending_signals[0]
                self.received_signal = sig
                self.log(f"{_signal_name(sig)} received while waiting for the resume decision; not starting")
                return self.finish(128 + sig, None, reason="Signalled", message="signalled before start")
            except ResumeTimeout as exc:
                self.log(f"FINETUNE_RESUME_TIMEOUT: {exc}")
                return self.finish(EXIT_RESUME_TIMEOUT, None, reason="Failed", message=str(exc))
            except Exception as exc:  # noqa: BLE001
                self.log(f"resume selection failed unexpectedly ({type(exc).__name__}: {exc}); starting without resume")
                self.resume = {"checkpoint": None, "step": None, "skipped": []}
            for item in self.resume.get("skipped", []):
                self.log(f"skipping partial checkpoint {item.get('path')}: {item.get('reason')}")
            self.emit(
                "FINETUNE_RESUME",
                {
                    "checkpoint": self.resume.get("checkpoint"),
                    "step": self.resume.get("step"),
                    "skipped": self.resume.get("skipped", []),
                },
            )
            if self.resume.get("checkpoint"):
                cmd, note = insert_resume_arg(cmd, self.resume["checkpoint"])
                if note:
                    self.log(note)

        # 1b. Fill the shared model cache (preprocess only).
        if self.cfg.stage == "preprocess" and self.cfg.prefetch_model:
            if not self.prefetch_model():
                sig = self.pending_signals[0]
                self.received_signal = sig
                return self.finish(128 + sig, None, reason="Signalled", message="signalled while downloading the base model")

        # 1c. The smoke test runs the command once per prompt.
        if self.cfg.stage == "smoke":
            return self.run_smoke(cmd)

        # 2. Start the child in its own process group.
        become_child_subreaper()
        child_env = dict(self.env)
        child_env.setdefault("PYTHONUNBUFFERED", "1")  # logs reach us (and the tail) before a crash
        try:
            self.child = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=child_env,
                start_new_session=True,
                bufsize=0,
            )
        except (OSError, ValueError) as exc:
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            self.log(f"cannot execute {cmd[0]!r}: {exc}")
            return self.finish(code, None, reason="Failed", message=f"cannot execute {cmd[0]}")
        pumps = [
            StreamPump(self.child.stdout, "stdout", self.console, self.tail, self.tracker),
            StreamPump(self.child.stderr, "stderr", self.console, self.tail, self.tracker),
        ]
        for pump in pumps:
            pump.start()
        if self.cfg.is_train and self.cfg.node_rank == 0 and self.cfg.progress_url:
            self.reporter = ProgressReporter(
                self.tracker,
                self.cfg,
                self.log,
                {
                    "stage": self.cfg.stage,
                    "attempt": self.cfg.attempt,
                    "nodeRank": self.cfg.node_rank,
                    "resumeFrom": self.resume.get("checkpoint"),
                    "resumeStep": self.resume.get("step"),
                },
                scan_dir=self.cfg.output_dir,
            )
            self.reporter.start()

        # 3. Supervise.
        try:
            rc = self.supervise()
        except Exception as exc:  # noqa: BLE001 - fall back to a plain wait
            self.log(f"supervision error ({type(exc).__name__}: {exc}); waiting for the child")
            rc = self.child.wait()
        self._cleanup_trigger()
        self._drain(pumps)
        return self.complete(rc)

    def _remaining_grace(self):
        """Seconds left before the kubelet's SIGKILL, or None when no SIGTERM arrived."""
        if self.shutdown is None:
            return None
        return self.shutdown["t0"] + self.cfg.grace - time.monotonic()

    def _budget(self, normal: float, reserve: float) -> float:
        remaining = self._remaining_grace()
        if remaining is None:
            return normal
        return max(0.1, min(normal, remaining - reserve))

    def _drain(self, pumps) -> None:
        """Wait for the output pumps; orphans holding our pipes are killed."""
        deadline = time.monotonic() + self._budget(2.0, 1.5)  # EOF is immediate unless orphans hold the pipes
        for pump in pumps:
            pump.join(max(0.0, deadline - time.monotonic()))
        if any(p.is_alive() for p in pumps):
            orphans = descendants(os.getpid())
            self.log(f"trainer exited but {len(orphans)} orphaned process(es) still hold its output; killing them")
            kill_pids(orphans)
            try:  # the child's process group may outlive it; a pgid in use cannot be recycled
                os.killpg(self.child.pid, signal.SIGKILL)
            except OSError:
                pass
            for pump in pumps:
                pump.join(1.0)

    # -- supervision -------------------------------------------------------
    def supervise(self) -> int:
        last_scan = 0.0
        last_reap = time.monotonic()
        while True:
            rc = self.child.poll()
            if rc is not None:
                return rc
            while self.pending_signals:
                self.handle_signal(self.pending_signals.popleft())
            sd = self.shutdown
            if sd is not None:
                now = time.monotonic()
                if sd["phase"] == "saving":
                    trig = sd.get("trigger")
                    if trig and not sd["triggerConsumed"] and not os.path.exists(trig):
                        sd["triggerConsumed"] = True
                        self.log("Axolotl picked up the checkpoint trigger; waiting for the checkpoint to complete")
                    if now - last_scan >= 0.5:
                        last_scan = now
                        found = select_checkpoint(self.cfg.output_dir, min_step_exclusive=sd["baselineStep"])
                        if found["checkpoint"]:
                            sd["savedCheckpoint"] = found["checkpoint"]
                            self.log(
                                f"checkpoint {found['checkpoint']} is complete after "
                                f"{now - sd['t0']:.1f}s; forwarding SIGTERM to the trainer"
                            )
                            self._forward_term()
                    if sd["phase"] == "saving" and now >= sd["saveDeadline"]:
                        self.log(
                            f"no new complete checkpoint within {sd['saveDeadline'] - sd['t0']:.0f}s; "
                            "forwarding SIGTERM to the trainer"
                        )
                        self._forward_term()
                if sd["phase"] == "terminating" and not sd["killed"] and now >= sd["killDeadline"]:
                    sd["killed"] = True
                    self.log(
                        f"trainer still running {now - sd['t0']:.0f}s after {sd['signal']} "
                        "(grace period almost over); sending SIGKILL to it and all its descendants"
                    )
                    self._kill_tree()
            now = time.monotonic()
            if now - last_reap >= 1.0:
                last_reap = now
                self._reap_orphans()
            time.sleep(0.05)

    def _kill_tree(self) -> None:
        """SIGKILL the child, its process group and every descendant (torchrun workers live in
        their own sessions, so killpg on torchrun alone would orphan them)."""
        if self.child is None or self.child.poll() is not None:
            return
        tree = descendants(self.child.pid)
        self._signal_group(signal.SIGKILL)
        kill_pids(tree)

    def _reap_orphans(self) -> None:
        """As PID 1 / subreaper we inherit orphans: reap their zombies, never our own child."""
        if not hasattr(os, "waitid"):
            return
        for _ in range(64):
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except (ChildProcessError, OSError):
                return
            if info is None or (self.child is not None and info.si_pid == self.child.pid):
                return
            try:
                os.waitpid(info.si_pid, os.WNOHANG)
            except (ChildProcessError, OSError):
                return

    def _forward_term(self) -> None:
        sd = self.shutdown
        sd["phase"] = "terminating"
        sd["forwardedAfter"] = round(time.monotonic() - sd["t0"], 3)
        self._signal_group(signal.SIGTERM)

    def handle_signal(self, sig: int) -> None:
        name = _signal_name(sig)
        if self.received_signal is None:
            self.received_signal = sig
        if sig == signal.SIGINT:
            self.log("SIGINT received: forwarding SIGINT to the trainer's process group")
            self._signal_group(signal.SIGINT)
            return
        now = time.monotonic()
        if self.shutdown is not None:
            if self.shutdown["phase"] == "saving":
                self.log(f"second {name} received: forwarding SIGTERM now")
                self._forward_term()
            return
        save_window, kill_at = self.cfg.shutdown_timing()
        sd = {
            "signal": name,
            "t0": now,
            "phase": "terminating",
            "trigger": None,
            "triggerCreated": False,
            "triggerConsumed": False,
            "baselineStep": None,
            "savedCheckpoint": None,
            "forwardedAfter": None,
            "killed": False,
            "saveDeadline": now + save_window,
            "killDeadline": now + kill_at,
        }
        self.shutdown = sd
        if self.cfg.dynamic_checkpoint and self.cfg.is_train and self.cfg.output_dir and save_window > 0:
            # Every node may create the trigger: output_dir is shared and Axolotl's global rank 0
            # (wherever it runs) reads it; creating it is idempotent (O_EXCL tells us if it was ours).
            sd["trigger"] = self.cfg.trigger_path
            newest = select_checkpoint(self.cfg.output_dir)
            sd["baselineStep"] = newest["step"]
            try:
                fd = os.open(sd["trigger"], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                os.close(fd)
                sd["triggerCreated"] = True
                action = f"created {sd['trigger']}"
            except FileExistsError:
                action = f"{sd['trigger']} already exists"
            except OSError as exc:
                action = None
                self.log(f"{name} received: cannot create checkpoint trigger {sd['trigger']}: {exc}")
            if action is not None:
                sd["phase"] = "saving"
                self.log(
                    f"{name} received: {action}; giving Axolotl up to {save_window:.0f}s to save a checkpoint "
                    f"(newest complete: {newest['checkpoint']}), then forwarding SIGTERM"
                )
                return
        self.log(f"{name} received: forwarding SIGTERM to the trainer's process group (SIGKILL after {kill_at:.0f}s)")
        self._forward_term()

    def _cleanup_trigger(self) -> None:
        sd = self.shutdown
        if sd and sd.get("triggerCreated") and sd.get("trigger"):
            try:
                if os.path.exists(sd["trigger"]):
                    os.unlink(sd["trigger"])
                    self.log(f"removed unconsumed checkpoint trigger {sd['trigger']}")
            except OSError:
                pass

    # -- completion ----------------------------------------------------------
    def complete(self, rc: int) -> int:
        code = 128 - rc if rc < 0 else rc
        signalled = self.received_signal is not None
        final_model = None
        final_path = None
        message = None
        worker = worker_failure(self.tail.lines()) if rc > 0 else None
        if rc < 0:
            reason = "Signalled"
            message = f"trainer killed by {_signal_name(-rc)}"
        elif rc != 0:
            reason = "Signalled" if signalled else "Failed"
            message = f"command exited with code {rc}"
            if worker and worker["signal"]:
                rank = f" (rank {worker['rank']})" if worker["rank"] is not None else ""
                message = f"a training process{rank} was killed by {worker['signal']}; torchrun exited {rc}"
        else:
            reason = "Completed"
            if self.cfg.is_train and self.cfg.require_final_model and self.cfg.node_rank == 0:
                found, desc = find_final_model(self.cfg.output_dir)
                tr = self.tracker
                interrupted = signalled or (tr.saw_trainer_start and not tr.saw_training_completed)
                if found and (tr.saw_model_saved or not interrupted):
                    final_model, final_path = True, desc
                else:
                    final_model = False
                    if not found:
                        why = desc
                    else:
                        cause = "a signal was received" if signalled else "no 'Training completed!' log line"
                        why = (
                            f"{cause} and Axolotl never logged 'Model successfully saved' "
                            "(weights in output_dir may come from its SIGINT handler)"
                        )
                    message = f"exited 0 without a final model: interrupted? ({why})"
                    self.log(message)
                    code = EXIT_NO_FINAL_MODEL
                    reason = "Signalled" if signalled else "NoFinalModel"
        if self.shutdown is not None:
            sd = self.shutdown
            self.emit(
                "FINETUNE_SHUTDOWN",
                {
                    "signal": sd["signal"],
                    "trigger": sd["trigger"],
                    "triggerCreated": sd["triggerCreated"],
                    "triggerConsumed": sd["triggerConsumed"],
                    "savedCheckpoint": sd["savedCheckpoint"],
                    "forwardedAfterSeconds": sd["forwardedAfter"],
                    "killed": sd["killed"],
                },
            )
        return self.finish(code, rc, reason=reason, message=message, final_model=final_model, final_path=final_path, worker=worker)

    def run_smoke(self, cmd: list) -> int:
        """`axolotl inference` once per prompt (it reads a prompt until end of input), the prompt on stdin.

        The output passes through to the pod log; the answers go to FINETUNE_SMOKE_ANSWERS_FILE in full and, truncated,
        into the termination message. A failed run ends the stage with that run's exit code (the tail explains it).
        """
        prompts = self.cfg.smoke_prompts or ["Hello."]
        eos, special = read_tokenizer_tokens(self.cfg.output_dir) if self.cfg.output_dir else (None, [])
        answers = []
        for i, prompt in enumerate(prompts):
            if self.pending_signals:
                sig = self.pending_signals[0]
                self.received_signal = sig
                return self.finish(128 + sig, None, reason="Signalled", message="signalled during the smoke test")
            self.log(f"smoke test: prompt {i + 1} of {len(prompts)}")
            child_env = dict(self.env)
            child_env.setdefault("PYTHONUNBUFFERED", "1")
            try:
                self.child = subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env, start_new_session=True
                )
                data = prompt.encode("utf-8") + b"\n"
                while True:
                    try:
                        # The input goes with the first call only; a retried communicate() loses no output.
                        out, err = self.child.communicate(data, timeout=1)
                        break
                    except subprocess.TimeoutExpired:
                        data = None
                        if self.pending_signals and self.child.poll() is None:
                            # Its own session: a SIGTERM to the pod reaches only us; pass it on, then wait for the end.
                            self.child.terminate()
            except (OSError, ValueError) as exc:
                code = 127 if isinstance(exc, FileNotFoundError) else 126
                self.log(f"cannot execute {cmd[0]!r}: {exc}")
                return self.finish(code, None, reason="Failed", message=f"cannot execute {cmd[0]}")
            for which, data in (("stdout", out), ("stderr", err)):
                self.console.write(which, data)
                for line in strip_ansi(data.decode("utf-8", "replace")).splitlines():
                    self.tail.add(line)
            rc = self.child.returncode
            if self.pending_signals:
                self.received_signal = self.pending_signals[0]
            if rc != 0:
                return self.complete(rc)
            parsed = parse_inference_output(out.decode("utf-8", "replace"), prompt, eos, special)
            answers.append({"prompt": prompt, **parsed})
        path = self.cfg.smoke_answers_file
        if path:
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                write_json_atomic(path, {"eosToken": eos, "answers": answers})
            except OSError as exc:
                self.log(f"could not write the smoke-test answers to {path}: {exc}")
                path = None
        summary = {
            "answers": [
                {"prompt": _cut(a["prompt"], SMOKE_PROMPT_CHARS), "answer": _cut(a["answer"], SMOKE_ANSWER_CHARS), "stopped": a["stopped"], "chars": len(a["answer"])}
                for a in answers
            ],
            "file": path,
        }
        # Every answer in full on one stdout line: the operator copies it from the pod log into a ConfigMap
        # (the termination message holds 4 KiB, the claim file is out of its reach).
        self.emit("FINETUNE_SMOKE_ANSWERS", {"eosToken": eos, "answers": answers})
        return self.finish(0, 0, reason="Completed", extra={"smoke": summary})

    def finish(self, code, child_rc, reason, message=None, final_model=None, final_path=None, worker=None, extra=None) -> int:
        fields = {
            "stage": self.cfg.stage or None,
            "exitCode": code,
            "attempt": self.cfg.attempt,
            "resumeFrom": self.resume.get("checkpoint"),
            "resumeStep": self.resume.get("step"),
            "finalModel": final_model,
            "reason": reason,
            "message": message,
            "childExitCode": child_rc,
            "signal": _signal_name(self.received_signal) if self.received_signal else None,
            "nodeRank": self.cfg.node_rank,
        }
        if final_path:
            fields["finalModelPath"] = final_path
        if worker:
            fields["workerSignal"] = worker["signal"]
            fields["workerExitCode"] = worker["exitCode"]
        if extra:
            fields.update(extra)
        # The termination message first: the final progress POST may be slow and the
        # kubelet's SIGKILL may be close.
        try:
            data = build_termination_message(fields, self.tail.entries())
        except Exception:  # noqa: BLE001
            data = json.dumps({"stage": fields["stage"], "exitCode": code, "reason": reason, "tail": []}).encode()
        write_termination_log(self.cfg.termination_log, data, lambda m: self.log(m, tail=False))
        if self.reporter is not None:
            try:
                if self.tracker is not None:
                    with self.tracker._lock:  # noqa: SLF001 - final phase for the last report
                        self.tracker._state["phase"] = {"Completed": "completed", "Signalled": "interrupted"}.get(
                            reason, "failed"
                        )
                        self.tracker._bump()
                self.reporter.finish(
                    {"exitCode": code, "reason": reason, "finalModel": final_model},
                    timeout=self._budget(2 * PROGRESS_POST_TIMEOUT_SECONDS + 1, 0.3),
                )
            except Exception:  # noqa: BLE001
                pass
        return code


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        launcher = Launcher(argv)
    except Exception as exc:  # noqa: BLE001
        sys.stderr.write(f"{LOG_PREFIX} failed to initialise: {exc}\n")
        return EXIT_LAUNCHER_ERROR
    try:
        return launcher.run()
    except Exception as exc:  # noqa: BLE001 - last resort: keep the child's result if we have it
        launcher.log(f"internal error: {type(exc).__name__}: {exc}")
        sys.stderr.write(traceback.format_exc())
        child = launcher.child
        rc = None
        if child is not None:
            try:
                rc = child.wait()
            except Exception:  # noqa: BLE001
                rc = None
        code = EXIT_LAUNCHER_ERROR if rc is None else (128 - rc if rc < 0 else rc)
        try:
            return launcher.finish(code, rc, reason="Failed" if code else "Completed", message="launcher internal error")
        except Exception:  # noqa: BLE001
            return code


if __name__ == "__main__":
    sys.exit(main())

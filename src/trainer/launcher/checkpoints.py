"""Checkpoint inspection: which checkpoint-N directories are complete, and whether a final model was saved.

The checkpoint layouts this relies on are listed in launcher.py's docstring.
"""

from __future__ import annotations

import json
import os
import re

MAX_SKIPPED_REPORTED = 20


def _nonempty_file(path: str) -> bool:
    try:
        return os.path.isfile(path) and os.path.getsize(path) > 0
    except OSError:
        return False


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

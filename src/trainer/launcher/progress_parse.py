"""Training progress read from Axolotl's output (the operator's src/progress/log-parse.ts reads the same lines)."""

from __future__ import annotations

import ast
import json
import math
import os
import re
import threading

from checkpoints import CHECKPOINT_DIR_RE

MAX_CHECKPOINTS_REPORTED = 20


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

"""The termination message: a bounded tail of the output and the JSON summary (<= 4096 bytes) the operator reads."""

from __future__ import annotations

import collections
import json
import re
import threading

from ansi import strip_ansi
from processes import signal_name

TERMINATION_LOG_MAX_BYTES = 4096
TAIL_MAX_LINES = 40
TAIL_MAX_PINNED = 10
TAIL_LINE_MAX_CHARS = 400


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
        found["signal"] = signal_name(-found["exitCode"])
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

"""The trainer's output: passed through to the pod log unchanged, and fed to the tail and the progress tracker."""

from __future__ import annotations

import os
import sys
import threading

from ansi import strip_ansi
from progress_parse import ProgressTracker
from termination import Tail

MAX_PENDING_SEGMENT_BYTES = 65536


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

"""Training progress POSTed to the operator (node rank 0 of the train stage, when a progress URL is set)."""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.request

from checkpoints import inspect_checkpoint, list_checkpoints
from json_records import utc_now_iso
from progress_parse import ProgressTracker

PROGRESS_POST_TIMEOUT_SECONDS = 2.0
PROGRESS_FAILURE_LOG_INTERVAL_SECONDS = 60.0
CHECKPOINT_SCAN_INTERVAL_SECONDS = 30.0


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
        payload["timestamp"] = utc_now_iso()
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

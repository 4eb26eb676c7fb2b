"""The environment contract: what the operator sets on the trainer container (launcher.py's docstring lists it), parsed once."""

from __future__ import annotations

import json
import math
import os

DEFAULT_TERMINATION_LOG = "/dev/termination-log"
DEFAULT_TRIGGER_FILENAME = "axolotl_checkpoint.save"
DEFAULT_GRACE_SECONDS = 30
DEFAULT_SAFETY_SECONDS = 10
MIN_SAVE_WINDOW_SECONDS = 3
KILL_BEFORE_DEADLINE_SECONDS = 2
DEFAULT_RESUME_WAIT_SECONDS = 600
DEFAULT_RESUME_MISMATCH_GRACE_SECONDS = 60
DEFAULT_PROGRESS_INTERVAL_SECONDS = 5.0


STAGES = ("preprocess", "train", "smoke", "merge")


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


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
        self.dynamic_checkpoint = truthy(env.get("FINETUNE_DYNAMIC_CHECKPOINT"))
        # Axolotl's DynamicCheckpointCallback watches Path(output_dir) / trigger_file_path, so the same join here
        # (an absolute trigger_file_path stays absolute, as with pathlib).
        self.trigger_filename = (env.get("FINETUNE_DYNAMIC_CHECKPOINT_TRIGGER") or "").strip() or DEFAULT_TRIGGER_FILENAME
        self.grace = number("FINETUNE_TERMINATION_GRACE_SECONDS", DEFAULT_GRACE_SECONDS)
        self.safety = number("FINETUNE_SIGTERM_SAFETY_SECONDS", DEFAULT_SAFETY_SECONDS)
        self.require_final_model = truthy(env.get("FINETUNE_REQUIRE_FINAL_MODEL"))
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

"""The preprocess stage fills the shared model cache before `axolotl preprocess` runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from env_config import truthy
from processes import kill_pids, signal_name

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


def prefetch_model(cfg, env: dict, log, pending_signals) -> bool:
    """Downloads the base model into HF_HOME (the shared cache claim) before `axolotl preprocess`.

    Axolotl's own pre-download in preprocess loads the model on the meta device, which fails under
    transformers 5 ("Skipping model pre-download"), so every training node would download the model itself.
    Best effort: a failure is logged and preprocessing goes on. Returns False only when a signal arrived.
    """
    repo, revision = cfg.prefetch_model, cfg.prefetch_revision
    if truthy(env.get("HF_HUB_OFFLINE")) or os.path.isdir(repo):
        return True
    log(f"downloading {repo}{'@' + revision if revision else ''} into {env.get('HF_HOME') or 'the Hugging Face cache'}")
    started = time.monotonic()
    try:
        proc = subprocess.Popen([sys.executable, "-c", PREFETCH_CODE, repo, revision or ""], env=env, start_new_session=True)
    except OSError as exc:
        log(f"cannot start the model download ({exc}); preprocessing without it")
        return True
    while proc.poll() is None:
        if pending_signals:
            kill_pids([proc.pid])
            proc.wait()
            log(f"{signal_name(pending_signals[0])} received while downloading {repo}; stopped")
            return False
        time.sleep(0.2)
    took = time.monotonic() - started
    if proc.returncode == 0:
        log(f"{repo} is in the cache ({took:.0f}s)")
    else:
        log(f"could not download {repo} (exit {proc.returncode}, {took:.0f}s); each training node will download it")
    return True

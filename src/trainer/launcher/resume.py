"""The resume decision, shared across nodes: node rank 0 picks the newest complete checkpoint and publishes it."""

from __future__ import annotations

import json
import os
import socket
import time

from checkpoints import select_checkpoint
from json_records import utc_now_iso, write_json_atomic


class ResumeAborted(Exception):
    """A terminating signal arrived while waiting for the resume decision."""


class ResumeTimeout(Exception):
    pass


def decision_path(output_dir: str, attempt: int) -> str:
    return os.path.join(output_dir, ".finetune", f"resume-attempt-{attempt}.json")


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
            "decidedAt": utc_now_iso(),
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

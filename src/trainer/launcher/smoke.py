"""The smoke-test stage: `axolotl inference` once per prompt, and the answers read from its output."""

from __future__ import annotations

import json
import os
import re
import subprocess

from ansi import strip_ansi
from json_records import write_json_atomic

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


def run_smoke(launcher, cmd: list) -> int:
    """`axolotl inference` once per prompt (it reads a prompt until end of input), the prompt on stdin.

    The output passes through to the pod log; the answers go to FINETUNE_SMOKE_ANSWERS_FILE in full and, truncated,
    into the termination message. A failed run ends the stage with that run's exit code (the tail explains it).
    ``launcher`` is the stage's supervisor.Launcher: each run is its child, so signals, the tail and the termination
    message work as for any other stage.
    """
    prompts = launcher.cfg.smoke_prompts or ["Hello."]
    eos, special = read_tokenizer_tokens(launcher.cfg.output_dir) if launcher.cfg.output_dir else (None, [])
    answers = []
    for i, prompt in enumerate(prompts):
        if launcher.pending_signals:
            sig = launcher.pending_signals[0]
            launcher.received_signal = sig
            return launcher.finish(128 + sig, None, reason="Signalled", message="signalled during the smoke test")
        launcher.log(f"smoke test: prompt {i + 1} of {len(prompts)}")
        child_env = dict(launcher.env)
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            launcher.child = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env, start_new_session=True
            )
            data = prompt.encode("utf-8") + b"\n"
            while True:
                try:
                    # The input goes with the first call only; a retried communicate() loses no output.
                    out, err = launcher.child.communicate(data, timeout=1)
                    break
                except subprocess.TimeoutExpired:
                    data = None
                    if launcher.pending_signals and launcher.child.poll() is None:
                        # Its own session: a SIGTERM to the pod reaches only us; pass it on, then wait for the end.
                        launcher.child.terminate()
        except (OSError, ValueError) as exc:
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            launcher.log(f"cannot execute {cmd[0]!r}: {exc}")
            return launcher.finish(code, None, reason="Failed", message=f"cannot execute {cmd[0]}")
        for which, data in (("stdout", out), ("stderr", err)):
            launcher.console.write(which, data)
            for line in strip_ansi(data.decode("utf-8", "replace")).splitlines():
                launcher.tail.add(line)
        rc = launcher.child.returncode
        if launcher.pending_signals:
            launcher.received_signal = launcher.pending_signals[0]
        if rc != 0:
            return launcher.complete(rc)
        parsed = parse_inference_output(out.decode("utf-8", "replace"), prompt, eos, special)
        answers.append({"prompt": prompt, **parsed})
    path = launcher.cfg.smoke_answers_file
    if path:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_json_atomic(path, {"eosToken": eos, "answers": answers})
        except OSError as exc:
            launcher.log(f"could not write the smoke-test answers to {path}: {exc}")
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
    launcher.emit("FINETUNE_SMOKE_ANSWERS", {"eosToken": eos, "answers": answers})
    return launcher.finish(0, 0, reason="Completed", extra={"smoke": summary})

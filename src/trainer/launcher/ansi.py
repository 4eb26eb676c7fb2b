"""ANSI escape sequences, stripped from the trainer's output before anything reads it."""

from __future__ import annotations

import re

_ANSI_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences (colours, cursor movement, OSC titles)."""
    if "\x1b" not in text:
        return text
    return _ANSI_RE.sub("", text)

"""Process trees: naming signals, finding and killing the trainer's descendants, adopting orphans."""

from __future__ import annotations

import os
import signal


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except (ValueError, AttributeError):
        return f"SIG{signum}"


def _children_map() -> dict:
    """ppid -> [pid] from /proc (Linux); empty when /proc is unavailable."""
    children: dict = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return children
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                data = fh.read()
            ppid = int(data.rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    return children


def descendants(pid: int) -> list:
    """All live descendants of ``pid`` (any session/process group)."""
    cmap = _children_map()
    found, stack = [], [pid]
    while stack:
        for child in cmap.get(stack.pop(), []):
            if child not in found and child != pid:
                found.append(child)
                stack.append(child)
    return found


def kill_pids(pids, sig=signal.SIGKILL) -> None:
    """Signal each pid and the process group it leads (torchrun workers are session leaders)."""
    for pid in pids:
        for fn in (os.killpg, os.kill):
            try:
                fn(pid, sig)
            except (ProcessLookupError, PermissionError, OSError):
                pass


def become_child_subreaper() -> bool:
    """Orphaned grandchildren (e.g. torchrun workers) get re-parented to us, so we can find and reap them."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except Exception:  # noqa: BLE001 - best effort (non-Linux, no libc)
        return False

"""Child process supervision: one stage's command run, signalled, waited for and summarised."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import time

from checkpoints import find_final_model, select_checkpoint
from child_output import Console, StreamPump
from env_config import Config
from prefetch import prefetch_model
from processes import become_child_subreaper, descendants, kill_pids, signal_name
from progress_parse import ProgressTracker
from progress_report import PROGRESS_POST_TIMEOUT_SECONDS, ProgressReporter
from resume import ResumeAborted, ResumeTimeout, insert_resume_arg, resolve_resume
from smoke import run_smoke
from termination import Tail, build_termination_message, worker_failure, write_termination_log

LOG_PREFIX = "[finetune-launcher]"

# The launcher's own exit codes (otherwise the command's): launcher.py's docstring says when each is used.
EXIT_USAGE = 2
EXIT_NO_FINAL_MODEL = 3
EXIT_RESUME_TIMEOUT = 4
EXIT_LAUNCHER_ERROR = 5


class Launcher:
    """One stage's run: resume decision, the command as a child process group, SIGTERM handling, the summary.

    prefetch.prefetch_model and smoke.run_smoke are stage steps it calls; run_smoke drives this object (its child,
    pending signals, tail, finish and complete) for each prompt.
    """

    def __init__(self, argv: list, env=None, console: Console | None = None):
        self.argv = list(argv)
        self.env = dict(os.environ if env is None else env)
        self.console = console or Console()
        self.tail = Tail()
        self.cfg = Config(self.env, log=self.log)
        self.pending_signals: collections.deque = collections.deque()
        self.received_signal = None
        self.child = None
        self.tracker = ProgressTracker() if self.cfg.is_train else None
        self.reporter = None
        self.resume = {"checkpoint": None, "step": None, "skipped": []}
        self.shutdown = None

    # -- output ----------------------------------------------------------
    def log(self, message: str, tail: bool = True) -> None:
        text = f"{LOG_PREFIX} {message}"
        self.console.write("stderr", (text + "\n").encode("utf-8", "replace"))
        if tail:
            self.tail.add(text)

    def emit(self, tag: str, obj) -> None:
        """Machine-readable single line on stdout."""
        self.console.write("stdout", f"{tag} {json.dumps(obj)}\n".encode("utf-8", "replace"))

    # -- signals -----------------------------------------------------------
    def _on_signal(self, signum, _frame) -> None:
        self.pending_signals.append(signum)

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, self._on_signal)
            except (ValueError, OSError):
                pass

    def _signal_group(self, sig: int) -> None:
        if self.child is None or self.child.poll() is not None:
            return
        try:
            os.killpg(self.child.pid, sig)
        except (ProcessLookupError, PermissionError, OSError):
            try:
                self.child.send_signal(sig)
            except (ProcessLookupError, OSError):
                pass


    # -- main ------------------------------------------------------------
    def parse_command(self) -> list:
        argv = self.argv
        if argv and argv[0] == "--":
            argv = argv[1:]
        return argv

    def run(self) -> int:
        cmd = self.parse_command()
        if not cmd:
            self.log("usage: launcher.py -- <command...>")
            return self.finish(EXIT_USAGE, None, reason="Failed", message="no command given")
        self.install_signal_handlers()

        # 1. Resume decision (train only).
        if self.cfg.is_train:
            try:
                self.resume = resolve_resume(self.cfg, self.log, should_abort=lambda: bool(self.pending_signals))
            except ResumeAborted:
                sig = self.pending_signals[0]
                self.received_signal = sig
                self.log(f"{signal_name(sig)} received while waiting for the resume decision; not starting")
                return self.finish(128 + sig, None, reason="Signalled", message="signalled before start")
            except ResumeTimeout as exc:
                self.log(f"FINETUNE_RESUME_TIMEOUT: {exc}")
                return self.finish(EXIT_RESUME_TIMEOUT, None, reason="Failed", message=str(exc))
            except Exception as exc:  # noqa: BLE001
                self.log(f"resume selection failed unexpectedly ({type(exc).__name__}: {exc}); starting without resume")
                self.resume = {"checkpoint": None, "step": None, "skipped": []}
            for item in self.resume.get("skipped", []):
                self.log(f"skipping partial checkpoint {item.get('path')}: {item.get('reason')}")
            self.emit(
                "FINETUNE_RESUME",
                {
                    "checkpoint": self.resume.get("checkpoint"),
                    "step": self.resume.get("step"),
                    "skipped": self.resume.get("skipped", []),
                },
            )
            if self.resume.get("checkpoint"):
                cmd, note = insert_resume_arg(cmd, self.resume["checkpoint"])
                if note:
                    self.log(note)

        # 1b. Fill the shared model cache (preprocess only).
        if self.cfg.stage == "preprocess" and self.cfg.prefetch_model:
            if not prefetch_model(self.cfg, self.env, self.log, self.pending_signals):
                sig = self.pending_signals[0]
                self.received_signal = sig
                return self.finish(128 + sig, None, reason="Signalled", message="signalled while downloading the base model")

        # 1c. The smoke test runs the command once per prompt.
        if self.cfg.stage == "smoke":
            return run_smoke(self, cmd)

        # 2. Start the child in its own process group.
        become_child_subreaper()
        child_env = dict(self.env)
        child_env.setdefault("PYTHONUNBUFFERED", "1")  # logs reach us (and the tail) before a crash
        try:
            self.child = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=child_env,
                start_new_session=True,
                bufsize=0,
            )
        except (OSError, ValueError) as exc:
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            self.log(f"cannot execute {cmd[0]!r}: {exc}")
            return self.finish(code, None, reason="Failed", message=f"cannot execute {cmd[0]}")
        pumps = [
            StreamPump(self.child.stdout, "stdout", self.console, self.tail, self.tracker),
            StreamPump(self.child.stderr, "stderr", self.console, self.tail, self.tracker),
        ]
        for pump in pumps:
            pump.start()
        if self.cfg.is_train and self.cfg.node_rank == 0 and self.cfg.progress_url:
            self.reporter = ProgressReporter(
                self.tracker,
                self.cfg,
                self.log,
                {
                    "stage": self.cfg.stage,
                    "attempt": self.cfg.attempt,
                    "nodeRank": self.cfg.node_rank,
                    "resumeFrom": self.resume.get("checkpoint"),
                    "resumeStep": self.resume.get("step"),
                },
                scan_dir=self.cfg.output_dir,
            )
            self.reporter.start()

        # 3. Supervise.
        try:
            rc = self.supervise()
        except Exception as exc:  # noqa: BLE001 - fall back to a plain wait
            self.log(f"supervision error ({type(exc).__name__}: {exc}); waiting for the child")
            rc = self.child.wait()
        self._cleanup_trigger()
        self._drain(pumps)
        return self.complete(rc)

    def _remaining_grace(self):
        """Seconds left before the kubelet's SIGKILL, or None when no SIGTERM arrived."""
        if self.shutdown is None:
            return None
        return self.shutdown["t0"] + self.cfg.grace - time.monotonic()

    def _budget(self, normal: float, reserve: float) -> float:
        remaining = self._remaining_grace()
        if remaining is None:
            return normal
        return max(0.1, min(normal, remaining - reserve))

    def _drain(self, pumps) -> None:
        """Wait for the output pumps; orphans holding our pipes are killed."""
        deadline = time.monotonic() + self._budget(2.0, 1.5)  # EOF is immediate unless orphans hold the pipes
        for pump in pumps:
            pump.join(max(0.0, deadline - time.monotonic()))
        if any(p.is_alive() for p in pumps):
            orphans = descendants(os.getpid())
            self.log(f"trainer exited but {len(orphans)} orphaned process(es) still hold its output; killing them")
            kill_pids(orphans)
            try:  # the child's process group may outlive it; a pgid in use cannot be recycled
                os.killpg(self.child.pid, signal.SIGKILL)
            except OSError:
                pass
            for pump in pumps:
                pump.join(1.0)

    # -- supervision -------------------------------------------------------
    def supervise(self) -> int:
        last_scan = 0.0
        last_reap = time.monotonic()
        while True:
            rc = self.child.poll()
            if rc is not None:
                return rc
            while self.pending_signals:
                self.handle_signal(self.pending_signals.popleft())
            sd = self.shutdown
            if sd is not None:
                now = time.monotonic()
                if sd["phase"] == "saving":
                    trig = sd.get("trigger")
                    if trig and not sd["triggerConsumed"] and not os.path.exists(trig):
                        sd["triggerConsumed"] = True
                        self.log("Axolotl picked up the checkpoint trigger; waiting for the checkpoint to complete")
                    if now - last_scan >= 0.5:
                        last_scan = now
                        found = select_checkpoint(self.cfg.output_dir, min_step_exclusive=sd["baselineStep"])
                        if found["checkpoint"]:
                            sd["savedCheckpoint"] = found["checkpoint"]
                            self.log(
                                f"checkpoint {found['checkpoint']} is complete after "
                                f"{now - sd['t0']:.1f}s; forwarding SIGTERM to the trainer"
                            )
                            self._forward_term()
                    if sd["phase"] == "saving" and now >= sd["saveDeadline"]:
                        self.log(
                            f"no new complete checkpoint within {sd['saveDeadline'] - sd['t0']:.0f}s; "
                            "forwarding SIGTERM to the trainer"
                        )
                        self._forward_term()
                if sd["phase"] == "terminating" and not sd["killed"] and now >= sd["killDeadline"]:
                    sd["killed"] = True
                    self.log(
                        f"trainer still running {now - sd['t0']:.0f}s after {sd['signal']} "
                        "(grace period almost over); sending SIGKILL to it and all its descendants"
                    )
                    self._kill_tree()
            now = time.monotonic()
            if now - last_reap >= 1.0:
                last_reap = now
                self._reap_orphans()
            time.sleep(0.05)

    def _kill_tree(self) -> None:
        """SIGKILL the child, its process group and every descendant (torchrun workers live in
        their own sessions, so killpg on torchrun alone would orphan them)."""
        if self.child is None or self.child.poll() is not None:
            return
        tree = descendants(self.child.pid)
        self._signal_group(signal.SIGKILL)
        kill_pids(tree)

    def _reap_orphans(self) -> None:
        """As PID 1 / subreaper we inherit orphans: reap their zombies, never our own child."""
        if not hasattr(os, "waitid"):
            return
        for _ in range(64):
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except (ChildProcessError, OSError):
                return
            if info is None or (self.child is not None and info.si_pid == self.child.pid):
                return
            try:
                os.waitpid(info.si_pid, os.WNOHANG)
            except (ChildProcessError, OSError):
                return

    def _forward_term(self) -> None:
        sd = self.shutdown
        sd["phase"] = "terminating"
        sd["forwardedAfter"] = round(time.monotonic() - sd["t0"], 3)
        self._signal_group(signal.SIGTERM)

    def handle_signal(self, sig: int) -> None:
        name = signal_name(sig)
        if self.received_signal is None:
            self.received_signal = sig
        if sig == signal.SIGINT:
            self.log("SIGINT received: forwarding SIGINT to the trainer's process group")
            self._signal_group(signal.SIGINT)
            return
        now = time.monotonic()
        if self.shutdown is not None:
            if self.shutdown["phase"] == "saving":
                self.log(f"second {name} received: forwarding SIGTERM now")
                self._forward_term()
            return
        save_window, kill_at = self.cfg.shutdown_timing()
        sd = {
            "signal": name,
            "t0": now,
            "phase": "terminating",
            "trigger": None,
            "triggerCreated": False,
            "triggerConsumed": False,
            "baselineStep": None,
            "savedCheckpoint": None,
            "forwardedAfter": None,
            "killed": False,
            "saveDeadline": now + save_window,
            "killDeadline": now + kill_at,
        }
        self.shutdown = sd
        if self.cfg.dynamic_checkpoint and self.cfg.is_train and self.cfg.output_dir and save_window > 0:
            # Every node may create the trigger: output_dir is shared and Axolotl's global rank 0
            # (wherever it runs) reads it; creating it is idempotent (O_EXCL tells us if it was ours).
            sd["trigger"] = self.cfg.trigger_path
            newest = select_checkpoint(self.cfg.output_dir)
            sd["baselineStep"] = newest["step"]
            try:
                fd = os.open(sd["trigger"], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                os.close(fd)
                sd["triggerCreated"] = True
                action = f"created {sd['trigger']}"
            except FileExistsError:
                action = f"{sd['trigger']} already exists"
            except OSError as exc:
                action = None
                self.log(f"{name} received: cannot create checkpoint trigger {sd['trigger']}: {exc}")
            if action is not None:
                sd["phase"] = "saving"
                self.log(
                    f"{name} received: {action}; giving Axolotl up to {save_window:.0f}s to save a checkpoint "
                    f"(newest complete: {newest['checkpoint']}), then forwarding SIGTERM"
                )
                return
        self.log(f"{name} received: forwarding SIGTERM to the trainer's process group (SIGKILL after {kill_at:.0f}s)")
        self._forward_term()

    def _cleanup_trigger(self) -> None:
        sd = self.shutdown
        if sd and sd.get("triggerCreated") and sd.get("trigger"):
            try:
                if os.path.exists(sd["trigger"]):
                    os.unlink(sd["trigger"])
                    self.log(f"removed unconsumed checkpoint trigger {sd['trigger']}")
            except OSError:
                pass

    # -- completion ----------------------------------------------------------
    def complete(self, rc: int) -> int:
        code = 128 - rc if rc < 0 else rc
        signalled = self.received_signal is not None
        final_model = None
        final_path = None
        message = None
        worker = worker_failure(self.tail.lines()) if rc > 0 else None
        if rc < 0:
            reason = "Signalled"
            message = f"trainer killed by {signal_name(-rc)}"
        elif rc != 0:
            reason = "Signalled" if signalled else "Failed"
            message = f"command exited with code {rc}"
            if worker and worker["signal"]:
                rank = f" (rank {worker['rank']})" if worker["rank"] is not None else ""
                message = f"a training process{rank} was killed by {worker['signal']}; torchrun exited {rc}"
        else:
            reason = "Completed"
            if self.cfg.is_train and self.cfg.require_final_model and self.cfg.node_rank == 0:
                found, desc = find_final_model(self.cfg.output_dir)
                tr = self.tracker
                interrupted = signalled or (tr.saw_trainer_start and not tr.saw_training_completed)
                if found and (tr.saw_model_saved or not interrupted):
                    final_model, final_path = True, desc
                else:
                    final_model = False
                    if not found:
                        why = desc
                    else:
                        cause = "a signal was received" if signalled else "no 'Training completed!' log line"
                        why = (
                            f"{cause} and Axolotl never logged 'Model successfully saved' "
                            "(weights in output_dir may come from its SIGINT handler)"
                        )
                    message = f"exited 0 without a final model: interrupted? ({why})"
                    self.log(message)
                    code = EXIT_NO_FINAL_MODEL
                    reason = "Signalled" if signalled else "NoFinalModel"
        if self.shutdown is not None:
            sd = self.shutdown
            self.emit(
                "FINETUNE_SHUTDOWN",
                {
                    "signal": sd["signal"],
                    "trigger": sd["trigger"],
                    "triggerCreated": sd["triggerCreated"],
                    "triggerConsumed": sd["triggerConsumed"],
                    "savedCheckpoint": sd["savedCheckpoint"],
                    "forwardedAfterSeconds": sd["forwardedAfter"],
                    "killed": sd["killed"],
                },
            )
        return self.finish(code, rc, reason=reason, message=message, final_model=final_model, final_path=final_path, worker=worker)


    def finish(self, code, child_rc, reason, message=None, final_model=None, final_path=None, worker=None, extra=None) -> int:
        fields = {
            "stage": self.cfg.stage or None,
            "exitCode": code,
            "attempt": self.cfg.attempt,
            "resumeFrom": self.resume.get("checkpoint"),
            "resumeStep": self.resume.get("step"),
            "finalModel": final_model,
            "reason": reason,
            "message": message,
            "childExitCode": child_rc,
            "signal": signal_name(self.received_signal) if self.received_signal else None,
            "nodeRank": self.cfg.node_rank,
        }
        if final_path:
            fields["finalModelPath"] = final_path
        if worker:
            fields["workerSignal"] = worker["signal"]
            fields["workerExitCode"] = worker["exitCode"]
        if extra:
            fields.update(extra)
        # The termination message first: the final progress POST may be slow and the
        # kubelet's SIGKILL may be close.
        try:
            data = build_termination_message(fields, self.tail.entries())
        except Exception:  # noqa: BLE001
            data = json.dumps({"stage": fields["stage"], "exitCode": code, "reason": reason, "tail": []}).encode()
        write_termination_log(self.cfg.termination_log, data, lambda m: self.log(m, tail=False))
        if self.reporter is not None:
            try:
                if self.tracker is not None:
                    with self.tracker._lock:  # noqa: SLF001 - final phase for the last report
                        self.tracker._state["phase"] = {"Completed": "completed", "Signalled": "interrupted"}.get(
                            reason, "failed"
                        )
                        self.tracker._bump()
                self.reporter.finish(
                    {"exitCode": code, "reason": reason, "finalModel": final_model},
                    timeout=self._budget(2 * PROGRESS_POST_TIMEOUT_SECONDS + 1, 0.3),
                )
            except Exception:  # noqa: BLE001
                pass
        return code

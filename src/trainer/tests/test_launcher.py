"""Tests for the trainer launcher, src/trainer/launcher/ (stdlib unittest only).

Run from the repository root:
    python3 -m unittest discover -s src/trainer/tests -v
"""

from __future__ import annotations

import ast
import collections
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER_DIR = os.path.abspath(os.path.join(HERE, "..", "launcher"))
LAUNCHER_PATH = os.path.join(LAUNCHER_DIR, "launcher.py")

# The modules import each other by plain name, as they do beside launcher.py in the pod (its folder is sys.path[0]).
sys.path.insert(0, LAUNCHER_DIR)
import ansi  # noqa: E402
import checkpoints  # noqa: E402
import env_config  # noqa: E402
import json_records  # noqa: E402
import prefetch  # noqa: E402
import processes  # noqa: E402
import progress_parse  # noqa: E402
import resume  # noqa: E402
import smoke  # noqa: E402
import termination  # noqa: E402

ESC = "\x1b"

# A fake "axolotl": behaviour chosen by FAKE_MODE; writes into FINETUNE_OUTPUT_DIR.
FAKE_AXOLOTL = textwrap.dedent(
    r'''
    import json, os, signal, sys, time

    mode = os.environ.get("FAKE_MODE", "final")
    out = os.environ.get("FINETUNE_OUTPUT_DIR", "")
    markers = os.environ.get("FAKE_MARKERS", out)
    ESC = "\x1b"

    def p(text, err=False):
        stream = sys.stderr if err else sys.stdout
        stream.write(text + "\n")
        stream.flush()

    def mark(name, value=""):
        with open(os.path.join(markers, name), "w") as fh:
            fh.write(str(value))

    def write(path, data=b"x" * 16):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)

    def checkpoint(step):
        d = os.path.join(out, "checkpoint-%d" % step)
        for name in ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth"):
            write(os.path.join(d, name))
        write(os.path.join(d, "trainer_state.json"), json.dumps({"global_step": step}).encode())
        return d

    def final_model():
        write(os.path.join(out, "adapter_config.json"), b"{}")
        write(os.path.join(out, "adapter_model.safetensors"))

    LOGP = ESC + "[32m[2025-01-01 10:00:00,000] [INFO] [axolotl.train:123] [PID:42] [RANK:0] "
    END = ESC + "[39m"

    if mode == "final":
        p("ARGV " + json.dumps(sys.argv[1:]))
        p(LOGP + "Starting trainer..." + END)
        p(LOGP + "Training completed! Saving trained model to " + out + "." + END)
        final_model()
        p(LOGP + "Model successfully saved to " + out + END)
        sys.exit(0)
    elif mode == "nofinal":
        write(os.path.join(out, "adapter_config.json"), b"{}")
        p(LOGP + "Starting trainer..." + END)
        sys.exit(0)
    elif mode == "sigint_save":
        # Axolotl's SIGINT handler: weights saved into output_dir, exit 0, but training was interrupted.
        p(LOGP + "Starting trainer..." + END)
        final_model()
        sys.exit(0)
    elif mode == "oom":
        p(LOGP + "Starting trainer..." + END)
        err = [
            "Traceback (most recent call last):",
            '  File "/workspace/axolotl/src/axolotl/train.py", line 210, in execute_training',
            "    trainer.train(resume_from_checkpoint=resume_from_checkpoint)",
            '  File "/usr/local/lib/python3.11/site-packages/torch/nn/modules/module.py", line 1736, in _call_impl',
            "    return forward_call(*args, **kwargs)",
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
            "of 79.10 GiB of which 1.06 GiB is free.",
        ]
        for line in err:
            p(ESC + "[31m" + line + ESC + "[0m", err=True)
        for i in range(60):
            p("[W] torchrun noise line %d while tearing down workers" % i, err=True)
        sys.exit(1)
    elif mode == "selfkill":
        p("about to die")
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode in ("term", "dyn", "ignore_term"):
        def on_term(signum, frame):
            mark("got-sigterm", time.time())
            p("fake trainer: got SIGTERM, exiting")
            sys.exit(143)
        if mode == "ignore_term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGTERM, on_term)
        trigger = os.path.join(out, "axolotl_checkpoint.save")
        saved = False
        p("READY")
        deadline = time.time() + 30
        while time.time() < deadline:
            if mode == "dyn" and not saved and os.path.exists(trigger):
                mark("trigger-seen", time.time())
                os.unlink(trigger)  # Axolotl deletes the trigger, then saves
                p(LOGP + "Dynamic checkpoint triggered via file 'axolotl_checkpoint.save' at step 7" + END)
                time.sleep(0.3)
                d = checkpoint(7)
                p("[INFO|trainer.py:3984] >> Saving model checkpoint to " + d)
                saved = True
            time.sleep(0.05)
        sys.exit(0)
    elif mode in ("tree", "orphan"):
        import subprocess
        code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
        gc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)  # like torchrun workers
        mark("grandchild", gc.pid)
        if mode == "orphan":
            final_model()
            p(LOGP + "Model successfully saved to " + out + END)
            os._exit(0)  # leaves the grandchild holding our stdout/stderr
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        p("READY")
        time.sleep(60)
        sys.exit(0)
    elif mode == "progress":
        token_file = os.environ.get("FAKE_TOKEN_FILE")
        p(LOGP + "Maximum number of steps set at 40" + END)
        p(LOGP + "Starting trainer..." + END)
        sys.stderr.write("Tokenizing Prompts (num_proc=8):  45%|####5     | 4500/10000 [00:10<00:12, 450.00 examples/s]\r")
        start = time.time()
        for step in range(1, 41):
            bar = "\r%3d%%|%s| %d/40 [00:%02d<00:%02d,  2.00it/s]" % (step * 100 // 40, "#" * (step // 4), step, step // 2, (40 - step) // 2)
            sys.stderr.write(bar)
            sys.stderr.flush()
            if step % 5 == 0:
                p(ESC + "[0m{'loss': %.4f, 'grad_norm': 0.5, 'learning_rate': 2e-05, 'epoch': %.2f, "
                  "'memory/max_active (GiB)': 12.5, 'tokens/train_per_sec_per_gpu': 1500.5}" % (2.0 - step * 0.01, step / 40))
            if step == 20:
                p("{'eval_loss': 1.75, 'eval_runtime': 1.2, 'eval_samples_per_second': 8.0, 'epoch': 0.5}")
                sys.stderr.write("\r100%|##########| 3/3 [00:01<00:00,  2.50it/s]")
                d = checkpoint(20)
                p("[INFO|trainer.py:3984] >> Saving model checkpoint to " + d)
                if token_file:
                    with open(token_file, "w") as fh:
                        fh.write("token-two\n")
            if step == 30:
                p("{'loss': 1.2, 'learning_rate': 1e-05, ")  # malformed, must be skipped
                p("{'loss': __import__('os').getpid()}")     # not a literal, must be skipped
            time.sleep(float(os.environ.get("FAKE_STEP_SLEEP", "0.07")))
        sys.stderr.write("\n")
        p(LOGP + "Training completed! Saving trained model to " + out + "." + END)
        final_model()
        p(LOGP + "Model successfully saved to " + out + END)
        mark("child-elapsed", time.time() - start)
        sys.exit(0)
    elif mode == "spam":
        start = time.time()
        for i in range(4000):
            p("{'loss': %.4f, 'learning_rate': 2e-05, 'epoch': %.4f}" % (1.0 / (i + 1), i / 4000.0))
            if i % 200 == 0:
                time.sleep(0.05)
        final_model()
        mark("child-elapsed", time.time() - start)
        sys.exit(0)
    elif mode == "echo":
        p("ARGV " + json.dumps(sys.argv[1:]))
        sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
    else:
        sys.exit(99)
    '''
)


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


def write(path, data=b"x" * 16):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data if isinstance(data, bytes) else data.encode())


def make_checkpoint(root, step, layout="adapter", state=True, optimizer=True, scheduler=True, name=None):
    d = os.path.join(root, name or f"checkpoint-{step}")
    os.makedirs(d, exist_ok=True)
    if layout == "adapter":
        write(os.path.join(d, "adapter_config.json"), b"{}")
        write(os.path.join(d, "adapter_model.safetensors"))
    elif layout == "full":
        write(os.path.join(d, "config.json"), b"{}")
        write(os.path.join(d, "model.safetensors"))
    elif layout == "sharded":
        shards = [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
        for s in shards:
            write(os.path.join(d, s))
        index = {"metadata": {}, "weight_map": {f"layer.{i}.weight": s for i, s in enumerate(shards)}}
        write(os.path.join(d, "model.safetensors.index.json"), json.dumps(index))
    elif layout == "fsdp_sharded":
        for sub in ("pytorch_model_fsdp_0", "optimizer_0"):
            write(os.path.join(d, sub, "__0_0.distcp"))
            write(os.path.join(d, sub, "__1_0.distcp"))
            write(os.path.join(d, sub, ".metadata"))
    elif layout == "fsdp_full":
        write(os.path.join(d, "pytorch_model_fsdp.bin"))
        if optimizer:
            write(os.path.join(d, "optimizer.bin"))
    elif layout == "deepspeed":
        tag = f"global_step{step}"
        write(os.path.join(d, tag, "mp_rank_00_model_states.pt"))
        if optimizer:
            for r in (0, 1):
                write(os.path.join(d, tag, f"bf16_zero_pp_rank_{r}_mp_rank_00_optim_states.pt"))
        write(os.path.join(d, "latest"), tag)
        write(os.path.join(d, "zero_to_fp32.py"), b"#")
    if optimizer and layout in ("adapter", "full", "sharded"):
        write(os.path.join(d, "optimizer.pt"))
    if scheduler and layout != "deepspeed":
        write(os.path.join(d, "scheduler.pt"))
    write(os.path.join(d, "rng_state.pth"))
    write(os.path.join(d, "training_args.bin"))
    if state:
        write(os.path.join(d, "trainer_state.json"), json.dumps({"global_step": step, "max_steps": 100, "log_history": []}))
    return d


def tree_snapshot(root):
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            st = os.lstat(full)
            digest = None
            if os.path.isfile(full):
                with open(full, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
            snap[os.path.relpath(full, root)] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return snap


def train_config(**overrides):
    """A train-stage Config from these environment overrides."""
    env = {"FINETUNE_STAGE": "train", "FINETUNE_RESUME_POLL_SECONDS": "0.02"}
    env.update({k: str(v) for k, v in overrides.items()})
    return env_config.Config(env)


class TmpDirCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="ft-launcher-")
        self.tmp = self._tmp.name
        self.out = os.path.join(self.tmp, "out")
        os.makedirs(self.out)

    def tearDown(self):
        self._tmp.cleanup()


# --------------------------------------------------------------------------
# Checkpoint selection
# --------------------------------------------------------------------------


class CheckpointSelectionTest(TmpDirCase):
    def test_empty_dir(self):
        self.assertEqual(checkpoints.select_checkpoint(self.out), {"checkpoint": None, "step": None, "skipped": []})

    def test_missing_dir_and_unset(self):
        self.assertIsNone(checkpoints.select_checkpoint(os.path.join(self.tmp, "nope"))["checkpoint"])
        self.assertIsNone(checkpoints.select_checkpoint(None)["checkpoint"])
        # a file where the output dir should be
        write(os.path.join(self.tmp, "afile"))
        self.assertIsNone(checkpoints.select_checkpoint(os.path.join(self.tmp, "afile"))["checkpoint"])

    def test_only_partial_checkpoints(self):
        make_checkpoint(self.out, 10, state=False)
        make_checkpoint(self.out, 20, optimizer=False)
        make_checkpoint(self.out, 30, scheduler=False)
        sel = checkpoints.select_checkpoint(self.out)
        self.assertIsNone(sel["checkpoint"])
        reasons = {os.path.basename(s["path"]): s["reason"] for s in sel["skipped"]}
        self.assertIn("trainer_state.json missing", reasons["checkpoint-10"])
        self.assertIn("no optimizer state", reasons["checkpoint-20"])
        self.assertIn("scheduler.pt", reasons["checkpoint-30"])
        self.assertEqual([os.path.basename(s["path"]) for s in sel["skipped"]], ["checkpoint-30", "checkpoint-20", "checkpoint-10"])

    def test_mixed_picks_newest_complete_by_step_number(self):
        make_checkpoint(self.out, 9)
        make_checkpoint(self.out, 100)
        make_checkpoint(self.out, 25)
        make_checkpoint(self.out, 1000, state=False)
        make_checkpoint(self.out, 200, optimizer=False)
        sel = checkpoints.select_checkpoint(self.out)
        self.assertEqual(sel["checkpoint"], os.path.join(self.out, "checkpoint-100"))
        self.assertEqual(sel["step"], 100)  # numeric, not lexicographic (9 > 100 as strings)
        self.assertEqual([os.path.basename(s["path"]) for s in sel["skipped"]], ["checkpoint-1000", "checkpoint-200"])

    def test_non_numeric_names_ignored(self):
        make_checkpoint(self.out, 999, name="checkpoint-final")
        make_checkpoint(self.out, 998, name="checkpoint-abc")
        make_checkpoint(self.out, 997, name="checkpoint-12a")
        make_checkpoint(self.out, 996, name="checkpoint-")
        make_checkpoint(self.out, 5)
        write(os.path.join(self.out, "checkpoint-50"))  # a file, not a directory
        sel = checkpoints.select_checkpoint(self.out)
        self.assertEqual(sel["checkpoint"], os.path.join(self.out, "checkpoint-5"))
        self.assertEqual(len(sel["skipped"]), 1)
        self.assertEqual(sel["skipped"][0]["reason"], "not a directory")

    def test_full_model_layouts(self):
        make_checkpoint(self.out, 10, layout="full")
        self.assertEqual(checkpoints.select_checkpoint(self.out)["step"], 10)
        make_checkpoint(self.out, 20, layout="sharded")
        self.assertEqual(checkpoints.select_checkpoint(self.out)["step"], 20)
        info = checkpoints.inspect_checkpoint(os.path.join(self.out, "checkpoint-20"))
        self.assertEqual(info["weights"], ["model.safetensors.index.json"])

    def test_sharded_with_missing_shard(self):
        make_checkpoint(self.out, 10)
        d = make_checkpoint(self.out, 20, layout="sharded")
        os.unlink(os.path.join(d, "model-00002-of-00003.safetensors"))
        sel = checkpoints.select_checkpoint(self.out)
        self.assertEqual(sel["step"], 10)
        self.assertIn("1 of 3 shards", sel["skipped"][0]["reason"])
        self.assertIn("model-00002-of-00003.safetensors", sel["skipped"][0]["reason"])

    def test_sharded_without_index_or_with_broken_index(self):
        d = make_checkpoint(self.out, 20, layout="sharded")
        os.unlink(os.path.join(d, "model.safetensors.index.json"))
        self.assertIn("without its index", checkpoints.inspect_checkpoint(d)["reason"])
        write(os.path.join(d, "model.safetensors.index.json"), '{"weight_map": {"a": "model-0000')
        self.assertIn("not valid JSON", checkpoints.inspect_checkpoint(d)["reason"])

    def test_fsdp_sharded_layout(self):
        d = make_checkpoint(self.out, 30, layout="fsdp_sharded")
        info = checkpoints.inspect_checkpoint(d)
        self.assertTrue(info["complete"], info)
        self.assertEqual(info["weights"], ["pytorch_model_fsdp_0/"])
        self.assertEqual(info["optimizer"], ["optimizer_0/"])
        os.unlink(os.path.join(d, "optimizer_0", ".metadata"))
        self.assertIn("optimizer_0/ has no .metadata", checkpoints.inspect_checkpoint(d)["reason"])
        write(os.path.join(d, "optimizer_0", ".metadata"))
        os.unlink(os.path.join(d, "pytorch_model_fsdp_0", ".metadata"))
        self.assertIn("pytorch_model_fsdp_0/ has no .metadata", checkpoints.inspect_checkpoint(d)["reason"])

    def test_fsdp_full_state_dict_layout(self):
        d = make_checkpoint(self.out, 40, layout="fsdp_full")
        info = checkpoints.inspect_checkpoint(d)
        self.assertTrue(info["complete"], info)
        self.assertEqual(info["optimizer"], ["optimizer.bin"])
        d2 = make_checkpoint(self.out, 50, layout="fsdp_full", optimizer=False)
        self.assertIn("no optimizer state", checkpoints.inspect_checkpoint(d2)["reason"])
        self.assertEqual(checkpoints.select_checkpoint(self.out)["step"], 40)

    def test_deepspeed_layout(self):
        d = make_checkpoint(self.out, 60, layout="deepspeed")
        info = checkpoints.inspect_checkpoint(d)
        self.assertTrue(info["complete"], info)
        self.assertEqual(info["weights"], ["deepspeed global_step60/"])
        # missing 'latest' (rank 0 writes it after its files)
        os.unlink(os.path.join(d, "latest"))
        self.assertIn("without a 'latest' file", checkpoints.inspect_checkpoint(d)["reason"])
        write(os.path.join(d, "latest"), "global_step60")
        # a missing data-parallel optimizer shard
        os.unlink(os.path.join(d, "global_step60", "bf16_zero_pp_rank_0_mp_rank_00_optim_states.pt"))
        self.assertIn("ranks [0]", checkpoints.inspect_checkpoint(d)["reason"])
        # no optimizer shards at all
        os.unlink(os.path.join(d, "global_step60", "bf16_zero_pp_rank_1_mp_rank_00_optim_states.pt"))
        self.assertIn("optim_states.pt", checkpoints.inspect_checkpoint(d)["reason"])
        # 'latest' points to a missing tag
        d2 = make_checkpoint(self.out, 70, layout="deepspeed")
        write(os.path.join(d2, "latest"), "global_step71")
        self.assertIn("global_step71/", checkpoints.inspect_checkpoint(d2)["reason"])

    def test_deepspeed_zero3_shards(self):
        d = make_checkpoint(self.out, 80, layout="deepspeed")
        tag = os.path.join(d, "global_step80")
        os.unlink(os.path.join(tag, "mp_rank_00_model_states.pt"))
        write(os.path.join(tag, "zero_pp_rank_0_mp_rank_00_model_states.pt"))
        write(os.path.join(tag, "zero_pp_rank_1_mp_rank_00_model_states.pt"))
        self.assertTrue(checkpoints.inspect_checkpoint(d)["complete"])
        os.unlink(os.path.join(tag, "zero_pp_rank_0_mp_rank_00_model_states.pt"))
        self.assertIn("ZeRO-3 model shards", checkpoints.inspect_checkpoint(d)["reason"])

    def test_truncated_or_invalid_trainer_state(self):
        make_checkpoint(self.out, 10)
        d = make_checkpoint(self.out, 20)
        full = json.dumps({"global_step": 20, "log_history": [{"loss": 1.0}] * 20})
        write(os.path.join(d, "trainer_state.json"), full[: len(full) // 2])
        sel = checkpoints.select_checkpoint(self.out)
        self.assertEqual(sel["step"], 10)
        self.assertIn("not valid JSON", sel["skipped"][0]["reason"])
        for bad in (b"", b"[]", b'{"global_step": "20"}', b'{"global_step": true}', b"\xff\xfe"):
            write(os.path.join(d, "trainer_state.json"), bad)
            self.assertFalse(checkpoints.inspect_checkpoint(d)["complete"], bad)

    def test_empty_weight_or_optimizer_files(self):
        d = make_checkpoint(self.out, 10)
        write(os.path.join(d, "optimizer.pt"), b"")
        self.assertIn("optimizer.pt is empty", checkpoints.inspect_checkpoint(d)["reason"])
        d2 = make_checkpoint(self.out, 20)
        write(os.path.join(d2, "adapter_model.safetensors"), b"")
        self.assertIn("adapter_model.safetensors is empty", checkpoints.inspect_checkpoint(d2)["reason"])
        d3 = make_checkpoint(self.out, 30)
        os.unlink(os.path.join(d3, "adapter_model.safetensors"))
        self.assertIn("no model weights", checkpoints.inspect_checkpoint(d3)["reason"])

    @unittest.skipIf(hasattr(os, "geteuid") and os.geteuid() == 0, "root ignores directory permissions")
    def test_unreadable_checkpoint_dir(self):
        make_checkpoint(self.out, 10)
        d = make_checkpoint(self.out, 20)
        os.chmod(d, 0)
        try:
            sel = checkpoints.select_checkpoint(self.out)
            self.assertEqual(sel["step"], 10)
        finally:
            os.chmod(d, 0o755)

    def test_symlink_loop_and_dangling_link(self):
        make_checkpoint(self.out, 10)
        os.symlink(os.path.join(self.out, "checkpoint-30"), os.path.join(self.out, "checkpoint-30"))
        os.symlink(os.path.join(self.tmp, "missing"), os.path.join(self.out, "checkpoint-20"))
        sel = checkpoints.select_checkpoint(self.out)
        self.assertEqual(sel["step"], 10)
        self.assertEqual(len(sel["skipped"]), 2)

    def test_partial_checkpoints_never_modified(self):
        make_checkpoint(self.out, 10)
        make_checkpoint(self.out, 20, state=False)
        d30 = make_checkpoint(self.out, 30, layout="sharded")
        os.unlink(os.path.join(d30, "model-00003-of-00003.safetensors"))
        write(os.path.join(make_checkpoint(self.out, 40), "trainer_state.json"), b'{"global_st')
        before = tree_snapshot(self.out)
        for _ in range(3):
            self.assertEqual(checkpoints.select_checkpoint(self.out)["step"], 10)
        self.assertEqual(tree_snapshot(self.out), before)

    def test_checkpoint_being_written_concurrently(self):
        make_checkpoint(self.out, 10)
        d = os.path.join(self.out, "checkpoint-20")
        final_write_started = []
        done = threading.Event()

        def writer():
            os.makedirs(d)
            time.sleep(0.02)
            for name in ("config.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state_0.pth"):
                with open(os.path.join(d, name), "wb") as fh:
                    fh.write(b"x" * 8)
                    fh.flush()
                    time.sleep(0.02)
                    fh.write(b"y" * 8)
                time.sleep(0.02)
            payload = json.dumps({"global_step": 20, "log_history": [{"loss": 0.5}] * 50}).encode()
            with open(os.path.join(d, "trainer_state.json"), "wb") as fh:
                fh.write(payload[:40])
                fh.flush()
                time.sleep(0.1)
                final_write_started.append(time.monotonic())
                fh.write(payload[40:])
            done.set()

        t = threading.Thread(target=writer)
        t.start()
        records = []
        while not done.is_set():
            chosen = checkpoints.select_checkpoint(self.out)["checkpoint"]
            records.append((time.monotonic(), chosen))
            time.sleep(0.003)
        t.join()
        cutoff = final_write_started[0]
        early = [c for (ts, c) in records if ts < cutoff]
        self.assertTrue(early)
        self.assertTrue(all(c == os.path.join(self.out, "checkpoint-10") for c in early), set(early))
        self.assertEqual(checkpoints.select_checkpoint(self.out)["checkpoint"], d)


class FinalModelTest(TmpDirCase):
    def test_final_model_detection(self):
        self.assertFalse(checkpoints.find_final_model(self.out)[0])
        write(os.path.join(self.out, "adapter_config.json"), b"{}")
        write(os.path.join(self.out, "config.json"), b"{}")
        make_checkpoint(self.out, 5)  # checkpoints are not the final model
        self.assertFalse(checkpoints.find_final_model(self.out)[0])
        write(os.path.join(self.out, "adapter_model.safetensors"))
        found, path = checkpoints.find_final_model(self.out)
        self.assertTrue(found)
        self.assertTrue(path.endswith("adapter_model.safetensors"))

    def test_full_and_sharded_final_model(self):
        write(os.path.join(self.out, "pytorch_model.bin"))
        self.assertTrue(checkpoints.find_final_model(self.out)[0])
        os.unlink(os.path.join(self.out, "pytorch_model.bin"))
        shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        write(os.path.join(self.out, shards[0]))
        write(os.path.join(self.out, "model.safetensors.index.json"), json.dumps({"weight_map": {"a": shards[0], "b": shards[1]}}))
        self.assertFalse(checkpoints.find_final_model(self.out)[0])
        write(os.path.join(self.out, shards[1]))
        self.assertTrue(checkpoints.find_final_model(self.out)[0])

    def test_missing_or_unset_output_dir(self):
        self.assertFalse(checkpoints.find_final_model(None)[0])
        self.assertFalse(checkpoints.find_final_model(os.path.join(self.tmp, "missing"))[0])


# --------------------------------------------------------------------------
# Resume coordination and argument insertion
# --------------------------------------------------------------------------


class ResumeCoordinationTest(TmpDirCase):
    def logs(self):
        self.messages = []
        return self.messages.append

    def test_rank0_writes_decision_and_rank1_reads_same_choice(self):
        make_checkpoint(self.out, 10)
        make_checkpoint(self.out, 20, state=False)
        r0 = resume.resolve_resume(train_config(FINETUNE_OUTPUT_DIR=self.out, FINETUNE_ATTEMPT=3), self.logs())
        self.assertEqual(r0["checkpoint"], os.path.join(self.out, "checkpoint-10"))
        path = os.path.join(self.out, ".finetune", "resume-attempt-3.json")
        with open(path) as fh:
            on_disk = json.load(fh)
        self.assertEqual(on_disk["checkpoint"], r0["checkpoint"])
        self.assertEqual(on_disk["step"], 10)
        self.assertEqual(on_disk["skipped"][0]["path"], os.path.join(self.out, "checkpoint-20"))
        self.assertEqual(os.listdir(os.path.dirname(path)), ["resume-attempt-3.json"])  # no tmp files left
        r1 = resume.resolve_resume(
            train_config(FINETUNE_OUTPUT_DIR=self.out, FINETUNE_ATTEMPT=3, FINETUNE_NODE_RANK=1), self.logs()
        )
        self.assertEqual((r1["checkpoint"], r1["step"]), (r0["checkpoint"], r0["step"]))
        self.assertEqual(r1["source"], "rank0")

    def test_rank1_waits_for_rank0(self):
        make_checkpoint(self.out, 10)
        result = {}

        def rank1():
            t0 = time.monotonic()
            result["decision"] = resume.resolve_resume(
                train_config(FINETUNE_OUTPUT_DIR=self.out, FINETUNE_NODE_RANK=1), lambda m: None
            )
            result["waited"] = time.monotonic() - t0

        t = threading.Thread(target=rank1)
        t.start()
        time.sleep(0.4)
        self.assertNotIn("decision", result)
        r0 = resume.resolve_resume(train_config(FINETUNE_OUTPUT_DIR=self.out), lambda m: None)
        t.join(5)
        self.assertEqual(result["decision"]["checkpoint"], r0["checkpoint"])
        self.assertGreaterEqual(result["waited"], 0.35)

    def test_rank1_timeout(self):
        cfg = train_config(FINETUNE_OUTPUT_DIR=self.out, FINETUNE_NODE_RANK=2, FINETUNE_RESUME_WAIT_SECONDS=0.3)
        t0 = time.monotonic()
        with self.assertRaises(resume.ResumeTimeout):
            resume.resolve_resume(cfg, lambda m: None)
        self.assertLess(time.monotonic() - t0, 3)

    def test_rank1_aborts_on_signal(self):
        cfg = train_config(FINETUNE_OUTPUT_DIR=self.out, FINETUNE_NODE_RANK=1)
        with self.assertRaises(resume.ResumeAborted):
            resume.resolve_resume(cfg, lambda m: None, should_abort=lambda: True)

    def test_stale_decision_is_replaced_by_rank0(self):
        make_checkpoint(self.out, 10)
        make_checkpoint(self.out, 20)
        stale = {"checkpoint": os.path.join(self.out, "checkpoint-10"), "step": 10, "skipped": []}
        json_records.write_json_atomic(resume.decision_path(self.out, 0), stale)
        result = {}
        cfg1 = train_config(FINETUNE_OUTPUT_DIR=self.out, FINETUNE_NODE_RANK=1, FINETUNE_RESUME_MISMATCH_GRACE_SECONDS=10)
        t = threading.Thread(target=lambda: result.setdefault("d", resume.resolve_resume(cfg1, lambda m: None)))
        t.start()
        time.sleep(0.3)
        self.assertNotIn("d", result)  # stale file disagrees with this node's own view: keep waiting
        resume.resolve_resume(train_config(FINETUNE_OUTPUT_DIR=self.out), lambda m: None)
        t.join(5)
        self.assertEqual(result["d"]["step"], 20)

    def test_mismatch_grace_then_rank0_wins(self):
        make_checkpoint(self.out, 20)
        decision = {"checkpoint": None, "step": None, "skipped": []}
        json_records.write_json_atomic(resume.decision_path(self.out, 0), decision)
        cfg1 = train_config(FINETUNE_OUTPUT_DIR=self.out, FINETUNE_NODE_RANK=1, FINETUNE_RESUME_MISMATCH_GRACE_SECONDS=0.2)
        msgs = []
        self.assertIsNone(resume.resolve_resume(cfg1, msgs.append)["checkpoint"])
        self.assertTrue(any("differs" in m for m in msgs))

    def test_malformed_decision_file_is_waited_on(self):
        path = resume.decision_path(self.out, 0)
        write(path, b'{"checkpoint": 12')
        self.assertIsNone(resume.read_decision(path))
        write(path, b'{"checkpoint": 12, "step": null}')
        self.assertIsNone(resume.read_decision(path))
        cfg1 = train_config(FINETUNE_OUTPUT_DIR=self.out, FINETUNE_NODE_RANK=1, FINETUNE_RESUME_WAIT_SECONDS=0.2)
        with self.assertRaises(resume.ResumeTimeout):
            resume.resolve_resume(cfg1, lambda m: None)

    def test_rank0_unwritable_output_dir_still_decides(self):
        cfg = train_config(FINETUNE_OUTPUT_DIR=os.path.join(self.tmp, "file-not-dir", "out"))
        write(os.path.join(self.tmp, "file-not-dir"))
        msgs = []
        self.assertIsNone(resume.resolve_resume(cfg, msgs.append)["checkpoint"])
        self.assertTrue(any("could not publish" in m for m in msgs))


class InsertResumeArgTest(unittest.TestCase):
    CKPT = "/out/checkpoint-5"

    def test_axolotl_train_torchrun(self):
        cmd = ["axolotl", "train", "/etc/finetune/config/config.yaml", "--launcher", "torchrun", "--", "--nnodes", "2"]
        new, note = resume.insert_resume_arg(cmd, self.CKPT)
        self.assertIsNone(note)
        self.assertEqual(
            new,
            ["axolotl", "train", "/etc/finetune/config/config.yaml", "--resume-from-checkpoint", self.CKPT,
             "--launcher", "torchrun", "--", "--nnodes", "2"],
        )

    def test_python_module_form(self):
        new, _ = resume.insert_resume_arg(["python", "-m", "axolotl.cli.train", "cfg.yml"], self.CKPT)
        self.assertEqual(new, ["python", "-m", "axolotl.cli.train", "cfg.yml", "--resume-from-checkpoint", self.CKPT])

    def test_existing_flag_kept(self):
        for flag in (["--resume-from-checkpoint", "/x"], ["--resume_from_checkpoint=/x"]):
            cmd = ["axolotl", "train", "cfg.yml"] + flag
            new, note = resume.insert_resume_arg(cmd, self.CKPT)
            self.assertEqual(new, cmd)
            self.assertIn("already", note)

    def test_no_train_or_no_config(self):
        self.assertEqual(resume.insert_resume_arg(["axolotl", "preprocess", "c.yml"], self.CKPT)[0], ["axolotl", "preprocess", "c.yml"])
        self.assertEqual(resume.insert_resume_arg(["axolotl", "train"], self.CKPT)[0], ["axolotl", "train"])
        # 'train' only after the torchrun separator does not count
        cmd = ["x", "--", "train", "cfg"]
        self.assertEqual(resume.insert_resume_arg(cmd, self.CKPT)[0], cmd)


# --------------------------------------------------------------------------
# Progress parsing, tail and termination message
# --------------------------------------------------------------------------


class ProgressParsingTest(unittest.TestCase):
    def feed(self, tracker, *lines):
        for line in lines:
            for seg in line.replace("\n", "\r").split("\r"):
                tracker.feed(ansi.strip_ansi(seg))

    def test_realistic_axolotl_and_hf_lines(self):
        t = progress_parse.ProgressTracker()
        self.feed(
            t,
            f"{ESC}[32m[2025-01-01 10:00:00,000] [INFO] [axolotl.utils.data.sft:123] [PID:1] [RANK:0] Maximum number of steps set at 873{ESC}[39m",
            "Tokenizing Prompts (num_proc=64):  45%|████▌     | 4500/10000 [00:10<00:12, 450.00 examples/s]",
            "model-00001-of-00004.safetensors:  40%|████      | 2.00G/4.98G [00:10<00:14, 210MB/s]",
            f"[2025-01-01 10:01:00,000] [INFO] [axolotl.train:200] [RANK:0] Starting trainer...",
            "  0%|          | 0/873 [00:00<?, ?it/s]",
            f"{ESC}[A 12%|█▏        | 102/873 [09:08<1:10:11,  5.46s/it]",
        )
        s, _ = t.snapshot()
        self.assertEqual((s["step"], s["totalSteps"], s["etaSeconds"]), (102, 873, 4211))
        self.assertEqual(s["phase"], "training")
        self.feed(
            t,
            "{'loss': 1.2345, 'grad_norm': 0.4, 'learning_rate': 2e-05, 'epoch': 0.5, 'ppl': 3.4, "
            "'memory/max_active (GiB)': 12.3, 'tokens/train_per_sec_per_gpu': 1234.5}",
            "{'eval_loss': 1.1, 'eval_runtime': 3.2, 'eval_samples_per_second': 10.0, 'epoch': 0.5}",
            "100%|██████████| 25/25 [00:05<00:00,  4.90it/s]",  # eval bar: ignored
            "[INFO|trainer.py:3984] 2025-01-01 10:02:00,000 >> Saving model checkpoint to /out/checkpoint-100",
            "[default0]: 13%|█▎        | 110/873 [10:00<1:09:00,  5.40s/it]",
        )
        s, _ = t.snapshot()
        self.assertEqual(s["loss"], 1.2345)
        self.assertEqual(s["gradNorm"], 0.4)
        self.assertEqual(s["learningRate"], 2e-05)
        self.assertEqual(s["epoch"], 0.5)
        self.assertEqual(s["evalLoss"], 1.1)
        self.assertEqual(s["tokensPerSecondPerGpu"], 1234.5)
        self.assertIsNone(s["tokensPerSecond"])
        self.assertEqual((s["step"], s["totalSteps"]), (110, 873))
        self.assertEqual(s["checkpoints"], [{"step": 100, "path": "/out/checkpoint-100", "complete": False}])
        t.add_complete_checkpoints([(100, "/out/checkpoint-100")])
        self.assertTrue(t.snapshot()[0]["checkpoints"][0]["complete"])

    def test_numpy_nan_and_malformed(self):
        t = progress_parse.ProgressTracker()
        self.feed(t, "{'loss': np.float64(0.75), 'grad_norm': tensor(0.3, device='cuda:0'), 'learning_rate': 1e-05, 'epoch': 1.0}")
        s, v1 = t.snapshot()
        self.assertEqual((s["loss"], s["gradNorm"]), (0.75, 0.3))
        self.feed(t, "{'loss': nan, 'grad_norm': inf, 'epoch': 1.1}")
        s, _ = t.snapshot()
        self.assertIsNone(s["loss"])
        self.assertIsNone(s["gradNorm"])
        self.assertEqual(s["epoch"], 1.1)
        _, before = t.snapshot()
        self.feed(
            t,
            "{'loss': 1.2, 'learning_rate': ",
            "{'loss': __import__('os').system('echo pwned')}",
            "{'not': 'metrics'}",
            "{" * 5000 + "}" * 5000,
            "\x00\xff garbage } {",
            "12/0 [00:01<00:02, 1.0it/s]",
        )
        self.assertEqual(t.snapshot()[1], before)

    def test_step_is_monotonic_and_train_bar_locked(self):
        t = progress_parse.ProgressTracker()
        self.feed(t, " 50%|█████     | 50/100 [00:50<00:50,  1.00it/s]", " 10%|█         | 10/100 [00:10<01:30,  1.00it/s]")
        self.assertEqual(t.snapshot()[0]["step"], 50)
        self.feed(t, "{'loss': 1.0, 'step': 60, 'epoch': 0.6}")
        self.assertEqual(t.snapshot()[0]["step"], 60)

    def test_completion_markers(self):
        t = progress_parse.ProgressTracker()
        self.feed(t, "[INFO] Starting trainer...")
        self.assertTrue(t.saw_trainer_start)
        self.assertFalse(t.saw_training_completed)
        self.feed(t, "[INFO] Training completed! Saving trained model to /out.", "[INFO] Model successfully saved to /out")
        self.assertTrue(t.saw_training_completed and t.saw_model_saved)

    def test_parse_duration(self):
        self.assertEqual(progress_parse.parse_duration("1:10:11"), 4211)
        self.assertEqual(progress_parse.parse_duration("09:08"), 548)
        self.assertIsNone(progress_parse.parse_duration("?"))
        self.assertIsNone(progress_parse.parse_duration("a:b"))


REAL_TRAIN_LOG = os.path.join(HERE, "..", "..", "progress", "testdata", "axolotl-0.18.0-train-rank0.log")
REAL_SIGKILL_LOG = os.path.join(HERE, "testdata", "axolotl-0.18.0-worker-sigkill.log")


def _last_dict(text: str, first_key: str) -> dict:
    """The last metrics dict starting with first_key, read with Python's own literal parser (independent of ours)."""
    import ast
    import re

    found = re.findall(r"\{'" + re.escape(first_key) + r"'[^{}]*\}", text)
    return ast.literal_eval(found[-1])


class RealAxolotlOutputTest(unittest.TestCase):
    """Output of axolotl 0.18.0 (transformers 5.14.1) recorded by the real-trainer tier (e2e/axolotl/trainer.test.ts,
    FINETUNE_WRITE_FIXTURES=1): a resumed LoRA run on CPU with evals, and a worker SIGKILLed under torchrun."""

    def test_string_formatted_metrics_reach_progress(self):
        with open(REAL_TRAIN_LOG, encoding="utf-8") as f:
            text = f.read()
        t = progress_parse.ProgressTracker()
        for seg in text.replace("\r\n", "\n").replace("\n", "\r").split("\r"):
            t.feed(ansi.strip_ansi(seg))
        s, _ = t.snapshot()
        last, ev, final = _last_dict(text, "loss"), _last_dict(text, "eval_loss"), _last_dict(text, "train_runtime")
        self.assertIsInstance(last["loss"], str, "transformers 5 logs metrics as strings")
        # The training loop's bar is the one drawn most often; "Maximum number of steps set at" is computed from
        # num_epochs and differs when max_steps is larger (as in this run), so it cannot be the reference.
        totals = collections.Counter(int(m) for m in re.findall(r"\b\d+/(\d+) \[", text))
        total = totals.most_common(1)[0][0]
        self.assertEqual((s["step"], s["totalSteps"]), (total, total))
        self.assertEqual(s["loss"], float(last["loss"]))
        self.assertEqual(s["learningRate"], float(last["learning_rate"]))
        self.assertEqual(s["gradNorm"], float(last["grad_norm"]))
        self.assertEqual(s["evalLoss"], float(ev["eval_loss"]))
        self.assertEqual(s["trainLoss"], float(final["train_loss"]))
        self.assertEqual(s["epoch"], float(final["epoch"]))
        self.assertEqual(s["tokensPerSecondPerGpu"], float(last["tokens/train_per_sec_per_gpu"]))
        self.assertTrue(t.saw_training_completed and t.saw_model_saved)
        # The loss history key: the step its last loss was logged at (within a step of the end: bars and dicts
        # interleave unevenly in a real log), and no non-finite loss in a healthy run.
        self.assertGreaterEqual(s["lossStep"], s["step"] - 1)
        self.assertIsNone(s["lossNonFiniteStep"])

    def test_string_nan_is_not_a_number(self):
        t = progress_parse.ProgressTracker()
        t.feed("{'loss': '5.1', 'epoch': '0.1'}")
        t.feed("{'loss': 'nan', 'grad_norm': 'inf', 'epoch': '0.2'}")
        s, _ = t.snapshot()
        self.assertIsNone(s["loss"])
        self.assertIsNone(s["gradNorm"])
        self.assertEqual(s["epoch"], 0.2)

    def test_loss_step_and_first_non_finite_step_are_reported(self):
        # The operator's loss history (src/progress/loss.ts) keys losses by the step they were logged at, and learns of
        # a NaN loss only from lossNonFiniteStep: JSON has no NaN.
        t = progress_parse.ProgressTracker()
        t.feed(" 10%|█         | 10/100 [00:10<01:30,  1.00it/s]")
        t.feed("{'loss': '5.1', 'epoch': '0.1'}")
        s, _ = t.snapshot()
        self.assertEqual((s["lossStep"], s["lossNonFiniteStep"]), (10, None))
        t.feed(" 11%|█         | 11/100 [00:11<01:29,  1.00it/s]")
        t.feed("{'loss': 'nan', 'epoch': '0.11'}")
        t.feed(" 12%|█▏        | 12/100 [00:12<01:28,  1.00it/s]")
        t.feed("{'loss': nan, 'epoch': '0.12'}")
        s, _ = t.snapshot()
        self.assertEqual((s["lossStep"], s["lossNonFiniteStep"]), (10, 11), "the first non-finite step stays")
        json.dumps(s, allow_nan=False)  # the report stays valid JSON

    def test_worker_killed_by_signal_from_torchrun_report(self):
        tail = termination.Tail()
        with open(REAL_SIGKILL_LOG, encoding="utf-8") as f:
            for line in f.read().split("\n"):
                tail.add(line)
        self.assertEqual(termination.worker_failure(tail.lines()), {"signal": "SIGKILL", "exitCode": -9, "rank": 0})

    def test_worker_failure_without_a_signal(self):
        # torchrun's report for a worker that raised (exit 1): no signal, but the rank and code are still known.
        with open(REAL_SIGKILL_LOG, encoding="utf-8") as f:
            lines = f.read().replace("exitcode  : -9", "exitcode  : 1").split("\n")
        lines = [ln for ln in lines if "received by PID" not in ln]
        self.assertEqual(termination.worker_failure(lines), {"signal": None, "exitCode": 1, "rank": 0})
        self.assertIsNone(termination.worker_failure(["plain output", "Traceback (most recent call last):"]))


class TailAndTerminationMessageTest(unittest.TestCase):
    def test_tail_strips_ansi_and_keeps_last_lines(self):
        tail = termination.Tail(max_lines=3, max_pinned=2)
        for i in range(10):
            tail.add(f"{ESC}[31mline {i}{ESC}[0m")
        tail.add("   ")
        tail.add(" 12%|█▏        | 102/873 [09:08<1:10:11,  5.46s/it]")
        self.assertEqual(tail.lines(), ["line 7", "line 8", "line 9"])

    def test_error_lines_are_pinned(self):
        tail = termination.Tail(max_lines=5, max_pinned=3)
        tail.add("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
        for i in range(20):
            tail.add(f"noise {i}")
        lines = tail.lines()
        self.assertEqual(lines[0], "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
        self.assertEqual(lines[1:], [f"noise {i}" for i in range(15, 20)])

    def test_message_fits_4096_bytes_dropping_oldest(self):
        tail = termination.Tail()
        tail.add("RuntimeError: NCCL communicator was aborted")
        for i in range(60):
            tail.add(f"{i:03d} " + "█" * 150)  # multi-byte characters count as bytes
        fields = {"stage": "train", "exitCode": 1, "attempt": 0, "resumeFrom": None, "resumeStep": None,
                  "finalModel": None, "reason": "Failed"}
        data = termination.build_termination_message(fields, tail.entries())
        self.assertLessEqual(len(data), 4096)
        msg = json.loads(data.decode("utf-8"))
        self.assertEqual(msg["reason"], "Failed")
        self.assertEqual(msg["tail"][0], "RuntimeError: NCCL communicator was aborted")
        self.assertTrue(msg["tail"][-1].startswith("059 "))
        numbers = [int(line[:3]) for line in msg["tail"][1:]]
        self.assertEqual(numbers, list(range(60 - len(numbers), 60)))

    def test_long_lines_are_capped(self):
        tail = termination.Tail()
        tail.add("x" * 5000)
        self.assertEqual(len(tail.lines()[0]), termination.TAIL_LINE_MAX_CHARS)

    def test_oversized_fields_still_fit(self):
        fields = {"stage": "train", "exitCode": 1, "attempt": 0, "resumeFrom": "/" + "p" * 9000, "resumeStep": 1,
                  "finalModel": None, "reason": "Failed", "message": "m" * 9000}
        data = termination.build_termination_message(fields, [(1, "x", False)])
        self.assertLessEqual(len(data), 4096)
        self.assertEqual(json.loads(data)["reason"], "Failed")

    def test_write_failure_never_raises(self):
        msgs = []
        self.assertFalse(termination.write_termination_log("/nonexistent-dir/sub/termination-log", b"{}", msgs.append))
        self.assertTrue(msgs)


class ConfigTest(unittest.TestCase):
    def test_defaults_and_invalid_values(self):
        warnings = []
        cfg = env_config.Config({"FINETUNE_ATTEMPT": "x", "FINETUNE_NODE_RANK": "-1", "FINETUNE_STAGE": "Train",
                               "FINETUNE_TERMINATION_GRACE_SECONDS": "abc"}, log=warnings.append)
        self.assertEqual((cfg.attempt, cfg.node_rank, cfg.stage, cfg.grace), (0, 0, "train", 30))
        self.assertEqual(cfg.termination_log, "/dev/termination-log")
        self.assertGreaterEqual(len(warnings), 3)

    def test_shutdown_timing(self):
        self.assertEqual(env_config.Config({"FINETUNE_TERMINATION_GRACE_SECONDS": "300"}).shutdown_timing(), (290, 298))
        save, kill = env_config.Config({"FINETUNE_TERMINATION_GRACE_SECONDS": "13"}).shutdown_timing()
        self.assertEqual((save, kill), (3, 11))
        save, kill = env_config.Config({"FINETUNE_TERMINATION_GRACE_SECONDS": "4"}).shutdown_timing()
        self.assertLess(save, kill)
        self.assertLessEqual(kill, 4)


# --------------------------------------------------------------------------
# End-to-end: the launcher wrapping a fake "axolotl"
# --------------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    posts = None  # set per server

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.posts.append(
            {"t": time.monotonic(), "auth": self.headers.get("Authorization"),
             "ctype": self.headers.get("Content-Type"), "body": json.loads(body)}
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):  # keep test output quiet
        pass


class EndToEndTest(TmpDirCase):
    @classmethod
    def setUpClass(cls):
        cls._cls_tmp = tempfile.TemporaryDirectory(prefix="ft-fake-")
        cls.fake = os.path.join(cls._cls_tmp.name, "fake_axolotl.py")
        with open(cls.fake, "w") as fh:
            fh.write(FAKE_AXOLOTL)

    @classmethod
    def tearDownClass(cls):
        cls._cls_tmp.cleanup()

    def setUp(self):
        super().setUp()
        self.cfgfile = os.path.join(self.tmp, "config.yaml")
        write(self.cfgfile, b"base_model: x\n")
        self.term_log = os.path.join(self.tmp, "termination-log")

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FINETUNE_", "FAKE_"))}
        env.update(
            {
                "FINETUNE_STAGE": "train",
                "FINETUNE_OUTPUT_DIR": self.out,
                "FINETUNE_ATTEMPT": "0",
                "FINETUNE_NODE_RANK": "0",
                "FINETUNE_NNODES": "1",
                "FINETUNE_TERMINATION_GRACE_SECONDS": "30",
                "FINETUNE_REQUIRE_FINAL_MODEL": "true",
                "FINETUNE_TERMINATION_LOG": self.term_log,
                "FAKE_MARKERS": self.tmp,
            }
        )
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def command(self, stage_cmd=("train",)):
        return [sys.executable, LAUNCHER_PATH, "--", sys.executable, self.fake, *stage_cmd, self.cfgfile,
                "--launcher", "torchrun", "--", "--nnodes", "1", "--nproc_per_node", "1"]

    def run_launcher(self, timeout=20, cmd=None, **extra):
        t0 = time.monotonic()
        proc = subprocess.run(cmd or self.command(), env=self.env(**extra), capture_output=True, timeout=timeout)
        return proc, time.monotonic() - t0

    def termination(self):
        with open(self.term_log, "rb") as fh:
            data = fh.read()
        self.assertLessEqual(len(data), 4096)
        return json.loads(data)

    @staticmethod
    def resume_line(stdout: bytes):
        lines = [l for l in stdout.decode().splitlines() if l.startswith("FINETUNE_RESUME ")]
        return json.loads(lines[0][len("FINETUNE_RESUME "):]) if lines else None

    def start_async(self, **extra):
        proc = subprocess.Popen(self.command(), env=self.env(**extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines, ready = [], threading.Event()

        def reader():
            for raw in proc.stdout:
                lines.append(raw)
                if raw.strip() == b"READY":
                    ready.set()

        errs = []
        threads = [threading.Thread(target=reader, daemon=True),
                   threading.Thread(target=lambda: errs.extend(proc.stderr), daemon=True)]
        for t in threads:
            t.start()

        def cleanup():
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            for t in threads:
                t.join(5)
            proc.stdout.close()
            proc.stderr.close()

        self.addCleanup(cleanup)
        self._readers = threads
        self.assertTrue(ready.wait(15), "fake trainer never became ready")
        return proc, lines, errs

    def wait_async(self, proc):
        """Wait for the launcher, then for its output to be fully collected."""
        rc = proc.wait(20)
        for t in self._readers:
            t.join(5)
        return rc

    # -- outcomes --------------------------------------------------------
    def test_exit0_with_final_model(self):
        proc, _ = self.run_launcher()
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        self.assertIn(f"{ESC}[32m[2025-01-01 10:00:00,000] [INFO]".encode(), proc.stdout)  # passed through unchanged
        self.assertEqual(self.resume_line(proc.stdout), {"checkpoint": None, "step": None, "skipped": []})
        msg = self.termination()
        self.assertEqual((msg["reason"], msg["exitCode"], msg["finalModel"], msg["stage"]), ("Completed", 0, True, "train"))
        self.assertIsNone(msg["resumeFrom"])
        self.assertTrue(any("Model successfully saved" in l for l in msg["tail"]))
        self.assertFalse(any(ESC in l for l in msg["tail"]))

    def test_exit0_without_final_model_is_3(self):
        proc, _ = self.run_launcher(FAKE_MODE="nofinal")
        self.assertEqual(proc.returncode, 3)
        msg = self.termination()
        self.assertEqual((msg["reason"], msg["exitCode"], msg["finalModel"], msg["childExitCode"]), ("NoFinalModel", 3, False, 0))
        self.assertIn("exited 0 without a final model: interrupted?", msg["message"])
        self.assertTrue(any("exited 0 without a final model" in l for l in msg["tail"]))

    def test_sigint_saved_weights_are_not_a_final_model(self):
        proc, _ = self.run_launcher(FAKE_MODE="sigint_save")
        self.assertEqual(proc.returncode, 3)
        self.assertEqual(self.termination()["reason"], "NoFinalModel")

    def test_non_zero_rank_skips_final_model_check(self):
        json_records.write_json_atomic(resume.decision_path(self.out, 0), {"checkpoint": None, "step": None, "skipped": []})
        proc, _ = self.run_launcher(FAKE_MODE="nofinal", FINETUNE_NODE_RANK=1)
        self.assertEqual(proc.returncode, 0)
        msg = self.termination()
        self.assertEqual((msg["reason"], msg["finalModel"], msg["nodeRank"]), ("Completed", None, 1))

    def test_exit1_oom_tail(self):
        proc, _ = self.run_launcher(FAKE_MODE="oom")
        self.assertEqual(proc.returncode, 1)
        self.assertIn(f"{ESC}[31mtorch.OutOfMemoryError".encode(), proc.stderr)
        msg = self.termination()
        self.assertEqual((msg["reason"], msg["exitCode"]), ("Failed", 1))
        oom = [l for l in msg["tail"] if l.startswith("torch.OutOfMemoryError: CUDA out of memory")]
        self.assertEqual(len(oom), 1, msg["tail"])
        self.assertIn("[W] torchrun noise line 59 while tearing down workers", msg["tail"])

    def test_child_killed_by_signal(self):
        proc, _ = self.run_launcher(FAKE_MODE="selfkill")
        self.assertEqual(proc.returncode, 137)
        msg = self.termination()
        self.assertEqual((msg["reason"], msg["exitCode"], msg["childExitCode"]), ("Signalled", 137, -9))

    def test_command_not_found(self):
        proc, _ = self.run_launcher(cmd=[sys.executable, LAUNCHER_PATH, "--", "/nonexistent/axolotl", "train", "c.yml"])
        self.assertEqual(proc.returncode, 127)
        self.assertEqual(self.termination()["reason"], "Failed")

    def test_no_command_is_usage_error(self):
        proc, _ = self.run_launcher(cmd=[sys.executable, LAUNCHER_PATH, "--"])
        self.assertEqual(proc.returncode, 2)

    def test_unwritable_termination_log_never_crashes(self):
        proc, _ = self.run_launcher(FAKE_MODE="echo", FAKE_EXIT=7, FINETUNE_STAGE="preprocess",
                                    FINETUNE_TERMINATION_LOG="/nonexistent-dir/termination-log")
        self.assertEqual(proc.returncode, 7)
        self.assertIn(b"could not write termination message", proc.stderr)

    def test_preprocess_passes_args_unchanged(self):
        make_checkpoint(self.out, 5)
        proc, _ = self.run_launcher(
            cmd=[sys.executable, LAUNCHER_PATH, "--", sys.executable, self.fake, "preprocess", self.cfgfile],
            FAKE_MODE="echo", FINETUNE_STAGE="preprocess", FINETUNE_REQUIRE_FINAL_MODEL="false",
        )
        self.assertEqual(proc.returncode, 0)
        self.assertIsNone(self.resume_line(proc.stdout))
        self.assertIn(("ARGV " + json.dumps(["preprocess", self.cfgfile])).encode(), proc.stdout)
        msg = self.termination()
        self.assertEqual((msg["stage"], msg["reason"], msg["finalModel"]), ("preprocess", "Completed", None))

    # -- resume ----------------------------------------------------------
    def test_resume_argument_inserted_and_reported(self):
        make_checkpoint(self.out, 5)
        make_checkpoint(self.out, 10, state=False)
        make_checkpoint(self.out, 7, name="checkpoint-final")
        before = tree_snapshot(os.path.join(self.out, "checkpoint-10"))
        proc, _ = self.run_launcher()
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        ckpt5 = os.path.join(self.out, "checkpoint-5")
        resume = self.resume_line(proc.stdout)
        self.assertEqual((resume["checkpoint"], resume["step"]), (ckpt5, 5))
        self.assertEqual(resume["skipped"][0]["path"], os.path.join(self.out, "checkpoint-10"))
        argv_line = [l for l in proc.stdout.decode().splitlines() if l.startswith("ARGV ")][0]
        self.assertEqual(
            json.loads(argv_line[5:]),
            ["train", self.cfgfile, "--resume-from-checkpoint", ckpt5, "--launcher", "torchrun", "--",
             "--nnodes", "1", "--nproc_per_node", "1"],
        )
        msg = self.termination()
        self.assertEqual((msg["resumeFrom"], msg["resumeStep"]), (ckpt5, 5))
        self.assertEqual(tree_snapshot(os.path.join(self.out, "checkpoint-10")), before)
        self.assertTrue(os.path.isfile(os.path.join(self.out, ".finetune", "resume-attempt-0.json")))

    def test_rank1_uses_rank0_decision(self):
        make_checkpoint(self.out, 5)
        make_checkpoint(self.out, 8)
        json_records.write_json_atomic(
            resume.decision_path(self.out, 2),
            {"checkpoint": os.path.join(self.out, "checkpoint-5"), "step": 5, "skipped": []},
        )
        proc, _ = self.run_launcher(FINETUNE_NODE_RANK=1, FINETUNE_ATTEMPT=2, FINETUNE_RESUME_MISMATCH_GRACE_SECONDS=0.3)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        self.assertEqual(self.resume_line(proc.stdout)["checkpoint"], os.path.join(self.out, "checkpoint-5"))

    def test_rank1_resume_timeout(self):
        proc, elapsed = self.run_launcher(FINETUNE_NODE_RANK=1, FINETUNE_RESUME_WAIT_SECONDS=0.5)
        self.assertEqual(proc.returncode, 4)
        self.assertLess(elapsed, 10)
        self.assertTrue(any("FINETUNE_RESUME_TIMEOUT" in l for l in self.termination()["tail"]))

    # -- signals ---------------------------------------------------------
    def test_sigterm_with_dynamic_checkpoint(self):
        make_checkpoint(self.out, 3)
        proc, lines, errs = self.start_async(FAKE_MODE="dyn", FINETUNE_DYNAMIC_CHECKPOINT="true")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = self.wait_async(proc)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 143, b"".join(errs).decode())
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "trigger-seen")), "trigger file was never created")
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "got-sigterm")), "SIGTERM was not forwarded")
        with open(os.path.join(self.tmp, "trigger-seen")) as fh:
            seen = float(fh.read())
        with open(os.path.join(self.tmp, "got-sigterm")) as fh:
            termed = float(fh.read())
        self.assertGreater(termed, seen + 0.25)  # forwarded only after the checkpoint was complete
        self.assertLess(elapsed, 10)  # ... and well before the 20 s save window
        self.assertFalse(os.path.exists(os.path.join(self.out, "axolotl_checkpoint.save")))
        shutdown = [json.loads(l[len(b"FINETUNE_SHUTDOWN "):]) for l in lines if l.startswith(b"FINETUNE_SHUTDOWN ")]
        self.assertEqual(shutdown[0]["savedCheckpoint"], os.path.join(self.out, "checkpoint-7"))
        self.assertTrue(shutdown[0]["triggerCreated"] and shutdown[0]["triggerConsumed"])
        self.assertFalse(shutdown[0]["killed"])
        msg = self.termination()
        self.assertEqual((msg["reason"], msg["exitCode"], msg["signal"]), ("Signalled", 143, "SIGTERM"))
        self.assertIn(b"created " + os.path.join(self.out, "axolotl_checkpoint.save").encode(), b"".join(errs))

    def test_sigterm_dynamic_checkpoint_window_elapses(self):
        # Axolotl never consumes the trigger: forward after grace - 10 s (min 3 s), remove our trigger.
        proc, lines, errs = self.start_async(FAKE_MODE="term", FINETUNE_DYNAMIC_CHECKPOINT="true",
                                             FINETUNE_TERMINATION_GRACE_SECONDS=13)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = self.wait_async(proc)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 143)
        self.assertGreaterEqual(elapsed, 2.8)
        self.assertLess(elapsed, 8)
        self.assertFalse(os.path.exists(os.path.join(self.out, "axolotl_checkpoint.save")))
        self.assertIn(b"no new complete checkpoint within 3s", b"".join(errs))

    def test_sigterm_without_dynamic_checkpoint_forwards_at_once(self):
        proc, lines, errs = self.start_async(FAKE_MODE="term")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = self.wait_async(proc)
        self.assertEqual(rc, 143)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertFalse(os.path.exists(os.path.join(self.out, "axolotl_checkpoint.save")))
        self.assertEqual(self.termination()["reason"], "Signalled")

    def test_sigkill_when_child_ignores_sigterm(self):
        proc, lines, errs = self.start_async(FAKE_MODE="ignore_term", FINETUNE_TERMINATION_GRACE_SECONDS=4)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = self.wait_async(proc)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 137)
        self.assertGreaterEqual(elapsed, 1.8)
        self.assertLess(elapsed, 4.0)  # before the pod's grace period ends
        self.assertIn(b"sending SIGKILL", b"".join(errs))
        shutdown = [json.loads(l[len(b"FINETUNE_SHUTDOWN "):]) for l in lines if l.startswith(b"FINETUNE_SHUTDOWN ")]
        self.assertTrue(shutdown[0]["killed"])

    def grandchild_pid(self):
        with open(os.path.join(self.tmp, "grandchild")) as fh:
            return int(fh.read())

    @staticmethod
    def alive(pid, wait=3.0):
        """True if pid is still a live (non-zombie) process after up to ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while True:
            try:
                with open(f"/proc/{pid}/stat", "rb") as fh:
                    state = fh.read().rsplit(b")", 1)[1].split()[0]
                if state in (b"Z", b"X"):
                    return False
            except OSError:
                return False
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.05)

    @unittest.skipUnless(os.path.isdir("/proc"), "needs /proc")
    def test_sigkill_reaches_workers_in_their_own_sessions(self):
        proc, lines, errs = self.start_async(FAKE_MODE="tree", FINETUNE_TERMINATION_GRACE_SECONDS=4)
        gc = self.grandchild_pid()
        self.addCleanup(processes.kill_pids, [gc])
        self.assertTrue(self.alive(gc, wait=0))
        proc.send_signal(signal.SIGTERM)
        rc = self.wait_async(proc)
        self.assertEqual(rc, 137)
        self.assertFalse(self.alive(gc), "grandchild in its own session survived the SIGKILL escalation")

    @unittest.skipUnless(os.path.isdir("/proc"), "needs /proc")
    def test_orphan_holding_output_does_not_hang_the_launcher(self):
        t0 = time.monotonic()
        proc = subprocess.Popen(self.command(), env=self.env(FAKE_MODE="orphan"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        # read until the launcher itself exits (the orphan keeps our copy of the pipe open otherwise)
        rc = proc.wait(20)
        elapsed = time.monotonic() - t0
        gc = self.grandchild_pid()
        self.addCleanup(processes.kill_pids, [gc])
        proc.stdout.close()
        proc.stderr.close()
        self.assertEqual(rc, 0)
        self.assertLess(elapsed, 10)
        self.assertFalse(self.alive(gc))
        self.assertEqual(self.termination()["reason"], "Completed")

    # -- progress --------------------------------------------------------
    def start_server(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
        server.posts = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server

    def test_progress_posts(self):
        server = self.start_server()
        token_file = os.path.join(self.tmp, "token")
        write(token_file, b"token-one\n")
        url = f"http://127.0.0.1:{server.server_address[1]}/progress"
        proc, elapsed = self.run_launcher(
            FAKE_MODE="progress", FINETUNE_PROGRESS_URL=url, FINETUNE_PROGRESS_TOKEN_FILE=token_file,
            FINETUNE_PROGRESS_INTERVAL_SECONDS=0.5, FAKE_TOKEN_FILE=token_file, FAKE_STEP_SLEEP=0.05,
            http_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",  # must be ignored
        )
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        posts = server.posts
        self.assertGreaterEqual(len(posts), 2)
        # rate limit: non-final posts at least ~interval apart; at most one per interval (+ the final one)
        regular = [p for p in posts if not p["body"]["final"]]
        gaps = [b["t"] - a["t"] for a, b in zip(regular, regular[1:])]
        self.assertTrue(all(g >= 0.45 for g in gaps), gaps)
        self.assertLessEqual(len(regular), int(elapsed / 0.5) + 2)
        self.assertTrue(all(p["ctype"] == "application/json" for p in posts))
        self.assertEqual(posts[0]["auth"], "Bearer token-one")
        self.assertEqual(posts[-1]["auth"], "Bearer token-two")  # token file re-read on each post
        final = posts[-1]["body"]
        self.assertTrue(final["final"])
        self.assertEqual(sum(1 for p in posts if p["body"]["final"]), 1)
        self.assertEqual((final["step"], final["totalSteps"]), (40, 40))
        self.assertAlmostEqual(final["loss"], 1.6)
        self.assertEqual(final["evalLoss"], 1.75)
        self.assertEqual(final["learningRate"], 2e-05)
        self.assertEqual(final["gradNorm"], 0.5)
        self.assertEqual(final["epoch"], 1.0)
        self.assertEqual(final["tokensPerSecondPerGpu"], 1500.5)
        self.assertEqual(final["etaSeconds"], 0)
        self.assertEqual((final["exitCode"], final["reason"], final["finalModel"], final["phase"]), (0, "Completed", True, "completed"))
        self.assertEqual((final["stage"], final["attempt"], final["nodeRank"]), ("train", 0, 0))
        self.assertEqual(final["checkpoints"], [{"step": 20, "path": os.path.join(self.out, "checkpoint-20"), "complete": True}])
        self.assertIn("timestamp", final)

    def test_progress_only_on_rank0(self):
        server = self.start_server()
        json_records.write_json_atomic(resume.decision_path(self.out, 0), {"checkpoint": None, "step": None, "skipped": []})
        proc, _ = self.run_launcher(FAKE_MODE="progress", FAKE_STEP_SLEEP=0.005, FINETUNE_NODE_RANK=1,
                                    FINETUNE_PROGRESS_URL=f"http://127.0.0.1:{server.server_address[1]}/")
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(server.posts, [])

    def test_dead_progress_endpoint_does_not_slow_the_child(self):
        # A black hole: accepts TCP connections (kernel backlog) but never answers.
        hole = socket.socket()
        hole.bind(("127.0.0.1", 0))
        hole.listen(1)
        self.addCleanup(hole.close)
        url = f"http://127.0.0.1:{hole.getsockname()[1]}/progress"
        proc, elapsed = self.run_launcher(FAKE_MODE="spam", FINETUNE_PROGRESS_URL=url,
                                          FINETUNE_PROGRESS_INTERVAL_SECONDS=0.1,
                                          FINETUNE_PROGRESS_TOKEN_FILE=os.path.join(self.tmp, "missing-token"))
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        with open(os.path.join(self.tmp, "child-elapsed")) as fh:
            child_elapsed = float(fh.read())
        self.assertLess(child_elapsed, 3.0)
        self.assertLess(elapsed, child_elapsed + 8.0)  # bounded final post, not one 2 s timeout per line
        self.assertEqual(proc.stdout.count(b"{'loss': "), 4000)  # nothing dropped
        self.assertIn(b"progress report failed", proc.stderr)
        self.assertLessEqual(proc.stderr.count(b"progress report failed"), 2)  # logged once in a while

    def test_refused_progress_endpoint(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens: connection refused
        proc, elapsed = self.run_launcher(FAKE_MODE="progress", FAKE_STEP_SLEEP=0.005,
                                          FINETUNE_PROGRESS_URL=f"http://127.0.0.1:{port}/")
        self.assertEqual(proc.returncode, 0)
        self.assertLess(elapsed, 8)
        self.assertEqual(self.termination()["reason"], "Completed")


if __name__ == "__main__":
    unittest.main()


# What axolotl 0.18.0's `axolotl inference` prints (axolotl/cli/inference.py do_inference and get_multi_line_input):
# a separator, the banner, a separator, the prompt read from stdin until end of input, a separator, TextStreamer's
# prompt + generation, a separator, the whole decoded sequence, then the next round finds stdin empty and returns.
FAKE_INFERENCE = r'''
import os, sys
sep = "=" * 80
print("[2026-12-01 20:00:00,000] [INFO] [axolotl.cli.config:100] [PID:1] [RANK:0] loading model")
print(sep)
print("Give me an instruction (Ctrl + D to submit): ")
print(sep)
instruction = "".join(sys.stdin)
if os.environ.get("FAKE_FAIL"):
    sys.stderr.write("ImportError: FlashAttention2 has been toggled on, but it cannot be used due to the following error: the package for FlashAttention2 doesn't seem to be installed.\n")
    sys.exit(1)
prompt = "<s>[INST] " + instruction.strip() + " [/INST]"
gen = os.environ.get("FAKE_ANSWER", "The sea is wide.") + ("</s>" if not os.environ.get("FAKE_NO_EOS") else "")
print(sep)
print(prompt + gen)
print(sep)
print(prompt + gen)
print(sep)
print("Give me an instruction (Ctrl + D to submit): ")
print(sep)
'''


class SmokeTestStageTest(TmpDirCase):
    def setUp(self):
        super().setUp()
        self.fake = os.path.join(self.tmp, "fake_inference.py")
        write(self.fake, FAKE_INFERENCE.encode())
        self.term_log = os.path.join(self.tmp, "termination-log")
        self.answers = os.path.join(self.tmp, "smoke-test", "answers.json")
        write(os.path.join(self.out, "tokenizer_config.json"), json.dumps(
            {"eos_token": "</s>", "bos_token": {"content": "<s>"}, "added_tokens_decoder": {"2": {"content": "[INST]", "special": True}, "3": {"content": "[/INST]", "special": True}}}).encode())

    def run_smoke(self, prompts, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FINETUNE_", "FAKE_"))}
        env.update({"FINETUNE_STAGE": "smoke", "FINETUNE_OUTPUT_DIR": self.out, "FINETUNE_TERMINATION_LOG": self.term_log,
                    "FINETUNE_SMOKE_PROMPTS": json.dumps(prompts), "FINETUNE_SMOKE_ANSWERS_FILE": self.answers})
        env.update(extra)
        proc = subprocess.run([sys.executable, LAUNCHER_PATH, "--", sys.executable, self.fake, "inference", "cfg.yml"],
                              env=env, capture_output=True, timeout=30)
        with open(self.term_log, "rb") as fh:
            return proc, json.loads(fh.read())

    def test_one_process_per_prompt_answers_in_file_and_summary(self):
        proc, term = self.run_smoke(["Say something about the sea.", "And the sky?"])
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        self.assertEqual((term["stage"], term["exitCode"], term["reason"]), ("smoke", 0, "Completed"))
        answers = term["smoke"]["answers"]
        self.assertEqual([a["prompt"] for a in answers], ["Say something about the sea.", "And the sky?"])
        self.assertEqual([a["answer"] for a in answers], ["The sea is wide."] * 2, "special tokens and the prompt removed")
        self.assertEqual([a["stopped"] for a in answers], [True, True])
        self.assertEqual(term["smoke"]["file"], self.answers)
        with open(self.answers) as fh:
            self.assertEqual(json.load(fh)["answers"][0]["answer"], "The sea is wide.")
        self.assertIn(b"The sea is wide.", proc.stdout, "the output still reaches the pod log")

    def test_no_eos_and_long_answers_are_truncated_in_the_summary_only(self):
        proc, term = self.run_smoke(["p"] * 8, FAKE_NO_EOS="1", FAKE_ANSWER="x" * 5000)
        self.assertEqual(proc.returncode, 0)
        self.assertLessEqual(os.path.getsize(self.term_log), 4096)
        a = term["smoke"]["answers"][0]
        self.assertEqual((a["stopped"], a["chars"], len(a["answer"])), (False, 5000, smoke.SMOKE_ANSWER_CHARS))
        with open(self.answers) as fh:
            self.assertEqual(len(json.load(fh)["answers"][0]["answer"]), 5000)
        # In full on one log line too, for the operator's answers ConfigMap.
        lines = [l for l in proc.stdout.decode().splitlines() if l.startswith("FINETUNE_SMOKE_ANSWERS ")]
        self.assertEqual(len(lines), 1)
        logged = json.loads(lines[0][len("FINETUNE_SMOKE_ANSWERS "):])
        self.assertEqual([len(x["answer"]) for x in logged["answers"]], [5000] * 8)
        self.assertEqual([x["stopped"] for x in logged["answers"]], [False] * 8)

    def test_a_failing_run_fails_the_stage_with_its_tail(self):
        proc, term = self.run_smoke(["p"], FAKE_FAIL="1")
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(term["reason"], "Failed")
        self.assertNotIn("smoke", term)
        self.assertTrue(any("FlashAttention2 has been toggled on" in line for line in term["tail"]))

    def test_parse_without_a_known_eos(self):
        out = "\n".join(["=" * 80, smoke.INFERENCE_BANNER, "=" * 80, "=" * 80, "Hi there", "=" * 80, "Hi there", "=" * 80])
        self.assertEqual(smoke.parse_inference_output(out, "Hi"), {"answer": "there", "stopped": None})

    def test_sigterm_ends_the_running_prompt_and_the_stage(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FINETUNE_", "FAKE_"))}
        env.update({"FINETUNE_STAGE": "smoke", "FINETUNE_OUTPUT_DIR": self.out, "FINETUNE_TERMINATION_LOG": self.term_log,
                    "FINETUNE_SMOKE_PROMPTS": json.dumps(["p"])})
        sleeper = os.path.join(self.tmp, "sleeper.py")
        started = os.path.join(self.tmp, "started")
        write(sleeper, f"import sys, time\nsys.stdin.read()\nopen({started!r}, 'w').close()\ntime.sleep(60)\n".encode())
        proc = subprocess.Popen([sys.executable, LAUNCHER_PATH, "--", sys.executable, sleeper], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not os.path.exists(started) and time.monotonic() < deadline:  # the prompt was read: the child is running
            time.sleep(0.05)
        self.assertTrue(os.path.exists(started))
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        self.assertNotEqual(proc.returncode, 0)
        with open(self.term_log) as fh:
            self.assertEqual(json.load(fh)["reason"], "Signalled")


# --------------------------------------------------------------------------
# Preprocess: the model download into the shared cache
# --------------------------------------------------------------------------


class PrefetchTest(TmpDirCase):
    """prefetch_model runs PREFETCH_CODE with this Python; a stand-in huggingface_hub records the call (no network)."""

    def prefetch(self, snapshot_download_body: str, pending=(), **env_overrides):
        write(os.path.join(self.tmp, "hub", "huggingface_hub.py"),
              "import json, os, sys, time\ndef snapshot_download(**kw):\n" + textwrap.indent(snapshot_download_body, "    "))
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.path.join(self.tmp, "hub"), "HF_HOME": self.out, **env_overrides}
        cfg = env_config.Config({"FINETUNE_STAGE": "preprocess", "FINETUNE_PREFETCH_MODEL": "org/model", "FINETUNE_PREFETCH_REVISION": "v1"})
        logs = []
        return prefetch.prefetch_model(cfg, env, logs.append, collections.deque(pending)), logs

    def test_downloads_the_configured_model_and_revision(self):
        record = os.path.join(self.tmp, "call.json")
        ok, logs = self.prefetch(f"json.dump(kw, open({record!r}, 'w'))\nreturn '/cache/org/model'\n")
        self.assertTrue(ok)
        with open(record) as fh:
            call = json.load(fh)
        self.assertEqual((call["repo_id"], call["revision"], call["ignore_patterns"]), ("org/model", "v1", ["original/*"]))
        self.assertIn("downloading org/model@v1", logs[0])
        self.assertIn("org/model is in the cache", logs[-1])

    def test_a_failed_download_is_logged_and_preprocessing_goes_on(self):
        ok, logs = self.prefetch("raise SystemExit(1)  # as a failed download exits\n")
        self.assertTrue(ok)
        self.assertIn("could not download org/model (exit 1", logs[-1])

    def test_a_signal_stops_the_download(self):
        ok, logs = self.prefetch("time.sleep(60)\n", pending=[signal.SIGTERM])
        self.assertFalse(ok)
        self.assertIn("SIGTERM received while downloading org/model; stopped", logs[-1])

    def test_offline_skips_the_download(self):
        self.assertEqual(self.prefetch("raise SystemExit(9)\n", HF_HUB_OFFLINE="1"), (True, []))


# --------------------------------------------------------------------------
# The shipped folder: every module, one ConfigMap key each
# --------------------------------------------------------------------------


def shipped_modules() -> list:
    """What src/trainer/source.ts ships: every .py file of the launcher folder."""
    return sorted(f for f in os.listdir(LAUNCHER_DIR) if f.endswith(".py"))


class ShippedFolderTest(TmpDirCase):
    def test_every_module_imports_only_the_standard_library_and_its_siblings(self):
        siblings = {f[:-3] for f in shipped_modules()}
        for name in shipped_modules():
            with open(os.path.join(LAUNCHER_DIR, name), encoding="utf-8") as fh:
                tree = ast.parse(fh.read(), name)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    imported = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    self.assertEqual(node.level, 0, f"{name}: relative imports fail in a script's folder (no package)")
                    imported = [node.module]
                else:
                    continue
                for module in imported:
                    top = module.split(".")[0]
                    self.assertTrue(top in siblings or top in sys.stdlib_module_names, f"{name} imports {module}: not stdlib")

    def test_no_module_shadows_a_standard_library_module(self):
        # The launcher's folder is first on its sys.path: a sibling named like a stdlib module would replace it.
        for name in shipped_modules():
            self.assertNotIn(name[:-3], sys.stdlib_module_names | {"sitecustomize", "usercustomize"}, name)

    def mount(self, files: list) -> str:
        """The files as a kubelet mounts ConfigMap keys: symlinks to ..data/<key>, ..data a symlink to a dated folder."""
        folder = os.path.join(self.tmp, "etc-finetune-launcher")
        dated = os.path.join(folder, "..2026_01_01_00_00_00.1")
        os.makedirs(dated)
        for name in files:
            shutil.copy(os.path.join(LAUNCHER_DIR, name), dated)
            os.symlink(os.path.join("..data", name), os.path.join(folder, name))
        os.symlink(os.path.basename(dated), os.path.join(folder, "..data"))
        return folder

    def run_mounted(self, folder: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FINETUNE_", "FAKE_"))}
        env.update({"FINETUNE_STAGE": "merge", "FINETUNE_TERMINATION_LOG": os.path.join(self.tmp, "termination-log"),
                    "PYTHONDONTWRITEBYTECODE": "1"})
        cmd = [sys.executable, os.path.join(folder, "launcher.py"), "--", sys.executable, "-c", "print('merged')"]
        return subprocess.run(cmd, env=env, cwd=self.tmp, capture_output=True, timeout=60)

    def test_the_entry_runs_from_the_mounted_folder(self):
        proc = self.run_mounted(self.mount(shipped_modules()))
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        self.assertIn(b"merged", proc.stdout)
        with open(os.path.join(self.tmp, "termination-log"), encoding="utf-8") as fh:
            self.assertEqual(json.load(fh)["reason"], "Completed")

    def test_a_missing_module_is_named(self):
        proc = self.run_mounted(self.mount([f for f in shipped_modules() if f != "checkpoints.py"]))
        self.assertEqual(proc.returncode, 5)
        self.assertIn("cannot load the launcher's modules", proc.stderr.decode())
        self.assertIn("checkpoints", proc.stderr.decode())

#!/usr/bin/env python3
"""finetune-operator trainer launcher: the entry point.

Shipped to every trainer pod with its sibling modules, one key each of one immutable ConfigMap mounted as one
folder, and run as

    python3 /etc/finetune-launcher/launcher.py -- <command...>

Python puts the script's folder first on sys.path, so the siblings import by their plain names. The modules:
env_config (this environment contract), supervisor (runs, signals and summarises the stage's command),
child_output (passes the output through), termination (tail and termination message), checkpoints (which are
complete), resume (the decision shared across nodes), progress_parse / progress_report (progress from the output,
POSTed), prefetch (the preprocess stage's model download), smoke (the smoke-test stage), processes, ansi,
json_records. None is named like a standard-library module, which it would shadow.

It wraps each stage's command (preprocess, train, smoke, merge) and:

* train only: picks the newest COMPLETE checkpoint (node rank 0 decides, the
  other ranks read the decision from the shared output dir) and inserts
  ``--resume-from-checkpoint <path>`` after the config path;
* runs the command as a child process in its own process group, passing its
  stdout/stderr through unchanged while keeping a bounded tail;
* on SIGTERM asks Axolotl for a checkpoint through the dynamic-checkpoint
  trigger file, forwards SIGTERM, and SIGKILLs before the grace period ends;
* checks that a train run that exited 0 really left a final model;
* writes a JSON termination message (<= 4096 bytes) for the operator;
* parses training progress from the child's output and POSTs it (rank 0);
* smoke only: runs ``axolotl inference`` once per prompt (it reads one prompt
  until end of input), feeding the prompt on stdin, and records the answers.

Standard library only (every module); Python 3.10+.

Contract
--------
argv: ``launcher.py -- <command...>`` (the leading ``--`` is optional).
Environment (set by the operator):
  FINETUNE_STAGE                 preprocess | train | smoke | merge
  FINETUNE_SMOKE_PROMPTS         smoke: JSON list of prompts; FINETUNE_SMOKE_ANSWERS_FILE: where the answers go (JSON)
  FINETUNE_OUTPUT_DIR            absolute output_dir on the shared (RWX) filesystem
  FINETUNE_ATTEMPT               attempt number (default 0)
  FINETUNE_NODE_RANK/NNODES      node rank (default 0) / node count (default 1)
  FINETUNE_DYNAMIC_CHECKPOINT    "true": on SIGTERM create the dynamic-checkpoint trigger file first:
                                 <output_dir>/<FINETUNE_DYNAMIC_CHECKPOINT_TRIGGER or axolotl_checkpoint.save>
  FINETUNE_TERMINATION_GRACE_SECONDS  the pod's terminationGracePeriodSeconds (default 30)
  FINETUNE_REQUIRE_FINAL_MODEL   "true": exit 0 without a final model -> exit 3 (node rank 0)
  FINETUNE_PREFETCH_MODEL / _REVISION   preprocess: snapshot_download this Hub model into HF_HOME first
  FINETUNE_PROGRESS_URL / _TOKEN_FILE / _CA_FILE   optional progress endpoint (rank 0, train)
  FINETUNE_TERMINATION_LOG       default /dev/termination-log
  Optional tuning: FINETUNE_RESUME_WAIT_SECONDS (600), FINETUNE_RESUME_MISMATCH_GRACE_SECONDS (60),
  FINETUNE_RESUME_POLL_SECONDS (0.5), FINETUNE_SIGTERM_SAFETY_SECONDS (10),
  FINETUNE_PROGRESS_INTERVAL_SECONDS (5), FINETUNE_DYNAMIC_CHECKPOINT_TRIGGER (the config's
  dynamic_checkpoint.trigger_file_path, relative to output_dir).
stdout lines (one JSON object each):
  FINETUNE_RESUME {"checkpoint": path|null, "step": int|null, "skipped": [{"path", "reason"}]}  (train)
  FINETUNE_SHUTDOWN {"signal", "trigger", "triggerCreated", "triggerConsumed", "savedCheckpoint",
                     "forwardedAfterSeconds", "killed"}                                       (after SIGTERM)
Own diagnostics go to stderr prefixed "[finetune-launcher]".
Exit code: the child's (signal N -> 128+N); 3 = exited 0 without a final model; 4 = node rank 0's
resume decision never appeared; 2 = no command; 126/127 = command not executable / not found.
Termination message (JSON, <= 4096 bytes): stage, exitCode, attempt, resumeFrom, resumeStep,
finalModel (bool, null when not checked), reason (Completed | Failed | Signalled | NoFinalModel),
message, childExitCode, signal, nodeRank, [finalModelPath], [smoke {answers [{prompt, answer, stopped, chars}], file}
(prompts and answers truncated)], [workerSignal, workerExitCode] (the root cause in
torchrun's failure report: torchrun exits 1 even when a worker was SIGKILLed), tail (last ~40 ANSI-free lines plus
up to 10 older error lines; oldest dropped first to fit).
Progress POST body (JSON): stage, attempt, nodeRank, resumeFrom, resumeStep, phase, step,
totalSteps, epoch, loss, evalLoss, learningRate, gradNorm, tokensPerSecond, tokensPerSecondPerGpu,
etaSeconds, trainLoss, checkpoints [{"step", "path", "complete"}], final, timestamp, and on the
final POST also exitCode, reason, finalModel.

Checkpoint layouts: what checkpoints.py and the shutdown rely on
------------------------------------------------------------------
Read from the upstream sources (huggingface/transformers ``trainer.py``,
huggingface/accelerate ``utils/fsdp_utils.py``, deepspeedai/DeepSpeed
``runtime/engine.py``, pytorch ``distributed/checkpoint/filesystem.py``,
axolotl-ai-cloud/axolotl ``train.py`` and ``utils/callbacks/dynamic_checkpoint.py``):

* ``Trainer._save_checkpoint`` writes ``<output_dir>/checkpoint-<global_step>``
  (``PREFIX_CHECKPOINT_DIR = "checkpoint"``) in this order: ``save_model``
  (weights, config, tokenizer, ``training_args.bin``), then, unless
  ``save_only_model``, ``_save_optimizer_and_scheduler`` + scaler + RNG state,
  and LAST ``trainer_state.json`` (``TrainerState.save_to_json``, contains
  ``global_step``).  A checkpoint whose ``trainer_state.json`` is missing or
  not valid JSON was cut off (or is still being written).
* ``Trainer._save`` logs ``"Saving model checkpoint to {output_dir}"`` at the
  START of a save (logger.info; invisible when transformers logs at WARNING).
* Weights (``save_pretrained``): ``adapter_model.safetensors`` /
  ``adapter_model.bin`` (PEFT), ``model.safetensors`` / ``pytorch_model.bin``,
  or shards ``model-0000i-of-0000n.safetensors`` listed in the ``weight_map`` of
  ``model.safetensors.index.json`` (``pytorch_model.bin.index.json`` for .bin).
* Optimizer (``_save_optimizer_and_scheduler``): plain/DDP ``optimizer.pt`` and
  ``scheduler.pt``.  ``_load_optimizer_and_scheduler`` only restores the
  optimizer when ``scheduler.pt`` is ALSO present (except DeepSpeed), so a
  checkpoint without ``scheduler.pt`` is treated as incomplete.
* FSDP (accelerate ``save_fsdp_model`` / ``save_fsdp_optimizer``):
  FULL_STATE_DICT -> ``pytorch_model_fsdp.bin`` (``pytorch_model_fsdp_<i>.bin``)
  and ``optimizer.bin`` (``optimizer_<i>.bin``); LOCAL_STATE_DICT ->
  ``pytorch_model_fsdp_rank<r>.bin``; SHARDED_STATE_DICT -> directories
  ``pytorch_model_fsdp_0/`` and ``optimizer_0/`` written with
  ``torch.distributed.checkpoint`` whose ``FileSystemWriter.finish`` writes
  ``.metadata`` last (tmp file + rename): a sharded dir without ``.metadata`` is
  incomplete.
* DeepSpeed (``DeepSpeedEngine.save_checkpoint(checkpoint-N)``): tag
  ``global_step<N>/`` with ``mp_rank_XX_model_states.pt`` (ZeRO-3:
  ``zero_pp_rank_<dp>_mp_rank_XX_model_states.pt``) and
  ``[bf16_]zero_pp_rank_<dp>_mp_rank_XX_optim_states.pt``; rank 0 writes the
  ``latest`` file (content: the tag) after all of its own files.  ZeRO stage 0
  (optimizer inside model_states, no ``*optim_states.pt``) is not accepted.
* Axolotl's ``determine_resume_checkpoint`` (auto_resume_from_checkpoints)
  picks the numerically highest ``checkpoint-*`` without checking it (and
  ``int()`` fails on non-numeric suffixes), hence this launcher.
* Axolotl's SIGINT handler (local rank 0) calls ``save_pretrained(output_dir)``
  and exits 0: weights in output_dir after exit 0 are not proof of completion;
  the launcher also uses the log lines "Starting trainer...", "Training
  completed! Saving trained model to ..." and "Model successfully saved to ...".
* ``DynamicCheckpointCallback``: Axolotl's rank 0 checks
  ``<output_dir>/axolotl_checkpoint.save`` every ``check_interval`` steps,
  deletes it when found and sets ``control.should_save`` (the save happens
  after the trigger disappears).
"""

from __future__ import annotations

import sys
import traceback

try:
    from supervisor import EXIT_LAUNCHER_ERROR, LOG_PREFIX, Launcher
except ImportError as _missing:  # a module missing beside this file: say which, not only a traceback
    sys.stderr.write(f"[finetune-launcher] cannot load the launcher's modules from {sys.path[0]}: {_missing}\n")
    sys.exit(5)  # EXIT_LAUNCHER_ERROR


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        launcher = Launcher(argv)
    except Exception as exc:  # noqa: BLE001
        sys.stderr.write(f"{LOG_PREFIX} failed to initialise: {exc}\n")
        return EXIT_LAUNCHER_ERROR
    try:
        return launcher.run()
    except Exception as exc:  # noqa: BLE001 - last resort: keep the child's result if we have it
        launcher.log(f"internal error: {type(exc).__name__}: {exc}")
        sys.stderr.write(traceback.format_exc())
        child = launcher.child
        rc = None
        if child is not None:
            try:
                rc = child.wait()
            except Exception:  # noqa: BLE001
                rc = None
        code = EXIT_LAUNCHER_ERROR if rc is None else (128 - rc if rc < 0 else rc)
        try:
            return launcher.finish(code, rc, reason="Failed" if code else "Completed", message="launcher internal error")
        except Exception:  # noqa: BLE001
            return code


if __name__ == "__main__":
    sys.exit(main())

"""Training: `axolotl train` on the rendered config, resumable, publishing the adapter only when complete.

axolotl writes checkpoints and the final adapter into the config's `output_dir`, our work folder. A rerun
after an interruption resumes from the newest complete checkpoint there, if the config is unchanged. Only
when axolotl has finished are the adapter files moved, by one rename, to the results folder: a folder that
exists there is always a complete adapter.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from mindupload.errors import UserError
from mindupload.files import atomic_dir
from mindupload.training import axolotl_config as train_config

log = logging.getLogger(__name__)

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
# Copied beside the adapter when axolotl wrote them: loading needs only the adapter and the base model.
EXTRA_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")
MARKER = "mindupload-run.json"  # in the work folder: which config its checkpoints belong to
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def run(axolotl_config: str | Path, output_dir: str | Path, cfg: dict | None = None, identity=None) -> Path:
    """Train (or resume) and publish the adapter at `output_dir`; returns it. `cfg`, when given, is the
    config rendered on this machine and replaces the file's; with `identity` (render.Identity) the adapter's
    tokenizer gets the chat template of the training layout."""
    cfg = cfg if cfg is not None else train_config.read(axolotl_config)
    final = Path(output_dir).resolve()
    work = Path(cfg["output_dir"]).resolve()
    check_inputs(cfg, work, final)
    resume = prepare_work_dir(cfg, work)
    run_cfg = {**cfg, "resume_from_checkpoint": str(resume)} if resume else cfg
    run_path = work / "axolotl.yml"
    train_config.write(run_cfg, run_path)
    _remove_stale_adapter(work)
    launch(run_path, cfg)
    publish(work, final, cfg, resume, identity)
    shutil.rmtree(work)  # checkpoints of a finished run: nothing left to resume
    log.info("adapter written to %s", final)
    return final


# ---------------------------------------------------------------- before axolotl starts


def check_inputs(cfg: dict, work: Path, final: Path) -> None:
    """Everything that would otherwise fail minutes into axolotl's start-up, as one sentence."""
    from mindupload.training.check import read_examples

    train_config.resolve_base_model(str(cfg["base_model"]))
    local = [d for d in (*cfg.get("datasets", []), *cfg.get("test_datasets", [])) if train_config.is_local_dataset(d)]
    for dataset in local:  # a Hub dataset is pinned by revision in the config; axolotl fetches it
        if not Path(dataset["path"]).is_file():
            raise UserError(f"{dataset['path']}: no such dataset file. Build it with `snakemake dataset`.")
        read_examples(dataset["path"], "train")  # a file that lost its `segments` stops here, by line
    if final == work or work in final.parents or final in work.parents:
        raise UserError(f"{final}: the adapter folder must be outside axolotl's output_dir {work} and not hold it.")
    cpu_config, gpus = train_config.is_cpu_config(cfg), gpu_count()
    if not cpu_config and gpus == 0:
        raise UserError(
            "the axolotl config was rendered for a GPU, and this machine has none: set `training.device: cpu` "
            "(or `auto`) and render it again, or train on a GPU machine."
        )
    if cpu_config and gpus:
        log.warning(
            "the axolotl config has the CPU settings (fp32, no flash attention) but a GPU is here: "
            "set `training.device: cuda` for the GPU settings"
        )


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def fingerprint(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()


def prepare_work_dir(cfg: dict, work: Path) -> Path | None:
    """The checkpoint to resume from, if the work folder holds an interrupted run of this same config;
    a run of another config is cleared away (its checkpoints would not fit)."""
    marker = work / MARKER
    if work.exists() and any(work.iterdir()):
        if not marker.is_file():
            raise UserError(
                f"{work}: axolotl's output_dir holds files mind-upload did not write; choose an empty folder."
            )
        if json.loads(marker.read_text(encoding="utf-8")).get("config") != fingerprint(cfg):
            log.info("the config changed since the run in %s: starting over", work)
            shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"config": fingerprint(cfg)}) + "\n", encoding="utf-8")
    resume = newest_checkpoint(work)
    if resume:
        log.info("resuming from %s", resume.name)
    return resume


def newest_checkpoint(work: Path) -> Path | None:
    """The newest checkpoint that was written to the end (the trainer state is saved last)."""
    complete = [
        (int(m[1]), path)
        for path in work.iterdir()
        if (m := CHECKPOINT.match(path.name))
        and (path / "trainer_state.json").is_file()
        and (path / "adapter_model.safetensors").is_file()
    ]
    return max(complete)[1] if complete else None


def _remove_stale_adapter(work: Path) -> None:
    """axolotl writes the final adapter at the very end: one left from before must not pass for it."""
    for name in ADAPTER_FILES:
        (work / name).unlink(missing_ok=True)


# ---------------------------------------------------------------- running axolotl


def launch(run_path: Path, cfg: dict) -> None:
    gpus = gpu_count()
    launcher = "accelerate" if gpus > 1 else "python"  # python: no accelerate start-up for one device
    command = [sys.executable, "-m", "axolotl.cli.main", "train", str(run_path), "--launcher", launcher]
    log.info("running %s", " ".join(command))
    result = subprocess.run(command, env=_environment(cfg), stdout=_stderr(), check=False)
    if result.returncode != 0:
        raise UserError(
            f"axolotl train failed (exit status {result.returncode}); its messages are above. "
            "Run the same command again to resume from the last checkpoint."
        )


def _stderr():
    """axolotl logs to stdout: send it where our own log goes (rules capture stderr), when we can."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _environment(cfg: dict) -> dict[str, str]:
    env = {**os.environ, **train_config.axolotl_environ(cfg)}
    bindir = str(Path(sys.executable).parent)  # accelerate, when launched, comes from this environment
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    if not cfg.get("wandb_project"):
        env.pop("WANDB_API_KEY", None)  # nothing to log to: do not hand the key on
    return env


# ---------------------------------------------------------------- publishing


def publish(work: Path, final: Path, cfg: dict, resumed: Path | None, identity=None) -> None:
    """Copy the finished adapter into a temporary folder beside `final`, then rename it into place; with
    `identity`, its tokenizer (axolotl's copy, else the base model's) with our chat template goes beside it."""
    missing = [name for name in ADAPTER_FILES if not (work / name).is_file()]
    if missing:
        raise UserError(f"axolotl finished without writing {', '.join(missing)} in {work}; see its messages above.")
    with atomic_dir(final) as tmp:
        for name in (*ADAPTER_FILES, *EXTRA_FILES):
            if (work / name).is_file():
                shutil.copy2(work / name, tmp / name)
        state = _trainer_state(work)
        if state:
            (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        summary = training_summary(cfg, state, resumed)
        (tmp / "training.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        if identity is not None:
            from mindupload.model.tokenizer import save_with_chat_template

            has_tokenizer = (tmp / "tokenizer_config.json").is_file()
            try:  # a finished training never fails for want of a template: the adapter works without one
                save_with_chat_template(tmp if has_tokenizer else cfg["base_model"], identity, tmp)
            except (UserError, OSError, ValueError) as e:
                log.warning("adapter published without a chat template: %s", str(e).splitlines()[0][:300])


def _trainer_state(work: Path) -> dict | None:
    newest = newest_checkpoint(work)
    if newest is None:
        return None
    return json.loads((newest / "trainer_state.json").read_text(encoding="utf-8"))


def training_summary(cfg: dict, state: dict | None, resumed: Path | None) -> dict:
    from mindupload import provenance
    from mindupload.model.tokenizer import identity

    history = (state or {}).get("log_history", [])

    def last(key: str):
        return next((entry[key] for entry in reversed(history) if key in entry), None)

    losses = [entry["loss"] for entry in history if "loss" in entry]  # one per logged step (logging_steps: 1)
    evals = [entry for entry in history if "eval_loss" in entry]
    start = next((entry["eval_loss"] for entry in evals if entry.get("step") == 0), None)
    best = min(evals, key=lambda entry: entry["eval_loss"]) if evals else None
    return {
        "base_model": cfg["base_model"],
        "steps": (state or {}).get("global_step"),
        "epochs": (state or {}).get("epoch"),
        # The mean over every logged step, not the last step's (one batch's) loss.
        "train_loss": sum(losses) / len(losses) if losses else None,
        "last_step_train_loss": last("loss"),
        "eval_loss_at_start": start,  # the base model's, before the first step (axolotl evaluates on start)
        "eval_loss": last("eval_loss"),
        "best_eval_loss": best["eval_loss"] if best else None,
        "best_eval_step": best.get("step") if best else None,
        "resumed_from": resumed.name if resumed else None,
        "device": "cpu" if train_config.is_cpu_config(cfg) else "cuda",
        "provenance": provenance.collect(identity(str(cfg["base_model"]))),
    }

"""Our config -> axolotl's config: rendered from the `training` section, checked with axolotl's own schema on
CPU before anything expensive runs, and written atomically with absolute paths.

The GPU config follows the seed's (bf16, PyTorch's scaled-dot-product attention, which the seed asked for with
`sdp_attention: true`; axolotl's fused LoRA kernels left on); without a GPU the CPU-safe settings replace those,
because the fused kernels allocate on CUDA and fail at step 0. Flash attention (faster on recent GPUs, a separate
package) is one line of `training.axolotl`: `attn_implementation: flash_attention_2`.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import re
from pathlib import Path

import yaml

from mindupload.errors import UserError
from mindupload.model.tokenizer import looks_local

log = logging.getLogger(__name__)

# Every axolotl call gets these: axolotl sends usage telemetry (and error traces) unless told not to.
AXOLOTL_ENV = {"AXOLOTL_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}

CPU_SAFE = {
    "bf16": False,
    "fp16": False,
    "tf32": False,
    "lora_mlp_kernel": False,
    "lora_qkv_kernel": False,
    "lora_o_kernel": False,
    "lora_embedding_kernel": False,
    # No flash attention; sdpa still keeps packed examples from attending to each other (block mask).
    "attn_implementation": "sdpa",
}
GPU_DEFAULTS = {"bf16": "auto", "attn_implementation": "sdpa"}  # the seed's sdp_attention
# axolotl's deprecated spellings of attn_implementation: it refuses them next to attn_implementation.
LEGACY_ATTENTION = (
    "flash_attention",
    "sdp_attention",
    "flex_attention",
    "xformers_attention",
    "sage_attention",
    "eager_attention",
)

# `training.<key>` that are axolotl keys of the same name and meaning.
TRAINING_KEYS = (
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_linear",
    "learning_rate",
    "lr_scheduler",
    "num_epochs",
    "micro_batch_size",
    "gradient_accumulation_steps",
    "warmup_steps",
    "sample_packing",
    "gradient_checkpointing",
    "evals_per_epoch",
    "saves_per_epoch",
)
WORKFLOW = "the workflow (it sets paths and datasets itself)"
# axolotl keys with their own place in our config: the pass-through may not set them a second time.
MANAGED = {
    "base_model": "base_model",
    "sequence_len": "segments.sequence_len",
    "max_steps": "training.max_steps",
    "wandb_project": "training.wandb_project",
    **{key: f"training.{key}" for key in TRAINING_KEYS},
    **dict.fromkeys(("datasets", "test_datasets", "dataset_prepared_path", "output_dir"), WORKFLOW),
    # axolotl's own pushes would skip our private-by-default repos and cards: the `hub` section does them.
    "hub_model_id": "hub.model_repo",
    "push_dataset_to_hub": "hub.dataset_repo",
}
# axolotl keys that log model generations (chat-like text) to wandb: kept off. Replies are read in results/samples.md.
TEXT_LOGGING = ("generate_samples", "eval_table_size")
SECRET_KEY = re.compile(r"(api_key|secret|password|(^|_)token)$")


def sections(config: dict) -> dict:
    """The `training` and `segments` sections of a (possibly partial) config, checked against the config
    schema with their defaults filled in: what `render` needs, from the JSON a rule passes."""
    import jsonschema

    from mindupload.config import _with_defaults, schema

    out = {}
    for name in ("training", "segments"):
        section = dict(config.get(name) or {})
        validator = _with_defaults(jsonschema.Draft202012Validator)(schema()["properties"][name])
        error = jsonschema.exceptions.best_match(validator.iter_errors(section))
        if error is not None:
            where = ".".join([name, *(str(p) for p in error.absolute_path)])
            raise UserError(f"config: {where}: {error.message}")
        out[name] = section
    return out


def render(
    config: dict,
    *,
    base_model: str,
    train_path: str | Path,
    validation_path: str | Path,
    output_dir: str | Path,
    prepared_dir: str | Path,
    device: str = "auto",
    hub_dataset: dict | None = None,
) -> dict:
    """The axolotl config for `config` with its defaults filled in (`sections`, or mindupload.config.validate).
    Paths are made absolute; the datasets must exist (their digest names the prepared-data folder). With
    `hub_dataset` (an upload receipt: repo_id, revision) axolotl reads both splits from that Hub repo, pinned to
    that commit; the local files, the same bytes, still say whether there is a validation split."""
    training = config["training"]
    extra = dict(training["axolotl"])
    _check_pass_through(extra)
    has_validation = _has_examples(validation_path)
    cfg: dict = {
        "base_model": resolve_base_model(base_model),
        "adapter": "lora",
        "datasets": [_hub_dataset(hub_dataset, "train") if hub_dataset else local_dataset(train_path)],
        "dataset_prepared_path": str(_absolute(prepared_dir) / dataset_digest(train_path, validation_path)),
        "output_dir": str(_absolute(output_dir)),
        "sequence_len": config["segments"]["sequence_len"],
        "train_on_inputs": False,  # only the user's own turns are trained (label: true pieces)
        **{key: training[key] for key in TRAINING_KEYS},
        # A small validation split packs into too few bins for axolotl's packed eval, which then refuses.
        "eval_sample_packing": False,
        "logging_steps": 1,
        "generate_samples": False,  # sample generations carry message text into wandb tables
        **_wandb(training["wandb_project"]),
    }
    if has_validation:
        local = local_dataset(validation_path, split="train")  # one local file is a dataset with one split, `train`
        cfg["test_datasets"] = [_hub_dataset(hub_dataset, "validation") if hub_dataset else local]
    if hub_dataset:
        cfg["hf_use_auth_token"] = True  # a private repo: the token from HF_TOKEN or the login, never the config
    if not has_validation or not training["evals_per_epoch"]:
        del cfg["evals_per_epoch"]
    if training["max_steps"]:
        cfg["max_steps"] = training["max_steps"]
    if "warmup_ratio" in extra:  # axolotl takes one or the other: a warm-up given as a share wins
        del cfg["warmup_steps"]
    cfg.update(extra)
    if resolve_device(device) == "cpu":
        _make_cpu_safe(cfg, extra)
    elif not any(extra.get(flag) for flag in LEGACY_ATTENTION):
        cfg.update({k: v for k, v in GPU_DEFAULTS.items() if k not in extra})
    return cfg


def _make_cpu_safe(cfg: dict, extra: dict) -> None:
    overridden = sorted(k for k in (*CPU_SAFE, *LEGACY_ATTENTION) if k in extra and extra[k] != CPU_SAFE.get(k))
    if overridden:
        log.warning("training on CPU: ignoring training.axolotl %s (the CPU-safe settings win)", overridden)
    for flag in LEGACY_ATTENTION:
        cfg.pop(flag, None)
    cfg.update(CPU_SAFE)


def resolve_device(device: str) -> str:
    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"training.device {device!r}: use auto, cpu or cuda.")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def axolotl_environ(cfg: dict) -> dict[str, str]:
    """Environment for an axolotl run of `cfg`: no telemetry; no hub calls when the model and the datasets are
    local (offline machines would otherwise wait on retries); wandb off unless the config names a project."""
    env = dict(AXOLOTL_ENV)
    if cfg.get("dataset_prepared_path"):
        # `datasets` keeps a copy of every JSON file it loads in ~/.cache/huggingface/datasets: our dataset's
        # text, outside the project. Keep it beside the prepared data, where `snakemake forget` finds it.
        env["HF_DATASETS_CACHE"] = str(Path(cfg["dataset_prepared_path"]).parent / "datasets-cache")
    if cfg.get("output_dir"):
        # wandb's run folder (config, console output) would land in the working directory and its caches and
        # staging in your home: keep them beside the training outputs, where `snakemake forget` finds them.
        beside = Path(cfg["output_dir"]).parent
        env |= {"WANDB_DIR": str(beside), "WANDB_CACHE_DIR": str(beside / "wandb-cache")}
        env["WANDB_DATA_DIR"] = str(beside / "wandb-data")
    datasets = [*cfg.get("datasets", []), *cfg.get("test_datasets", [])]
    if Path(str(cfg.get("base_model", ""))).is_absolute() and all(is_local_dataset(d) for d in datasets):
        env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    if not cfg.get("wandb_project"):
        env["WANDB_MODE"] = "disabled"
    return env


def is_cpu_config(cfg: dict) -> bool:
    return all(cfg.get(key) == value for key, value in CPU_SAFE.items())


def resolve_base_model(name: str) -> str:
    """An absolute folder (adapter_config.json keeps it, so a relative one breaks elsewhere) or a hub id
    that can be loaded from here; UserError naming the model and what to do otherwise."""
    if looks_local(name):
        path = Path(name).expanduser().resolve()
        if not (path / "config.json").is_file():
            raise UserError(
                f"base_model {name!r}: no model folder there (no config.json). Point `base_model` at a "
                "Hugging Face model folder or a hub id; the default is built by `snakemake embedded_model`."
            )
        return str(path)
    _check_hub_model(name)
    return name


def _check_hub_model(name: str) -> None:
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name)
    except (OSError, ValueError):
        offline = " (HF_HUB_OFFLINE=1 is set)" if os.environ.get("HF_HUB_OFFLINE") == "1" else ""
        raise UserError(
            f"base_model {name!r}: cannot load it from the Hugging Face hub{offline} and it is not in the "
            "local cache. Download it once where the hub is reachable, or point `base_model` at a local folder."
        ) from None


def dataset_digest(*paths: str | Path) -> str:
    """axolotl names prepared datasets after its config, not the data: without the data's digest in the
    path, a changed dataset would silently reuse the old tokenized one."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            digest.update(Path(path).read_bytes())
        except FileNotFoundError:
            raise UserError(f"{path}: no such dataset file. Build it with `snakemake dataset`.") from None
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _has_examples(path: str | Path) -> bool:
    return Path(path).is_file() and any(line.strip() for line in Path(path).open(encoding="utf-8"))


def local_dataset(path: str | Path, **extra: str) -> dict:
    return {"path": str(_absolute(path)), "ds_type": "json", "type": "input_output", **extra}


def _hub_dataset(receipt: dict, split: str) -> dict:
    return {"path": receipt["repo_id"], "revision": receipt["revision"], "split": split, "type": "input_output"}


def is_local_dataset(dataset: dict) -> bool:
    """Local datasets are rendered as absolute paths; anything else is a Hub repo id."""
    return Path(str(dataset["path"])).is_absolute()


def _absolute(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def _wandb(project: str) -> dict:
    # The key is read from WANDB_API_KEY by wandb itself: it never appears in a config we write.
    return {"wandb_project": project} if project else {"wandb_mode": "disabled"}


def _check_pass_through(extra: dict) -> None:
    for key, value in extra.items():
        if key in MANAGED:
            raise UserError(f"training.axolotl.{key}: set it as `{MANAGED[key]}` instead.")
        if key in TEXT_LOGGING and value:
            raise UserError(
                f"training.axolotl.{key}: it sends generated replies, text in your voice, to wandb; mind-upload keeps "
                "message text out of logs. The `sample_replies` rule writes replies to results/samples.md instead."
            )
        if isinstance(value, str) and SECRET_KEY.search(key):
            raise UserError(
                f"training.axolotl.{key}: secrets do not belong in the config (it is copied to training "
                "machines and into logs); set the matching environment variable instead."
            )
    if extra.get("adapter", "lora") not in ("lora", "qlora"):
        raise UserError("training.axolotl.adapter: mind-upload trains LoRA adapters; use `lora` or `qlora`.")


def config_key(axolotl_key: str) -> str:
    """Where the user sets an axolotl key in our config."""
    where = MANAGED.get(axolotl_key)
    return f"training.axolotl.{axolotl_key}" if where is None or where == WORKFLOW else where


# ---------------------------------------------------------------- validation with axolotl's schema


def validate(cfg: dict, device: str = "auto") -> None:
    """axolotl's own validation, on CPU: unknown keys (which axolotl ignores silently) and bad values both
    raise UserError naming our config key and, for bad values, axolotl's message."""
    os.environ.update(AXOLOTL_ENV)
    model = _input_model(cfg)
    _check_known_keys(cfg, model)
    _run_axolotl_validation(cfg, resolve_device(device))
    _check_names(cfg)


def _input_model(cfg: dict):
    from axolotl.utils.schemas.config import AxolotlInputConfig

    if not cfg.get("plugins"):
        return AxolotlInputConfig
    from axolotl.cli.config import prepare_plugins
    from axolotl.integrations.config import merge_input_args
    from axolotl.utils.dict import DictDefault

    prepare_plugins(DictDefault(cfg))  # plugins add their own keys to the schema
    return merge_input_args()[1]


def known_keys(model) -> set[str]:
    names = set(model.model_fields)
    for field in model.model_fields.values():
        names.update(a for a in (field.alias, field.validation_alias) if isinstance(a, str))
    return names


def _check_known_keys(cfg: dict, model) -> None:
    known = known_keys(model)
    for key in cfg:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise UserError(f"{config_key(key)}: axolotl has no setting `{key}`.{hint}")


def _check_names(cfg: dict) -> None:
    """axolotl types these as free strings and fails only when training starts: check them now."""
    from axolotl.utils.schemas.enums import CustomSupportedOptimizers
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    choices = {
        "optimizer": {o.value for o in (*OptimizerNames, *CustomSupportedOptimizers)},
        "lr_scheduler": {s.value for s in SchedulerType} | {"one_cycle", "rex"},
    }
    for key, names in choices.items():
        value = cfg.get(key)
        if value is not None and value not in names:
            close = difflib.get_close_matches(str(value), names, n=1)
            hint = f" Did you mean `{close[0]}`?" if close else f" Known: {', '.join(sorted(names))}."
            raise UserError(f"{config_key(key)}: axolotl knows no {key.replace('_', ' ')} {value!r}.{hint}")


def _run_axolotl_validation(cfg: dict, device: str) -> None:
    import copy

    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault
    from pydantic import ValidationError

    try:
        validate_config(DictDefault(copy.deepcopy(cfg)), **_capabilities(device))
    except ValidationError as e:
        raise UserError(_describe(e, cfg)) from None
    except ValueError as e:
        raise UserError(f"{_key_in(str(e), cfg)}: axolotl refuses the config: {_first_line(str(e))}") from None


def _capabilities(device: str) -> dict:
    """What axolotl checks the config against: this machine's GPU, a CPU, or (a GPU config rendered
    without a GPU) no hardware checks at all."""
    import torch

    if device == "cuda" and torch.cuda.is_available():
        from axolotl.cli.config import gpu_capabilities

        capabilities, env = gpu_capabilities()
        return {"capabilities": capabilities, "env_capabilities": env}
    if device == "cuda":
        return {}
    cpu = {"bf16": False, "fp8": False, "tf32": False, "n_gpu": 1, "compute_capability": None}
    return {"capabilities": cpu, "env_capabilities": {"torch_version": torch.__version__.split("+")[0]}}


def _describe(error, cfg: dict) -> str:
    first = error.errors()[0]
    loc = [str(p) for p in first.get("loc", ())]
    message = _first_line(first.get("msg", str(error))).removeprefix("Value error, ")
    key = config_key(loc[0]) if loc and loc[0] in cfg else _key_in(message, cfg)
    value = f" (got {cfg[loc[0]]!r})" if loc and loc[0] in cfg and len(loc) == 1 else ""
    return f"{key}{value}: axolotl says: {message}"


def _key_in(message: str, cfg: dict) -> str:
    """axolotl's cross-field checks carry no location: name the first of our keys the message mentions."""
    for key in cfg:
        if re.search(rf"(?<![\w]){re.escape(key)}(?![\w])", message):
            return config_key(key)
    return "training"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


# ---------------------------------------------------------------- writing


def write(cfg: dict, path: str | Path) -> None:
    """The YAML, written atomically, with a header saying where it comes from."""
    from mindupload import files

    header = "# Rendered by `mindupload axolotl-config` from the mind-upload config: edit that, not this.\n"
    files.write_text_atomic(header + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), path)


def read(path: str | Path) -> dict:
    try:
        cfg = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such axolotl config. Render it with `mindupload axolotl-config`.") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{path}: not an axolotl config (expected a YAML mapping).")
    return cfg

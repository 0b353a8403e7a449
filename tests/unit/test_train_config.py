"""The axolotl config: rendered from ours with the seed's GPU defaults, CPU-safe only on CPU, validated by
axolotl's own schema (and our key check) before anything runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from mindupload import cli
from mindupload.errors import UserError
from mindupload.training import axolotl_config as train_config

LINE = {"segments": [{"label": False, "text": "<s>CONTEXT\nfriend: hi"}, {"label": True, "text": "\nElijah: hey</s>"}]}


@pytest.fixture
def data(tmp_path) -> dict[str, Path]:
    train, validation = tmp_path / "train.jsonl", tmp_path / "validation.jsonl"
    train.write_text(json.dumps(LINE) + "\n" + json.dumps(LINE) + "\n")
    validation.write_text(json.dumps(LINE) + "\n")
    return {"train_path": train, "validation_path": validation}


def rendered(model_dir: Path, data: dict, tmp_path: Path, device: str = "cpu", **config) -> dict:
    sections = train_config.sections(config)
    return train_config.render(
        sections,
        base_model=str(model_dir),
        output_dir=tmp_path / "work",
        prepared_dir=tmp_path / "prepared",
        device=device,
        **data,
    )


def test_the_gpu_config_is_the_seeds(tiny_llama_dir, data, tmp_path):
    cfg = rendered(tiny_llama_dir, data, tmp_path, device="cuda", segments={"sequence_len": 2048})
    assert {k: cfg[k] for k in ("lora_r", "lora_alpha", "lora_dropout", "lora_target_linear")} == {
        "lora_r": 32,
        "lora_alpha": 16,
        "lora_dropout": 0.05,
        "lora_target_linear": True,
    }
    assert cfg["adapter"] == "lora" and cfg["learning_rate"] == 0.0002 and cfg["lr_scheduler"] == "cosine"
    assert cfg["sequence_len"] == 2048  # segments.sequence_len: one value for both
    assert cfg["sample_packing"] and cfg["gradient_checkpointing"] and cfg["train_on_inputs"] is False
    assert cfg["num_epochs"] == 9 and cfg["gradient_accumulation_steps"] == 8 and cfg["warmup_steps"] == 10
    assert cfg["evals_per_epoch"] == 4 and cfg["saves_per_epoch"] == 1
    assert cfg["bf16"] == "auto" and cfg["attn_implementation"] == "sdpa"  # the seed's sdp_attention
    assert not any(key.startswith("lora_") and key.endswith("_kernel") for key in cfg)  # axolotl's own choice
    assert cfg["datasets"] == [{"path": str(data["train_path"]), "ds_type": "json", "type": "input_output"}]
    assert cfg["test_datasets"][0]["split"] == "train"
    assert cfg["wandb_mode"] == "disabled" and "wandb_project" not in cfg
    assert cfg["generate_samples"] is False and "max_steps" not in cfg


def test_a_warmup_share_in_the_pass_through_replaces_the_warmup_steps(tiny_llama_dir, data, tmp_path):
    cfg = rendered(tiny_llama_dir, data, tmp_path, training={"axolotl": {"warmup_ratio": 0.1}})
    assert cfg["warmup_ratio"] == 0.1 and "warmup_steps" not in cfg
    train_config.validate(cfg, "cpu")


def test_cpu_safe_settings_only_on_cpu(tiny_llama_dir, data, tmp_path):
    cpu = rendered(tiny_llama_dir, data, tmp_path, device="cpu")
    gpu = rendered(tiny_llama_dir, data, tmp_path, device="cuda")
    for key in ("bf16", "fp16", "tf32", "lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel"):
        assert cpu[key] is False
    assert cpu["attn_implementation"] == "sdpa"  # no flash attention; packed examples stay apart
    assert train_config.is_cpu_config(cpu) and not train_config.is_cpu_config(gpu)
    assert {k: v for k, v in gpu.items() if k not in train_config.CPU_SAFE} == {
        k: v for k, v in cpu.items() if k not in train_config.CPU_SAFE
    }


def test_paths_are_absolute(tiny_llama_dir, data, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_llama_dir.parent)
    relative = {name: Path(os.path.relpath(p, tiny_llama_dir.parent)) for name, p in data.items()}
    cfg = rendered(Path(tiny_llama_dir.name), relative, Path("."))
    for path in (cfg["base_model"], cfg["output_dir"], cfg["dataset_prepared_path"], cfg["datasets"][0]["path"]):
        assert Path(path).is_absolute(), path
    assert cfg["base_model"] == str(tiny_llama_dir)


def test_prepared_data_is_keyed_by_content(tiny_llama_dir, data, tmp_path):
    """axolotl's cache key ignores the data: a changed dataset must get a fresh prepared folder."""
    before = rendered(tiny_llama_dir, data, tmp_path)["dataset_prepared_path"]
    data["train_path"].write_text(json.dumps(LINE) + "\n")
    after = rendered(tiny_llama_dir, data, tmp_path)["dataset_prepared_path"]
    assert before != after and Path(before).parent == Path(after).parent == tmp_path / "prepared"


def test_without_validation_examples_there_is_no_eval(tiny_llama_dir, data, tmp_path):
    data["validation_path"].write_text("")
    cfg = rendered(tiny_llama_dir, data, tmp_path)
    assert "test_datasets" not in cfg and "evals_per_epoch" not in cfg


def test_max_steps_and_wandb(tiny_llama_dir, data, tmp_path):
    cfg = rendered(tiny_llama_dir, data, tmp_path, training={"max_steps": 7, "wandb_project": "clone"})
    assert cfg["max_steps"] == 7 and cfg["wandb_project"] == "clone" and "wandb_mode" not in cfg
    assert train_config.axolotl_environ(cfg)["AXOLOTL_DO_NOT_TRACK"] == "1"
    assert "WANDB_MODE" not in train_config.axolotl_environ(cfg)
    beside = Path(cfg["output_dir"]).parent  # wandb's run folder, caches and staging: beside the outputs
    wandb_dirs = {k: v for k, v in train_config.axolotl_environ(cfg).items() if k.endswith("_DIR")}
    assert wandb_dirs.keys() == {"WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"}
    assert all(Path(v).is_relative_to(beside) for v in wandb_dirs.values())
    assert train_config.axolotl_environ(rendered(tiny_llama_dir, data, tmp_path))["WANDB_MODE"] == "disabled"


def test_pass_through_is_merged_last_but_cpu_safety_wins(tiny_llama_dir, data, tmp_path):
    extra = {"warmup_ratio": 0.1, "eval_sample_packing": True, "bf16": True, "flash_attention": True}
    cfg = rendered(tiny_llama_dir, data, tmp_path, training={"axolotl": extra})
    assert cfg["warmup_ratio"] == 0.1 and cfg["eval_sample_packing"] is True
    assert cfg["bf16"] is False and "flash_attention" not in cfg
    gpu = rendered(tiny_llama_dir, data, tmp_path, device="cuda", training={"axolotl": {"bf16": True}})
    assert gpu["bf16"] is True


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"lora_r": 8}, "training.axolotl.lora_r: set it as `training.lora_r`"),
        ({"sequence_len": 512}, "set it as `segments.sequence_len`"),
        ({"output_dir": "/x"}, "set it as `the workflow"),
        ({"wandb_api_key": "abc"}, "secrets do not belong in the config"),
        ({"hub_token": "hf_abc"}, "secrets do not belong in the config"),
        ({"adapter": "full"}, "LoRA adapters"),
        ({"generate_samples": True}, "generate_samples: it sends generated replies"),
        ({"eval_table_size": 5}, "eval_table_size: it sends generated replies"),
    ],
)
def test_pass_through_refusals(tiny_llama_dir, data, tmp_path, extra, message):
    with pytest.raises(UserError, match=message):
        rendered(tiny_llama_dir, data, tmp_path, training={"axolotl": extra})


def test_a_base_model_folder_that_does_not_exist(data, tmp_path):
    with pytest.raises(UserError, match=r"base_model '.*nowhere': no model folder there"):
        rendered(tmp_path / "nowhere", data, tmp_path)


def test_a_hub_id_while_offline(data, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=r"base_model 'mistralai/Mistral-7B-v0.1': cannot load it .*HF_HUB_OFFLINE"):
        rendered(Path("mistralai/Mistral-7B-v0.1"), data, tmp_path)


def test_sections_fill_defaults_and_name_bad_keys():
    sections = train_config.sections({"training": {"max_steps": 3}})
    assert sections["training"]["lora_r"] == 32 and sections["training"]["axolotl"] == {}
    assert sections["segments"]["sequence_len"] == 4096
    with pytest.raises(UserError, match=r"training\.lora_r"):
        train_config.sections({"training": {"lora_r": "big"}})
    with pytest.raises(UserError, match="training"):
        train_config.sections({"training": {"lora_rank": 8}})


# ---------------------------------------------------------------- axolotl's validation


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_the_rendered_config_passes_axolotls_validation(tiny_llama_dir, data, tmp_path, device):
    train_config.validate(rendered(tiny_llama_dir, data, tmp_path, device=device), device)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"micro_batch_size": "two"}, r"training.micro_batch_size \(got 'two'\): axolotl says: .*valid integer"),
        ({"lerning_rate": 0.1}, r"training.axolotl.lerning_rate: axolotl has no setting .*`learning_rate`"),
        ({"warmup_ratio": "lots"}, r"training.axolotl.warmup_ratio \(got 'lots'\): axolotl says"),
        ({"optimizer": "adamw_torh"}, r"training.axolotl.optimizer: .*no optimizer 'adamw_torh'.*`adamw_torch`"),
        ({"lr_scheduler": "cosin"}, r"training.lr_scheduler: .*no lr scheduler 'cosin'"),
    ],
)
def test_axolotl_validation_names_the_key(tiny_llama_dir, data, tmp_path, extra, message):
    cfg = rendered(tiny_llama_dir, data, tmp_path)
    if "warmup_ratio" in extra:
        del cfg["warmup_steps"]  # as render does when the pass-through gives a warm-up share
    cfg.update(extra)
    with pytest.raises(UserError, match=message):
        train_config.validate(cfg, "cpu")


def test_write_is_plain_yaml_with_no_secrets(tiny_llama_dir, data, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "secret-key")
    cfg = rendered(tiny_llama_dir, data, tmp_path, training={"wandb_project": "p"})
    train_config.write(cfg, tmp_path / "cfg.yml")
    text = (tmp_path / "cfg.yml").read_text()
    assert yaml.safe_load(text) == cfg and "secret-key" not in text
    assert train_config.read(tmp_path / "cfg.yml") == cfg


def test_the_cli_renders_validates_and_writes(tiny_llama_dir, data, tmp_path, capsys):
    out = tmp_path / "axolotl.yml"
    args = [
        "axolotl-config",
        "--base-model",
        str(tiny_llama_dir),
        "--train",
        str(data["train_path"]),
        "--validation",
        str(data["validation_path"]),
        "--output-dir",
        str(tmp_path / "work"),
        "--prepared-dir",
        str(tmp_path / "prepared"),
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    config = {"segments": {"sequence_len": 256}, "training": {"axolotl": {"warmup_ratio": "lots"}}}
    assert cli.main([*args, "--config-json", json.dumps(config)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mindupload: error: training.axolotl.warmup_ratio (got 'lots')") and not out.exists()
    assert "Traceback" not in "\n".join(err)
    config["training"]["axolotl"] = {}
    assert cli.main([*args, "--config-json", json.dumps(config)]) == 0
    assert yaml.safe_load(out.read_text())["sequence_len"] == 256

"""Real axolotl on a tiny random Llama: preprocess with label verification, a few training steps on CPU
(interrupted, then resumed), and sample replies from the adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tinymodel import write_dataset

from mindupload.errors import UserError
from mindupload.evaluation import sample
from mindupload.render import Identity
from mindupload.training import axolotl_config as train_config
from mindupload.training import check, train

TRAINING = {
    "max_steps": 2,
    "num_epochs": 2,  # with saves_per_epoch 1: a checkpoint after each step
    "gradient_accumulation_steps": 1,
    "gradient_checkpointing": False,
    "axolotl": {"pad_to_sequence_len": False, "dataset_num_proc": 1},
}


def render(model: Path, root: Path, **training) -> Path:
    sections = train_config.sections({"segments": {"sequence_len": 256}, "training": {**TRAINING, **training}})
    cfg = train_config.render(
        sections,
        base_model=str(model),
        train_path=root / "train.jsonl",
        validation_path=root / "validation.jsonl",
        output_dir=root / "work",
        prepared_dir=root / "prepared",
        device="cpu",
    )
    train_config.validate(cfg, "cpu")
    train_config.write(cfg, root / "axolotl.yml")
    return root / "axolotl.yml"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("axolotl")
    write_dataset(root / "train.jsonl", 24, exchanges=2)
    write_dataset(root / "validation.jsonl", 2, exchanges=1)
    return root


@pytest.fixture(scope="module")
def checked(root, tiny_llama_dir) -> dict:
    cfg = render(tiny_llama_dir, root)
    return check.run(cfg, root / "train.jsonl", root / "validation.jsonl", root / "report")


def test_the_check_passes_on_axolotls_own_preprocess(checked, root):
    assert checked["ok"] and checked["splits"]["train"]["examples"] == 24
    assert checked["splits"]["validation"]["examples"] == 2
    assert 0 < checked["packing"]["efficiency"] <= 1 and checked["packing"]["sequence_len"] == 256
    html = (root / "report/report.html").read_text()
    assert "All checks passed" in html and 'class="t trained' in html


def test_axolotls_labels_mask_exactly_the_label_false_text(checked, root, tiny_tokenizer):
    """Read axolotl's prepared data back: trained tokens spell the label:true text of an example, untrained
    ones its label:false text."""
    from datasets import load_from_disk

    cfg = yaml.safe_load((root / "axolotl.yml").read_text())
    files = ("train.jsonl", "validation.jsonl")
    examples = [json.loads(line)["segments"] for name in files for line in (root / name).read_text().splitlines()]
    own = {"".join(p["text"] for p in ex if p["label"]) for ex in examples}
    context = {"".join(p["text"] for p in ex if not p["label"]) for ex in examples}
    rows = 0
    for folder in Path(cfg["dataset_prepared_path"]).iterdir():
        if not (folder / "dataset_info.json").is_file():
            continue
        prepared = load_from_disk(str(folder))
        for ids, labels in zip(prepared["input_ids"], prepared["labels"], strict=True):
            trained = [i for i, label in zip(ids, labels, strict=True) if label != -100]
            masked = [i for i, label in zip(ids, labels, strict=True) if label == -100]
            assert trained == [label for label in labels if label != -100]
            assert tiny_tokenizer.decode(trained) in own
            assert tiny_tokenizer.decode(masked) in context
            rows += 1
    assert rows == 24 + 2


def test_the_check_fails_when_axolotl_trains_context(checked, root, tiny_llama_dir, tmp_path):
    cfg = yaml.safe_load((root / "axolotl.yml").read_text())
    cfg.update(train_on_inputs=True, dataset_prepared_path=str(tmp_path / "prepared"))
    train_config.write(cfg, tmp_path / "axolotl.yml")
    with pytest.raises(UserError, match=r"train example \d+: \d+ token\(s\) of label:false text are trained"):
        check.run(tmp_path / "axolotl.yml", root / "train.jsonl", root / "validation.jsonl", tmp_path / "report")


@pytest.fixture(scope="module")
def trained(checked, root) -> Path:
    """Train, interrupted just before the adapter is published, with the last checkpoint half-written (no
    trainer state); then again, which resumes from the checkpoint before."""
    adapter = root / "adapter"
    real_publish = train.publish

    def interrupted(*args, **kwargs):
        raise RuntimeError("interrupted")

    train.publish = interrupted
    try:
        with pytest.raises(RuntimeError, match="interrupted"):
            train.run(root / "axolotl.yml", adapter)
    finally:
        train.publish = real_publish
    assert not adapter.exists()  # nothing that looks like an adapter
    assert train.newest_checkpoint(root / "work").name == "checkpoint-2"
    (root / "work/checkpoint-2/trainer_state.json").unlink()
    assert train.newest_checkpoint(root / "work").name == "checkpoint-1"
    train.run(root / "axolotl.yml", adapter)
    return adapter


def test_training_writes_a_complete_adapter_after_resuming(trained, root, tiny_llama_dir):
    assert (trained / "adapter_model.safetensors").stat().st_size > 0
    adapter_config = json.loads((trained / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(tiny_llama_dir)  # absolute
    assert adapter_config["r"] == 32 and adapter_config["peft_type"] == "LORA"
    summary = json.loads((trained / "training.json").read_text())
    assert summary["resumed_from"] == "checkpoint-1" and summary["steps"] == 2 and summary["device"] == "cpu"
    assert not (root / "work").exists()
    assert not [p for p in trained.parent.iterdir() if p.name.startswith(".adapter")]


def test_sample_replies_from_the_adapter(trained, root, tiny_llama_dir):
    identity = Identity(name="Elijah")
    options = sample.Options(count=3, max_new_tokens=8)
    samples = sample.run(str(tiny_llama_dir), trained, identity, root / "validation.jsonl", root / "s.md", options)
    assert len(samples) == 2  # one per validation example
    assert samples[0]["history"][0].text == "hi how are you" and samples[0]["actual"] == "good thanks, and you?"
    text = (root / "s.md").read_text()
    assert "## Sample 2" in text and "**Elijah (model):**" in text and "> **friend:** hi how are you" in text


# ---------------------------------------------------------------- bad input stops before axolotl starts


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"base_model": "/nowhere/model"}, r"base_model '/nowhere/model': no model folder there"),
        (
            {"bf16": "auto", "attn_implementation": "flash_attention_2"},
            r"rendered for a GPU, and this machine has none",
        ),
    ],
)
def test_train_refuses_bad_input_before_axolotl(root, tmp_path, change, message):
    cfg = {**yaml.safe_load((root / "axolotl.yml").read_text()), **change, "output_dir": str(tmp_path / "w")}
    train_config.write(cfg, tmp_path / "axolotl.yml")
    with pytest.raises(UserError, match=message):
        train.run(tmp_path / "axolotl.yml", tmp_path / "adapter")
    assert not (tmp_path / "adapter").exists()


def test_train_refuses_a_dataset_without_segments(root, tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps({"text": "hi"}) + "\n")
    cfg = yaml.safe_load((root / "axolotl.yml").read_text())
    cfg.update(datasets=[{**cfg["datasets"][0], "path": str(tmp_path / "train.jsonl")}], output_dir=str(tmp_path / "w"))
    train_config.write(cfg, tmp_path / "axolotl.yml")
    with pytest.raises(UserError, match=r"train.jsonl, line 1: no `segments` list"):
        train.run(tmp_path / "axolotl.yml", tmp_path / "adapter")

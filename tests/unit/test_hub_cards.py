"""The Hub pieces that need no server: cards, receipts, the `hub:` config and the axolotl config that reads
the dataset from the Hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hubserver import front_matter

from mindupload import config, receipts
from mindupload.errors import UserError
from mindupload.hub import push as hub
from mindupload.training import axolotl_config as train_config
from mindupload.training import check

SECRET = "the door code is 4417"
LINE = {
    "segments": [{"label": False, "text": f"<s>CONTEXT\nfriend: {SECRET}"}, {"label": True, "text": "\nEli: ok</s>"}]
}
RECEIPT = {"repo_id": "elijah/chats", "revision": "a" * 40, "files": {}}


@pytest.fixture
def splits(tmp_path) -> dict[str, Path]:
    train, validation = tmp_path / "train.jsonl", tmp_path / "validation.jsonl"
    train.write_text((json.dumps(LINE) + "\n") * 3)
    validation.write_text(json.dumps(LINE) + "\n")
    return {"train": train, "validation": validation}


def receipt_for(splits: dict[str, Path]) -> dict:
    files = {receipts.DATA_FILES[s]: receipts.file_digest(p.read_bytes()) for s, p in splits.items()}
    return {**RECEIPT, "files": files}


def test_the_dataset_card_has_hub_metadata_counts_and_no_text(splits):
    counts = {split: hub.split_counts(path, split) for split, path in splits.items()}
    assert counts == {"train": {"examples": 3, "own_turns": 3}, "validation": {"examples": 1, "own_turns": 1}}
    card = str(hub.dataset_card(counts, {"own_turn_coverage": 0.5}, {"segments": {"seed": 3}}))
    meta = front_matter(card)
    assert meta["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train.jsonl"},
        {"split": "validation", "path": "data/validation.jsonl"},
    ]
    assert meta["size_categories"] == ["n<1K"] and meta["task_categories"] == ["text-generation"]
    assert {"personal-data", "private"} <= set(meta["tags"])
    assert "| train | 3 | 3 |" in card and "own turn coverage 0.5" in card and '"seed": 3' in card
    assert SECRET not in card


@pytest.mark.parametrize(("n", "category"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (2_000_000, "1M<n<10M")])
def test_size_categories_follow_the_hubs_buckets(n, category):
    assert hub.size_category(n) == category


def test_the_model_card_discloses_the_clone_and_names_a_hub_base_model_only():
    adapter = {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "base_model_name_or_path": "/home/me/m"}
    settings = {**hub.describe_base_model("org/Base-7B"), "training": {"learning_rate": 0.0002}}
    card = str(hub.model_card(adapter, settings))
    meta = front_matter(card)
    assert meta["base_model"] == "org/Base-7B" and meta["library_name"] == "peft"
    assert hub.DISCLOSURE in card and '"r": 8' in card and "base_model_on_hub" not in card
    local = front_matter(str(hub.model_card(adapter, hub.describe_base_model("/home/me/models/Base"))))
    assert "base_model" not in local


def test_a_local_base_model_is_named_by_its_folder_only():
    assert hub.describe_base_model("/home/me/models/Base") == {"base_model": "Base", "base_model_on_hub": False}
    assert hub.describe_base_model("results/models/SmolLM2-135M-Instruct")["base_model"] == "SmolLM2-135M-Instruct"
    assert hub.describe_base_model("mistralai/Mistral-7B-v0.1")["base_model_on_hub"] is True
    config = hub.portable_adapter_config({"base_model_name_or_path": "/home/me/models/Base", "r": 8}, "Base")
    assert config == {"base_model_name_or_path": "Base", "r": 8}


def test_only_what_loading_needs_leaves_the_adapter_folder(tmp_path):
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "trainer_state.json"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in hub.adapter_files(tmp_path)] == [
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer.json",
    ]
    (tmp_path / "adapter_model.safetensors").unlink()
    with pytest.raises(UserError, match="not a trained adapter"):
        hub.adapter_files(tmp_path)


def test_receipts_are_checked_against_the_local_files(splits, tmp_path):
    receipt = receipt_for(splits)
    receipts.check_receipt_matches(receipt, "dataset.json", splits["train"], splits["validation"])
    splits["validation"].write_text("")
    with pytest.raises(UserError, match=r"validation.jsonl differs from the data/validation.jsonl pushed"):
        receipts.check_receipt_matches(receipt, "dataset.json", splits["train"], splits["validation"])
    with pytest.raises(UserError, match="no upload receipt"):
        receipts.read_receipt(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"repo_id": "x"}')
    with pytest.raises(UserError, match="not an upload receipt"):
        receipts.read_receipt(tmp_path / "bad.json")


def test_no_token_is_refused_before_anything_is_sent(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.setattr("huggingface_hub.constants.HF_STORED_TOKENS_PATH", str(tmp_path / "stored_tokens"))
    with pytest.raises(UserError, match=r"hub.model_repo is set but no Hugging Face token was found"):
        hub.require_token("hub.model_repo")


def test_hub_config_defaults_and_checks():
    base = {"me": ["Eli"], "sources": {"a": {"path": "x.txt"}}}
    assert config.validate(base)["hub"] == {
        "dataset_repo": None,
        "private": True,
        "train_from": "local",
        "model_repo": None,
    }
    with pytest.raises(UserError, match=r"hub.train_from is `hub` but hub.dataset_repo is not set"):
        config.validate({**base, "hub": {"train_from": "hub"}})
    with pytest.raises(UserError, match=r"config: hub.dataset_repo:"):
        config.validate({**base, "hub": {"dataset_repo": "a/b/c"}})
    assert config.validate({**base, "hub": {"dataset_repo": "chats", "model_repo": "org/clone-v1.2"}})


def test_training_from_the_hub_pins_repo_and_revision(tiny_llama_dir, splits, tmp_path):
    def render(hub_dataset=None, validation=splits["validation"]):
        return train_config.render(
            train_config.sections({}),
            base_model=str(tiny_llama_dir),
            train_path=splits["train"],
            validation_path=validation,
            output_dir=tmp_path / "work",
            prepared_dir=tmp_path / "prepared",
            device="cpu",
            hub_dataset=hub_dataset,
        )

    local, pinned = render(), render(RECEIPT)
    assert pinned["datasets"] == [
        {"path": "elijah/chats", "revision": "a" * 40, "split": "train", "type": "input_output"}
    ]
    assert pinned["test_datasets"] == [
        {"path": "elijah/chats", "revision": "a" * 40, "split": "validation", "type": "input_output"}
    ]
    assert pinned["hf_use_auth_token"] is True and "hf_use_auth_token" not in local
    assert pinned["dataset_prepared_path"] == local["dataset_prepared_path"]  # same bytes, same digest
    assert train_config.axolotl_environ(local)["HF_HUB_OFFLINE"] == "1"
    assert "HF_HUB_OFFLINE" not in train_config.axolotl_environ(pinned)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "test_datasets" not in render(RECEIPT, validation=empty)


def test_check_runs_on_the_local_twin_of_a_hub_config(splits):
    cfg = {
        "base_model": "/m",
        "hf_use_auth_token": True,
        "datasets": [{"path": "elijah/chats", "revision": "a" * 40, "split": "train", "type": "input_output"}],
        "test_datasets": [
            {"path": "elijah/chats", "revision": "a" * 40, "split": "validation", "type": "input_output"}
        ],
    }
    receipt_path = splits["train"].parent / "dataset.json"
    receipt_path.write_text(json.dumps(receipt_for(splits)))
    twin = check.local_twin(cfg, receipt_path, splits["train"], splits["validation"])
    assert twin["datasets"] == [train_config.local_dataset(splits["train"])]
    assert twin["test_datasets"] == [train_config.local_dataset(splits["validation"], split="train")]
    assert "hf_use_auth_token" not in twin
    stale = {**cfg, "datasets": [{**cfg["datasets"][0], "revision": "b" * 40}]}
    with pytest.raises(UserError, match=r"does not read elijah/chats at a{40}"):
        check.local_twin(stale, receipt_path, splits["train"], splits["validation"])


def test_axolotls_own_hub_pushes_are_refused_in_the_pass_through(tiny_llama_dir, splits, tmp_path):
    for key, ours in (("hub_model_id", "hub.model_repo"), ("push_dataset_to_hub", "hub.dataset_repo")):
        with pytest.raises(UserError, match=f"training.axolotl.{key}: set it as `{ours}` instead"):
            train_config.render(
                train_config.sections({"training": {"axolotl": {key: "elijah/x"}}}),
                base_model=str(tiny_llama_dir),
                train_path=splits["train"],
                validation_path=splits["validation"],
                output_dir=tmp_path / "work",
                prepared_dir=tmp_path / "prepared",
                device="cpu",
            )


def test_an_unset_repo_is_a_clear_error_before_any_token_lookup(splits, tmp_path):
    with pytest.raises(UserError, match=r"hub.dataset_repo is not set"):
        hub.push_dataset("", True, splits["train"], splits["validation"], {}, {}, str(tmp_path / "r.json"))
    with pytest.raises(UserError, match=r"hub.model_repo is not set"):
        hub.push_adapter("", True, tmp_path, {}, str(tmp_path / "m.json"))
    assert not (tmp_path / "r.json").exists()

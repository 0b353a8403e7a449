"""Provenance recorded in what a user keeps: version, git commit, config digest, base model."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mindupload import __version__, provenance
from mindupload.dataset.stats import render_stats
from mindupload.fingerprint import PACKAGE
from mindupload.hub import push as hub
from mindupload.model import tokenizer

CONFIG = {"me": ["Elijah"], "segments": {"seed": 42}, "privacy": {"blocklist": ["my street"]}}


def test_the_config_digest_follows_every_value_and_not_the_key_order():
    digest = provenance.config_digest(CONFIG)
    assert provenance.config_digest(dict(reversed(CONFIG.items()))) == digest
    assert provenance.config_digest({**CONFIG, "segments": {"seed": 7}}) != digest
    assert "street" not in digest


def test_collect_reads_the_config_digest_the_workflow_handed_over(monkeypatch):
    monkeypatch.delenv(provenance.CONFIG_DIGEST, raising=False)
    assert provenance.collect()["config_digest"] is None
    provenance.hand_over_config(CONFIG)
    found = provenance.collect({"name": "Base-7B", "on_hub": True})
    assert found["config_digest"] == provenance.config_digest(CONFIG)
    assert found["mindupload"] == __version__ and found["base_model"]["name"] == "Base-7B"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_git_commit_is_that_of_the_checkout_the_package_runs_from(tmp_path):
    head = subprocess.run(["git", "-C", str(PACKAGE), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode:
        pytest.skip("the package does not run from a git checkout here")
    assert provenance.git_commit().removesuffix("-dirty") == head.stdout.strip()
    copy = tmp_path / "mindupload"
    shutil.copytree(PACKAGE, copy)
    assert provenance.git_commit(copy) is None  # not a checkout: an installed copy


def test_a_local_base_model_is_named_by_its_folder_and_its_files_never_its_path(tmp_path):
    folder = tmp_path / "home" / "someone" / "My-Model"
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text("{}")
    found = tokenizer.identity(str(folder))
    assert found["name"] == "My-Model" and not found["on_hub"] and len(found["files"]) == 16
    assert tokenizer.identity("org/Model-7B") == {"name": "org/Model-7B", "on_hub": True}
    text = "\n".join(provenance.lines(provenance.collect(found)))
    assert "My-Model" in text and "someone" not in text and found["files"] in text


def test_stats_and_the_dataset_card_say_what_made_the_dataset(monkeypatch):
    from test_stats import SEGMENTS, SOURCE, TURNS

    monkeypatch.setenv(provenance.CONFIG_DIGEST, "0123456789abcdef")
    made = provenance.collect({"name": "Base-7B", "on_hub": True})
    stats = render_stats([SOURCE], TURNS, {**SEGMENTS, "provenance": made})
    assert f"- mindupload {__version__}" in stats and "config digest: 0123456789abcdef" in stats
    assert "base model: Base-7B (Hugging Face Hub)" in stats
    counts = {"train": {"examples": 1, "own_turns": 1}}
    card = str(hub.dataset_card(counts, {"provenance": made}, {}))
    assert "## Made by" in card and "config digest: 0123456789abcdef" in card


def test_the_model_card_says_what_made_the_adapter(tmp_path):
    import json

    made = provenance.collect({"name": "Base-7B", "on_hub": True})
    (tmp_path / "training.json").write_text(json.dumps({"steps": 2, "provenance": made}))
    settings = {**hub.describe_base_model("org/Base-7B"), "provenance": hub.training_provenance(Path(tmp_path))}
    card = str(hub.model_card({"r": 8}, settings))
    assert f"- mindupload {__version__}" in card and "base model: Base-7B" in card

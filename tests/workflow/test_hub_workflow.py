"""Real snakemake runs of the Hub rules against a local server that plays the Hub (tests/hubserver.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from hubserver import FakeHub, front_matter
from hubtools import files_containing, hub_env, new_token
from test_workflow import changed_config, make_workdir, planned_rules, snakemake

pytestmark = pytest.mark.workflow


def new_workdir(path: Path, **overrides) -> Path:
    path.mkdir()
    return make_workdir(path, **overrides)


def message_texts(workdir: Path, shortest: int = 12) -> set[str]:
    """Every message of the bundled exports long enough to be recognised if it leaked."""
    texts = pq.read_table(workdir / "results/messages_redacted.parquet", columns=["text"]).column("text").to_pylist()
    return {line for text in texts for line in text.splitlines() if len(line) >= shortest}


def assert_token_kept_secret(workdir: Path, token: str, *procs: subprocess.CompletedProcess) -> None:
    for proc in procs:
        assert token not in proc.stdout + proc.stderr
    for folder in ("results", "logs", ".snakemake", "config"):
        assert files_containing(workdir / folder, token) == [], folder


def test_upload_pushes_privately_reruns_only_for_a_new_dataset(tmp_path, tiny_tokenizer_dir):
    token = new_token()
    with FakeHub(token) as hub:
        workdir = new_workdir(tmp_path / "wf", base_model=str(tiny_tokenizer_dir), hub={"dataset_repo": "chats"})
        env = hub_env(hub, tmp_path, token)
        first = snakemake(workdir, "upload", env=env)

        repo = hub.repo("dataset", "elijah/chats")
        assert repo.private is True
        files = repo.head.files
        for split in ("train", "validation"):
            assert files[f"data/{split}.jsonl"] == (workdir / f"results/dataset/{split}.jsonl").read_bytes()
        card = files["README.md"].decode()
        assert front_matter(card)["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train.jsonl"}
        train_examples = len((workdir / "results/dataset/train.jsonl").read_text().splitlines())
        assert f"| train | {train_examples} |" in card
        receipt = json.loads((workdir / "results/hub/dataset.json").read_text())
        assert receipt["revision"] == repo.head.oid and receipt["repo_id"] == "elijah/chats"
        leaked = [text for text in message_texts(workdir) if text in card or text in json.dumps(receipt)]
        assert leaked == []
        for contact in ("Anna", "Marco", "anna_whatsapp", "marco_telegram"):  # names of the other people
            assert contact not in card
        assert all(r.headers["authorization"] == f"Bearer {token}" for r in hub.requests if r.path.startswith("/api"))

        second = snakemake(workdir, "upload", env=env)
        assert "Nothing to be done" in second.stdout + second.stderr
        assert len(hub.commits()) == 1

        changed = changed_config(workdir, "segments", seed=7)
        assert planned_rules(workdir, "upload", "--configfile", changed) == {"segment": 1, "upload": 1}
        third = snakemake(workdir, "upload", "--configfile", changed, env=env)
        assert len(repo.commits) == 2
        assert json.loads((workdir / "results/hub/dataset.json").read_text())["revision"] == repo.head.oid
        assert_token_kept_secret(workdir, token, first, second, third)
        assert hub.unknown_calls() == []


def test_training_from_the_hub_reads_the_pushed_revision(tmp_path, tiny_llama_dir):
    """`train_from: hub`: the axolotl config pins the receipt's revision, check passes on the local twin, and
    axolotl's training run fetches both splits from the (fake) Hub at that revision."""
    token = new_token()
    with FakeHub(token) as hub:
        hub_config = {"dataset_repo": "elijah/chats", "train_from": "hub"}
        workdir = new_workdir(tmp_path / "wf", base_model=str(tiny_llama_dir), hub=hub_config)
        cfg = yaml.safe_load((workdir / "config/config.yaml").read_text())
        cfg["training"]["max_steps"] = 1
        (workdir / "config/config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
        env = hub_env(hub, tmp_path, token)
        proc = snakemake(workdir, "train", env=env)
        receipt = json.loads((workdir / "results/hub/dataset.json").read_text())
        axolotl = yaml.safe_load((workdir / "results/train/axolotl.yaml").read_text())
        assert axolotl["datasets"] == [
            {"path": "elijah/chats", "revision": receipt["revision"], "split": "train", "type": "input_output"}
        ]
        assert axolotl["test_datasets"][0] == {**axolotl["datasets"][0], "split": "validation"}
        assert json.loads((workdir / "results/check/report.json").read_text())["ok"] is True
        assert (workdir / "results/adapter/adapter_model.safetensors").stat().st_size > 0
        fetched = {r.path for r in hub.requests if r.method == "GET" and "/resolve/" in r.path}
        for split in ("train", "validation"):
            assert f"/datasets/elijah/chats/resolve/{receipt['revision']}/data/{split}.jsonl" in fetched
        assert_token_kept_secret(workdir, token, proc)
        assert files_containing(workdir / "results/adapter", token) == []
        assert hub.unknown_calls() == []
        assert set(planned_rules(workdir)) == {
            "all",
            "dataset_stats",
            "dataset_plots",
            "sample_replies",
            "eval_inputs",
            "evaluate",
        }


def test_the_hub_rules_join_the_dag_only_when_configured(tmp_path, tiny_tokenizer_dir):
    plain = new_workdir(tmp_path / "plain", base_model=str(tiny_tokenizer_dir))
    assert not {"upload", "push_adapter"} & set(planned_rules(plain))
    hub = {"dataset_repo": "chats", "model_repo": "elijah/clone"}
    shared = new_workdir(tmp_path / "shared", base_model=str(tiny_tokenizer_dir), hub=hub)
    planned = planned_rules(shared)
    assert planned["upload"] == 1 and planned["push_adapter"] == 1

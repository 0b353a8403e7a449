"""Pushing to the Hub for real, over HTTP, to a local server that plays the Hub (tests/hubserver.py): the
`mindupload upload` and `push-adapter` commands as the rules run them, and axolotl's own loader reading the
pushed dataset back at the pinned revision."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from hubserver import FakeHub, Repo, front_matter
from hubtools import files_containing, hub_env, mindupload, new_token

from mindupload import receipts

CANARY = "canary-7f3a: meet me at 12 Rue Oberkampf"
LINES = [
    {"segments": [{"label": False, "text": f"<s>CONTEXT\nfriend: {CANARY}"}, {"label": True, "text": "\nEli: ok</s>"}]},
    {"segments": [{"label": False, "text": "<s>CONTEXT\nfriend: and you?"}, {"label": True, "text": "\nEli: fine\n"},
                  {"label": False, "text": "friend: good"}, {"label": True, "text": "\nEli: bye</s>"}]},
]  # fmt: skip
SETTINGS = {"segments": {"seed": 42, "min_turns": 2, "max_turns": 10, "sequence_len": 1024}}


@pytest.fixture
def token() -> str:
    return new_token()


@pytest.fixture
def fake_hub(token):
    with FakeHub(token) as hub:
        yield hub
    assert hub.unknown_calls() == []  # every call the client made is one this server plays as the Hub does


@pytest.fixture
def dataset(tmp_path) -> dict[str, Path]:
    train, validation, report = tmp_path / "train.jsonl", tmp_path / "validation.jsonl", tmp_path / "segments.json"
    train.write_text("".join(json.dumps(line) + "\n" for line in LINES))
    validation.write_text(json.dumps(LINES[0]) + "\n")
    report.write_text(json.dumps({"own_turn_coverage": 0.75, "segments_split_for_length": 0}))
    return {"train": train, "validation": validation, "report": report}


def upload(env, dataset, receipt: Path, repo: str = "chats", private: str = "true"):
    return mindupload(
        env,
        *("upload", "--repo", repo, "--private", private, "--settings", json.dumps(SETTINGS)),
        *("--base-model", "/home/elijah/models/Mistral-7B", "--receipt", str(receipt)),
        *("--train", str(dataset["train"]), "--validation", str(dataset["validation"])),
        *("--report", str(dataset["report"])),
    )


def test_upload_pushes_both_splits_and_a_card_to_a_private_repo(fake_hub, token, dataset, tmp_path):
    receipt_path = tmp_path / "results/hub/dataset.json"
    proc = upload(hub_env(fake_hub, tmp_path, token), dataset, receipt_path)
    assert proc.returncode == 0, proc.stderr

    repo = fake_hub.repo("dataset", "elijah/chats")  # `chats` alone: the token owner's namespace
    assert repo.private is True
    create = next(r for r in fake_hub.requests if r.path == "/api/repos/create")
    assert json.loads(create.body)["visibility"] == "private"
    files = fake_hub.files("dataset", "elijah/chats")
    assert files["data/train.jsonl"] == dataset["train"].read_bytes()
    assert files["data/validation.jsonl"] == dataset["validation"].read_bytes()

    card = files["README.md"].decode()
    meta = front_matter(card)
    assert meta["configs"] == [
        {
            "config_name": "default",
            "data_files": [
                {"split": "train", "path": "data/train.jsonl"},
                {"split": "validation", "path": "data/validation.jsonl"},
            ],
        }
    ]
    assert meta["task_categories"] == ["text-generation"] and "personal-data" in meta["tags"]
    assert "| train | 2 | 3 |" in card and "| validation | 1 | 1 |" in card  # examples, own turns
    assert '"seed": 42' in card and "Private personal data" in card and 'load_dataset("elijah/chats"' in card
    assert "Mistral-7B" in card and "/home/elijah" not in card  # a local base model by its folder name only
    for text in (CANARY, "and you?", "friend: good", "Eli: fine"):  # no message text, not even short ones
        assert text not in card

    receipt = json.loads(receipt_path.read_text())
    assert receipt["revision"] == repo.head.oid and receipt["repo_id"] == "elijah/chats"
    assert receipt["private"] is True and receipt["counts"]["train"]["examples"] == 2
    assert (
        receipt["files"]["data/train.jsonl"]["sha256"] == receipts.file_digest(dataset["train"].read_bytes())["sha256"]
    )
    assert CANARY not in receipt_path.read_text()


def test_the_token_is_sent_to_the_hub_and_written_nowhere(fake_hub, token, dataset, tmp_path):
    proc = upload(hub_env(fake_hub, tmp_path, token), dataset, tmp_path / "results/hub/dataset.json")
    assert proc.returncode == 0, proc.stderr
    api_calls = [r for r in fake_hub.requests if r.path.startswith("/api/")]
    assert api_calls and all(r.headers["authorization"] == f"Bearer {token}" for r in api_calls)
    assert token not in proc.stdout + proc.stderr
    assert files_containing(tmp_path, token) == []
    for path, content in fake_hub.files("dataset", "elijah/chats").items():
        assert token.encode() not in content, path


def test_an_unchanged_dataset_makes_no_new_commit_and_a_changed_one_does(fake_hub, token, dataset, tmp_path):
    env = hub_env(fake_hub, tmp_path, token)
    first, second, third = (tmp_path / f"receipt{i}.json" for i in range(3))
    assert upload(env, dataset, first).returncode == 0
    assert upload(env, dataset, second).returncode == 0
    assert json.loads(first.read_text())["revision"] == json.loads(second.read_text())["revision"]
    assert len(fake_hub.repo("dataset", "elijah/chats").commits) == 1
    dataset["validation"].write_text(json.dumps(LINES[1]) + "\n")
    assert upload(env, dataset, third).returncode == 0
    repo = fake_hub.repo("dataset", "elijah/chats")
    assert len(repo.commits) == 2 and json.loads(third.read_text())["revision"] == repo.head.oid
    before = repo.at(json.loads(first.read_text())["revision"])
    assert before.files["data/validation.jsonl"] != repo.head.files["data/validation.jsonl"]


def test_no_token_is_one_clear_line_and_nothing_is_sent(fake_hub, dataset, tmp_path):
    receipt = tmp_path / "receipt.json"
    proc = upload(hub_env(fake_hub, tmp_path, token=None), dataset, receipt)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "mindupload: error: hub.dataset_repo is set but no Hugging Face token was found: set HF_TOKEN in the "
        "environment or run `hf auth login` (the token is never read from the config). Nothing was sent."
    ]
    assert fake_hub.requests == [] and not receipt.exists()


def test_a_wrong_token_is_refused_before_any_repo_is_made(fake_hub, dataset, tmp_path):
    proc = upload(hub_env(fake_hub, tmp_path, new_token()), dataset, tmp_path / "receipt.json")
    assert proc.returncode == 1 and "the Hub refused the token (HTTP 401)" in proc.stderr
    assert "Traceback" not in proc.stderr and fake_hub.repos == {}


def test_an_existing_public_repo_is_refused_when_private_is_asked(fake_hub, token, dataset, tmp_path):
    fake_hub.repos[("dataset", "elijah/chats")] = Repo("dataset", "elijah/chats", private=False)
    proc = upload(hub_env(fake_hub, tmp_path, token), dataset, tmp_path / "receipt.json")
    assert proc.returncode == 1
    assert "exists and is public while hub.private is true" in proc.stderr
    assert fake_hub.commits() == [] and fake_hub.repo("dataset", "elijah/chats").commits == []


def test_private_false_makes_a_public_repo(fake_hub, token, dataset, tmp_path):
    proc = upload(hub_env(fake_hub, tmp_path, token), dataset, tmp_path / "r.json", repo="team/chats", private="false")
    assert proc.returncode == 0, proc.stderr
    assert fake_hub.repo("dataset", "team/chats").private is False


def test_axolotl_loads_the_pushed_splits_at_the_pinned_revision(fake_hub, token, dataset, tmp_path, tiny_llama_dir):
    """The rendered config's dataset entries, read by axolotl's own loader from the Hub at the receipt's
    revision, give exactly the local rows, even after a later push changed the repo's head."""
    from mindupload.training import axolotl_config as train_config

    env = hub_env(fake_hub, tmp_path, token)
    receipt_path = tmp_path / "dataset.json"
    assert upload(env, dataset, receipt_path).returncode == 0
    pinned = {split: dataset[split].read_text() for split in ("train", "validation")}
    dataset["train"].write_text(json.dumps(LINES[0]) + "\n")
    assert upload(env, dataset, tmp_path / "later.json").returncode == 0  # head moves on

    receipt = receipts.read_receipt(receipt_path)
    local = {"train_path": tmp_path / "p_train.jsonl", "validation_path": tmp_path / "p_validation.jsonl"}
    local["train_path"].write_text(pinned["train"])
    local["validation_path"].write_text(pinned["validation"])
    cfg = train_config.render(
        train_config.sections({}),
        base_model=str(tiny_llama_dir),
        output_dir=tmp_path / "work",
        prepared_dir=tmp_path / "prepared",
        device="cpu",
        hub_dataset=receipt,
        **local,
    )
    assert cfg["datasets"] == [
        {"path": "elijah/chats", "revision": receipt["revision"], "split": "train", "type": "input_output"}
    ]
    assert cfg["test_datasets"][0]["split"] == "validation" and cfg["hf_use_auth_token"] is True
    assert "HF_HUB_OFFLINE" not in train_config.axolotl_environ(cfg)  # the datasets come from the Hub
    train_config.validate(cfg, "cpu")  # axolotl's own schema takes revision and split
    (tmp_path / "entries.json").write_text(json.dumps([cfg["datasets"][0], cfg["test_datasets"][0]]))
    script = (
        "import json, sys\n"
        "from axolotl.utils.data.shared import load_dataset_with_config\n"
        "from axolotl.utils.dict import DictDefault\n"
        "for entry in json.load(open(sys.argv[1])):\n"
        "    ds = load_dataset_with_config(DictDefault(entry), True)\n"
        "    print(json.dumps([row for row in ds]))\n"
    )
    env = {**env, "HF_DATASETS_CACHE": str(tmp_path / "ds-cache"), **train_config.AXOLOTL_ENV}
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "entries.json")], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    train_rows, validation_rows = (json.loads(line) for line in proc.stdout.strip().splitlines()[-2:])
    assert train_rows == [json.loads(line) for line in pinned["train"].splitlines()]
    assert validation_rows == [json.loads(line) for line in pinned["validation"].splitlines()]
    assert token not in proc.stdout + proc.stderr

    # Those downloads are a copy of the chats outside the project: `forget` removes them, and only them.
    cached = tmp_path / "hf/hub/datasets--elijah--chats"
    assert any(p.name == "train.jsonl" for p in cached.rglob("*"))
    other = tmp_path / "hf/hub/datasets--someone--public/refs"
    other.mkdir(parents=True)
    project = tmp_path / "project"
    (project / "results/hub").mkdir(parents=True)
    (project / "results/hub/dataset.json").write_text(json.dumps(receipt))
    forgot = subprocess.run(
        [sys.executable, "-m", "mindupload", "forget", "--root", str(project), "--hub-dataset", "chats"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert forgot.returncode == 0, forgot.stderr
    assert f"removed {cached}" in forgot.stdout and not cached.exists() and other.exists()


@pytest.fixture
def adapter_dir(tmp_path) -> Path:
    adapter = tmp_path / "results/adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"\x00\x01safetensors-bytes" * 64)
    config = {"base_model_name_or_path": "/home/elijah/models/SmolLM2", "peft_type": "LORA", "r": 32, "lora_alpha": 16}
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    (adapter / "tokenizer.json").write_text("{}")
    (adapter / "training.json").write_text(
        json.dumps({"base_model": "/home/elijah/models/SmolLM2", "steps": 12, "train_loss": 2.5, "device": "cpu"})
    )
    (adapter / "trainer_state.json").write_text(json.dumps({"best_model_checkpoint": "/home/elijah/work"}))
    return adapter


def push(env, adapter: Path, receipt: Path, base_model: str = "/home/elijah/models/SmolLM2"):
    settings = json.dumps({"training": {"learning_rate": 0.0002, "max_steps": 12}, "sequence_len": 1024})
    return mindupload(
        env,
        *("push-adapter", "--repo", "elijah-clone", "--private", "true", "--settings", settings),
        *("--base-model", base_model, "--adapter", str(adapter), "--receipt", str(receipt)),
    )


def test_push_adapter_sends_the_weights_by_lfs_with_a_model_card(fake_hub, token, adapter_dir, tmp_path):
    receipt_path = tmp_path / "results/hub/model.json"
    proc = push(hub_env(fake_hub, tmp_path, token), adapter_dir, receipt_path)
    assert proc.returncode == 0, proc.stderr
    repo = fake_hub.repo("model", "elijah/elijah-clone")
    assert repo.private is True
    files = repo.head.files
    assert set(files) == {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "README.md"}
    assert files["adapter_model.safetensors"] == (adapter_dir / "adapter_model.safetensors").read_bytes()
    assert any(r.path.endswith(".git/info/lfs/objects/batch") for r in fake_hub.requests)  # the LFS path
    assert any(r.method == "PUT" and r.path.startswith("/lfs-upload/") for r in fake_hub.requests)
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == "SmolLM2"  # no local path
    card = files["README.md"].decode()
    meta = front_matter(card)
    assert meta["library_name"] == "peft" and "ai-clone" in meta["tags"]
    assert "base_model" not in meta  # a local folder is not a Hub model id
    assert "AI imitation" in card and 'from_pretrained("elijah/elijah-clone")' in card
    assert '"train_loss": 2.5' in card and '"r": 32' in card
    assert "/home/elijah" not in card
    receipt = json.loads(receipt_path.read_text())
    assert receipt["revision"] == repo.head.oid and receipt["repo_type"] == "model"
    assert files_containing(tmp_path, token) == []


def test_a_hub_base_model_is_named_in_the_model_card_metadata(fake_hub, token, adapter_dir, tmp_path):
    proc = push(hub_env(fake_hub, tmp_path, token), adapter_dir, tmp_path / "m.json", base_model="org/Base-7B")
    assert proc.returncode == 0, proc.stderr
    files = fake_hub.files("model", "elijah/elijah-clone")
    assert front_matter(files["README.md"].decode())["base_model"] == "org/Base-7B"
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == "org/Base-7B"


def test_rendered_config_never_holds_the_token(fake_hub, token, dataset, tmp_path, tiny_llama_dir):
    env = hub_env(fake_hub, tmp_path, token)
    assert upload(env, dataset, tmp_path / "dataset.json").returncode == 0
    out = tmp_path / "axolotl.yaml"
    proc = mindupload(
        env,
        *("axolotl-config", "--config-json", "{}", "--base-model", str(tiny_llama_dir), "--device", "cpu"),
        *("--train", str(dataset["train"]), "--validation", str(dataset["validation"])),
        *("--output-dir", str(tmp_path / "work"), "--prepared-dir", str(tmp_path / "prepared")),
        *("--hub-receipt", str(tmp_path / "dataset.json"), "--out", str(out)),
    )
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(out.read_text())
    assert cfg["datasets"][0]["path"] == "elijah/chats" and cfg["hf_use_auth_token"] is True
    assert token not in out.read_text() and token not in proc.stderr


def test_private_false_never_makes_an_existing_private_repo_public(fake_hub, token, dataset, tmp_path):
    fake_hub.repos[("dataset", "elijah/chats")] = Repo("dataset", "elijah/chats", private=True)
    proc = upload(hub_env(fake_hub, tmp_path, token), dataset, tmp_path / "r.json", private="false")
    assert proc.returncode == 0, proc.stderr
    assert fake_hub.repo("dataset", "elijah/chats").private is True and "it stays private" in proc.stderr


def test_an_unreachable_hub_is_one_clear_line(dataset, tmp_path, token):
    with FakeHub(token) as closed:
        pass  # started and stopped: nothing listens on its port now
    proc = upload(hub_env(closed, tmp_path, token), dataset, tmp_path / "r.json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"hub.dataset_repo: could not reach the Hub at {closed.url} (ConnectError). Nothing was sent." in proc.stderr

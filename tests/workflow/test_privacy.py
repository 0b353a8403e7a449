"""Privacy of the data path, checked on real snakemake runs: planted canary strings must end up only where
they are allowed, and `snakemake forget` must leave no derived data behind."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from test_workflow import make_workdir, planned_rules, snakemake

pytestmark = pytest.mark.workflow

WHATSAPP = "examples/exports/WhatsApp Chat with Anna.txt"
TELEGRAM = "examples/exports/telegram/result.json"
GENERIC = "examples/exports/extra.jsonl"

# Unique tokens: one per planted message, so a hit says exactly which message leaked.
KEPT = [f"zqkept{i}canary" for i in range(4)]  # ordinary text: allowed only in the dataset and its views
PII = {  # personal data in other people's messages: replaced before anything downstream sees it
    "PHONE": "+44 7700 900461",
    "EMAIL": "zqpii.mail.canary@example.com",
    "URL": "https://zqpiiurlcanary.example.org/x",
    "IBAN": "GB33BUKB20201555555555",
    "CARD": "4000 0566 5566 5556",
}
EXCLUDED_CONTACT = "Victor Ecks"
EXCLUDED_CONVERSATION = "secret-plans"
EXCLUDED = [f"zqexcluded{i}canary" for i in range(4)]  # nowhere at all, not even in the tables or dataset

# Files where the kept message text is the point: the dataset, its tables, the check report that shows
# examples token by token, axolotl's prepared copy of the dataset (with `datasets`' cache of the JSON), and
# the sample replies, which quote the held-out conversations they answer; the evaluation's inputs (held-out
# conversations and training turns, as the dataset holds them). The evaluation report must not quote any.
TEXT_ALLOWED = (
    "results/dataset/train.jsonl",
    "results/dataset/validation.jsonl",
    "results/check/report.html",
    "results/check/report.json",
    "results/train/prepared/",
    "results/samples.md",
    "results/eval/inputs.json",
)
INPUTS = ("examples/", "config/", "Snakefile", "workflow/", "envs/", "profiles/")


def plant(workdir: Path) -> None:
    """Canaries in copies of the example exports, and a third export with an excluded contact and chat."""
    wa = workdir / WHATSAPP
    lines = wa.read_text(encoding="utf-8").splitlines()
    anna = [i for i, line in enumerate(lines) if " - Anna Keller: " in line]
    lines[anna[3]] += f" {KEPT[0]} call me on {PII['PHONE']} or {PII['EMAIL']}"
    lines[anna[10]] += f" {KEPT[1]} see {PII['URL']}"
    wa.write_text("\n".join(lines) + "\n", encoding="utf-8")

    tg = workdir / TELEGRAM
    export = json.loads(tg.read_text(encoding="utf-8"))
    marco = [m for m in export["messages"] if m.get("from") == "Marco Rossi" and isinstance(m.get("text"), str)]
    for message, extra in ((marco[2], f"{KEPT[2]} IBAN {PII['IBAN']}"), (marco[8], f"{KEPT[3]} card {PII['CARD']}")):
        message["text"] += " " + extra
        message["text_entities"] = [{"type": "plain", "text": message["text"]}]
    tg.write_text(json.dumps(export, ensure_ascii=False, indent=1), encoding="utf-8")

    rows = [
        ("climbing", "Zoe Park", False, "who's in for saturday?"),
        ("climbing", "Elijah Moreau", True, "me! what time"),
        ("climbing", EXCLUDED_CONTACT, False, f"{EXCLUDED[0]} count me in"),
        ("climbing", "Zoe Park", False, "9 at the gym then"),
        ("climbing", "Elijah Moreau", True, "deal"),
        ("victor", EXCLUDED_CONTACT, False, f"{EXCLUDED[1]} can we talk"),
        ("victor", "Elijah Moreau", True, f"{EXCLUDED[2]} sure, later"),
        (EXCLUDED_CONVERSATION, "Zoe Park", False, f"{EXCLUDED[3]} the surprise is friday"),
        (EXCLUDED_CONVERSATION, "Elijah Moreau", True, "my lips are sealed"),
    ]
    with open(workdir / GENERIC, "w", encoding="utf-8") as f:
        for i, (conversation, sender, is_self, text) in enumerate(rows):
            record = {"conversation": conversation, "timestamp": f"2024-05-01T10:{i:02d}:00+00:00"}
            record |= {"sender": sender, "is_self": is_self, "text": text}
            f.write(json.dumps(record) + "\n")


@pytest.fixture(scope="module")
def checked(tmp_path_factory, tiny_llama_dir):
    """The main job (dataset and stats, axolotl config and preprocess, check report, training, sample replies),
    with wandb logging on, offline: its run folder is scanned with the rest."""
    workdir = make_workdir(tmp_path_factory.mktemp("privacy"), base_model=str(tiny_llama_dir))
    plant(workdir)
    cfg = yaml.safe_load((workdir / "config/config.yaml").read_text())
    cfg["sources"]["extra"] = {"path": GENERIC, "format": "generic"}
    cfg["privacy"] = {"exclude_contacts": [EXCLUDED_CONTACT], "exclude_conversations": [EXCLUDED_CONVERSATION]}
    cfg["training"] |= {"max_steps": 2, "wandb_project": "clone"}
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    bindir = str(Path(sys.executable).parent)
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(workdir), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    proc = snakemake(workdir, env=env)
    return workdir, proc.stdout + proc.stderr


def derived_files(workdir: Path) -> dict[str, str]:
    """Every file the run wrote, anywhere under the working folder (results/, logs/, .snakemake/, caches)."""
    out = {}
    for path in workdir.rglob("*"):
        rel = path.relative_to(workdir).as_posix()
        if path.is_file() and not rel.startswith(INPUTS):
            out[rel] = path.read_bytes().decode("utf-8", errors="replace")
    return out


def hits(files: dict[str, str], needles: list[str]) -> dict[str, list[str]]:
    return {rel: found for rel, text in files.items() if (found := [n for n in needles if n in text])}


def test_the_run_wrote_logs_and_metadata_to_scan(checked):
    workdir, _ = checked
    files = derived_files(workdir)
    assert any(rel.startswith("logs/") for rel in files) and any(rel.startswith(".snakemake/") for rel in files)
    assert (workdir / "results/check/report.html").is_file() and (workdir / "results/samples.md").is_file()
    wandb_runs = [rel for rel in files if rel.startswith("results/train/wandb/offline-run-")]
    assert any(rel.endswith(".wandb") for rel in wandb_runs), "wandb should have logged the run, under results/"
    assert not (workdir / "wandb").exists()


def test_kept_messages_reach_the_dataset_and_nothing_else(checked):
    workdir, output = checked
    files = derived_files(workdir)
    dataset = (workdir / "results/dataset/train.jsonl").read_text() + (workdir / TEXT_ALLOWED[1]).read_text()
    assert any(c in dataset for c in KEPT), "the planted messages should be trained on"
    leaks = {
        rel: f
        for rel, f in hits(files, KEPT).items()
        if not rel.startswith(TEXT_ALLOWED) and not rel.endswith(".parquet")
    }
    assert leaks == {}
    assert hits({"snakemake output": output}, KEPT) == {}


def test_excluded_contacts_and_conversations_are_nowhere(checked):
    workdir, output = checked
    assert hits({**derived_files(workdir), "snakemake output": output}, EXCLUDED) == {}
    report = json.loads((workdir / "results/messages/extra.json").read_text())
    assert (report["excluded_messages"], report["excluded_conversations"]) == (5, 2)


def test_personal_data_is_nowhere(checked):
    workdir, output = checked
    assert hits({**derived_files(workdir), "snakemake output": output}, list(PII.values())) == {}
    dataset = (workdir / "results/dataset/train.jsonl").read_text() + (workdir / TEXT_ALLOWED[1]).read_text()
    assert "<PHONE>" in dataset or "<EMAIL>" in dataset
    report = json.loads((workdir / "results/reports/redaction.json").read_text())
    assert all(report["replaced"]["other"].get(t, 0) >= 1 for t in PII)
    assert "Redaction" in (workdir / "results/dataset/stats.md").read_text()


def test_forget_deletes_all_derived_data_in_one_command(checked):
    workdir, _ = checked
    (workdir / "results/models/public-model").mkdir(parents=True)  # stands in for the embedded base model
    (workdir / "results/models/public-model/config.json").write_text("{}")
    proc = snakemake(workdir, "forget")
    assert "removed results/dataset" in proc.stdout and "removed results/check" in proc.stdout
    left = [rel for rel in derived_files(workdir) if not rel.startswith(".snakemake/log/")]
    assert sorted(left) == ["logs/forget/forget.log", "results/models/public-model/config.json"]
    assert hits({rel: (workdir / rel).read_text() for rel in left}, KEPT + EXCLUDED + list(PII.values())) == {}
    assert planned_rules(workdir, "check")["parse_source"] == 3  # everything would be made again

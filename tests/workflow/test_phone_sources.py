"""One real `snakemake dataset` run over LINE, SMS Backup & Restore, iMessage and Signal exports together."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from test_workflow import make_workdir, snakemake

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
ME = ["Elijah Moreau", "エリヤ"]

pytestmark = pytest.mark.workflow


def place_exports(data: Path) -> dict:
    """The fixtures copied under data/, as a user would put their exports; `sources:` naming them."""
    data.mkdir()
    shutil.copy(FIXTURES / "line" / "english.txt", data / "line_en.txt")
    shutil.copy(FIXTURES / "line" / "japanese.txt", data / "line_ja.txt")
    shutil.copy(FIXTURES / "sms" / "backup.xml", data / "sms-20240106.xml")
    shutil.copytree(FIXTURES / "signal" / "export", data / "signal")
    db = sqlite3.connect(data / "chat.db")
    db.executescript((FIXTURES / "imessage" / "chat.sql").read_text(encoding="utf-8"))
    db.close()
    return {
        "line_en": {"path": "data/line_en.txt", "timezone": "Asia/Tokyo"},
        "line_ja": {"path": "data/line_ja.txt", "timezone": "Asia/Tokyo"},
        "sms": {"path": "data/sms-20240106.xml", "max_bad_fraction": 0.2},
        "imessage": {"path": "data/chat.db"},
        "signal": {"path": "data/signal", "timezone": "Europe/Berlin", "max_bad_fraction": 0.1},
    }


def test_dataset_over_the_phone_formats(tmp_path: Path, tiny_tokenizer_dir) -> None:
    sources = place_exports(tmp_path / "data")
    workdir = make_workdir(tmp_path, base_model=str(tiny_tokenizer_dir), me=ME, sources=sources)
    # This checkout's package, also where the installed one is another checkout's (as in a git worktree).
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(workdir),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT / "src"),
    }
    snakemake(workdir, "dataset", env=env)

    reports = {name: json.loads((workdir / f"results/messages/{name}.json").read_text()) for name in sources}
    assert {name: r["messages"] for name, r in reports.items()} == {
        "line_en": 8,
        "line_ja": 6,
        "sms": 7,
        "imessage": 13,
        "signal": 10,
    }
    assert reports["sms"]["records_skipped"] == 1 and reports["signal"]["records_skipped"] == 1
    assert all(r["own_messages"] > 0 for r in reports.values())
    stats = (workdir / "results/dataset/stats.md").read_text()
    assert all(name in stats for name in sources)
    examples = [
        json.loads(line)
        for split in ("train", "validation")
        for line in (workdir / f"results/dataset/{split}.jsonl").read_text().splitlines()
    ]
    assert examples and all(ex["segments"][-1]["label"] is True for ex in examples)
    assert (workdir / "data/chat.db").exists() and not (workdir / "data/chat.db-wal").exists()

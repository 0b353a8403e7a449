"""One real `snakemake dataset` run over an export of every supported format together."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from test_workflow import DATASET, ROOT, make_workdir, snakemake

pytestmark = pytest.mark.workflow
FIXTURES = ROOT / "tests" / "fixtures"

# Source name -> (fixture export, format, the user's name in it). The bundled examples come with the config.
EXPORTS = {
    "discord_dce": ("discord/dce", "auto", "alexdoe"),
    "discord_package": ("discord/package", "discord", "Alex Doe"),
    "messenger": ("messenger/facebook-alexdoe-2024-05-02", "auto", "Alex Doe"),
    "messenger_e2ee": ("messenger/secure-storage", "messenger", "Alex Doe"),
    "instagram": ("instagram/instagram-alexdoe-2024-05-02", "instagram", "alex.doe"),
    "slack": ("slack/export", "auto", "Alex"),
    "google_chat": ("google_chat/takeout", "auto", "alex.doe@example.org"),
}


def test_a_dataset_from_every_format_together(tmp_path, tiny_tokenizer_dir):
    workdir = make_workdir(tmp_path, base_model=str(tiny_tokenizer_dir))
    cfg = yaml.safe_load((workdir / "config/config.yaml").read_text())
    shutil.copy(ROOT / "examples/generic/chat.csv", workdir / "data-generic.csv")
    cfg["sources"]["generic"] = {"path": "data-generic.csv", "me": ["Alex Doe"]}
    for name, (fixture, fmt, me) in EXPORTS.items():
        target = workdir / "data" / name
        shutil.copytree(FIXTURES / fixture, target)
        cfg["sources"][name] = {"path": f"data/{name}", "format": fmt, "me": [me]}
    # The Slack export as downloaded: a zip.
    shutil.make_archive(str(workdir / "data/slack"), "zip", workdir / "data/slack")
    shutil.rmtree(workdir / "data/slack")
    cfg["sources"]["slack"]["path"] = "data/slack.zip"
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))

    # This checkout's package, whichever one the environment has installed.
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(workdir), "HF_HUB_OFFLINE": "1"}
    snakemake(workdir, "dataset", env={**env, "PYTHONPATH": str(ROOT / "src")})

    for path in DATASET:
        assert (workdir / path).stat().st_size > 0, path
    sources = set(cfg["sources"])
    assert sources == {"anna_whatsapp", "marco_telegram", "generic", *EXPORTS}
    reports = {s: json.loads((workdir / f"results/messages/{s}.json").read_text()) for s in sources}
    for source, report in reports.items():
        assert report["messages"] > 0 and report["own_messages"] > 0, source
    table = pq.read_table(workdir / "results/messages_redacted.parquet")
    assert set(table.column("source").to_pylist()) == sources
    assert table.num_rows == sum(r["messages"] for r in reports.values())
    expected = json.loads((FIXTURES / "messenger/facebook-alexdoe-2024-05-02.expected.json").read_text())
    assert reports["messenger"]["messages"] == len(expected["messages"])
    stats = (workdir / DATASET[2]).read_text()
    for source in sources:
        assert f"| {source} |" in stats
    assert "discord_package: Discord data package: it holds only your own messages" in stats
    examples = [json.loads(line) for line in (workdir / DATASET[0]).read_text().splitlines()]
    assert examples

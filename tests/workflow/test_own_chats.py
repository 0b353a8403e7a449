"""A new user's first run, as the README tells it: exports copied into `data/` of a fresh copy of the
repository, `mindupload init`, then the README's own command lines (read from README.md, so this test fails
when the README drifts). Only the user's exports may reach the dataset: never the bundled examples."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from own_chats import ME, OTHERS, copy_exports

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("Snakefile", "workflow", "config", "profiles", "envs", "examples", "README.md")
EXAMPLE_SOURCES = ("anna_whatsapp", "marco_telegram")
EXAMPLE_PEOPLE = ("Elijah", "Anna", "Marco")

pytestmark = pytest.mark.workflow


def readme_commands() -> dict[str, str]:
    """The command lines of README's "Your own chats" steps: `init`, `dataset` and `main`."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Your own chats", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S) for line in block.splitlines()]
    commands = {}
    for line in lines:
        words = shlex.split(line, comments=True)
        if words[:2] == ["mindupload", "init"]:
            commands["init"] = line
        elif words[:1] == ["snakemake"]:
            commands["dataset" if words[-1] == "dataset" else "main"] = line
    assert set(commands) == {"init", "dataset", "main"}, lines
    return commands


def run(workdir: Path, line: str) -> subprocess.CompletedProcess:
    """A README line in a shell, as a user pastes it, offline, with this checkout's package."""
    bindir = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "HOME": str(workdir),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT / "src"),
    }
    proc = subprocess.run(["bash", "-c", line], cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"{line} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_llama_dir) -> tuple[Path, str]:
    """A fresh copy of the repository with the user's exports in data/, after `mindupload init` and the
    README's dataset command. The config gets the tiny test model as `base_model` (a key the README has the
    user set for a real clone) and the demo's CPU training settings with 2 steps, so the main job stays
    cheap; nothing else is changed."""
    workdir = tmp_path_factory.mktemp("own")
    for name in COPIED:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, workdir / name)
    copy_exports(workdir / "data")
    commands = readme_commands()
    init_out = run(workdir, commands["init"]).stdout
    demo = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cheap = {
        "base_model": str(tiny_llama_dir),
        "segments": {"sequence_len": demo["segments"]["sequence_len"]},
        "training": {**demo["training"], "max_steps": 2},  # the demo's CPU settings
    }
    with open(workdir / "my-config.yaml", "a", encoding="utf-8") as f:
        f.write(yaml.safe_dump(cheap))
    run(workdir, commands["dataset"])
    return workdir, init_out


def test_init_proposes_the_user_and_lists_every_export(first_run):
    _, out = first_run
    assert f"me: {ME}  (writes in 3 of 3 exports)" in out
    assert "Wrote my-config.yaml: 3 source(s)" in out


def test_the_dataset_holds_the_users_exports_only(first_run):
    workdir, _ = first_run
    stats = (workdir / "results/dataset/stats.md").read_text()
    for source in ("whatsapp", "telegram", "generic"):
        assert f"| {source} |" in stats, stats
    for source in EXAMPLE_SOURCES:
        assert source not in stats
        assert not (workdir / f"results/messages/{source}.json").exists()
    examples = [
        json.loads(line)
        for split in ("train", "validation")
        for line in (workdir / f"results/dataset/{split}.jsonl").read_text().splitlines()
    ]
    assert len(examples) > 10
    text = "".join(piece["text"] for ex in examples for piece in ex["segments"])
    assert f"\n{ME}: " in text
    for name in (*EXAMPLE_PEOPLE, *OTHERS):
        assert name not in text


def test_own_telegram_messages_without_a_name_count_as_the_users(first_run):
    workdir, _ = first_run
    export = json.loads((ROOT / "tests/fixtures/own_chats/telegram/result.json").read_text())
    own = sum(1 for m in export["messages"] if m["from_id"] == "user2000001")
    assert any("from" not in m for m in export["messages"] if m["from_id"] == "user2000001")
    assert json.loads((workdir / "results/messages/telegram.json").read_text())["own_messages"] == own


def test_the_readme_main_job_trains_on_them_and_samples_replies(first_run):
    workdir, _ = first_run
    run(workdir, readme_commands()["main"])
    assert json.loads((workdir / "results/check/report.json").read_text())["ok"] is True
    assert (workdir / "results/adapter/adapter_model.safetensors").stat().st_size > 0
    samples = (workdir / "results/samples.md").read_text()
    # The prompts and the real answers come from the user's validation split (the tiny random model's own
    # words are noise from its vocabulary, which was built on the example chats: not checked).
    quoted = [line for line in samples.splitlines() if line.startswith(("> ", f"**{ME} (what you said):**"))]
    assert [line for line in quoted if line.startswith("> **friend:**")]
    for name in (*EXAMPLE_PEOPLE, *OTHERS):
        assert not [line for line in quoted if name in line]

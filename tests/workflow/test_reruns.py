"""Upgrading mind-upload reruns exactly what its new code changes: real `snakemake -n` runs on a copy of the
workflow and of the package (PYTHONPATH points at the copy, so the test edits code the way an upgrade does).

The dataset is built for real. The training half's outputs are placeholders recorded with `snakemake --touch`
(Snakemake records their params as after a real run): a dry run compares only what was recorded, and the
real training run has its own test (test_workflow.py).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
from pathlib import Path

import pytest
from test_workflow import ROOT, make_workdir, snakemake

from mindupload import fingerprint

pytestmark = pytest.mark.workflow

PLACEHOLDERS = (
    "results/train/axolotl.yaml",
    "results/check/report.json",
    "results/check/report.html",
    "results/check/lengths.svg",
    "results/eval/inputs.json",
    "results/eval/metrics.json",
    "results/eval/report.html",
)


def environment(workdir: Path, *extra: Path) -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    path = ":".join(str(p) for p in (*extra, workdir / "src"))
    return {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(workdir), "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    workdir = make_workdir(tmp_path_factory.mktemp("reruns"), base_model=str(tiny_tokenizer_dir))
    shutil.copytree(ROOT / "src", workdir / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    snakemake(workdir, "dataset", env=environment(workdir))
    for path in PLACEHOLDERS:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).write_text("placeholder\n")
    (workdir / "results/adapter").mkdir()
    (workdir / "results/samples.md").write_text("placeholder\n")
    snakemake(workdir, "--touch", "--forcerun", "axolotl_config", env=environment(workdir))
    assert jobs(workdir) == {}
    return workdir


def jobs(workdir: Path, *extra_path: Path) -> dict[str, str]:
    """The jobs `snakemake -n` plans, as `rule` or `rule[wildcards]`, with their reasons."""
    out = snakemake(workdir, "-n", env=environment(workdir, *extra_path)).stdout
    found = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block)[1]
        wildcards = re.search(r"^\s+wildcards: (.+)$", block, re.M)
        found[rule + (f"[{wildcards[1]}]" if wildcards else "")] = re.search(r"^\s+reason: (.+)$", block, re.M)[1]
    return found


def params_changed(planned: dict[str, str]) -> set[str]:
    return {job for job, reason in planned.items() if "Params have changed" in reason}


@contextlib.contextmanager
def edited(path: Path, old: str, new: str):
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    try:
        yield
    finally:
        path.write_text(text, encoding="utf-8")


DOWNSTREAM_OF_PARSING = {
    "combine_messages",
    "redact",
    "build_turns",
    "segment",
    "dataset_stats",
    "dataset_plots",
    "axolotl_config",
    "check",
    "train",
    "sample_replies",
    "eval_inputs",
    "evaluate",
    "all",
}


def test_editing_one_parser_function_reruns_that_parse_and_the_stages_below_it(workdir):
    parser = workdir / "src/mindupload/ingest/sources/whatsapp.py"
    signature = "def _decode_sample(head: bytes) -> str:"
    with edited(parser, signature, signature.replace("bytes", 'bytes, encoding="utf-8"')):
        planned = jobs(workdir)
    whatsapp, telegram = "parse_source[source=anna_whatsapp]", "parse_source[source=marco_telegram]"
    assert params_changed(planned) == {whatsapp}
    assert "Code has changed" not in planned[whatsapp]  # the rule's text did not: the code behind it did
    # The other export's parse runs again only to remake its table, a temporary file combine reads.
    assert planned.pop(telegram) == "Missing output files: results/messages/marco_telegram.parquet"
    assert set(planned) == {whatsapp, *DOWNSTREAM_OF_PARSING}


def test_a_comment_or_docstring_in_the_parser_reruns_nothing(workdir):
    parser = workdir / "src/mindupload/ingest/sources/whatsapp.py"
    with edited(parser, "def _decode_sample(head: bytes) -> str:", "def _decode_sample(head: bytes) -> str:  # !"):
        assert jobs(workdir) == {}


def test_editing_the_chat_page_reruns_nothing(workdir):
    page = workdir / "src/mindupload/serving/chat_ui.py"
    with edited(page, "def message_text(content) -> str:", 'def message_text(content, empty="") -> str:'):
        assert jobs(workdir) == {}


def test_a_new_axolotl_version_reruns_check_and_train_only(workdir, tmp_path):
    """An upgraded axolotl, as importlib.metadata sees it: a newer distribution first on the path."""
    installed = fingerprint.versions("axolotl")  # axolotl==<the pinned version>
    dist = tmp_path / "site" / "axolotl-99.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: axolotl\nVersion: 99.0\n")
    planned = jobs(workdir, tmp_path / "site")
    # Snakemake compares params only for a job that its inputs do not already rerun: `check` comes first.
    assert params_changed(planned) == {"check"}
    assert f"before: '{installed} " in planned["check"] and "now: 'axolotl==99.0 " in planned["check"]
    # The samples and the evaluation come from the new adapter.
    assert set(planned) == {"check", "train", "sample_replies", "evaluate", "all"}
    assert planned["train"].startswith("Input files updated by another job")
    # train carries the versions too (it reruns on them alone, e.g. once `check` has rerun on the new axolotl).
    assert any(p.startswith(f"'{installed} ") for p in recorded_params(workdir, "results/adapter"))


def recorded_params(workdir: Path, output: str) -> list[str]:
    """The params Snakemake recorded for an output (its metadata file is named by the path in base64)."""
    import base64
    import json

    name = base64.b64encode(output.encode()).decode()
    return json.loads((workdir / ".snakemake/metadata" / name).read_text())["params"]


def test_a_new_mindupload_version_alone_reruns_nothing(workdir):
    with edited(workdir / "src/mindupload/__init__.py", '__version__ = "', '__version__ = "99.'):
        assert jobs(workdir) == {}

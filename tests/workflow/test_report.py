"""`snakemake --report report.html` after the demo's main job: one page with every section, opened in the headless
chromium the chat tests use. Shares the session's `demo_run` (no training of its own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serve"))
from serving import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("1. Dataset", "2. Privacy", "3. Format check", "4. Sample replies", "5. Evaluation")
PICTURES = (
    "messages_per_month.svg",
    "turns_by_split.svg",
    "own_vs_other.svg",
    "lengths.svg",
    "stats.md",
    "redaction.md",
    "report.html",
    "samples.md",
)


@pytest.fixture(scope="module")
def report(demo_run) -> Path:
    bindir = str(Path(sys.executable).parent)
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(demo_run), "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--report", "report.html"],
        cwd=demo_run,
        env={**env, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return demo_run / "report.html"


def test_the_report_lists_every_section_and_output(report):
    text = report.read_text(encoding="utf-8")
    for name in PICTURES:
        assert name in text, f"{name} is not in the report"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
def test_the_report_opens_in_a_browser_with_every_section(report):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(report.as_uri())
        page.get_by_text("1. Dataset").first.wait_for(timeout=30_000)
        body = page.inner_text("body")
        assert "mind-upload" in body  # the report's own description (workflow/report/workflow.rst)
        for section in SECTIONS:
            assert section in body, f"no {section!r} in the report's menu"
        page.get_by_text("1. Dataset").first.click()
        page.get_by_text("messages_per_month.svg").first.wait_for(timeout=10_000)
        browser.close()

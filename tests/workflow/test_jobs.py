"""How jobs are started: private options never on a command line, and the job process is mindupload itself."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_workflow import ROOT, make_workdir, snakemake

pytestmark = pytest.mark.workflow

CONTACT = "Qzcontact Canaryname"
TERM = "qzblocklist-canary-term"
PERSONA = "qzpersona canary sentence"


def environment(workdir: Path) -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "HOME": str(workdir),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT / "src"),
    }


def files_holding(folder: Path, needles: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in folder.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "replace")
            hits = [needle for needle in needles if needle in text]
            if hits:
                found[str(path.relative_to(folder))] = hits
    return found


def test_privacy_terms_and_the_persona_reach_no_command_line_log_or_record(tmp_path):
    """A run that fails at `segment` (the base model folder holds no tokenizer) after `parse_source` and
    `redact` ran, with shell commands printed (-p): the canaries are in the config only."""
    empty_model = tmp_path / "no-tokenizer-here"
    empty_model.mkdir()
    (tmp_path / "wd").mkdir()
    workdir = make_workdir(tmp_path / "wd", base_model=str(empty_model))
    cfg = yaml.safe_load((workdir / "config/config.yaml").read_text())
    cfg.setdefault("privacy", {}).update(exclude_contacts=[CONTACT], blocklist=[TERM])
    cfg["identity"]["system_prompt"] = f"CONTEXT: {{me}}, {PERSONA}."
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))

    proc = snakemake(workdir, "-p", "dataset", check=False, env=environment(workdir))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error in rule segment" in out, out[-3000:]
    assert "mindupload parse --spec env:MINDUPLOAD_OPTIONS_" in out  # the commands were printed...
    assert "mindupload redact --options env:MINDUPLOAD_OPTIONS_" in out
    assert "--identity env:MINDUPLOAD_OPTIONS_" in out
    canaries = (CONTACT, TERM, PERSONA)
    assert [c for c in canaries if c in out] == []  # ...without the options
    assert files_holding(workdir / ".snakemake", canaries) == {}  # logs, metadata (commands and params)
    assert files_holding(workdir / "logs", canaries) == {}
    assert (workdir / "results/messages_redacted.parquet").is_file()  # the options did reach the jobs


def test_the_job_process_is_mindupload_itself_so_a_killed_job_leaves_no_writer(tmp_path, tiny_tokenizer_dir):
    """Snakemake kills a job by its process: with `exec`, that is the parser, not a shell that would leave the
    parser running to write its outputs after the failure was recorded. The export is a named pipe, so the
    parser waits in `open` until the test has looked."""
    workdir = make_workdir(tmp_path, base_model=str(tiny_tokenizer_dir))
    fifo = workdir / "export.json"
    os.mkfifo(fifo)
    cfg = yaml.safe_load((workdir / "config/config.yaml").read_text())
    cfg["sources"] = {"marco_telegram": {"path": str(fifo), "format": "telegram"}}
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))

    env = environment(workdir)
    target = "results/messages/marco_telegram.json"
    run = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "1", target],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        job = wait_for_child(run.pid, "parse", timeout=120)
        assert job is not None, "no `mindupload parse` process started as a direct child of snakemake"
        assert "mindupload" in cmdline(job)[1] and cmdline(job)[2] == "parse"  # python .../mindupload parse
        os.kill(job, signal.SIGKILL)
        out, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0, out[-2000:]
    with pytest.raises(OSError) as nobody:  # a reader would have the pipe open: there is none left
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert nobody.value.errno == errno.ENXIO
    assert not (workdir / target).exists() and not (workdir / "results/messages/marco_telegram.parquet").exists()


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def wait_for_child(parent: int, subcommand: str, timeout: float) -> int | None:
    """The pid of a direct child of `parent` running `mindupload <subcommand>`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                args = cmdline(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
            if ppid == parent and subcommand in args and any(a.endswith("mindupload") for a in args):
                return int(entry.name)
        time.sleep(0.2)
    return None

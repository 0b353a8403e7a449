"""`snakemake serve`: a run target outside `rule all`, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from serving import QUIET_ENV, free_port, port_is_free, subprocess_env
from workflow.test_workflow import make_workdir, planned_rules

pytestmark = [pytest.mark.serve, pytest.mark.workflow]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2"]
PERSONA = "CONTEXT: {me} is talking to a friend."


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def wait_for_server(proc: subprocess.Popen, url: str, log: Path, timeout: float = 300) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"snakemake serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    pytest.fail(f"snakemake serve did not answer in {timeout} s:\n{log.read_text()[-4000:]}")


def assert_group_ends(pgid: int, timeout: float = 20) -> None:
    """Every process of the group `pgid` exits within `timeout` seconds (the server may outlive snakemake a
    moment while gradio closes); otherwise fail, naming what is left, and kill it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    left = subprocess.run(["ps", "-o", "pid,etimes,args", "-g", str(pgid)], capture_output=True, text=True).stdout
    os.killpg(pgid, signal.SIGKILL)
    pytest.fail(f"processes of the job still running {timeout} s after Ctrl-C:\n{left}")


def test_serve_is_not_part_of_the_main_job(tmp_path, tiny_tokenizer_dir):
    workdir = make_workdir(tmp_path, base_model=str(tiny_tokenizer_dir))
    assert "serve" not in planned_rules(workdir)
    assert planned_rules(workdir, "serve")["serve"] == 1  # but it is a target, after training


def test_snakemake_serve_chats_and_ctrl_c_leaves_nothing_behind(
    tmp_path, tiny_llama_dir, tiny_adapter_dir, monkeypatch
):
    workdir = make_workdir(tmp_path, base_model=str(tiny_llama_dir))
    shutil.copytree(tiny_adapter_dir, workdir / "results/adapter")  # as `snakemake` (the main job) leaves it
    port = free_port()
    # A --configfile replaces the example's config whole (never merges), so the serve settings go into a copy.
    config = yaml.safe_load((workdir / "config/config.yaml").read_text())
    config["serve"] = {**config.get("serve", {}), "port": port, "max_new_tokens": 16}
    (workdir / "config/serve.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    log = workdir / "snakemake-serve.out"
    tmp = tmp_path / "tmp"  # the server's temporary folder (gradio's cache would be there)
    tmp.mkdir()
    before = files_under(workdir)
    with open(log, "wb") as out:
        # --allowed-rules: the adapter stands in for a finished main job, so nothing upstream is rebuilt.
        proc = subprocess.Popen(
            [*SNAKEMAKE, "serve", "--allowed-rules", "serve", "--configfile", "config/serve.yaml"],
            cwd=workdir,
            env=subprocess_env(workdir, TMPDIR=str(tmp)),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_server(proc, url, log)
        for key, value in QUIET_ENV.items():
            monkeypatch.setenv(key, value)
        from gradio_client import Client

        client = Client(url, verbose=False, analytics_enabled=False)
        secret = "my bank pin is 4921"
        reply = client.predict(secret, PERSONA, "friend", 0.7, 0.9, 16, api_name="/chat")
        assert isinstance(reply, list) and all(m["role"] == "assistant" and m["content"] for m in reply)
        client.close()
    finally:
        # Ctrl-C in a terminal: SIGINT to the foreground process group. (SIGINT to the snakemake process alone
        # makes Snakemake wait for its local jobs to end: it leaves stopping them to the terminal's signal.)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"snakemake serve did not stop on Ctrl-C:\n{log.read_text()[-4000:]}")
    assert_group_ends(proc.pid)  # no process of the job is left
    assert port_is_free(port)
    # No output, nothing half-written, no lock, no cache: only the run's logs are new files (Snakemake also
    # makes its empty bookkeeping folders).
    runs_logs = ("snakemake-serve.out", "logs", ".snakemake/log")
    new = {p for p in files_under(workdir) - before if (workdir / p).is_file() and not p.startswith(runs_logs)}
    assert new == set()
    assert not files_under(workdir / ".snakemake/locks")
    assert not files_under(workdir / ".snakemake/incomplete")
    assert not [p for p in tmp.rglob("*") if p.is_file()]
    served_log = (workdir / "logs/serve/serve.log").read_text()
    assert "loaded" in served_log and secret not in served_log  # the log never holds message text
    terminal = log.read_text()
    assert f"serving on http://127.0.0.1:{port}" in terminal  # the rule's messages reach the terminal too
    assert secret not in terminal
    # and the next run starts cleanly (no stale lock)
    assert planned_rules(workdir, "serve", "--allowed-rules", "serve") == {"serve": 1}

"""Helpers of the serve tests: free ports, configs, and `mindupload serve` run as a user runs it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

SYSTEM_PROMPT = "CONTEXT: {me} is talking to a friend."
# No telemetry from gradio or gradio_client, no hub: tests never reach the network.
QUIET_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Offline and quiet: no Google lookups, updates or sync (DESIGN.md, Gradio section).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Nothing listens there: a server can bind it again (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def write_config(path: Path, base_model: Path, port: int, sequence_len: int = 256, **serve) -> Path:
    config = {
        "me": ["Elijah"],
        "sources": {"example": {"path": "unused.txt"}},
        "base_model": str(base_model),
        "identity": {"name": "Elijah", "system_prompt": SYSTEM_PROMPT},
        "segments": {"sequence_len": sequence_len},
        "serve": {"port": port, "max_new_tokens": 24, **serve},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def subprocess_env(home: Path, **extra: str) -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(home), **QUIET_ENV, **extra}


class Server:
    """`mindupload serve` as a user starts it, in its own process group (as a terminal runs it)."""

    def __init__(self, args: list[str], cwd: Path, port: int, env: dict[str, str]):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self.log = cwd / f"server-{port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mindupload", "serve", *args],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the server exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            if self.serving():
                return
            time.sleep(0.5)
        pytest.fail(f"the server did not answer in {timeout} s:\n{self.output()[-3000:]}")

    def serving(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C, as a terminal sends it: SIGINT to the process group."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail(f"the server did not stop on Ctrl-C within {timeout} s")

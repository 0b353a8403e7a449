"""Helpers for tests that push to the local fake Hub (tests/hubserver.py) through real subprocesses."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

TOKEN_PREFIX = "hf_mindupload_test_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_hex(12)


def hub_env(hub, home: Path, token: str | None) -> dict[str, str]:
    """A clean environment pointing huggingface_hub at the fake Hub: HF_ENDPOINT is read when huggingface_hub
    is imported, so it must be set before the process starts; HF_HOME keeps any real login out of reach."""
    bindir = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "HOME": str(home),
        "HF_HOME": str(home / "hf"),
        "HF_ENDPOINT": hub.url,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_PROXY": "127.0.0.1",
    }
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def mindupload(env: dict, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mindupload", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every file under `root` whose bytes contain `needle` (for token-leak checks)."""
    found = []
    data = needle.encode()
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path.is_file() and data in path.read_bytes():
                found.append(path)
    return found

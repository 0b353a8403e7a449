"""`mindupload serve` as a user runs it: errors in one line before the server starts, and the optional login."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from serving import QUIET_ENV, Server, free_port, subprocess_env, write_config

from mindupload.serving.chat_ui import PASSWORD_ENV

pytestmark = pytest.mark.serve


def serve(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mindupload", "serve", *args],
        cwd=tmp_path,
        env=subprocess_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("mindupload: error:")]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in errors[0]


def test_a_missing_adapter_fails_in_one_line(tmp_path, tiny_llama_dir):
    config = write_config(tmp_path / "c.yaml", tiny_llama_dir, free_port())
    proc = serve(tmp_path, "--adapter", "results/adapter", "--config", str(config))
    assert_one_line_error(proc, "results/adapter: no such folder", "snakemake train")


def test_an_adapter_for_another_base_model_fails_in_one_line(tmp_path, tiny_llama_dir, tiny_adapter_dir):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    settings = json.loads((tiny_adapter_dir / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**settings, "base_model_name_or_path": "org/other-7b"}))
    (adapter / "adapter_model.safetensors").write_bytes((tiny_adapter_dir / "adapter_model.safetensors").read_bytes())
    config = write_config(tmp_path / "c.yaml", tiny_llama_dir, free_port())
    proc = serve(tmp_path, "--adapter", str(adapter), "--config", str(config))
    assert_one_line_error(proc, "trained on 'org/other-7b'", "base_model")


def test_a_port_in_use_fails_in_one_line(tmp_path, tiny_llama_dir, tiny_adapter_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path / "c.yaml", tiny_llama_dir, port)
        proc = serve(tmp_path, "--adapter", str(tiny_adapter_dir), "--config", str(config))
    assert_one_line_error(proc, f"cannot listen on 127.0.0.1:{port}", "--port")


def test_a_login_without_its_password_fails_in_one_line(tmp_path, tiny_llama_dir, tiny_adapter_dir):
    config = write_config(tmp_path / "c.yaml", tiny_llama_dir, free_port(), auth_username="eli")
    proc = serve(tmp_path, "--adapter", str(tiny_adapter_dir), "--config", str(config))
    assert_one_line_error(proc, PASSWORD_ENV)


def test_with_a_login_the_chat_needs_the_password(tmp_path, tiny_llama_dir, tiny_adapter_dir, monkeypatch):
    port = free_port()
    config = write_config(tmp_path / "c.yaml", tiny_llama_dir, port, auth_username="eli")
    env = subprocess_env(tmp_path, **{PASSWORD_ENV: "correct horse"})
    server = Server(["--adapter", str(tiny_adapter_dir), "--config", str(config)], tmp_path, port, env)
    try:
        server.wait_ready()
        for key, value in QUIET_ENV.items():
            monkeypatch.setenv(key, value)
        from gradio_client import Client

        with pytest.raises(Exception, match=r"(?i)login|auth|401|403|credentials"):
            Client(server.url, verbose=False, analytics_enabled=False)
        with pytest.raises(Exception):  # noqa: B017 -- gradio_client raises its own error types
            Client(server.url, auth=("eli", "wrong"), verbose=False, analytics_enabled=False)
        client = Client(server.url, auth=("eli", "correct horse"), verbose=False, analytics_enabled=False)
        reply = client.predict("hi", "CONTEXT: {me} is talking to a friend.", "friend", 0.0, 0.9, 8, api_name="/chat")
        assert isinstance(reply, list)
        client.close()
        assert "correct horse" not in server.output()  # the password is never printed
    finally:
        assert server.interrupt() == 0

"""A real chat server for the tests: `python -m mindupload serve` on a free loopback port, over the tiny
random Llama and a LoRA adapter made for it with PEFT. Started once per test session, stopped with Ctrl-C."""

from __future__ import annotations

import pytest
from serving import QUIET_ENV, Server, free_port, port_is_free, subprocess_env, write_config


@pytest.fixture(scope="session")
def server(tmp_path_factory, tiny_llama_dir, tiny_adapter_dir):
    workdir = tmp_path_factory.mktemp("serve")
    port = free_port()
    # Greedy, so a reply can be predicted; long enough to see it grow in a browser.
    config = write_config(workdir / "config.yaml", tiny_llama_dir, port, temperature=0.0, max_new_tokens=96)
    srv = Server(["--adapter", str(tiny_adapter_dir), "--config", str(config)], workdir, port, subprocess_env(workdir))
    srv.wait_ready()
    yield srv
    assert srv.interrupt() == 0, srv.output()[-3000:]
    assert port_is_free(port)


@pytest.fixture
def client_factory(server, monkeypatch):
    """gradio_client Clients of the server; each is one browser tab (its own session and history)."""
    for key, value in QUIET_ENV.items():
        monkeypatch.setenv(key, value)
    from gradio_client import Client

    made = []

    def make():
        client = Client(server.url, verbose=False, analytics_enabled=False)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()

"""`mindupload api` through the official `openai` client: a real server on a free loopback port over the tiny
random Llama and its LoRA adapter, with an API key; streamed and not, the request's sampling settings, the chat
page's stop rules, OpenAI-shaped errors, Ctrl-C."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from serving import SYSTEM_PROMPT, Server, free_port, port_is_free, subprocess_env, write_config

from mindupload.chat_template import messages_to_turns
from mindupload.render import Identity
from mindupload.serving import generation

pytestmark = pytest.mark.serve

KEY = "test-key-not-secret"
IDENTITY = Identity(name="Elijah", system_prompt=SYSTEM_PROMPT)
MODEL = "mindupload-clone"
MESSAGES = [
    {"role": "user", "content": "are you free on saturday?"},
    {"role": "assistant", "content": "maybe"},
    {"role": "user", "content": "party at mine"},
]


class ApiServer(Server):
    """`mindupload api`, started as `Server` starts `mindupload serve`; ready when /v1/models answers."""

    def __init__(self, args, cwd, port, env):
        self.port, self.url = port, f"http://127.0.0.1:{port}/v1"
        self.log = cwd / f"api-{port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mindupload", "api", *args],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def serving(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/models", timeout=5)
        except urllib.error.HTTPError as e:
            return e.code == 401  # up, and asking for the key
        except OSError:
            return False
        return True


@pytest.fixture(scope="module")
def api(tmp_path_factory, tiny_llama_dir, tiny_adapter_dir):
    workdir = tmp_path_factory.mktemp("api")
    port = free_port()
    config = write_config(workdir / "config.yaml", tiny_llama_dir, port, temperature=0.0, max_new_tokens=24)
    # This checkout's package, not an installed one.
    env = subprocess_env(workdir, MINDUPLOAD_API_KEY=KEY, PYTHONPATH=str(Path(__file__).parents[2] / "src"))
    args = ["--adapter", str(tiny_adapter_dir), "--config", str(config), "--port", str(port)]
    srv = ApiServer(args, workdir, port, env)
    srv.wait_ready()
    yield srv
    assert srv.interrupt() == 0, srv.output()[-3000:]
    assert port_is_free(port)
    assert "party at mine" not in srv.output()  # message text is never logged


@pytest.fixture(scope="module")
def client(api):
    from openai import OpenAI

    with OpenAI(base_url=api.url, api_key=KEY, max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def engine(tiny_llama_dir, tiny_adapter_dir):
    """The server's model, loaded here too, to say what the server must have answered."""
    return generation.load(str(tiny_llama_dir), tiny_adapter_dir, sequence_len=256)


def expected(engine, messages, max_tokens=24, temperature=0.0, seed=None, stops=()) -> str:
    """The reply as the chat page's code makes it: the one renderer, generation's stop rules."""
    who, turns = messages_to_turns(messages, IDENTITY)
    ready = generation.prepare(engine, turns, who, generation.Options(max_tokens, temperature, 0.9))
    texts = generation.stream(engine, ready.pieces, [*ready.stops, *stops], ready.options, seed)
    return next(reversed(list(texts)), "")


def test_models_lists_the_clone(client):
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_a_completion_is_the_chat_pages_reply(client, engine):
    out = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert out.choices[0].message.role == "assistant"
    assert out.choices[0].message.content == expected(engine, MESSAGES)
    assert out.choices[0].finish_reason in ("stop", "length")
    assert (
        out.usage.prompt_tokens > 0 and out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    )


def test_a_streamed_completion_gives_the_same_text(client, engine):
    stream = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(deltas) == expected(engine, MESSAGES)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_max_tokens_ends_with_length(client):
    out = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=1)
    assert out.usage.completion_tokens == 1
    assert out.choices[0].finish_reason in ("length", "stop")  # "stop" only when the one token is EOS or a label


def test_stop_strings_cut_the_reply_before_them(client, engine):
    full = expected(engine, MESSAGES, max_tokens=40)
    if len(full) < 4:
        pytest.skip("the tiny model's reply is too short to stop inside")
    stop = full[len(full) // 2 : len(full) // 2 + 2]  # its first occurrence may come earlier: that is where it ends
    out = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=40, stop=[stop])
    assert out.choices[0].message.content == full[: full.find(stop)].rstrip()
    assert stop not in out.choices[0].message.content
    streamed = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=40, stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == out.choices[0].message.content


def test_a_seed_repeats_a_sampled_reply(client, engine):
    def ask() -> str:
        out = client.chat.completions.create(
            model=MODEL, messages=MESSAGES, temperature=1.0, top_p=0.9, seed=7, max_tokens=16
        )
        return out.choices[0].message.content

    first = ask()
    assert ask() == first
    assert first == expected(engine, MESSAGES, max_tokens=16, temperature=1.0, seed=7)


def test_a_system_message_and_group_names_reach_the_prompt(client, engine):
    messages = [
        {"role": "system", "content": "Elijah chats with two friends."},
        {"role": "user", "name": "Ann", "content": "hi"},
        {"role": "user", "name": "Bob", "content": "hey"},
    ]
    out = client.chat.completions.create(model=MODEL, messages=messages)
    assert out.choices[0].message.content == expected(engine, messages)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"temperature": 3}, "temperature: 3 is out of range"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop: at most 4"),
        ({"messages": [{"role": "tool", "content": "secret words"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "   "}]}, "no user or assistant message"),
        ({"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "y"}]}, "messages[1]"),
        ({"n": 2}, "n: only one choice"),
    ],
)
def test_bad_requests_get_one_line_openai_errors(client, kwargs, needle):
    from openai import BadRequestError

    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(**{"model": MODEL, "messages": MESSAGES, **kwargs})
    error = caught.value.body
    assert needle in error["message"] and "\n" not in error["message"]
    assert error["type"] == "invalid_request_error"
    assert "secret words" not in error["message"]


def test_an_unknown_model_is_not_found(client):
    from openai import NotFoundError

    with pytest.raises(NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.body["code"] == "model_not_found"


def test_a_body_that_is_not_json_gets_an_error_object(api):
    request = urllib.request.Request(
        f"{api.url}/chat/completions",
        data=b"{not json",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["error"]["message"] == "the request body is not JSON"


def test_without_the_key_nothing_answers(api):
    from openai import AuthenticationError, OpenAI

    with OpenAI(base_url=api.url, api_key="wrong", max_retries=0) as other:
        with pytest.raises(AuthenticationError) as caught:
            other.models.list()
        assert caught.value.body["code"] == "invalid_api_key"
        with pytest.raises(AuthenticationError):
            other.chat.completions.create(model=MODEL, messages=MESSAGES)
    with pytest.raises(urllib.error.HTTPError) as caught:  # no Authorization header at all
        urllib.request.urlopen(f"{api.url}/models", timeout=30)
    assert caught.value.code == 401
    assert json.loads(caught.value.read())["error"]["type"] == "authentication_error"

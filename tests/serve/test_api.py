"""The chat server through gradio's own client: streaming, a kept conversation, and bad input."""

from __future__ import annotations

import itertools
import threading

import pytest
from serving import SYSTEM_PROMPT

from mindupload.render import Identity
from mindupload.serving import chat_ui, generation

pytestmark = pytest.mark.serve

GREEDY = (SYSTEM_PROMPT, "friend", 0.0, 0.9, 24)  # persona, label, temperature, top-p, max new tokens
IDENTITY = Identity(name="Elijah", system_prompt=SYSTEM_PROMPT)


def chat(client, message: str, settings=GREEDY) -> list[dict]:
    return client.predict(message, *settings, api_name="/chat")


def text(bubbles: list[dict]) -> str:
    return "\n".join(b["content"] for b in bubbles)


@pytest.fixture(scope="module")
def engine(tiny_llama_dir, tiny_adapter_dir):
    """The server's model, loaded here too, to say what the server must have answered."""
    return generation.load(str(tiny_llama_dir), tiny_adapter_dir, sequence_len=256)


def expected_reply(engine, history: list[dict], settings=GREEDY) -> list[dict]:
    """The greedy reply to `history` as the server builds it: chat turns -> one renderer -> generation."""
    who = chat_ui.session_identity(IDENTITY, settings[0], settings[1])
    cleaned = [{**m, "content": generation.clean(m["content"])} for m in history]  # as the server cleans input
    turns = chat_ui.history_turns(cleaned, who)
    ready = generation.prepare(engine, turns, who, generation.Options(settings[4], settings[2], settings[3]))
    return chat_ui.as_messages(generation.generate(engine, ready.pieces, ready.stops, ready.options, seed=0))


def assert_still_serving(client_factory, engine):
    """A new tab gets the reply a fresh conversation must get."""
    reply = chat(client_factory(), "hi how are you")
    assert isinstance(reply, list)
    assert reply == expected_reply(engine, [{"role": "user", "content": "hi how are you"}])


def test_the_reply_streams_in_pieces(client_factory, engine):
    job = client_factory().submit("want to go climbing on saturday", *GREEDY, api_name="/chat")
    final = job.result(timeout=120)
    seen = [text(out) for out in job.outputs() if out]
    assert len(set(seen)) >= 2, seen  # more than one state of the reply reached the client
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(seen))
    assert text(final) == seen[-1]
    assert final == expected_reply(engine, [{"role": "user", "content": "want to go climbing on saturday"}])


def test_the_conversation_is_kept_across_turns(client_factory, engine):
    client = client_factory()
    first = chat(client, "hi how are you")
    second = chat(client, "want to go climbing on saturday")
    history = [
        {"role": "user", "content": "hi how are you"},
        *first,
        {"role": "user", "content": "want to go climbing on saturday"},
    ]
    assert second == expected_reply(engine, history)
    assert second != expected_reply(engine, history[-1:])  # without the first exchange it would differ


def test_every_bubble_is_one_non_empty_line(client_factory):
    replies = [chat(client_factory(), f"hi how are you {n}", (SYSTEM_PROMPT, "friend", 1.0, 1.0, 24)) for n in range(6)]
    for reply in replies:
        assert all(b["role"] == "assistant" and b["content"] and "\n" not in b["content"] for b in reply)


def test_an_empty_message_gets_no_reply_and_the_server_goes_on(client_factory, engine):
    client = client_factory()
    assert chat(client, "") == []
    assert chat(client, " \n\t ") == []
    assert_still_serving(client_factory, engine)


def test_a_100_kb_paste_is_answered_from_its_end(client_factory, engine):
    client = client_factory()
    paste = "".join(f"line {n}: the derailleur is broken again haha\n" for n in range(2500))
    assert len(paste.encode()) > 100_000
    reply = chat(client, paste)
    assert reply == expected_reply(engine, [{"role": "user", "content": paste}])
    assert_still_serving(client_factory, engine)


def test_control_characters_and_odd_unicode_are_cleaned(client_factory, engine):
    client = client_factory()
    nasty = "hi\x00 how\x1b[2J are\u202e you\ufffe\U0010ffff\r\n\x7f\x85?"  # lone surrogates: unit-tested
    reply = chat(client, nasty)
    assert reply == expected_reply(engine, [{"role": "user", "content": nasty}])
    assert_still_serving(client_factory, engine)


def test_a_conversation_longer_than_the_window_drops_its_oldest_turns(client_factory, engine):
    client = client_factory()
    history: list[dict] = []
    settings = (SYSTEM_PROMPT, "friend", 0.0, 0.9, 8)
    for n in range(12):
        message = f"want to go climbing on saturday {n} " * 4
        history.append({"role": "user", "content": message})
        reply = chat(client, message, settings)
        assert reply == expected_reply(engine, history, settings)
        history += reply
    turns = chat_ui.history_turns(history, IDENTITY)
    full_prompt = engine.count(generation.render.prompt_pieces(turns, IDENTITY, engine.markers))
    assert full_prompt > engine.context  # the whole conversation could not have fitted
    assert_still_serving(client_factory, engine)


def test_two_tabs_at_once_get_their_own_conversations(client_factory, engine):
    tabs = [client_factory(), client_factory()]
    chat(tabs[0], "hi how are you")  # tab 0 has history, tab 1 none
    results: dict[int, list] = {}

    def ask(n: int) -> None:
        results[n] = chat(tabs[n], "want to go climbing on saturday")

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert set(results) == {0, 1}
    assert results[1] == expected_reply(engine, [{"role": "user", "content": "want to go climbing on saturday"}])
    assert_still_serving(client_factory, engine)

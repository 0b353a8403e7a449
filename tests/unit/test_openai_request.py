"""The OpenAI API's request checks and its stop strings, without a server (tests/serve/test_openai_api.py has one)."""

from __future__ import annotations

import pytest

from mindupload.serving import generation
from mindupload.serving.openai_api import RequestError, check_key, parse_request, visible_upto_stops

DEFAULTS = generation.Options(max_new_tokens=128, temperature=0.7, top_p=0.9)
HI = [{"role": "user", "content": "hi"}]


def test_defaults_come_from_the_config_and_fields_override_them():
    assert parse_request({"messages": HI}, DEFAULTS).options == DEFAULTS
    request = parse_request(
        {"messages": HI, "temperature": 0, "top_p": 1, "max_tokens": 5, "seed": 3, "stop": "x", "stream": True},
        DEFAULTS,
    )
    assert request.options == generation.Options(5, 0.0, 1.0)
    assert (request.seed, request.stops, request.stream) == (3, ["x"], True)
    assert parse_request({"messages": HI, "max_completion_tokens": 7}, DEFAULTS).options.max_new_tokens == 7


def test_messages_are_cleaned_named_and_empty_ones_dropped():
    messages = [
        {"role": "developer", "content": " be brief\r\n"},
        {"role": "user", "name": " Ann: B ", "content": "hi\x07\r\nthere "},
        {"role": "assistant", "content": "   "},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]},
    ]
    assert parse_request({"messages": messages}, DEFAULTS).messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi\nthere", "name": "Ann B"},
        {"role": "user", "content": "a"},
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"messages": []}, "messages"),
        ({"messages": HI, "temperature": "hot"}, "temperature"),
        ({"messages": HI, "temperature": True}, "temperature"),
        ({"messages": HI, "max_tokens": 1.5}, "max_tokens"),
        ({"messages": HI, "top_p": 0}, "top_p"),
        ({"messages": HI, "stop": [1]}, "stop"),
        ({"messages": HI, "stream": "yes"}, "stream"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "a", "name": 5}]}, "messages[0].name"),
    ],
)
def test_bad_fields_are_named(body, param):
    with pytest.raises(RequestError) as caught:
        parse_request(body, DEFAULTS)
    assert caught.value.param == param and caught.value.status == 400
    assert caught.value.body()["error"]["type"] == "invalid_request_error"


def test_stop_strings_are_held_back_while_they_may_still_come():
    assert visible_upto_stops("see you END", ["END"], final=False) == ("see you", True)
    assert visible_upto_stops("see you EN", ["END"], final=False) == ("see you ", False)
    assert visible_upto_stops("see you EN", ["END"], final=True) == ("see you EN", False)
    assert visible_upto_stops("abc", [], final=False) == ("abc", False)


def test_the_key_is_checked_only_when_set():
    check_key(None, None)
    check_key("Bearer k", "k")
    check_key("bearer k", "k")
    for header in (None, "Bearer x", "k", "Basic k"):
        with pytest.raises(RequestError) as caught:
            check_key(header, "k")
        assert caught.value.status == 401

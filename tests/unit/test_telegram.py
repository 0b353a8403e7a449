"""The Telegram Desktop JSON parser: fixtures with their expected parse, bad input, properties, streaming."""

from __future__ import annotations

import json
import logging
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mindupload.errors import ParseError
from mindupload.ingest import table as messages
from mindupload.ingest.sources import ParseResult, SourceSpec, telegram

FIXTURES = Path(__file__).parents[1] / "fixtures" / "telegram"
ME_ID = "user1001"


def parse(path: Path, me: tuple[str, ...] = ()) -> ParseResult:
    result = telegram.parse(SourceSpec("tg", path, me=me))
    messages.conform(result.table)  # the contract holds
    return result


def summary(result: ParseResult) -> list[tuple]:
    """(sender, is_self, kind, text, reply_to) per message, in table order."""
    columns = ["sender", "is_self", "kind", "text", "reply_to"]
    return list(zip(*(result.table.column(name).to_pylist() for name in columns), strict=True))


def chat_export(messages_: list[dict], chat_type: str = "personal_chat", chat_id: int = 77) -> dict:
    return {"name": "Robin Park", "type": chat_type, "id": chat_id, "messages": messages_}


def text_message(
    number: int, text: str = "hello", sender: str = "Robin Park", from_id: str = "user77", **extra
) -> dict:
    return {
        "id": number,
        "type": "message",
        "date": "2024-05-01T12:00:00",
        "date_unixtime": str(1714564800 + 60 * number),
        "from": sender,
        "from_id": from_id,
        "text": text,
        "text_entities": [{"type": "plain", "text": text}],
        **extra,
    }


def write_json(tmp_path: Path, data, name: str = "result.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


# --- the fixtures -------------------------------------------------------------------------------------------

PERSONAL_CHAT = [
    ("Jamie Rivera", False, "text", "Morning! Coffee later?", None),
    ("Alex Doe", True, "text", "Sure, 10:30 at https://example.org/cafe", 0),
    ("Jamie Rivera", False, "sticker", "👍", None),
    ("Alex Doe", True, "media", "The view from the bridge\nnot bad, right?", None),
    ("Jamie Rivera", False, "media", "", None),  # voice message
    ("Alex Doe", True, "forwarded", "Octopuses have three hearts.", None),
    ("Alex Doe", True, "call", "", None),
    ("Jamie Rivera", False, "system", "", None),  # pinned message
    ("Jamie Rivera", False, "text", "Wow 😍 see you there", 3),
]


@pytest.mark.parametrize("me", [("Alex Doe",), ("  alex   DOE ",), (ME_ID,)])
def test_personal_chat_reads_every_kind_of_message(me):
    result = parse(FIXTURES / "personal_chat.json", me=me)

    assert summary(result) == PERSONAL_CHAT
    assert result.units_read == 9
    assert result.bad_lines == []
    assert result.unit == "record"


def test_personal_chat_columns():
    table = parse(FIXTURES / "personal_chat.json", me=("Alex Doe",)).table

    assert set(table.column("source").to_pylist()) == {"tg"}
    assert set(table.column("conversation_id").to_pylist()) == {"tg:4400112233"}
    assert table.column("message_id").to_pylist() == list(range(9))
    # date_unixtime (UTC), never `date`, which is the exporting computer's local time (here UTC+1).
    assert table.column("timestamp")[0].as_py() == datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def test_single_chat_without_me_has_no_own_messages():
    result = parse(FIXTURES / "personal_chat.json")

    assert not any(result.table.column("is_self").to_pylist())


WHOLE_ACCOUNT = [
    # conversation, sender, is_self, kind, text, reply_to
    ("tg:4400112233", "Jamie Rivera", False, "text", "Did you get home ok?", None),
    ("tg:4400112233", "Alex Doe", True, "text", "Yes, thanks!", 0),
    ("tg:5500", "Sam Lee", False, "system", "", None),
    ("tg:5500", "Sam Lee", False, "text", "Saturday at the crag?", None),
    ("tg:5500", "user7007", False, "text", "count me in", None),  # deleted account: `from` is null
    ("tg:5500", "Alex D.", True, "text", "I'll bring the rope", 1),  # own by user_id, whatever the name
    ("tg:5500", "Sam Lee", False, "call", "", None),
]


def whole_account_rows(result: ParseResult) -> list[tuple]:
    return [
        (conversation, *rest)
        for conversation, rest in zip(result.table.column("conversation_id").to_pylist(), summary(result), strict=True)
    ]


def test_whole_account_keeps_chats_and_groups_and_knows_the_user_by_id(caplog):
    caplog.set_level(logging.INFO, logger="mindupload.ingest.sources.telegram")

    result = parse(FIXTURES / "whole_account.json")

    assert whole_account_rows(result) == WHOLE_ACCOUNT
    assert result.units_read == 7
    assert "skipped 2 chats (1 public_channel, 1 saved_messages)" in caplog.text
    for private in ("Tech News", "A new phone", "note to self", "Jamie"):
        assert private not in caplog.text


def test_whole_account_me_adds_to_the_exported_user_id():
    result = parse(FIXTURES / "whole_account.json", me=("Sam Lee",))

    own = {sender for sender, is_self, *_ in summary(result) if is_self}
    assert own == {"Alex Doe", "Alex D.", "Sam Lee"}


def test_whole_account_does_not_depend_on_key_order(tmp_path):
    data = json.loads((FIXTURES / "whole_account.json").read_text(encoding="utf-8"))
    # Sorted keys put `messages` before `name` and `type`: a skipped chat is only known after its messages.
    path = tmp_path / "sorted.json"
    path.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")

    assert whole_account_rows(parse(path)) == WHOLE_ACCOUNT


def test_left_chats_are_read_and_filed_under_their_own_id(tmp_path):
    data = json.loads((FIXTURES / "whole_account.json").read_text(encoding="utf-8"))
    data["left_chats"]["list"] = [chat_export([text_message(1, "bye all")], "private_supergroup", 6600)]

    result = parse(write_json(tmp_path, data))

    left = [row for row in whole_account_rows(result) if row[0] == "tg:6600"]
    assert left == [("tg:6600", "Robin Park", False, "text", "bye all", None)]


# --- message details ----------------------------------------------------------------------------------------


def test_messages_are_ordered_by_time_stably_and_replies_follow(tmp_path):
    late, early_a, early_b = text_message(1, "late"), text_message(2, "early a"), text_message(3, "early b")
    early_a["date_unixtime"] = early_b["date_unixtime"] = "1714564000"
    late["reply_to_message_id"] = 3
    path = write_json(tmp_path, chat_export([late, early_a, early_b]))

    table = parse(path).table

    assert table.column("text").to_pylist() == ["early a", "early b", "late"]
    assert table.column("message_id").to_pylist() == [0, 1, 2]
    assert table.column("reply_to").to_pylist() == [None, None, 1]


def test_reply_to_a_message_outside_the_export_is_null(tmp_path):
    path = write_json(tmp_path, chat_export([text_message(1, reply_to_message_id=999)]))

    assert parse(path).table.column("reply_to").to_pylist() == [None]


def test_text_falls_back_to_the_text_field_when_entities_are_missing(tmp_path):
    message = text_message(1)
    del message["text_entities"]
    message["text"] = ["see ", {"type": "link", "text": "example.org"}, "!"]

    assert parse(write_json(tmp_path, chat_export([message]))).table.column("text").to_pylist() == ["see example.org!"]


@pytest.mark.parametrize(
    ("extra", "kind", "text"),
    [
        ({"media_type": "animation", "file": "video_files/a.mp4"}, "sticker", "caption"),
        ({"media_type": "video_message", "file": "round_video_messages/v.mp4"}, "media", "caption"),
        ({"media_type": "video_file", "file": "video_files/v.mp4"}, "media", "caption"),
        ({"media_type": "audio_file", "file": "files/song.mp3"}, "media", "caption"),
        ({"file": "files/report.pdf"}, "media", "caption"),
        ({"forwarded_from": None, "photo": "photos/p.jpg"}, "forwarded", "caption"),
        ({"media_type": "sticker", "sticker_emoji": None}, "sticker", ""),
    ],
)
def test_media_kinds(tmp_path, extra, kind, text):
    path = write_json(tmp_path, chat_export([text_message(1, "caption", **extra)]))

    table = parse(path).table

    assert (table.column("kind")[0].as_py(), table.column("text")[0].as_py()) == (kind, text)


def test_a_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "result.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(chat_export([text_message(1)])).encode())

    assert parse(path).table.num_rows == 1


# --- bad input ----------------------------------------------------------------------------------------------

SECRET = "the secret plan"


def test_truncated_file_names_the_line_where_parsing_stopped():
    with pytest.raises(ParseError, match="truncated") as error:
        parse(FIXTURES / "truncated.json")

    assert error.value.line == 66  # the file's last, cut-off line
    assert "truncated.json, line 66" in str(error.value)
    assert "Coffee" not in str(error.value)


def test_invalid_json_names_its_line_without_quoting_it(tmp_path):
    lines = json.dumps(chat_export([text_message(1, SECRET)]), indent=1).splitlines()
    lines[12] = lines[12].replace('"text":', '"text"', 1)  # a missing colon on line 13
    path = tmp_path / "result.json"
    path.write_text("\n".join(lines), encoding="utf-8")

    with pytest.raises(ParseError, match="not valid JSON") as error:
        parse(path)

    assert error.value.line == 13
    assert SECRET not in str(error.value)


def test_a_text_file_is_not_json(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(f"{SECRET}\nmore\n", encoding="utf-8")

    with pytest.raises(ParseError, match="not JSON") as error:
        parse(path)

    assert error.value.line == 1
    assert SECRET not in str(error.value)


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "result.json"
    path.write_bytes(b'{\n "name": "x",\n "messages": ["\xff\xfe"]\n}\n')

    with pytest.raises(ParseError, match="UTF-8") as error:
        parse(path)

    assert error.value.line == 3


@pytest.mark.parametrize("data", [{"contacts": {"list": []}}, [1, 2], "messages", {"messages": 3}])
def test_json_that_is_not_a_telegram_export(tmp_path, data):
    with pytest.raises(ParseError, match="not a Telegram Desktop export; export with format JSON"):
        parse(write_json(tmp_path, data))


def test_empty_file(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("\n", encoding="utf-8")

    with pytest.raises(ParseError, match="empty"):
        parse(path)


def test_html_export_asks_for_a_json_export():
    with pytest.raises(ParseError, match=r"HTML export.*Machine-readable JSON"):
        parse(FIXTURES / "messages.html")


def test_a_message_without_any_date_is_a_bad_record_naming_the_missing_fields(tmp_path, caplog):
    broken = text_message(2, SECRET)
    del broken["date_unixtime"], broken["date"]
    path = write_json(tmp_path, chat_export([text_message(1), broken, text_message(3)]))

    result = parse(path)

    assert (result.units_read, result.bad_lines, result.table.num_rows) == (3, [2], 2)
    assert "record 2 (chat 77, message id 2): no date_unixtime and no date" in caplog.text
    assert SECRET not in caplog.text


def test_bad_records_are_numbered_across_chats(tmp_path):
    data = json.loads((FIXTURES / "whole_account.json").read_text(encoding="utf-8"))
    group = data["chats"]["list"][3]
    group["messages"][1]["date_unixtime"] = "yesterday"

    result = parse(write_json(tmp_path, data))

    # Records count the messages of kept chats in file order: 2 in Jamie's chat, then the group's second.
    assert (result.units_read, result.bad_lines) == (7, [4])


def test_records_with_only_a_local_date_are_read_in_the_sources_timezone(tmp_path, caplog):
    """Older Telegram Desktop versions wrote only `date`, the exporting computer's local time; a file can mix
    both kinds (a chat exported across an update)."""
    old, new = text_message(1), text_message(2)
    del old["date_unixtime"]
    old["date"] = "2024-05-01T12:00:00"  # noon in Paris (CEST, UTC+2)
    path = write_json(tmp_path, chat_export([old, new]))

    with caplog.at_level(logging.INFO):
        result = telegram.parse(SourceSpec("tg", path, timezone="Europe/Paris"))

    assert result.bad_lines == []
    assert result.table.column("timestamp").to_pylist() == [
        datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        datetime.fromtimestamp(int(new["date_unixtime"]), UTC),
    ]
    assert "1 records have no date_unixtime" in caplog.text and "Europe/Paris" in caplog.text


def test_an_unreadable_local_date_is_a_bad_record(tmp_path, caplog):
    old = text_message(1)
    del old["date_unixtime"]
    old["date"] = "last tuesday"
    result = parse(write_json(tmp_path, chat_export([old, text_message(2)])))
    assert result.bad_lines == [1]
    assert "no date_unixtime, and an unreadable date" in caplog.text


def test_a_single_channel_export_is_refused(tmp_path):
    with pytest.raises(ParseError, match="type 'public_channel'"):
        parse(write_json(tmp_path, chat_export([text_message(1)], "public_channel")))


# --- sniffing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["personal_chat.json", "whole_account.json", "truncated.json", "messages.html"])
def test_sniff_recognises_telegram_exports(name):
    assert telegram.sniff(FIXTURES / name)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("chat.txt", "[3/6/18, 1:55:00 PM] Anna: hi\n"),
        ("chat.jsonl", '{"sender": "a", "timestamp": 1, "text": "messages"}\n'),
        ("data.json", '{"records": []}'),
    ],
)
def test_sniff_rejects_other_files(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")

    assert not telegram.sniff(path)


# --- properties ---------------------------------------------------------------------------------------------

# Any text that can be stored as UTF-8: newlines, U+2028, emoji, combining marks, ...
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
NAMES = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@st.composite
def random_messages(draw) -> list[dict]:
    """Messages in time order (ties included), own or not, text as a string or as entity parts."""
    count = draw(st.integers(1, 25))
    times = sorted(draw(st.lists(st.integers(0, 10**9), min_size=count, max_size=count)))
    result = []
    for number, when in enumerate(times, 1):
        own = draw(st.booleans())
        parts = draw(st.lists(TEXT, max_size=4))
        text = "".join(parts)
        result.append(
            {
                "id": number,
                "type": "message",
                "date_unixtime": str(when),
                "from": "Me" if own else draw(NAMES),
                "from_id": ME_ID if own else "user77",
                "text": text if len(parts) < 2 else [parts[0], *({"type": "bold", "text": p} for p in parts[1:])],
                "text_entities": [{"type": "plain", "text": part} for part in parts],
            }
        )
    return result


def expected(messages_: list[dict]) -> list[tuple]:
    return [
        (m["from"], m["from_id"] == ME_ID, "text", "".join(e["text"] for e in m["text_entities"]), None)
        for m in messages_
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(random_messages())
def test_property_single_chat_round_trip(tmp_path, generated):
    path = write_json(tmp_path, chat_export(generated))

    assert summary(parse(path, me=(ME_ID,))) == expected(generated)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(random_messages(), min_size=1, max_size=3))
def test_property_whole_account_round_trip(tmp_path, chats):
    data = {
        "personal_information": {"user_id": 1001},
        "chats": {"list": [chat_export(chat, chat_id=n) for n, chat in enumerate(chats)]},
    }

    result = parse(write_json(tmp_path, data))

    by_chat = [[row[1:] for row in whole_account_rows(result) if row[0] == f"tg:{n}"] for n in range(len(chats))]
    assert by_chat == [expected(chat) for chat in chats]


# --- streaming ----------------------------------------------------------------------------------------------


def write_big_account(path: Path, chats: int, per_chat: int) -> None:
    """A whole-account export written piece by piece, as Telegram Desktop writes it (indent 1)."""
    with path.open("w", encoding="utf-8") as f:
        f.write('{\n "personal_information": {"user_id": 1001},\n "chats": {\n  "list": [\n')
        for chat in range(chats):
            head = json.dumps({"name": f"Friend {chat}", "type": "personal_chat", "id": chat})[:-1]
            f.write(("," if chat else "") + head + ', "messages": [\n')
            for number in range(per_chat):
                sender, from_id = ("Alex Doe", ME_ID) if number % 2 else (f"Friend {chat}", f"user{chat}")
                message = text_message(number, f"message {number} in chat {chat} 🙂", sender, from_id)
                f.write(("," if number else "") + json.dumps(message, ensure_ascii=False, indent=1) + "\n")
            f.write("]}\n")
        f.write("]}}\n")


def traced_peak(function, *args):
    tracemalloc.start()
    try:
        value = function(*args)
        return value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_big_whole_account_export_is_streamed(tmp_path):
    path = tmp_path / "result.json"
    write_big_account(path, chats=4, per_chat=25_000)

    def json_load(p: Path):
        with p.open(encoding="utf-8") as f:
            return len(json.load(f)["chats"]["list"])

    parse(FIXTURES / "personal_chat.json")  # first-use imports are not the parser's memory
    _, loaded_peak = traced_peak(json_load, path)
    result, parse_peak = traced_peak(telegram.parse, SourceSpec("tg", path))

    assert result.table.num_rows == 100_000
    assert sum(result.table.column("is_self").to_pylist()) == 50_000
    # Python objects stay a small fraction of the loaded document; Arrow's memory (not traced) holds only
    # the compact result, so count it too.
    assert parse_peak + result.table.nbytes < loaded_peak / 4


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_errors_deep_in_a_big_file_name_the_right_line(tmp_path, damage):
    path = tmp_path / "result.json"
    write_big_account(path, chats=2, per_chat=3_000)  # about 1 MB: many of ijson's 64 KiB chunks
    lines = path.read_bytes().split(b"\n")
    target = next(n for n in range(len(lines) * 2 // 3, len(lines)) if b'"text":' in lines[n])
    if damage == "corrupt":
        lines[target] = lines[target].replace(b'"text":', b'"text"', 1)  # a missing colon
        path.write_bytes(b"\n".join(lines))
    else:
        path.write_bytes(b"\n".join(lines[:target]) + b"\n" + lines[target][:10])

    with pytest.raises(ParseError, match="truncated" if damage == "truncated" else "not valid JSON") as error:
        parse(path)

    assert error.value.line == target + 1


def test_own_messages_without_from_are_own_by_their_from_id(tmp_path):
    """Telegram leaves out `from` on some messages (8 of 15 own messages in one real export): the sender id
    the user's named messages carry makes them own too, under the user's name."""
    own = {"sender": "Alex Doe", "from_id": ME_ID}
    path = write_json(
        tmp_path,
        chat_export(
            [
                text_message(1, "hi"),
                text_message(2, "hey", **own),
                {k: v for k, v in text_message(3, "how are you", **own).items() if k != "from"},
                {**text_message(4, "fine", **own), "from": None},
                {k: v for k, v in text_message(5, "and you?").items() if k != "from"},
            ]
        ),
    )
    rows = summary(parse(path, me=("alex doe",)))
    assert [(sender, is_self) for sender, is_self, *_ in rows] == [
        ("Robin Park", False),
        ("Alex Doe", True),
        ("Alex Doe", True),
        ("Alex Doe", True),
        ("Robin Park", False),
    ]


@pytest.mark.parametrize("me", [("user1001",), ("1001",), ("USER1001",)])
def test_me_accepts_telegram_ids_with_or_without_the_user_prefix(tmp_path, me):
    own = {"sender": "Alex Doe", "from_id": ME_ID}
    path = write_json(tmp_path, chat_export([text_message(1, "hi"), text_message(2, "hey", **own)]))
    assert parse(path, me=me).table.column("is_self").to_pylist() == [False, True]


def test_records_without_id_do_not_reply_to_each_other(tmp_path):
    first, second, third = text_message(1, "a"), text_message(2, "b"), text_message(3, "c", reply_to_message_id=1)
    del first["id"], second["id"]
    path = write_json(tmp_path, chat_export([first, second, third]))

    assert parse(path).table.column("reply_to").to_pylist() == [None, None, None]

"""The generic CSV / JSON Lines format: documented examples, timestamps, replies, bad input, properties."""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mindupload.errors import ParseError, UserError
from mindupload.ingest import table as messages
from mindupload.ingest.parse import ingest
from mindupload.ingest.sources import ParseResult, SourceSpec, generic

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "generic"
EXAMPLES = ROOT / "examples" / "generic"
SECRET = "the secret plan"


def spec(path: Path, **options) -> SourceSpec:
    return SourceSpec("chats", path, format="generic", **options)


def parse(path: Path, **options) -> ParseResult:
    result = generic.parse(spec(path, **options))
    messages.conform(result.table)  # the contract holds
    return result


def column(result: ParseResult, name: str) -> list:
    return result.table.column(name).to_pylist()


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


# --- the documented examples --------------------------------------------------------------------------------

EXAMPLE = [
    # conversation, message_id, sender, is_self, kind, text, reply_to
    ("chats:Climbing Crew", 0, "Sam Lee", False, "text", "Saturday at the crag?", None),
    ("chats:Climbing Crew", 1, "Alex Doe", True, "text", "I'll bring the rope", 0),
    ("chats:Jamie", 0, "Jamie Rivera", False, "text", "Morning! Coffee later?", None),
    ("chats:Jamie", 1, "Alex Doe", True, "text", "Sure, 10:30 at the usual place", 0),
    ("chats:Jamie", 2, "Jamie Rivera", False, "sticker", "👍", None),
    ("chats:Jamie", 3, "Alex Doe", True, "media", "The view from the bridge\nnot bad, right?", None),
    ("chats:Jamie", 4, "Jamie Rivera", False, "text", 'Wow, "the" bridge 😍', 3),
]


def rows(result: ParseResult) -> list[tuple]:
    names = ["conversation_id", "message_id", "sender", "is_self", "kind", "text", "reply_to"]
    return list(zip(*(column(result, name) for name in names), strict=True))


@pytest.mark.parametrize("name", ["chat.csv", "chat.jsonl"])
def test_the_documented_examples_parse_as_documented(name):
    result = parse(EXAMPLES / name)

    assert rows(result) == EXAMPLE
    assert (result.units_read, result.bad_lines, result.unit) == (7, [], "line")
    assert column(result, "timestamp")[2] == datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def test_without_a_conversation_column_the_source_is_one_conversation(tmp_path):
    path = write(tmp_path, "chat.csv", "sender,timestamp,text\nAna,1,hi\nBen,2,hey\n")

    result = parse(path)

    assert column(result, "conversation_id") == ["chats", "chats"]
    assert column(result, "kind") == ["text", "text"]
    assert column(result, "source") == ["chats", "chats"]


# --- timestamps ---------------------------------------------------------------------------------------------

TEN = datetime(2024, 7, 1, 10, 0, tzinfo=UTC)
TIMESTAMPS = {
    "offset": TEN,
    "zulu": TEN,
    "local summer": TEN,  # 12:00 in Paris in July is UTC+2
    "local winter": datetime(2024, 1, 15, 11, 0, tzinfo=UTC),  # 12:00 in Paris in January is UTC+1
    "fraction": TEN + timedelta(milliseconds=250),
    "unix seconds": TEN,
    "unix milliseconds": TEN + timedelta(milliseconds=250),
    "unix fraction": TEN + timedelta(milliseconds=500),
}


@pytest.mark.parametrize("name", ["timestamps.csv", "timestamps.jsonl"])
def test_every_timestamp_form(name):
    result = parse(FIXTURES / name, timezone="Europe/Paris")

    assert dict(zip(column(result, "text"), column(result, "timestamp"), strict=True)) == TIMESTAMPS


def test_the_timezone_applies_only_to_timestamps_without_offset():
    in_utc = parse(FIXTURES / "timestamps.csv", timezone="UTC")
    in_paris = parse(FIXTURES / "timestamps.csv", timezone="Europe/Paris")

    utc = dict(zip(column(in_utc, "text"), column(in_utc, "timestamp"), strict=True))
    paris = dict(zip(column(in_paris, "text"), column(in_paris, "timestamp"), strict=True))
    changed = {text for text in utc if utc[text] != paris[text]}
    assert changed == {"local summer", "local winter"}
    assert utc["local summer"] - paris["local summer"] == timedelta(hours=2)


def test_numeric_text_timestamps_in_jsonl(tmp_path):
    path = write(tmp_path, "chat.jsonl", '{"sender": "a", "timestamp": "1719828000", "text": "x"}\n')

    assert column(parse(path), "timestamp") == [TEN]


def test_messages_are_sorted_by_time_stably(tmp_path):
    path = write(tmp_path, "chat.csv", "sender,timestamp,text\nA,30,third\nB,10,first\nC,10,second\n")

    result = parse(path)

    assert column(result, "text") == ["first", "second", "third"]
    assert column(result, "message_id") == [0, 1, 2]


def test_an_unknown_timezone_is_a_user_error(tmp_path):
    path = write(tmp_path, "chat.csv", "sender,timestamp,text\nA,1,x\n")

    with pytest.raises(UserError, match="unknown timezone 'Mars/Olympus'"):
        parse(path, timezone="Mars/Olympus")


# --- who, what kind, replies --------------------------------------------------------------------------------


def test_is_self_column_wins_over_me_and_empty_cells_use_me(tmp_path):
    content = "sender,timestamp,is_self,text\nAlex,1,false,a\nalex ,2,,b\nSam,3,TRUE,c\nSam,4,,d\n"
    path = write(tmp_path, "chat.csv", content)

    assert column(parse(path, me=("Alex",)), "is_self") == [False, True, True, False]


def test_jsonl_booleans_and_missing_keys(tmp_path):
    lines = [
        {"sender": "Alex", "timestamp": 1, "text": "a", "is_self": False},
        {"sender": "Alex", "timestamp": 2, "text": "b"},
        {"sender": "Sam", "timestamp": 3, "text": None, "is_self": True, "kind": "MEDIA"},
    ]
    path = write(tmp_path, "chat.jsonl", "".join(json.dumps(line) + "\n" for line in lines))

    result = parse(path, me=("alex",))

    assert column(result, "is_self") == [False, True, True]
    assert column(result, "kind") == ["text", "text", "media"]
    assert column(result, "text") == ["a", "b", ""]


def test_replies_resolve_within_their_conversation_only(tmp_path, caplog):
    content = (
        "conversation,id,sender,timestamp,reply_to,text\n"
        "one,1,A,1,,start\n"
        "two,1,B,2,,other start\n"
        "one,2,B,3,1,reply in one\n"
        "two,2,A,4,9,reply to a missing id\n"
    )
    path = write(tmp_path, "chat.csv", content)

    result = parse(path)

    replies = dict(zip(column(result, "text"), column(result, "reply_to"), strict=True))
    assert replies == {"start": None, "reply in one": 0, "other start": None, "reply to a missing id": None}
    assert "1 replies name an id that no message in the same conversation has" in caplog.text


def test_messages_without_ids_reply_to_nothing(tmp_path, caplog):
    """Rows without `id` (or with some ids missing) must not match each other's missing ids."""
    content = "sender,timestamp,text,id,reply_to\nA,1,first,,\nB,2,second,,\nA,3,third,7,\nB,4,fourth,,7\n"
    path = write(tmp_path, "chat.csv", content)

    result = parse(path)

    assert column(result, "reply_to") == [None, None, None, 2]
    assert "replies name an id" not in caplog.text


def test_a_file_without_id_columns_has_no_replies_and_no_warning(tmp_path, caplog):
    path = write(tmp_path, "chat.csv", "sender,timestamp,text\nA,1,a\nB,2,b\nA,3,c\n")

    assert column(parse(path), "reply_to") == [None, None, None]
    assert "replies" not in caplog.text


def test_blank_lines_and_crlf_line_ends_are_fine(tmp_path):
    path = tmp_path / "chat.csv"
    path.write_bytes(b'\xef\xbb\xbfsender,timestamp,text\r\n\r\nAna,1,hi\r\nBen,2,"two\r\nlines"\r\n\r\n')

    result = parse(path)

    assert column(result, "text") == ["hi", "two\r\nlines"]
    assert result.bad_lines == []


# --- bad input ----------------------------------------------------------------------------------------------


def test_bad_csv_lines_are_counted_by_line_number():
    result = parse(FIXTURES / "bad_lines.csv")

    # line 3: an unreadable timestamp; line 6: an unknown kind (after a record spanning lines 4-5)
    assert (result.units_read, result.bad_lines) == (5, [3, 6])
    assert column(result, "text") == ["first", "a message\nover two lines", "last"]


def test_bad_jsonl_lines_are_counted_by_line_number():
    result = parse(FIXTURES / "bad_lines.jsonl")

    # line 2: an unreadable timestamp; 4: an unknown kind; 6: not JSON (line 5 is blank)
    assert (result.units_read, result.bad_lines) == (6, [2, 4, 6])


@pytest.mark.parametrize("name", ["bad_lines.csv", "bad_lines.jsonl"])
def test_ingest_fails_on_bad_lines_naming_them_without_text(name):
    with pytest.raises(ParseError, match=r"line 2|line 3") as error:
        ingest(spec(FIXTURES / name, me=("Ana",)))

    assert "could not be read" in str(error.value)
    assert SECRET not in str(error.value)


def test_ingest_warns_on_bad_lines_within_max_bad_fraction(caplog):
    table, report = ingest(spec(FIXTURES / "bad_lines.csv", me=("Ana",), max_bad_fraction=0.5))

    assert (table.num_rows, report["lines_skipped"]) == (3, 2)
    assert "skipped 2 unreadable lines (3, 6)" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ("Ana,1,text,one,extra", "more fields than the header"),
        ("Ana,1", "fewer fields than the header"),
        ('Ana,1,text,"the secret" plan', "a stray quote"),
        ("Ana,1,text,x\rsecret", "a bare carriage return"),
        ("Ana,1,maybe,x", "an unknown kind"),
        ("Ana,1e400,text,x", "an unreadable number"),
        ("Ana,99999999999999999999,text,x", "a timestamp out of range"),
        ("Ana,2024-13-45T10:00,text,x", "an impossible date"),
    ],
)
def test_a_bad_csv_row_is_a_bad_line(tmp_path, row, why):
    path = write(tmp_path, "chat.csv", f"sender,timestamp,kind,text\nAna,1,text,ok\n{row}\nAna,2,,fine\n")

    result = parse(path)

    assert result.bad_lines == [3], why
    assert column(result, "text") == ["ok", "fine"]


@pytest.mark.parametrize(
    "line",
    [
        {"sender": "Ana", "text": "x"},  # no timestamp after the first line
        {"sender": "Ana", "timestamp": True, "text": "x"},
        {"sender": "Ana", "timestamp": [1], "text": "x"},
        {"sender": "Ana", "timestamp": 1, "text": 5},
        {"sender": "Ana", "timestamp": 1, "text": "x", "is_self": "yes"},
        {"sender": "Ana", "timestamp": 1, "text": "x", "is_self": 1},
        {"sender": "Ana", "timestamp": 1, "text": "x", "id": 1.5},
        ["Ana", 1, "x"],
    ],
)
def test_a_bad_jsonl_value_is_a_bad_line(tmp_path, line):
    first = {"sender": "Ana", "timestamp": 1, "text": "ok"}
    path = write(tmp_path, "chat.jsonl", f"{json.dumps(first)}\n{json.dumps(line)}\n")

    assert parse(path).bad_lines == [2]


def test_a_missing_csv_column_is_named_with_the_known_columns_found(tmp_path):
    path = write(tmp_path, "chat.csv", f"Sender,Date,Text\nAna,2024-01-01,{SECRET}\n")

    with pytest.raises(
        ParseError, match=r"no column 'timestamp'; the header row has 3 fields; .* sender \(field 1\), text \(field 3\)"
    ) as error:
        parse(path)

    assert error.value.line == 1


def test_a_missing_jsonl_key_is_named_with_the_keys_found(tmp_path):
    path = write(tmp_path, "chat.jsonl", "\n" + json.dumps({"from": "Ana", "timestamp": 1, "text": SECRET}))

    with pytest.raises(ParseError, match=r"no column 'sender'; .* timestamp \(field 2\), text \(field 3\)") as error:
        parse(path)

    assert (error.value.line, SECRET in str(error.value)) == (2, False)


def test_a_missing_header_row_is_reported_without_quoting_the_data(tmp_path):
    path = write(tmp_path, "chat.csv", f"Ana,2024-01-01T10:00:00,{SECRET}\n")

    with pytest.raises(ParseError, match="is the header row missing") as error:
        parse(path)

    assert SECRET not in str(error.value)
    assert "Ana" not in str(error.value)


def test_a_data_row_in_place_of_the_header_is_never_quoted(tmp_path):
    """A first row of data that happens to hold a known column name: only our own names are shown."""
    path = write(tmp_path, "chat.csv", f"Ana,text,{SECRET}\nsender,timestamp,text\n")

    with pytest.raises(ParseError, match=r"text \(field 2\)") as error:
        parse(path)

    assert SECRET not in str(error.value) and "Ana" not in str(error.value)


@pytest.mark.parametrize("name", ["chat.csv", "chat.jsonl"])
def test_invalid_utf8_names_the_line(tmp_path, name):
    path = tmp_path / name
    good = b'{"sender": "a", "timestamp": 1, "text": "x"}\n' if name.endswith("jsonl") else b"sender,timestamp,text\n"
    path.write_bytes(good + good.replace(b"sender,timestamp,text", b"a,1,x") + b"\xff\xfe secret\n")

    with pytest.raises(ParseError, match="not valid UTF-8") as error:
        parse(path)

    assert error.value.line == 3
    assert "secret" not in str(error.value)


@pytest.mark.parametrize("name", ["chat.csv", "chat.jsonl"])
@pytest.mark.parametrize("content", ["", "\n\n", "\ufeff"])
def test_an_empty_file_is_refused(tmp_path, name, content):
    with pytest.raises(ParseError, match="the file is empty"):
        parse(write(tmp_path, name, content))


def test_an_unterminated_quote_names_the_line_where_it_starts(tmp_path):
    path = write(tmp_path, "chat.csv", f'sender,timestamp,text\nAna,1,ok\nAna,2,"{SECRET}\nand on\nand on\n')

    with pytest.raises(ParseError, match="never ends") as error:
        parse(path)

    assert error.value.line == 3
    assert SECRET not in str(error.value)


# --- sniffing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("anything.csv", "whatever\n", True),
        ("anything.NDJSON", "", True),
        ("export", "Sender, Timestamp ,Text,kind\n", True),
        ("export", '{"sender": "a", "timestamp": 1, "text": "b"}\n', True),
        ("export.txt", "[3/6/18, 1:55:00 PM] Anna: hi\n", False),
        ("result.json", '{\n "name": "x",\n "type": "personal_chat",\n "messages": []\n}\n', False),
        ("export", '{"sender": "a"}\n', False),
    ],
)
def test_sniff(tmp_path, name, content, expected):
    assert generic.sniff(write(tmp_path, name, content)) is expected


# --- properties ---------------------------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@st.composite
def random_rows(draw) -> list[dict]:
    """Rows in time order (ties included) with any text: commas, quotes, newlines, emoji, U+2028, ..."""
    count = draw(st.integers(1, 25))
    times = sorted(draw(st.lists(st.integers(0, 4 * 10**9), min_size=count, max_size=count)))
    return [
        {
            "sender": draw(TEXT),
            "timestamp": when,
            "is_self": draw(st.booleans()),
            "kind": draw(st.sampled_from(messages.KINDS)),
            "text": draw(TEXT),
        }
        for when in times
    ]


def as_csv(rows_: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, ["sender", "timestamp", "is_self", "kind", "text"])
    writer.writeheader()
    writer.writerows({**row, "is_self": str(row["is_self"]).lower()} for row in rows_)
    return out.getvalue()


def as_jsonl(rows_: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows_)


def round_trip(result: ParseResult) -> list[dict]:
    names = ["sender", "timestamp", "is_self", "kind", "text"]
    table = {name: column(result, name) for name in names}
    table["timestamp"] = [int(moment.timestamp()) for moment in table["timestamp"]]
    return [dict(zip(names, values, strict=True)) for values in zip(*table.values(), strict=True)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(random_rows(), st.sampled_from([("chat.csv", as_csv), ("chat.jsonl", as_jsonl)]))
def test_property_round_trip(tmp_path, generated, form):
    name, write_as = form
    path = tmp_path / name
    path.write_text(write_as(generated), encoding="utf-8", newline="")

    result = parse(path)

    assert result.bad_lines == []
    assert round_trip(result) == generated


def test_logging_names_no_text(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    path = write(tmp_path, "chat.csv", f"id,sender,timestamp,reply_to,text\n1,A,1,7,{SECRET}\n")

    parse(path)

    assert SECRET not in caplog.text


def test_the_conversion_example_in_the_docs_works(tmp_path, monkeypatch):
    doc = (ROOT / "docs" / "generic-format.md").read_text(encoding="utf-8")
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    export = {
        "threads": [
            {
                "title": "Book club",
                "messages": [
                    {"id": 7, "author": "Kim", "sent_ms": 1709283600000, "body": "Chapter 3, anyone?"},
                    {
                        "id": 8,
                        "author": "Alex",
                        "sent_ms": 1709283660000,
                        "body": "Yes,\nloved it",
                        "in_reply_to": 7,
                    },
                ],
            }
        ]
    }
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "other_app_export.json").write_text(json.dumps(export), encoding="utf-8")

    exec(code, {})

    result = parse(tmp_path / "data" / "other_app.csv", me=("Alex",))
    assert rows(result) == [
        ("chats:Book club", 0, "Kim", False, "text", "Chapter 3, anyone?", None),
        ("chats:Book club", 1, "Alex", True, "text", "Yes,\nloved it", 0),
    ]


def test_without_ids_no_message_is_taken_for_a_reply(tmp_path):
    path = write(tmp_path, "chat.csv", "sender,timestamp,text\nAna,2024-01-01 10:00,hi\nBen,2024-01-01 10:01,yo\n")
    assert parse(path, me=("Ana",)).table.column("reply_to").to_pylist() == [None, None]

"""The LINE .txt chat history parser: fixtures (English and Japanese UI) with their expected parse, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from expected import check
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mindupload.errors import ParseError
from mindupload.ingest.sources import SourceSpec, detect_format, line

FIXTURES = Path(__file__).parents[1] / "fixtures" / "line"
FIXTURE_FILES = sorted(FIXTURES.glob("*.txt"))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_fixture(path: Path) -> None:
    check(path, "line", line.parse)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_fixtures_are_detected(path: Path) -> None:
    assert detect_format(path) == "line"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chat.txt"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_line_before_any_date_is_counted_as_bad(tmp_path: Path) -> None:
    path = write(tmp_path, "[LINE] Chat history with A\n10:00\tA\thi\n\n2024.01.05 Friday\n10:01\tA\tyo\n")
    result = line.parse(SourceSpec("s", path))
    assert result.bad_lines == [2]
    assert result.table.column("text").to_pylist() == ["yo"]


def test_a_quote_that_never_closes_was_part_of_the_text(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[LINE] x\n\n2024/01/05(金)\n10:00\tA\t"open\n\n2024/01/06(土)\n10:01\tB\tnext\n11:00\tA\t"end\n'
    )
    result = line.parse(SourceSpec("s", path))
    assert result.table.column("text").to_pylist() == ['"open', "next", '"end']
    assert [t.day for t in result.table.column("timestamp").to_pylist()] == [5, 6, 6]
    assert result.units_read == 8 and result.bad_lines == []


def test_a_quoted_message_may_hold_lines_that_look_like_dates_and_notices(tmp_path: Path) -> None:
    text = '[LINE] x\n\n2024.01.05 Friday\n10:00\tA\t"plan:\n\n2024.01.06 Saturday\n10:00\tcrag\nok?"\n10:05\tB\tyes\n'
    result = line.parse(SourceSpec("s", write(tmp_path, text)))
    assert result.table.column("text").to_pylist() == ["plan:\n\n2024.01.06 Saturday\n10:00\tcrag\nok?", "yes"]


def test_a_file_that_is_not_line_is_refused_with_its_name(tmp_path: Path) -> None:
    path = write(tmp_path, "hello\n")
    with pytest.raises(ParseError, match=r"chat\.txt, line 1: this is not a LINE chat history"):
        line.parse(SourceSpec("s", path))
    assert not line.sniff(path)


def test_a_header_alone_holds_no_messages(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="holds no messages"):
        line.parse(SourceSpec("s", write(tmp_path, "[LINE] Chat history with A\n")))


def test_impossible_times_and_dates_are_not_headers(tmp_path: Path) -> None:
    path = write(
        tmp_path, "[LINE] x\n\n2024.02.30 Friday\n2024.02.03 Saturday\n25:00\tA\tno\n13:00 PM\tA\tno\n09:00\tA\tyes\n"
    )
    result = line.parse(SourceSpec("s", path))
    assert result.bad_lines == [3, 5, 6]
    assert result.table.column("text").to_pylist() == ["yes"]


# ------------------------------------------------------------------------------------------ round trip

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\t[☎\x85\u2028"), max_size=12)
MESSAGE = st.tuples(
    st.integers(0, 2),  # days after the first
    st.integers(0, 23),
    st.integers(0, 59),
    st.sampled_from(["Anna Schmidt", "エリヤ", "Marco"]),
    st.lists(TEXT, min_size=1, max_size=4).map("\n".join),
)


def render(messages: list[tuple]) -> str:
    """A LINE export of the messages, in time order, as the app writes it."""
    out = ["[LINE] Chat history with Anna Schmidt", "Saved on: 2024/01/10 10:00", ""]
    day = None
    for d, hour, minute, sender, text in messages:
        if d != day:
            out += ["", f"2024.01.{5 + d:02d} Friday"]
            day = d
        if "\n" in text:
            text = '"' + text.replace('"', '""') + '"'
        out.append(f"{hour:02d}:{minute:02d}\t{sender}\t{text}")
    return "\n".join(out) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(MESSAGE, min_size=1, max_size=12).map(sorted))
def test_round_trip(tmp_path: Path, messages: list[tuple]) -> None:
    result = line.parse(SourceSpec("s", write(tmp_path, render(messages))))
    table = result.table
    assert result.bad_lines == []
    assert table.column("sender").to_pylist() == [m[3] for m in messages]
    assert table.column("text").to_pylist() == [m[4] for m in messages]
    stamps = [(t.day - 5, t.hour, t.minute) for t in table.column("timestamp").to_pylist()]
    assert stamps == [m[:3] for m in messages]

"""The LINE .txt chat history parser: fixtures (English and Japanese UI) with their expected parse, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from expected import check

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


def test_an_unclosed_quote_keeps_the_rest_of_the_file_in_that_message(tmp_path: Path) -> None:
    path = write(tmp_path, '[LINE] x\n\n2024/01/05(金)\n10:00\tA\t"open\n10:01\tA\tstill inside\n')
    result = line.parse(SourceSpec("s", path))
    assert result.table.column("text").to_pylist() == ['"open\n10:01\tA\tstill inside']


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

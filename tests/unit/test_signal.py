"""The signal-export (sigexport) parser: an export folder with its expected parse, the three ways to point at it,
and bad input."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from expected import check

from mindupload.errors import ParseError
from mindupload.ingest.sources import SourceSpec, detect_format, signal

EXPORT = Path(__file__).parents[1] / "fixtures" / "signal" / "export"


def test_fixture() -> None:
    check(EXPORT, "signal", signal.parse)


@pytest.mark.parametrize("where", ["", "Anna Schmidt", "Anna Schmidt/data.json"])
def test_the_export_a_chat_folder_or_a_data_file_is_detected(where: str) -> None:
    assert detect_format(EXPORT / where) == "signal"


def test_one_chat_folder_reads_that_chat_only() -> None:
    result = signal.parse(SourceSpec("s", EXPORT / "Anna Schmidt", timezone="Europe/Berlin"))
    assert set(result.table.column("conversation_id").to_pylist()) == {"s:Anna Schmidt"}
    assert result.table.num_rows == 7 and result.bad_lines == []
    assert result.table.column("sender").to_pylist()[1] == "Me"  # no `me` given: signal-export's own name


def test_a_bad_line_is_logged_without_names_or_text(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        signal.parse(SourceSpec("s", EXPORT))
    assert "chat 2 of 2, line 4: unreadable date" in caplog.text
    assert "Crag" not in caplog.text and "Marco" not in caplog.text


def test_markdown_only_is_refused_with_a_hint(tmp_path: Path) -> None:
    chat = tmp_path / "Anna"
    chat.mkdir()
    shutil.copy(EXPORT / "Anna Schmidt" / "chat.md", chat / "chat.md")
    assert not signal.sniff(chat)
    with pytest.raises(ParseError, match=r"only chat\.md is here.*sigexport"):
        signal.parse(SourceSpec("s", chat))


def test_other_json_lines_are_not_signal(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"sender": "a", "timestamp": 1, "text": "b"}) + "\n")
    assert not signal.sniff(path)


def test_an_offset_in_the_date_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"date": "2024-01-05T19:00:00+01:00", "sender": "A", "body": "x  "}) + "\n")
    result = signal.parse(SourceSpec("s", path, timezone="Asia/Tokyo"))
    assert result.table.column("timestamp").to_pylist()[0].isoformat() == "2024-01-05T18:00:00+00:00"

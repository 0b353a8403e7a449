"""The Messages chat.db parser: a database built from tests/fixtures/imessage/chat.sql with its expected parse,
read-only access, old databases, damaged bodies."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from expected import rows

from mindupload.errors import ParseError
from mindupload.ingest import table as messages
from mindupload.ingest.sources import SourceSpec, detect_format, imessage

FIXTURES = Path(__file__).parents[1] / "fixtures" / "imessage"
BACKUP_NAME = "3d0d7e5fb2ce288813306e4d4636395e047a3d28"  # chat.db's name inside an iPhone backup


def build(directory: Path, name: str = "chat.db", sql: str | None = None) -> Path:
    path = directory / name
    db = sqlite3.connect(path)
    db.executescript(sql or (FIXTURES / "chat.sql").read_text(encoding="utf-8"))
    db.close()
    return path


def test_fixture(tmp_path: Path) -> None:
    expected = json.loads((FIXTURES / "chat.expected.json").read_text(encoding="utf-8"))
    result = imessage.parse(SourceSpec("src", build(tmp_path), me=tuple(expected["options"]["me"])))
    assert messages.conform(result.table).equals(result.table)
    assert rows(result) == expected["messages"]
    assert (result.units_read, result.bad_lines) == (expected["units"], expected["bad"])


def test_detected_also_under_its_backup_name(tmp_path: Path) -> None:
    assert detect_format(build(tmp_path, BACKUP_NAME)) == "imessage"
    assert sorted(p.name for p in tmp_path.iterdir()) == [BACKUP_NAME]  # sniffing left nothing behind


def test_the_database_is_never_modified_and_nothing_is_left_beside_it(tmp_path: Path) -> None:
    path = build(tmp_path)
    before = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns
    imessage.parse(SourceSpec("src", path))
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.db"]


def test_the_connection_refuses_writes(tmp_path: Path) -> None:
    path = build(tmp_path)
    with imessage._read_only(path) as db, pytest.raises(sqlite3.OperationalError, match="readonly"):
        db.execute("DELETE FROM message")
    assert imessage.parse(SourceSpec("src", path)).table.num_rows == 13


def test_an_old_database_without_the_newer_columns(tmp_path: Path) -> None:
    sql = """
    CREATE TABLE handle (ROWID INTEGER PRIMARY KEY, id TEXT, service TEXT);
    CREATE TABLE chat (ROWID INTEGER PRIMARY KEY, guid TEXT, chat_identifier TEXT);
    CREATE TABLE message (ROWID INTEGER PRIMARY KEY, guid TEXT, text TEXT, handle_id INTEGER, date INTEGER,
                          is_from_me INTEGER);
    CREATE TABLE chat_message_join (chat_id INTEGER, message_id INTEGER);
    INSERT INTO handle VALUES (1, 'anna@example.com', 'iMessage');
    INSERT INTO chat VALUES (1, 'iMessage;-;anna@example.com', 'anna@example.com');
    INSERT INTO message VALUES (1, 'g1', 'hi', 1, 400000000, 0), (2, 'g2', 'hello', 1, 400000060, 1);
    INSERT INTO chat_message_join VALUES (1, 1), (1, 2);
    """
    result = imessage.parse(SourceSpec("src", build(tmp_path, sql=sql)))
    assert rows(result) == [
        ["src:iMessage;-;anna@example.com", "anna@example.com", False, "2013-09-04 15:06:40", "text", "hi", None],
        ["src:iMessage;-;anna@example.com", "me", True, "2013-09-04 15:07:40", "text", "hello", None],
    ]


def test_a_damaged_body_is_a_bad_record_named_by_row(tmp_path: Path, caplog) -> None:
    path = build(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE message SET attributedBody = X'040b73747265616d7479706564' WHERE ROWID = 3")
    result = imessage.parse(SourceSpec("src", path))
    assert result.bad_lines == [3]
    assert "ROWID 3" in caplog.text and "7pm" not in caplog.text


def test_other_sqlite_files_and_non_databases_are_refused(tmp_path: Path) -> None:
    other = build(tmp_path, "other.db", sql="CREATE TABLE t (x); INSERT INTO t VALUES (1);")
    assert not imessage.sniff(other)
    with pytest.raises(ParseError, match=r"other\.db: this SQLite file is not a Messages database"):
        imessage.parse(SourceSpec("src", other))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert not imessage.sniff(text)
    with pytest.raises(ParseError, match=r"notes\.txt: the database cannot be read \(file is not a database\)"):
        imessage.parse(SourceSpec("src", text))

"""Fixtures with their expected parse, for the formats whose fixture sits next to `NAME.expected.json`.

The expected file holds `options` (SourceSpec fields), `units` and `bad` (what the parser reports as read and
skipped) and `messages`: [conversation_id, sender, is_self, UTC time, kind, text, reply_to] in table order.
"""

from __future__ import annotations

import json
from pathlib import Path

from mindupload.ingest import table as messages
from mindupload.ingest.sources import ParseResult, SourceSpec

COLUMNS = ("conversation_id", "sender", "is_self", "timestamp", "kind", "text", "reply_to")


def rows(result: ParseResult) -> list[list]:
    table = result.table
    out = []
    for row in zip(*(table.column(c).to_pylist() for c in COLUMNS), strict=True):
        row = list(row)
        row[3] = row[3].strftime("%Y-%m-%d %H:%M:%S")
        out.append(row)
    return out


def expected_path(fixture: Path) -> Path:
    return fixture.parent / (fixture.name.split(".")[0] + ".expected.json")


def spec_for(fixture: Path, fmt: str) -> tuple[SourceSpec, dict]:
    expected = json.loads(expected_path(fixture).read_text(encoding="utf-8"))
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in expected["options"].items()}
    return SourceSpec(name="src", path=fixture, format=fmt, **options), expected


def check(fixture: Path, fmt: str, parse) -> ParseResult:
    """Parse `fixture` and compare with its expected parse; the table must hold the message contract."""
    spec, expected = spec_for(fixture, fmt)
    result = parse(spec)
    assert result.table.schema == messages.MESSAGE_SCHEMA
    assert messages.conform(result.table).equals(result.table)
    assert rows(result) == expected["messages"]
    assert (result.units_read, result.bad_lines) == (expected["units"], expected["bad"])
    return result

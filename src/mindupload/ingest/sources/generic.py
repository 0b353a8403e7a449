"""The generic format: CSV with a header row, or JSON Lines, one message per row. Any export can be converted
to it by hand; docs/generic-format.md describes it.

Columns: `sender`, `timestamp`, `text` (required); `conversation`, `kind`, `is_self`, `id`, `reply_to`.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from mindupload.errors import ParseError
from mindupload.ingest.sources import ParseResult, SourceSpec
from mindupload.ingest.sources._common import MAX_US, MIN_US, MessageBuffer, read_head, read_lines, to_messages
from mindupload.ingest.sources._localtime import zone as local_zone
from mindupload.ingest.table import KINDS

log = logging.getLogger(__name__)

REQUIRED = ("sender", "timestamp", "text")
OPTIONAL = ("conversation", "kind", "is_self", "id", "reply_to")
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
# Unix times at or above this are milliseconds: 1e11 seconds is the year 5138, 1e11 ms is March 1973.
MILLISECONDS_FROM = 100_000_000_000
MAX_FIELD = 1 << 30
FLAGS = {"true": True, "false": False, "": None}
HINT = "See docs/generic-format.md for the generic format."

_NUMBER = re.compile(r"[+-]?\d+(?:\.\d*)?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Record(NamedTuple):
    line: int  # where the record starts
    values: dict[str, Any]


class _BadValue(Exception):
    """A value in a record that cannot be read; counted as a bad line."""


def sniff(path: Path) -> bool:
    """A .csv/.jsonl/.ndjson file, or a file whose first line names the required columns."""
    if path.suffix.lower() in CSV_SUFFIXES + JSONL_SUFFIXES:
        return True
    first_line = read_head(path).partition("\n")[0]
    if first_line.startswith("{"):
        try:
            return set(REQUIRED) <= set(json.loads(first_line))
        except (ValueError, TypeError):
            return False
    try:
        return set(REQUIRED) <= set(_column_names(next(csv.reader([first_line]), [])))
    except csv.Error:  # NUL bytes, binary garbage: not this format
        return False


def parse(spec: SourceSpec) -> ParseResult:
    zone = local_zone(spec)
    if not read_head(spec.path).strip():
        raise ParseError(spec.path, "the file is empty.", hint=HINT)
    lines = read_lines(spec.path, spec.max_line_bytes)
    records = _jsonl_records(spec.path, lines) if _is_jsonl(spec.path) else _csv_records(spec.path, lines)
    buffer, bad, units = MessageBuffer(), [], 0
    for record in records:
        units += 1
        try:
            _append(buffer, record.values, spec, zone)
        except _BadValue:
            bad.append(record.line)
    rows = buffer.table()
    table = to_messages(spec.name, rows, spec.me)
    _log_unresolved_replies(spec, rows.column("reply_to"), table.column("reply_to"))
    return ParseResult(table=table, units_read=units, bad_lines=bad, unit="line")


def _is_jsonl(path: Path) -> bool:
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES + JSONL_SUFFIXES:
        return suffix in JSONL_SUFFIXES
    return read_head(path).startswith("{")


def _column_names(names: Iterable[str]) -> list[str]:
    return [name.strip().lower() for name in names]


class _Lines:
    """Line texts for csv.reader, remembering where the record being read starts."""

    def __init__(self, lines: Iterator[tuple[int, str]]) -> None:
        self._lines = lines
        self.start: int | None = None
        self.exhausted = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            number, text = next(self._lines)
        except StopIteration:
            self.exhausted = True
            raise
        if self.start is None:
            self.start = number
        return text


def _csv_records(path: Path, numbered_lines: Iterator[tuple[int, str]]) -> Iterator[_Record]:
    """Rows as {column: value}, numbered by the line they start on (a quoted field may span lines)."""
    # Messages can be long; csv's default 128 KiB field limit would reject them. (The limit is global.)
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD))
    lines = _Lines(numbered_lines)
    # strict: a stray quote is an error on its line, not a field that swallows the lines after it.
    reader = csv.reader(lines, strict=True)
    columns: list[str] | None = None
    while True:
        lines.start = None
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            if lines.exhausted:  # csv's "unexpected end of data"
                raise ParseError(
                    path, "a quoted field starting on this line never ends.", line=lines.start, hint=HINT
                ) from None
            yield _Record(lines.start or 0, {})
            continue
        if not any(field.strip() for field in row):
            continue  # a blank line
        if columns is None:
            columns = _column_names(row)
            _check_columns(path, columns, lines.start)
            continue
        # A row longer or shorter than the header has lost its quoting: its fields cannot be trusted.
        yield _Record(lines.start, dict(zip(columns, row, strict=True)) if len(row) == len(columns) else {})


def _jsonl_records(path: Path, numbered_lines: Iterator[tuple[int, str]]) -> Iterator[_Record]:
    """Objects, one a line. The first object fixes the columns; later lines missing one are bad lines."""
    checked = False
    for number, text in numbered_lines:
        if not text.strip():
            continue
        try:
            values = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than Python's stack allows
            values = None
        if not isinstance(values, dict):
            yield _Record(number, {})
            continue
        values = dict(zip(_column_names(values), values.values(), strict=True))
        if not checked:
            _check_columns(path, list(values), number)
            checked = True
        yield _Record(number, values)


def _check_columns(path: Path, columns: list[str], line: int) -> None:
    missing = [name for name in REQUIRED if name not in columns]
    if not missing:
        return
    # Only names from our own list are shown, by position: the row may be data (a missing or misplaced header
    # row), and its fields are then message text.
    known = [f"{name} (field {i})" for i, name in enumerate(columns, 1) if name in REQUIRED + OPTIONAL]
    found = (
        f"the header row has {len(columns)} fields; the known columns in it are {', '.join(known)}."
        if known
        else f"the first row names no known column ({len(columns)} fields): is the header row missing?"
    )
    raise ParseError(
        path,
        f"no column {', '.join(repr(name) for name in missing)}; {found}",
        line=line,
        hint=f"The generic format needs the columns {', '.join(REQUIRED)}. {HINT}",
    )


def _append(buffer: MessageBuffer, values: dict[str, Any], spec: SourceSpec, zone: ZoneInfo) -> None:
    if any(name not in values for name in REQUIRED):
        raise _BadValue
    conversation = _optional_text(values.get("conversation"))
    buffer.append(
        f"{spec.name}:{conversation}" if conversation else spec.name,
        _timestamp_us(values["timestamp"], zone),
        _text(values["sender"]),
        _text(values["text"]),
        _kind(values.get("kind")),
        is_self=_flag(values.get("is_self")),
        native_id=_optional_text(values.get("id")),
        reply_to=_optional_text(values.get("reply_to")),
    )


def _timestamp_us(value: Any, zone: ZoneInfo) -> int:
    """Microseconds since the epoch from Unix seconds or milliseconds (a number), or ISO 8601 text: with an
    offset it is used as is, without one it is a wall-clock time in `zone`."""
    if isinstance(value, bool):
        raise _BadValue
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(value) if "." in value else int(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise _BadValue
    if isinstance(value, int | float):
        us = round(value * (1_000 if abs(value) >= MILLISECONDS_FROM else 1_000_000))
    elif isinstance(value, str):
        us = _iso_us(value.strip(), zone)
    else:
        raise _BadValue
    if not MIN_US <= us <= MAX_US:
        raise _BadValue
    return us


def _iso_us(text: str, zone: ZoneInfo) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _BadValue from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _BadValue
    return value


def _optional_text(value: Any) -> str | None:
    """An id or name as text (JSON numbers too); empty means absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _BadValue
    return str(value).strip() or None


def _kind(value: Any) -> str:
    kind = _optional_text(value)
    if kind is None:
        return "text"
    if kind.lower() not in KINDS:
        raise _BadValue
    return kind.lower()


def _flag(value: Any) -> bool | None:
    """true/false (any case, or a JSON boolean); empty means "decide by `me`"."""
    if value is None or isinstance(value, bool):
        return value
    if not isinstance(value, str) or value.strip().lower() not in FLAGS:
        raise _BadValue
    return FLAGS[value.strip().lower()]


def _log_unresolved_replies(spec: SourceSpec, asked: pa.ChunkedArray, resolved: pa.ChunkedArray) -> None:
    missing = pc.count(asked).as_py() - pc.count(resolved).as_py()
    if missing:
        log.warning(
            "%s: %d replies name an id that no message in the same conversation has; kept as plain messages",
            spec.path,
            missing,
        )

"""What the multi-file JSON parsers (Discord, Messenger/Instagram, Slack, Google Chat) share: an export seen as a
tree of files whether it is a folder, the zip as downloaded or one file; JSON read as a stream of records
(ijson's C backend, never the whole file); and unreadable records counted by file and record number.

The source's `limits:` apply as to every format (mindupload.ingest.sources._common): each zip member is checked
against the archive size and expansion limits before it is read, and every JSON file read through
`json_records`/`top_level` against the nesting depth limit; the number of members is capped here.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import ijson
import orjson
import pyarrow as pa

from mindupload.errors import ParseError
from mindupload.ingest.sources import SourceSpec
from mindupload.ingest.sources._common import BUFFER_SCHEMA, DepthLimitedReader, check_archive

log = logging.getLogger(__name__)
BACKEND = ijson.get_backend(ijson.backend)  # the fastest installed: yajl2_c
BOM = b"\xef\xbb\xbf"
CHUNK = 64 * 1024
MAX_MEMBERS = 2_000_000  # files in one zip
MAX_LOGGED_BAD = 10
WHOLE_FILE_BYTES = 32 << 20  # JSON files up to this size are decoded at once, bigger ones streamed
_SKIPPED_PARTS = ("__MACOSX",)


class ExportTree:
    """The files of an export by their relative POSIX path, whether `path` is a folder, a zip or one file."""

    def __init__(self, path: Path, spec: SourceSpec | None = None) -> None:
        self.path = path
        self.limits = spec or SourceSpec(name="", path=path)  # the schema's default limits when sniffing
        self._zip: zipfile.ZipFile | None = None
        self._files: dict[str, Any] = {}
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if d not in _SKIPPED_PARTS]
                for name in files:
                    full = Path(root, name)
                    self._files[full.relative_to(path).as_posix()] = full
        elif is_zip(path):
            try:
                self._zip = zipfile.ZipFile(path)
                infos = self._zip.infolist()
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise ParseError(path, f"the zip file is damaged ({type(e).__name__}).") from None
            if len(infos) > MAX_MEMBERS:
                raise ParseError(
                    path, f"the zip holds more than {MAX_MEMBERS:,} files; unzip it and point at the folder."
                )
            for info in infos:
                if not info.is_dir() and not set(PurePosixPath(info.filename).parts) & set(_SKIPPED_PARTS):
                    self._files[info.filename] = info
        else:
            self._files[path.name] = path

    @property
    def is_single_file(self) -> bool:
        return self._zip is None and not self.path.is_dir()

    def names(self) -> list[str]:
        return sorted(self._files)

    def size(self, name: str) -> int:
        """Bytes of the file (uncompressed)."""
        entry = self._files[name]
        return entry.file_size if isinstance(entry, zipfile.ZipInfo) else entry.stat().st_size

    def where(self, name: str) -> str:
        """How errors name a file of the export: its path, or `zip:member`."""
        if self._zip is not None:
            return f"{self.path}:{name}"
        return str(self._files[name])

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        """The file's bytes, without a UTF-8 byte-order mark."""
        entry = self._files[name]
        if self._zip is None:
            f = open(entry, "rb")  # noqa: SIM115 -- closed below
        else:
            limits = self.limits
            check_archive(self.where(name), [entry], limits.max_archive_bytes, limits.max_archive_ratio)
            try:
                f = self._zip.open(entry)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as e:
                raise ParseError(self.where(name), f"cannot unpack this file ({type(e).__name__}).") from None
        try:
            if f.read(len(BOM)) != BOM:
                f.seek(0)
            yield f
        except (zipfile.BadZipFile, EOFError) as e:
            raise ParseError(self.where(name), f"the zip file is damaged ({type(e).__name__}).") from None
        finally:
            f.close()

    @contextmanager
    def open_json(self, name: str) -> Iterator[IO[bytes]]:
        """The file's bytes, failing with a ParseError where its JSON nests deeper than `max_json_depth` (a
        streaming parser's memory grows with the square of the depth)."""
        with self.open(name) as f:
            yield DepthLimitedReader(f, self.where(name), self.limits.max_json_depth)

    def head(self, name: str, size: int = 4096) -> str:
        """The first bytes of a file as text (for sniffing); undecodable bytes dropped."""
        try:
            with self.open(name) as f:
                return f.read(size).decode("utf-8", errors="ignore").lstrip(" \t\r\n")
        except (OSError, ParseError):
            return ""

    def read_json(self, name: str) -> Any:
        """A small JSON file (a channel list, a group's info) loaded whole."""
        import json

        with self.open(name) as f:
            data = f.read(64 << 20)
            if f.read(1):
                raise ParseError(self.where(name), "this file is over 64 MB; it should be a short list.")
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ParseError(self.where(name), "this file is not valid JSON.") from None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> ExportTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def zip_names(path: Path) -> list[str]:
    """Member names of a zip (for sniffing); empty when it is not a readable zip."""
    if not is_zip(path):
        return []
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError):
        return []


def tree_names(path: Path, limit: int = 200_000) -> list[str]:
    """Relative file names of a folder or a zip, or [] for anything else (for sniffing: stops at `limit`)."""
    if path.is_dir():
        names = []
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d not in _SKIPPED_PARTS]
            names += [Path(root, f).relative_to(path).as_posix() for f in files]
            if len(names) >= limit:
                break
        return names
    return zip_names(path)


def json_records(tree: ExportTree, name: str, prefix: str) -> Iterator[Any]:
    """The elements of the JSON array at `prefix` ("messages.item": the array under the top-level key
    `messages`; "item": a top-level array).

    A file up to WHOLE_FILE_BYTES is decoded at once (orjson: several times faster, and the memory it takes is
    bounded by that size); a bigger one is streamed (ijson). A file that is not valid JSON raises a ParseError
    naming the record after the last one that could be read.
    """
    if tree.size(name) <= WHOLE_FILE_BYTES:
        with tree.open_json(name) as f:
            data = f.read()
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # streamed below, which names the record where it fails (or reads what orjson refuses, e.g. a
            # lone surrogate escape)
        else:
            yield from _at(document, prefix)
            return
    yield from _stream(tree, name, prefix)


def _at(document: Any, prefix: str) -> list:
    """What ijson's `items(prefix)` would yield for a prefix of keys ending in "item"."""
    *keys, last = prefix.split(".")
    assert last == "item", prefix
    for key in keys:
        document = document.get(key) if isinstance(document, dict) else None
    return document if isinstance(document, list) else []


def _stream(tree: ExportTree, name: str, prefix: str) -> Iterator[Any]:
    count = 0
    with tree.open_json(name) as f:
        try:
            for count, record in enumerate(BACKEND.items(f, prefix, use_float=True), 1):  # noqa: B007
                yield record
        except ijson.JSONError as error:
            detail = str(error)
            if "premature EOF" in detail or "Incomplete" in type(error).__name__:
                what = "the JSON ends early: the file is truncated."
            elif "UTF8" in detail or "utf-8" in detail.lower():
                what = "the file is not valid UTF-8 text."
            else:
                what = "the file is not valid JSON here."
            raise ParseError(
                tree.where(name), what, line=count + 1, unit="record", hint="Download or export it again."
            ) from None
        except UnicodeDecodeError:
            raise ParseError(
                tree.where(name), "the file is not valid UTF-8 text.", line=count + 1, unit="record"
            ) from None


def top_level(tree: ExportTree, name: str, keys: frozenset[str], stop: str = "messages") -> dict[str, Any]:
    """The small top-level values `keys` of a JSON object that come before the key `stop`, without reading the
    rest (DiscordChatExporter writes `guild` and `channel` before `messages`)."""
    found: dict[str, Any] = {}
    with tree.open_json(name) as f:
        try:
            events = BACKEND.parse(f, buf_size=4096)
            first = next(events, None)
            if first is None or first[1] != "start_map":
                return found
            for prefix, event, value in events:
                if prefix == "" and event == "map_key":
                    if value == stop:
                        break
                    if value in keys:
                        found[value] = _build(events, value)
        except ijson.JSONError:
            pass  # json_records reports it, naming the record
    return found


def _build(events: Iterator[tuple[str, str, Any]], key: str) -> Any:
    builder = ijson.common.ObjectBuilder()
    depth = 0
    for _, event, value in events:
        builder.event(event, value)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
        if depth == 0:
            break
    return builder.value


@dataclass
class BadRecords:
    """Records that could not be read, by file and record number within the file, with a reason that names
    fields, never message text."""

    spec: SourceSpec
    unit: str = "record"
    found: list[tuple[int, str, int, str]] = field(default_factory=list)  # (ordinal, where, record, reason)
    read: int = 0  # records read, the good and the bad

    def add(self, where: str, record: int, reason: str, ordinal: int | None = None) -> None:
        """Record `record` of file `where` cannot be read; `ordinal` is its place among all records read
        (by default `read`, the records counted so far, this one included)."""
        self.found.append((self.read if ordinal is None else ordinal, where, record, reason))

    def numbers(self) -> list[int]:
        """1-based positions of the bad records among all records read, for ParseResult.bad_lines."""
        return [ordinal for ordinal, *_ in self.found]

    def check(self) -> None:
        """Fail naming the first bad record when more than `max_bad_fraction` are bad; else log the first few."""
        if not self.found:
            return
        _, where, record, reason = self.found[0]
        if len(self.found) > self.spec.max_bad_fraction * max(self.read, 1):
            more = f" ({len(self.found)} of {self.read} {self.unit}s are unreadable)" if len(self.found) > 1 else ""
            raise ParseError(
                where,
                f"{reason}{more}.",
                line=record,
                unit=self.unit,
                hint=(
                    "Check that the export is complete and unedited. To skip unreadable records instead, raise "
                    f"`max_bad_fraction` for this source (now {self.spec.max_bad_fraction})."
                ),
            )
        for _, where, record, reason in self.found[:MAX_LOGGED_BAD]:
            log.warning("%s, %s %d: %s", where, self.unit, record, reason)


class Rows:
    """Buffered rows in BUFFER_SCHEMA's column order, as plain tuples (the cheapest thing to build per message),
    moved to Arrow every `batch_rows` rows."""

    def __init__(self, batch_rows: int = 20_000) -> None:
        self._batch_rows = batch_rows
        self._rows: list[tuple] = []
        self._batches: list[pa.RecordBatch] = []

    def add(self, row: tuple) -> None:
        """(conversation, timestamp µs, sender, sender_id, is_self, text, kind, native_id, reply_to)"""
        rows = self._rows
        rows.append(row)
        if len(rows) >= self._batch_rows:
            self._flush()

    def extend(self, rows: list[tuple]) -> None:
        self._rows.extend(rows)
        if len(self._rows) >= self._batch_rows:
            self._flush()

    def table(self) -> pa.Table:
        self._flush()
        return pa.Table.from_batches(self._batches, schema=BUFFER_SCHEMA)

    def _flush(self) -> None:
        if self._rows:
            columns = zip(*self._rows, strict=True)
            arrays = [pa.array(column, f.type) for column, f in zip(columns, BUFFER_SCHEMA, strict=True)]
            self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=BUFFER_SCHEMA))
            self._rows = []


def fix_mojibake(text: str) -> str:
    """Meta's exports write each UTF-8 byte as its own \\u00XX escape ("é" as "\\u00c3\\u00a9"): undo that.
    Text that is not such mojibake (ASCII, characters above U+00FF, bytes that are not UTF-8) is left alone."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text

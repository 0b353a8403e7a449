"""Telegram Desktop exports in "Machine-readable JSON" (`result.json`): one chat, or the whole account.

The file is read as a stream of JSON events (ijson), never loaded whole: whole-account exports run to hundreds
of MB. Each message is built as a small dict, turned into one buffered row and dropped.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import ijson
import pyarrow as pa
import pyarrow.compute as pc

from mindupload.errors import ParseError, UserError
from mindupload.ingest.sources import ParseResult, SourceSpec
from mindupload.ingest.sources._common import (
    MAX_US,
    MIN_US,
    DepthLimitedReader,
    MessageBuffer,
    read_head,
    to_messages,
)

log = logging.getLogger(__name__)
_BACKEND = ijson.get_backend(ijson.backend)  # the fastest installed: yajl2_c

KEPT_CHAT_TYPES = frozenset({"personal_chat", "private_group", "private_supergroup"})
# Where chats sit: the top level of a single-chat export, the lists of a whole-account export.
CHAT_PREFIXES = frozenset({"", "chats.list.item", "left_chats.list.item"})
ACCOUNT_KEYS = frozenset({"personal_information", "chats", "left_chats"})
CALL_ACTIONS = frozenset({"phone_call", "group_call"})
STICKER_MEDIA_TYPES = frozenset({"sticker", "animation"})
MEDIA_KEYS = (
    "photo",
    "file",
    "media_type",
    "poll",
    "contact_information",
    "location_information",
    "game_title",
    "invoice_information",
)
BOM = b"\xef\xbb\xbf"
CHUNK = 64 * 1024  # bytes ijson reads at a time
MAX_LOGGED_BAD = 10

_EXPORT_KEY = re.compile(r'"(?:messages|personal_information|chats|left_chats)"\s*:')
_HTML_MARKERS = ("<title>Exported Data</title>", 'class="page_wrap"')
_REEXPORT = (
    'In Telegram Desktop, export again with format "Machine-readable JSON" and point this source\'s '
    "`path:` at the result.json it writes."
)


def sniff(path: Path) -> bool:
    """A JSON object naming Telegram's top-level keys, or Telegram's HTML export (so parse can explain)."""
    if path.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
        return False
    head = read_head(path)
    return _is_html_export(head) or (head.startswith("{") and _EXPORT_KEY.search(head) is not None)


def parse(spec: SourceSpec) -> ParseResult:
    _check_readable_kind(spec.path)
    reader = _ExportReader(spec, _zone(spec))
    with _open_json(spec.path) as f:
        try:
            reader.read(_BACKEND.parse(DepthLimitedReader(f, spec.path, spec.max_json_depth), buf_size=CHUNK))
        except ijson.JSONError as error:
            # ijson fails within the chunk it read last: everything before that chunk is valid JSON.
            raise _json_error(spec.path, str(error), valid_until=f.tell() - CHUNK) from None
    return reader.result()


def _zone(spec: SourceSpec) -> ZoneInfo:
    """Where `date` (local time, no offset) was written: read only for records without `date_unixtime`."""
    try:
        return ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"{spec.path}: unknown timezone {spec.timezone!r}; use an IANA name such as Europe/Berlin."
        ) from None


def _is_html_export(head: str) -> bool:
    return head.startswith("<") and any(marker in head for marker in _HTML_MARKERS)


def _check_readable_kind(path: Path) -> None:
    head = read_head(path)
    if not head.strip():
        raise ParseError(path, "the file is empty.", hint=_REEXPORT)
    if _is_html_export(head) or path.suffix.lower() in (".html", ".htm"):
        raise ParseError(path, "this is Telegram's HTML export, which mind-upload cannot read.", hint=_REEXPORT)


def _open_json(path: Path) -> IO[bytes]:
    f = open(path, "rb")  # noqa: SIM115 -- returned to the caller's `with`
    if f.read(len(BOM)) != BOM:
        f.seek(0)
    return f


@dataclass
class _Chat:
    """One chat as its events go by. Telegram writes name, type and id before messages, but nothing here
    relies on it: a chat's rows are filed under `key` and kept or dropped once the chat has ended."""

    key: str
    prefix: str
    type: str | None = None
    id: Any = None
    has_messages: bool = False
    records: int = 0
    bad: list[tuple[int, Any, str]] = field(default_factory=list)  # (record number, message id, reason)
    # ijson's C object builder for this chat's messages, and the messages it has finished.
    builder: Any = None
    built: list = field(default_factory=ijson.sendable_list)

    def __post_init__(self) -> None:
        self.message_prefix = self.path("messages.item")

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    @property
    def kept(self) -> bool:
        return self.type is None or self.type in KEPT_CHAT_TYPES


class _Row(NamedTuple):
    timestamp_us: int
    sender: str
    text: str
    kind: str
    sender_id: str | None
    native_id: str | None
    reply_to: str | None
    local_date: bool  # dated by `date`, a local time without offset


class _BadRecord(Exception):
    """A message that cannot be read; the reason names fields, never message text."""


class _ExportReader:
    """Turns the event stream of a single-chat or whole-account export into buffered rows."""

    def __init__(self, spec: SourceSpec, zone: ZoneInfo) -> None:
        self.spec = spec
        self.zone = zone
        self.local_dates = 0  # records dated by `date` alone (older Telegram Desktop), read in `zone`
        self.buffer = MessageBuffer()
        self.top: _Chat | None = None  # the top-level object: a chat in a single-chat export
        self.top_keys: set[str] = set()
        self.user_id: Any = None
        self.open: list[_Chat] = []  # the top level, then a chat inside a whole-account export
        self.kept: list[_Chat] = []
        self.skipped: Counter[str] = Counter()
        self.chats_seen = 0
        self.records = 0  # messages read from chats that may be kept: the record numbers

    def read(self, events: Iterator[tuple[str, str, Any]]) -> None:
        first = next(events, None)
        if first is None or first[:2] != ("", "start_map"):
            raise self._not_an_export()
        self.top = self._open_chat("")
        for event in events:
            chat = self.open[-1]
            if event[0].startswith(chat.message_prefix):
                event = self._read_messages(chat, event, events)
            if event is not None:
                self._structure(chat, *event)

    def _read_messages(
        self, chat: _Chat, event: tuple[str, str, Any], events: Iterator[tuple[str, str, Any]]
    ) -> tuple[str, str, Any] | None:
        """The hot loop: pass the chat's message events to its C builder (if it is built at all) and return
        the first event after them."""
        prefix, built = chat.message_prefix, chat.built
        send = chat.builder.send if chat.builder is not None else _ignore
        send(event)
        for event in events:
            if not event[0].startswith(prefix):
                return event
            send(event)
            if built:
                self._add_messages(chat)
        return None

    def _structure(self, chat: _Chat, prefix: str, event: str, value: Any) -> None:
        """An event outside messages: chat boundaries and fields, top-level keys, the user's id."""
        if prefix in CHAT_PREFIXES and event == "start_map":
            self._open_chat(prefix)
        elif prefix in CHAT_PREFIXES and event == "end_map":
            self._close_chat(self.open.pop())
        elif prefix == "" and event == "map_key":
            self.top_keys.add(value)
        elif prefix == "personal_information.user_id":
            self.user_id = value
        elif prefix == chat.path("type") and event == "string":
            chat.type = value
        elif prefix == chat.path("id") and event in ("number", "string"):
            chat.id = value
        elif prefix == chat.path("messages") and event == "start_array":
            chat.has_messages = True
            if chat.kept:  # a chat known to be skipped is not even built
                chat.builder = _BACKEND.items_basecoro(chat.built, chat.message_prefix)

    def _open_chat(self, prefix: str) -> _Chat:
        chat = _Chat(key=str(self.chats_seen), prefix=prefix)
        self.chats_seen += 1
        self.open.append(chat)
        return chat

    def _add_messages(self, chat: _Chat) -> None:
        for message in chat.built:
            self.records += 1
            chat.records += 1
            try:
                row = _row(message, self.zone)
            except _BadRecord as bad:
                native_id = message.get("id") if isinstance(message, dict) else None
                chat.bad.append((self.records, native_id, str(bad)))
                continue
            self.local_dates += row.local_date
            self.buffer.append(
                chat.key,
                row.timestamp_us,
                row.sender,
                row.text,
                row.kind,
                sender_id=row.sender_id,
                native_id=row.native_id,
                reply_to=row.reply_to,
            )
        chat.built.clear()

    def _close_chat(self, chat: _Chat) -> None:
        if not chat.has_messages:
            return  # the top level of a whole-account export, not a chat
        if chat.kept:
            self.kept.append(chat)
            self._log_bad(chat)
        else:
            self.skipped[chat.type or "unknown"] += 1

    def _log_bad(self, chat: _Chat) -> None:
        already = sum(len(c.bad) for c in self.kept[:-1])
        for record, native_id, reason in chat.bad[: max(0, MAX_LOGGED_BAD - already)]:
            log.warning(
                "%s: record %d (chat %s, message id %s): %s",
                self.spec.path,
                record,
                chat.id,
                native_id,
                reason,
            )

    def result(self) -> ParseResult:
        self._check_shape()
        if self.skipped:
            shown = ", ".join(f"{n} {kind}" for kind, n in sorted(self.skipped.items()))
            log.info("%s: skipped %d chats (%s)", self.spec.path, self.skipped.total(), shown)
        bad = sorted(record for chat in self.kept for record, _, _ in chat.bad)
        units = sum(chat.records for chat in self.kept)
        if self.local_dates:
            log.info(
                "%s: %d records have no date_unixtime (an older Telegram Desktop): their `date` is read as "
                "local time in %s (this source's `timezone`)",
                self.spec.path,
                self.local_dates,
                self.zone.key,
            )
        self_ids = [f"user{self.user_id}"] if self.user_id is not None else []
        rows = _name_conversations(self.buffer.table(), self.kept, self.spec.name)
        table = to_messages(self.spec.name, rows, self.spec.me, self_ids)
        return ParseResult(table=table, units_read=units, bad_lines=bad, unit="record")

    def _check_shape(self) -> None:
        if self.top is not None and self.top.has_messages:
            if not self.top.kept:
                raise ParseError(
                    self.spec.path,
                    f"this export holds one chat of type {self.top.type!r}, which mind-upload skips.",
                    hint="It reads personal chats and private groups: export one, or the whole account.",
                )
        elif not self.top_keys & ACCOUNT_KEYS:
            raise self._not_an_export()

    def _not_an_export(self) -> ParseError:
        return ParseError(self.spec.path, "not a Telegram Desktop export; export with format JSON.", hint=_REEXPORT)


def _ignore(event: tuple[str, str, Any]) -> None:
    pass


def _name_conversations(rows: pa.Table, kept: list[_Chat], source: str) -> pa.Table:
    """Drop rows of chats found skippable only after their messages; file the rest under their chat id."""
    keys = pa.array([chat.key for chat in kept], pa.string())
    names = pa.array([f"{source}:{chat.id if chat.id is not None else 'chat' + chat.key}" for chat in kept])
    rows = rows.filter(pc.is_in(rows.column("conversation"), value_set=keys))
    named = pc.take(names, pc.index_in(rows.column("conversation"), value_set=keys))
    return rows.set_column(0, "conversation", named)


def _row(message: Any, zone: ZoneInfo) -> _Row:
    if not isinstance(message, dict):
        raise _BadRecord("not a JSON object")
    service = message.get("type") == "service"
    name, sender_id = (
        (message.get("actor"), message.get("actor_id")) if service else (message.get("from"), message.get("from_id"))
    )
    sender_id = _id(sender_id)
    local_date = message.get("date_unixtime") is None
    return _Row(
        timestamp_us=_local_us(message.get("date"), zone) if local_date else _timestamp_us(message["date_unixtime"]),
        sender=name if isinstance(name, str) else "",  # empty: named after its sender id (to_messages)
        text=_text(message),
        kind=_kind(message, service),
        sender_id=sender_id,
        native_id=_id(message.get("id")),
        reply_to=_id(message.get("reply_to_message_id")),
        local_date=local_date,
    )


def _local_us(value: Any, zone: ZoneInfo) -> int:
    """`date`, "2024-05-01T12:00:00" in the exporting computer's local time, as UTC microseconds."""
    if value is None:
        raise _BadRecord("no date_unixtime and no date")
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise _BadRecord("no date_unixtime, and an unreadable date")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    us = (moment - _EPOCH) // timedelta(microseconds=1)
    if not MIN_US <= us <= MAX_US:
        raise _BadRecord("no date_unixtime, and an unreadable date")
    return us


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _timestamp_us(value: Any) -> int:
    try:
        seconds = int(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    except ValueError:
        seconds = None
    if seconds is None or not MIN_US <= seconds * 1_000_000 <= MAX_US:
        raise _BadRecord("unreadable date_unixtime")
    return seconds * 1_000_000


def _id(value: Any) -> str | None:
    return None if value is None or isinstance(value, bool) else str(value)


def _kind(message: dict, service: bool) -> str:
    if service:
        return "call" if message.get("action") in CALL_ACTIONS else "system"
    if "forwarded_from" in message:
        return "forwarded"
    if message.get("media_type") in STICKER_MEDIA_TYPES:
        return "sticker"
    if any(key in message for key in MEDIA_KEYS):
        return "media"
    return "text"


def _text(message: dict) -> str:
    """A sticker's emoji, else the message text (or a media caption) as the plain text of its parts."""
    if message.get("media_type") == "sticker":
        emoji = message.get("sticker_emoji")
        return emoji if isinstance(emoji, str) else ""
    entities = message.get("text_entities")
    return _join_parts(entities if isinstance(entities, list) else message.get("text"))


def _join_parts(text: Any) -> str:
    """`text` is a string, or a list of strings and {"type", "text"} objects."""
    if isinstance(text, str):
        return text
    if not isinstance(text, list):
        return ""
    parts = (part if isinstance(part, str) else part.get("text") if isinstance(part, dict) else None for part in text)
    return "".join(part for part in parts if isinstance(part, str))


class _LineFeeder:
    """A binary file for ijson that, past `valid_until`, hands out at most one line per read, so the line
    ijson was parsing when it failed is known: the line where the last piece read starts."""

    def __init__(self, f: IO[bytes], valid_until: int) -> None:
        self._f = f
        self._valid_until = valid_until
        self._newlines = 0
        self.line = 1

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""  # ijson's probe for bytes or text
        before_error = self._valid_until - self._f.tell()
        # Big reads up to the chunk that failed, then single lines (bounded: a minified export is one line).
        data = self._f.read(min(size, before_error)) if before_error > 0 else self._f.readline(size)
        if data:
            self.line = self._newlines + 1
            self._newlines += data.count(b"\n")
        return data


def _failing_line(path: Path, valid_until: int) -> int | None:
    """Parse the file again, a line at a time from `valid_until` on, to find the line where parsing stops."""
    with _open_json(path) as f:
        feeder = _LineFeeder(f, valid_until)
        try:
            for _ in _BACKEND.basic_parse(feeder, buf_size=CHUNK):
                pass
        except ijson.JSONError:
            return feeder.line
    return None


def _json_error(path: Path, detail: str, valid_until: int) -> ParseError:
    """A ParseError for a file ijson could not parse. `detail` quotes the file, so only its kind is used."""
    line = _failing_line(path, valid_until)
    if "premature EOF" in detail:
        what, hint = (
            "the JSON ends early: the file is truncated.",
            "Was the export or the copy interrupted? " + _REEXPORT,
        )
    elif "UTF8" in detail:
        what, hint = "the file is not valid UTF-8 text.", _REEXPORT
    elif line == 1 and not read_head(path).startswith(("{", "[")):
        what, hint = "the file is not JSON.", _REEXPORT
    else:
        what, hint = "the file is not valid JSON (parsing stopped on this line).", _REEXPORT
    return ParseError(path, what, line=line, hint=hint)

"""Signal Desktop chats as the `signal-export` tool (PyPI `signal-export`, command `sigexport`) writes them.

`sigexport OUT` writes one folder per chat, named after the contact or group, each with `chat.md`, `index.html`
and `data.json`: JSON Lines, one message per line, as signal-export 3.x writes them:

    {"date": "2024-01-05T19:00:00", "sender": "Anna", "body": "Hi  ", "quote": "", "sticker": null,
     "reactions": [["Me", "❤️"]], "attachments": [{"name": "a.jpg", "path": "media/a.jpg", ...}],
     "deleted": false, "call": false, "missed": false}

`date` is the exporting computer's local time without a zone (read in the source's `timezone`); `sender` is
"Me" for your own messages; `body` ends with the two spaces signal-export adds for Markdown line breaks (removed
here); backticks were already removed by signal-export. `path:` may name the export folder (all chats), one chat
folder, or one `data.json`. `chat.md` alone (exported with `--no-json`) is not read: its messages cannot be told
apart from text that looks like a message header.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mindupload.errors import ParseError
from mindupload.ingest.sources import ParseResult, SourceSpec
from mindupload.ingest.sources._common import MAX_US, MIN_US, MessageBuffer, read_lines, to_messages
from mindupload.ingest.sources._localtime import local_us, zone

log = logging.getLogger(__name__)

DATA = "data.json"
ME = "Me"  # signal-export's name for the owner of the database
MARKDOWN_BREAK = "  "
KEYS = frozenset({"date", "sender", "body"})
MAX_LOGGED_BAD = 10
_UTC = ZoneInfo("UTC")
HINT = "Export with `sigexport OUT` (JSON output is on by default) and point `path:` at OUT or one chat's data.json."


def sniff(path: Path) -> bool:
    files = _data_files(path)
    return bool(files) and _looks_like_signal(files[0])


def _data_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.name == DATA else []
    if (path / DATA).is_file():
        return [path / DATA]
    if path.is_dir():
        return sorted(p for p in path.glob(f"*/{DATA}") if p.is_file())
    return []


def _looks_like_signal(path: Path) -> bool:
    with open(path, "rb") as f:
        first = f.readline(1 << 16).decode("utf-8", errors="ignore").lstrip("\ufeff")
    try:
        record = json.loads(first)
    except ValueError:
        return False
    return isinstance(record, dict) and record.keys() >= KEYS


def parse(spec: SourceSpec) -> ParseResult:
    tz = zone(spec)
    files = _data_files(spec.path)
    if not files:
        markdown = spec.path / "chat.md" if spec.path.is_dir() else spec.path
        what = (
            "only chat.md is here; mind-upload reads signal-export's data.json."
            if markdown.name == "chat.md" and markdown.exists()
            else "no signal-export data.json here."
        )
        raise ParseError(spec.path, what, hint=HINT)
    me_name = spec.me[0] if spec.me else ME
    buffer = MessageBuffer()
    records, bad = 0, []
    for chat, path in enumerate(files, 1):
        conversation = f"{spec.name}:{path.parent.name}"
        for line_number, line in read_lines(path):
            if not line.strip():
                continue
            records += 1
            try:
                row = _row(line, tz)
            except _Bad as reason:
                bad.append(records)
                if len(bad) <= MAX_LOGGED_BAD:
                    # Chat folders are named after people: the log names the chat by its number only.
                    log.warning("%s: chat %d of %d, line %d: %s", spec.path, chat, len(files), line_number, reason)
                continue
            stamp, sender, kind, text = row
            mine = sender == ME
            buffer.append(conversation, stamp, me_name if mine else sender, text, kind, is_self=mine)
    table = to_messages(spec.name, buffer.table(), spec.me or (ME,))
    return ParseResult(table=table, units_read=records, bad_lines=bad, unit="record")


class _Bad(Exception):
    """A line that is not a signal-export message; the reason names fields, never message text."""


def _row(line: str, tz) -> tuple[int, str, str, str]:
    try:
        message = json.loads(line)
    except ValueError:
        raise _Bad("not a JSON object") from None
    if not isinstance(message, dict):
        raise _Bad("not a JSON object")
    sender, body = message.get("sender"), message.get("body")
    if not isinstance(sender, str) or not isinstance(body, (str, type(None))):
        raise _Bad("no sender or body")
    body = (body or "").removesuffix(MARKDOWN_BREAK)
    return _timestamp_us(message.get("date"), tz), sender, *_kind_and_text(message, body)


def _timestamp_us(value: Any, tz) -> int:
    if not isinstance(value, str):
        raise _Bad("no date")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad("unreadable date") from None
    us = local_us(when, tz) if when.tzinfo is None else local_us(when.replace(tzinfo=None) - when.utcoffset(), _UTC)
    if not MIN_US <= us <= MAX_US:
        raise _Bad("date out of range")
    return us


def _kind_and_text(message: dict, body: str) -> tuple[str, str]:
    if message.get("deleted"):
        return "deleted", ""
    if message.get("call"):
        return "call", body
    sticker = message.get("sticker")
    if isinstance(sticker, dict):
        emoji = sticker.get("emoji")
        return "sticker", emoji if isinstance(emoji, str) else ""
    if message.get("attachments"):
        return "media", body
    if not body:
        return "system", ""  # group updates and other events signal-export writes with an empty body
    return "text", body

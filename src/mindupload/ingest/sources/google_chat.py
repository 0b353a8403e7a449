"""Google Chat from Google Takeout: the zip as downloaded, its unpacked folder, or one `messages.json`.

`Takeout/Google Chat/Groups/<DM id | Space id>/messages.json` holds `messages[]` with `creator{name,email}`,
`created_date` as an English sentence ("Wednesday, March 15, 2023 at 2:04:05 PM UTC", sometimes with U+202F
before PM), `text`, `annotations`, `attached_files`, `topic_id`; `group_info.json` beside it names the members.
`Takeout/Google Chat/Users/User <id>/user_info.json` names the account owner, whose messages are the user's own
without setting `me`.

Each group folder is a conversation `<source>:<folder>`. In a threaded space, later messages of a topic point at
its first message.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from mindupload.errors import ParseError
from mindupload.ingest.sources import ParseResult, SourceSpec
from mindupload.ingest.sources._common import MAX_US, MIN_US, read_head, to_messages
from mindupload.ingest.sources._exports import BadRecords, ExportTree, Rows, json_records, tree_names

HINT = "Download Google Chat again from takeout.google.com and point this source at the zip or the folder."
MONTH_NAMES = "january february march april may june july august september october november december"
MONTHS = {name: number for number, name in enumerate(MONTH_NAMES.split(), 1)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE = re.compile(
    r"(?:[A-Za-z]+,\s+)?([A-Za-z]+)\s+(\d{1,2}),\s+(\d{4})\s+at\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"[\s\u202f\u00a0\u2009]*([AaPp][Mm])?\s+(UTC|GMT)?(?:([+-])(\d{1,2})(?::?(\d{2}))?)?"
)
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?[\s\u202f\u00a0\u2009]*([AaPp][Mm])?\s+(?:UTC|GMT)([+-].*)?")
_GROUP_FILE = re.compile(r"(?:^|/)Groups/([^/]+)/messages\.json$")
_HEAD = re.compile(r'^\{\s*"messages"\s*:\s*\[\s*(?:\]|\{\s*"(?:creator|created_date|text|message_id)")')


def sniff(path: Path) -> bool:
    """A Takeout zip or folder with Google Chat groups, or one group's messages.json."""
    if path.is_file() and path.suffix.lower() != ".zip":
        return path.name == "messages.json" and _HEAD.match(read_head(path)) is not None
    return any(_GROUP_FILE.search(n) for n in tree_names(path))


def parse(spec: SourceSpec) -> ParseResult:
    with ExportTree(spec.path, spec) as tree:
        return _Reader(spec, tree).parse()


class _BadRecord(Exception):
    """A message that cannot be read; the reason names fields, never message text."""


class _Reader:
    def __init__(self, spec: SourceSpec, tree: ExportTree) -> None:
        self.spec, self.tree = spec, tree
        self.buffer = Rows()
        self.bad = BadRecords(spec)
        self.dates = _Dates()

    def parse(self) -> ParseResult:
        names = self.tree.names()
        if self.tree.is_single_file:
            groups = [(self.spec.path.parent.name or "chat", names[0])]
        else:
            groups = sorted((m[1], n) for n in names if (m := _GROUP_FILE.search(n)))
        if not groups:
            raise ParseError(self.spec.path, "no Google Chat conversations (Groups/*/messages.json) here.", hint=HINT)
        for group, name in groups:
            self._read_group(group, name)
        self.bad.check()
        table = to_messages(self.spec.name, self.buffer.table(), self.spec.me, self._owner(names))
        return ParseResult(table, units_read=self.bad.read, bad_lines=self.bad.numbers(), unit="record")

    def _owner(self, names: list[str]) -> list[str]:
        """The account's email, from Users/<user>/user_info.json, if the export has it."""
        owners = []
        for name in names:
            if PurePosixPath(name).name == "user_info.json" and "/Users/" in f"/{name}":
                info = self.tree.read_json(name)
                user = info.get("user") if isinstance(info, dict) else None
                if isinstance(user, dict) and isinstance(user.get("email"), str):
                    owners.append(user["email"].lower())
        return owners

    def _read_group(self, group: str, name: str) -> None:
        conversation = f"{self.spec.name}:{group}"
        where = self.tree.where(name)
        topics: dict[str, str] = {}
        add, row = self.buffer.add, self._row
        number = 0
        for number, message in enumerate(json_records(self.tree, name, "messages.item"), 1):
            try:
                add(row(conversation, number, message, topics))
            except _BadRecord as bad:
                self.bad.add(where, number, str(bad), ordinal=self.bad.read + number)
        self.bad.read += number

    def _row(self, conversation: str, number: int, message: Any, topics: dict[str, str]) -> tuple:
        """The hot loop: one message as a row."""
        if message.__class__ is not dict:
            raise _BadRecord("not a JSON object")
        creator = message.get("creator")
        if creator.__class__ is not dict:
            raise _BadRecord("no `creator`")
        email = creator.get("email")
        email = email.lower() if email.__class__ is str and email else None
        sender = creator.get("name")
        if sender.__class__ is not str or not sender.strip():
            sender = email
            if sender is None:
                raise _BadRecord("no `creator` name or email")
        timestamp = self.dates(message.get("created_date"))
        native_id = message.get("message_id")
        if native_id.__class__ is not str:
            native_id = f"#{number}"
        topic = message.get("topic_id")
        reply_to = None
        if topic.__class__ is str:
            reply_to = topics.setdefault(topic, native_id)
            if reply_to == native_id:
                reply_to = None
        text = message.get("text")
        if text.__class__ is not str:
            text = ""
        if "attached_files" in message or "deletion_metadata" in message or "message_state" in message or not text:
            kind = _kind(message, text)
        else:
            kind = "text"
        return (conversation, timestamp, sender, email, None, text, kind, native_id, reply_to)


class _Dates:
    """`created_us` with the day part of each date ("Wednesday, March 15, 2023") read once per day."""

    def __init__(self) -> None:
        self._days: dict[str, int] = {}

    def __call__(self, value: Any) -> int:
        if value.__class__ is not str:
            raise _BadRecord("unreadable `created_date` (is the Takeout in English?)")
        day, at, clock = value.partition(" at ")
        m = _CLOCK.fullmatch(clock) if at else None
        if m is None or m[5]:  # not the usual shape, or an offset: the full reading
            return created_us(value)
        day_us = self._days.get(day)
        if day_us is None:
            us = created_us(value)  # checks the whole date
            self._days[day] = created_us(day + " at 0:00:00 UTC")
            return us
        hour, minute, second = int(m[1]), int(m[2]), int(m[3] or 0)
        if m[4]:
            if not 1 <= hour <= 12:
                raise _BadRecord("unreadable `created_date`")
            hour = hour % 12 + (12 if m[4] in ("PM", "pm") else 0)
        if hour > 23 or minute > 59 or second > 59:
            raise _BadRecord("unreadable `created_date`")
        return day_us + ((hour * 60 + minute) * 60 + second) * 1_000_000


def created_us(value: Any) -> int:
    """Microseconds since the epoch of Takeout's `created_date` ("Wednesday, March 15, 2023 at 2:04:05 PM UTC")."""
    m = _DATE.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None or m[1].lower() not in MONTHS:
        raise _BadRecord("unreadable `created_date` (is the Takeout in English?)")
    month, day, year, hour, minute = MONTHS[m[1].lower()], int(m[2]), int(m[3]), int(m[4]), int(m[5])
    second = int(m[6] or 0)
    if m[7]:
        if not 1 <= hour <= 12:
            raise _BadRecord("unreadable `created_date`")
        hour = hour % 12 + (12 if m[7].lower() == "pm" else 0)
    offset = timedelta(0)
    if m[9]:
        offset = timedelta(hours=int(m[10]), minutes=int(m[11] or 0)) * (1 if m[9] == "+" else -1)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC) - offset
    except ValueError:
        raise _BadRecord("unreadable `created_date`") from None
    delta = moment - _EPOCH
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000
    if not MIN_US <= us <= MAX_US:
        raise _BadRecord("unreadable `created_date`")
    return us


def _kind(message: dict, text: str) -> str:
    if message.get("message_state") == "DELETED" or message.get("deletion_metadata"):
        return "deleted"
    if message.get("attached_files"):
        return "media"
    if not text.strip():
        return "system"
    return "text"

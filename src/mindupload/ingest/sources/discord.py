"""Discord: DiscordChatExporter's JSON (one file per channel or DM, a folder of them, or a zip of them), and
Discord's own data package ("Request all of my data": `package.zip` with `messages/c<id>/messages.json` or
`messages.csv` beside `channel.json`).

DiscordChatExporter files are read as a stream: `guild` and `channel` from the head of the file, then the
messages one record at a time. Each channel is a conversation `<source>:<channel id>`; a channel exported in
several files (partitions, overlapping date ranges) is one conversation, its repeated messages read once.

The data package holds only the account owner's messages: every row is the user's own and no conversation has
anyone else's turns, so it adds no training examples on its own (ParseResult.notes says so).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from mindupload.errors import ParseError
from mindupload.ingest.sources import ParseResult, SourceSpec
from mindupload.ingest.sources._common import MAX_US, MIN_US, MessageBuffer, read_head, to_messages
from mindupload.ingest.sources._exports import BadRecords, ExportTree, Rows, json_records, top_level, tree_names

CALL_TYPES = frozenset({"Call"})
# Channel types DiscordChatExporter writes (ChannelKind): all hold conversations people type in.
KNOWN_CHANNEL_TYPES = frozenset(
    {
        "DirectTextChat",
        "DirectGroupTextChat",
        "GuildTextChat",
        "GuildNews",
        "GuildAnnouncement",
        "GuildNewsThread",
        "GuildPublicThread",
        "GuildPrivateThread",
        "GuildVoiceChat",
        "GuildStageVoice",
        "GuildForum",
        "GuildDirectory",
        "GuildCategory",
    }
)
HINT = (
    "Export the channel again with DiscordChatExporter, format JSON (`--format Json`), or use the `package.zip` "
    "from Discord's 'Request all of my data'."
)
PACKAGE_NOTE = (
    "Discord data package: it holds only your own messages, so its conversations give no context turns and no "
    "training examples on their own; export the same channels with DiscordChatExporter for that."
)

_DCE_HEAD = re.compile(r'^\{\s*"guild"\s*:\s*\{')
_PACKAGE_CHANNEL = re.compile(r"(?:^|/)messages/c?(\d+)/(channel\.json|messages\.json|messages\.csv)$")
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def sniff(path: Path) -> bool:
    """A DiscordChatExporter JSON file; a folder or zip holding them; or a Discord data package."""
    if path.is_file() and path.suffix.lower() != ".zip":
        return _is_dce(read_head(path))
    names = tree_names(path)
    if any(_PACKAGE_CHANNEL.search(n) for n in names):
        return True
    json_names = [n for n in names if n.lower().endswith(".json")][:20]
    if not json_names:
        return False
    with ExportTree(path) as tree:
        return any(_is_dce(tree.head(n)) for n in json_names)


def _is_dce(head: str) -> bool:
    return _DCE_HEAD.match(head) is not None and '"channel"' in head


def parse(spec: SourceSpec) -> ParseResult:
    with ExportTree(spec.path, spec) as tree:
        names = tree.names()
        package = sorted({m[1] for n in names if (m := _PACKAGE_CHANNEL.search(n))})
        if package:
            return _Package(spec, tree, names).parse(package)
        files = [n for n in names if n.lower().endswith(".json") and _is_dce(tree.head(n))]
        if not files:
            raise ParseError(spec.path, "no DiscordChatExporter JSON export found here.", hint=HINT)
        return _Exports(spec, tree).parse(files)


def _normal(name: Any) -> str:
    return " ".join(str(name).lower().split())


class _Exports:
    """DiscordChatExporter JSON files."""

    def __init__(self, spec: SourceSpec, tree: ExportTree) -> None:
        self.spec, self.tree = spec, tree
        self.me = {_normal(m) for m in spec.me}
        self.buffer = Rows()
        self.bad = BadRecords(spec)
        self.authors: dict[str, tuple[str, str, bool | None]] = {}  # author id -> (id, sender, is_self)
        self.repeated = 0

    def parse(self, files: list[str]) -> ParseResult:
        channels = {name: self._channel(name) for name in files}
        # Message ids are remembered only for channels exported in more than one file, to read them once.
        counts = Counter(channels.values())
        seen: dict[str, set[str]] = {channel: set() for channel, n in counts.items() if n > 1}
        for name, channel in channels.items():
            self._read_file(name, f"{self.spec.name}:{channel}", seen.get(channel))
        self.bad.check()
        notes = [f"{self.repeated} messages found in more than one file were read once."] if self.repeated else []
        table = to_messages(self.spec.name, self.buffer.table(), ())
        return ParseResult(table, units_read=self.bad.read, bad_lines=self.bad.numbers(), unit="record", notes=notes)

    def _channel(self, name: str) -> str:
        channel = top_level(self.tree, name, frozenset({"guild", "channel"})).get("channel")
        if not isinstance(channel, dict) or channel.get("id") in (None, ""):
            raise ParseError(self.tree.where(name), "no `channel` with an `id` before `messages`.", hint=HINT)
        return str(channel["id"])

    def _read_file(self, name: str, conversation: str, seen: set[str] | None) -> None:
        where = self.tree.where(name)
        add, row = self.buffer.add, self._row
        self.authors = {}  # nicknames are per server: each file names its authors afresh
        number = 0
        for number, message in enumerate(json_records(self.tree, name, "messages.item"), 1):
            try:
                record = row(conversation, message)
            except _BadRecord as bad:
                self.bad.add(where, number, str(bad), ordinal=self.bad.read + number)
                continue
            if seen is not None:
                if record[7] in seen:
                    self.repeated += 1
                    continue
                seen.add(record[7])
            add(record)
        self.bad.read += number

    def _row(self, conversation: str, message: Any) -> tuple:
        """The hot loop: one message as a row; authors are worked out once per id."""
        if message.__class__ is not dict:
            raise _BadRecord("not a JSON object")
        native_id = message.get("id")
        if native_id.__class__ is not str:
            if not isinstance(native_id, int) or isinstance(native_id, bool):
                raise _BadRecord("no message `id`")
            native_id = str(native_id)
        author = message.get("author")
        author_id = author.get("id") if author.__class__ is dict else None
        known = self.authors.get(author_id) if author_id.__class__ is str else None
        if known is None:
            known = self._author(author)
        author_id, sender, is_self = known
        reference = message.get("reference")
        reply_to = reference.get("messageId") if reference.__class__ is dict else None
        if reply_to is not None:
            reply_to = str(reply_to)
            if reply_to == native_id:
                reply_to = None
        content = message.get("content")
        text = content if content.__class__ is str else ""
        if "<@" in text:
            text = _mentions(message, text)
        kind = message.get("type")
        if kind == "Default" or kind == "Reply":  # the common case first, without a set lookup
            if message.get("attachments"):
                kind = "media"
            elif message.get("stickers") and not text:
                kind = "sticker"
            else:
                kind = "text"
        else:
            kind = "call" if kind in CALL_TYPES else "system"
        timestamp = _iso_us(message.get("timestamp"))
        return (conversation, timestamp, sender, author_id, is_self, text, kind, native_id, reply_to)

    def _author(self, author: Any) -> tuple[str, str, bool | None]:
        if not isinstance(author, dict) or author.get("id") is None:
            raise _BadRecord("no `author` with an `id`")
        author_id, name, nickname = str(author["id"]), author.get("name"), author.get("nickname")
        sender = next((n for n in (nickname, name) if isinstance(n, str) and n.strip()), author_id)
        is_self = bool(self.me & {_normal(author_id), _normal(name or ""), _normal(nickname or "")})
        known = self.authors[author_id] = (author_id, sender, is_self)
        return known


class _BadRecord(Exception):
    """A message that cannot be read; the reason names fields, never message text."""


def _iso_us(value: Any) -> int:
    """Microseconds since the epoch of an ISO 8601 timestamp (with an offset; without one it is UTC)."""
    if value.__class__ is not str:
        raise _BadRecord("no `timestamp`")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _BadRecord("unreadable `timestamp`") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    us = (moment - _EPOCH) // _MICROSECOND
    if not MIN_US <= us <= MAX_US:
        raise _BadRecord("unreadable `timestamp`")
    return us


def _mentions(message: dict, content: str) -> str:
    """Raw user mentions `<@id>` written as `@name` (DiscordChatExporter already writes most as names)."""
    names = {}
    for mention in message.get("mentions") or ():
        if isinstance(mention, dict) and mention.get("id") is not None:
            label = next((n for n in (mention.get("nickname"), mention.get("name")) if isinstance(n, str) and n), None)
            if label:
                names[str(mention["id"])] = label
    return _USER_MENTION.sub(lambda m: "@" + names.get(m[1], "unknown-user"), content)


# --- Discord's own data package --------------------------------------------------------------------------------


class _Package:
    """`messages/c<channel id>/` folders, each with `channel.json` and `messages.json` (since 2024) or
    `messages.csv` (before); `account/user.json` names the account."""

    def __init__(self, spec: SourceSpec, tree: ExportTree, names: list[str]) -> None:
        self.spec, self.tree = spec, tree
        self.names = set(names)
        self.buffer = MessageBuffer()
        self.bad = BadRecords(spec)
        self.owner = self._owner()

    def _owner(self) -> str:
        account = next((n for n in self.names if PurePosixPath(n).parts[-2:] == ("account", "user.json")), None)
        if account is not None:
            user = self.tree.read_json(account)
            if isinstance(user, dict):
                for key in ("global_name", "username"):
                    if isinstance(user.get(key), str) and user[key].strip():
                        return user[key]
        return self.spec.me[0] if self.spec.me else "me"

    def parse(self, channel_ids: list[str]) -> ParseResult:
        for channel_id in channel_ids:
            folder = self._folder(channel_id)
            conversation = f"{self.spec.name}:{channel_id}"
            if f"{folder}/messages.json" in self.names:
                self._read_json(f"{folder}/messages.json", conversation)
            elif f"{folder}/messages.csv" in self.names:
                self._read_csv(f"{folder}/messages.csv", conversation)
        self.bad.check()
        rows = self.buffer.table()
        table = to_messages(self.spec.name, rows, ())
        return ParseResult(
            table, units_read=self.bad.read, bad_lines=self.bad.numbers(), unit="record", notes=[PACKAGE_NOTE]
        )

    def _folder(self, channel_id: str) -> str:
        for name in self.names:
            m = _PACKAGE_CHANNEL.search(name)
            if m and m[1] == channel_id:
                return name.rsplit("/", 1)[0]
        raise AssertionError(channel_id)

    def _read_json(self, name: str, conversation: str) -> None:
        for number, record in enumerate(json_records(self.tree, name, "item"), 1):
            self._append(name, number, conversation, record if isinstance(record, dict) else None)

    def _read_csv(self, name: str, conversation: str) -> None:
        with self.tree.open(name) as f:
            text = io.TextIOWrapper(f, encoding="utf-8", newline="")
            try:
                for number, record in enumerate(csv.DictReader(text), 1):
                    self._append(name, number, conversation, record)
            except (UnicodeDecodeError, csv.Error):
                raise ParseError(self.tree.where(name), "this file is not readable CSV in UTF-8.") from None

    def _append(self, name: str, number: int, conversation: str, record: dict | None) -> None:
        self.bad.read += 1
        try:
            if record is None:
                raise _BadRecord("not a JSON object")
            native_id = record.get("ID")
            if native_id in (None, ""):
                raise _BadRecord("no `ID`")
            timestamp = record.get("Timestamp")
            if isinstance(timestamp, str):
                timestamp = timestamp.replace(" ", "T", 1)
            text = record.get("Contents")
            text = text if isinstance(text, str) else ""
            attachments = record.get("Attachments")
            self.buffer.append(
                conversation,
                _iso_us(timestamp),
                self.owner,
                text,
                "media" if attachments else "text",
                is_self=True,
                native_id=str(native_id),
            )
        except _BadRecord as bad:
            self.bad.add(self.tree.where(name), number, str(bad))

"""Slack workspace export: the zip an admin downloads (or its unpacked folder).

At the top: `users.json`, `channels.json` (public channels), and on plans that export them `groups.json`
(private channels), `dms.json` and `mpims.json` (direct and group direct messages). One folder per
conversation (a channel's name, a DM's id) of day files `YYYY-MM-DD.json`, each an array of messages with `ts`
(seconds.micros, also the message's id), `user`, `text`, `subtype`, `thread_ts`, `files`.

Each folder is a conversation `<source>:<folder>`. User ids become display names; in `text`, Slack's markup
(`<@U123>`, `<#C123|general>`, `<!here>`, `<https://x|label>`, `&amp;`) becomes the text people saw. A thread
reply points at the thread's first message.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

from mindupload.errors import ParseError
from mindupload.ingest.sources import ParseResult, SourceSpec
from mindupload.ingest.sources._common import MAX_US, MIN_US, to_messages
from mindupload.ingest.sources._exports import BadRecords, ExportTree, Rows, json_records, tree_names

LISTS = ("channels.json", "groups.json", "dms.json", "mpims.json")
TEXT_SUBTYPES = frozenset({"thread_broadcast", "reply_broadcast", "me_message", "bot_message", "file_share"})
DELETED_SUBTYPES = frozenset({"tombstone", "message_deleted"})
CALL_SUBTYPES = frozenset({"huddle_thread", "sh_room_created"})
HINT = "Use the zip from Slack's Workspace settings > Import/Export Data > Export, or its unpacked folder."

_DAY_FILE = re.compile(r"(?:^|/)([^/]+)/\d{4}-\d{2}-\d{2}\.json$")
_MARKUP = re.compile(r"<([^<>\n]*)>")


def sniff(path: Path) -> bool:
    """A folder or zip with `users.json` beside one of the conversation lists."""
    names = set(tree_names(path))
    for name in names:
        if PurePosixPath(name).name == "users.json":
            folder = name[: -len("users.json")]
            if any(folder + other in names for other in LISTS):
                return True
    return False


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
        self.me = {_normal(m) for m in spec.me}
        self.senders: dict[str, tuple[str, bool]] = {}

    def parse(self) -> ParseResult:
        names = self.tree.names()
        users = next((n for n in names if PurePosixPath(n).name == "users.json"), None)
        if users is None:
            raise ParseError(self.spec.path, "no users.json: this is not a Slack workspace export.", hint=HINT)
        root = users[: -len("users.json")]
        self.users = self._users(root + "users.json")
        self.channels = self._channels(root, set(names))
        days: dict[str, list[str]] = defaultdict(list)
        for name in names:
            m = _DAY_FILE.search(name)
            if m and name.startswith(root) and "/" not in name[len(root) :].rsplit("/", 1)[0]:
                days[m[1]].append(name)
        if not days:
            raise ParseError(self.spec.path, "the Slack export holds no conversation folders.", hint=HINT)
        for folder, files in sorted(days.items()):
            for name in sorted(files):
                self._read_day(folder, name)
        self.bad.check()
        table = to_messages(self.spec.name, self.buffer.table(), ())
        return ParseResult(table, units_read=self.bad.read, bad_lines=self.bad.numbers(), unit="record")

    def _users(self, name: str) -> dict[str, dict]:
        """User id -> {"name": display name, "keys": names `me` may use}."""
        users = {}
        data = self.tree.read_json(name)
        if not isinstance(data, list):
            raise ParseError(self.tree.where(name), "users.json is not a list of users.", hint=HINT)
        for user in data:
            if not isinstance(user, dict) or not isinstance(user.get("id"), str):
                continue
            profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
            candidates = [
                profile.get("display_name"),
                profile.get("real_name"),
                user.get("real_name"),
                user.get("name"),
            ]
            names = [c for c in candidates if isinstance(c, str) and c.strip()]
            users[user["id"]] = {"name": names[0] if names else user["id"], "keys": {_normal(n) for n in names}}
        return users

    def _channels(self, root: str, names: set[str]) -> dict[str, str]:
        """Channel id -> name, for `<#C123>` mentions."""
        channels = {}
        for listing in LISTS:
            if root + listing not in names:
                continue
            data = self.tree.read_json(root + listing)
            for channel in data if isinstance(data, list) else ():
                if isinstance(channel, dict) and isinstance(channel.get("id"), str):
                    channels[channel["id"]] = str(channel.get("name") or channel["id"])
        return channels

    def _read_day(self, folder: str, name: str) -> None:
        conversation = f"{self.spec.name}:{folder}"
        where = self.tree.where(name)
        add, row = self.buffer.add, self._row
        number = 0
        for number, message in enumerate(json_records(self.tree, name, "item"), 1):
            try:
                add(row(conversation, message))
            except _BadRecord as bad:
                self.bad.add(where, number, str(bad), ordinal=self.bad.read + number)
        self.bad.read += number

    def _row(self, conversation: str, message: Any) -> tuple:
        """The hot loop: one message as a row; users are worked out once per id."""
        if message.__class__ is not dict:
            raise _BadRecord("not a JSON object")
        ts = message.get("ts")
        timestamp = _ts_us(ts)
        user_id = message.get("user")
        known = self.senders.get(user_id) if user_id.__class__ is str else None
        if known is None:
            known = self._sender(message, user_id if user_id.__class__ is str else None)
        sender, is_self = known
        thread = message.get("thread_ts")
        text = message.get("text")
        text = self._text(text) if text.__class__ is str else ""
        subtype = message.get("subtype")
        if subtype is None:
            kind = "media" if message.get("files") else "text"
        else:
            kind = _kind(message, subtype)
            if kind == "deleted":
                text = ""
        reply_to = thread if thread.__class__ is str and thread != ts else None
        return (conversation, timestamp, sender, user_id, is_self, text, kind, ts, reply_to)

    def _sender(self, message: dict, user_id: str | None) -> tuple[str, bool]:
        """(name, is it the user) of a message's sender; remembered for users of users.json."""
        if user_id in self.users:
            user = self.users[user_id]
            known = self.senders[user_id] = (user["name"], bool(self.me & {*user["keys"], _normal(user_id)}))
            return known
        profile = message.get("user_profile") if isinstance(message.get("user_profile"), dict) else {}
        for candidate in (profile.get("display_name"), profile.get("real_name"), message.get("username")):
            if isinstance(candidate, str) and candidate.strip():
                return candidate, bool(self.me & {_normal(candidate), _normal(user_id or "")})
        bot = message.get("bot_id")
        if user_id or isinstance(bot, str):
            return user_id or bot, bool(self.me & {_normal(user_id or bot)})
        raise _BadRecord("no `user`")

    def _text(self, text: str) -> str:
        if "<" in text:
            text = _MARKUP.sub(self._markup, text)
        return html.unescape(text) if "&" in text else text

    def _markup(self, match: re.Match) -> str:
        inner = match[1]
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + (label or self.users.get(target[1:], {}).get("name", target[1:]))
        if target.startswith("#"):
            return "#" + (label or self.channels.get(target[1:], target[1:]))
        if target.startswith("!"):
            if label:
                return label if label.startswith("@") or target.startswith("!date") else "@" + label
            return "@" + target[1:].split("^", 1)[0]
        return label or (target[len("mailto:") :] if target.startswith("mailto:") else target)


def _normal(name: str) -> str:
    return " ".join(name.lower().split())


def _ts_us(ts: Any) -> int:
    """`ts` ("1678784460.000200": seconds and microseconds) in microseconds."""
    seconds, _, micros = ts.partition(".") if ts.__class__ is str else ("", "", "")
    if not (seconds.isdecimal() and len(seconds) <= 12 and (micros.isdecimal() or not micros) and len(micros) <= 6):
        raise _BadRecord("no readable `ts`")
    us = int(seconds) * 1_000_000 + int(micros.ljust(6, "0"))
    if not MIN_US <= us <= MAX_US:
        raise _BadRecord("no readable `ts`")
    return us


def _kind(message: dict, subtype: Any) -> str:
    if subtype in DELETED_SUBTYPES:
        return "deleted"
    if subtype in CALL_SUBTYPES:
        return "call"
    if subtype not in TEXT_SUBTYPES:
        return "system"
    if message.get("files") or subtype == "file_share":
        return "media"
    return "text"

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
from mindupload.ingest.sources._common import MAX_US, MIN_US, MessageBuffer, to_messages
from mindupload.ingest.sources._exports import BadRecords, ExportTree, json_records, tree_names

LISTS = ("channels.json", "groups.json", "dms.json", "mpims.json")
TEXT_SUBTYPES = frozenset({"thread_broadcast", "reply_broadcast", "me_message", "bot_message", "file_share"})
DELETED_SUBTYPES = frozenset({"tombstone", "message_deleted"})
CALL_SUBTYPES = frozenset({"huddle_thread", "sh_room_created"})
HINT = "Use the zip from Slack's Workspace settings > Import/Export Data > Export, or its unpacked folder."

_DAY_FILE = re.compile(r"(?:^|/)([^/]+)/\d{4}-\d{2}-\d{2}\.json$")
_MARKUP = re.compile(r"<([^<>\n]*)>")
_TS = re.compile(r"(\d{1,12})(?:\.(\d{1,6}))?")


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
    with ExportTree(spec.path) as tree:
        return _Reader(spec, tree).parse()


class _BadRecord(Exception):
    """A message that cannot be read; the reason names fields, never message text."""


class _Reader:
    def __init__(self, spec: SourceSpec, tree: ExportTree) -> None:
        self.spec, self.tree = spec, tree
        self.buffer = MessageBuffer()
        self.bad = BadRecords(spec)
        self.me = {_normal(m) for m in spec.me}

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
        for number, message in enumerate(json_records(self.tree, name, "item"), 1):
            self.bad.read += 1
            try:
                self._append(conversation, message)
            except _BadRecord as bad:
                self.bad.add(where, number, str(bad))

    def _append(self, conversation: str, message: Any) -> None:
        if not isinstance(message, dict):
            raise _BadRecord("not a JSON object")
        ts = message.get("ts")
        timestamp = _ts_us(ts)
        subtype = message.get("subtype")
        user_id = message.get("user") if isinstance(message.get("user"), str) else None
        sender, keys = self._sender(message, user_id)
        thread = message.get("thread_ts")
        text = self._text(message.get("text"))
        kind = _kind(message, subtype, text)
        self.buffer.append(
            conversation,
            timestamp,
            sender,
            "" if kind == "deleted" else text,
            kind,
            sender_id=user_id,
            is_self=bool(self.me & keys) or None,
            native_id=ts,
            reply_to=thread if isinstance(thread, str) and thread != ts else None,
        )

    def _sender(self, message: dict, user_id: str | None) -> tuple[str, set[str]]:
        if user_id in self.users:
            user = self.users[user_id]
            return user["name"], {*user["keys"], _normal(user_id)}
        profile = message.get("user_profile") if isinstance(message.get("user_profile"), dict) else {}
        for candidate in (profile.get("display_name"), profile.get("real_name"), message.get("username")):
            if isinstance(candidate, str) and candidate.strip():
                return candidate, {_normal(candidate), _normal(user_id or "")}
        bot = message.get("bot_id")
        if user_id or isinstance(bot, str):
            return user_id or bot, {_normal(user_id or bot)}
        raise _BadRecord("no `user`")

    def _text(self, text: Any) -> str:
        if not isinstance(text, str):
            return ""
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
    m = _TS.fullmatch(ts) if isinstance(ts, str) else None
    if m is None:
        raise _BadRecord("no readable `ts`")
    us = int(m[1]) * 1_000_000 + int((m[2] or "0").ljust(6, "0"))
    if not MIN_US <= us <= MAX_US:
        raise _BadRecord("no readable `ts`")
    return us


def _kind(message: dict, subtype: Any, text: str) -> str:
    if subtype in DELETED_SUBTYPES:
        return "deleted"
    if subtype in CALL_SUBTYPES:
        return "call"
    if subtype is not None and subtype not in TEXT_SUBTYPES:
        return "system"
    if message.get("files") or subtype == "file_share":
        return "media"
    return "text"

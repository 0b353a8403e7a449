"""Facebook Messenger and Instagram: Meta's "Download your information" in JSON format, and Messenger's
end-to-end-encrypted chats ("secure storage" download).

"Download your information": one folder per thread, `.../messages/inbox/<thread>/message_1.json`,
`message_2.json`, ... (Instagram under `your_instagram_activity/messages/inbox/`, Facebook under
`your_activity_across_facebook/messages/inbox/` since 2024, plain `messages/inbox/` before). A thread is split
over several files of up to 10,000 messages, `message_1.json` the newest, each newest first: they are read
oldest first. Every string is UTF-8 whose bytes were written as separate `\\u00XX` escapes (mojibake), and is
decoded back. `inbox`, `archived_threads` and `e2ee_cutover` are read; message requests (`message_requests`,
`filtered_threads`) are not: they are mostly strangers.

End-to-end-encrypted Messenger chats are downloaded separately (Messenger > Settings > Privacy & safety >
End-to-end encrypted chats > Message storage > Download secure storage data): one JSON file per thread with
`threadName`, `participants` (names) and `messages[]` of `senderName`, `timestamp` (ms), `text`, `type` (`text`,
`media`, `link`, `placeholder`), `media`, `reactions`, `isUnsent`. It is read too, file by file.

A folder, the zip as downloaded, one thread folder or one JSON file all work. Each thread is a conversation
`<source>:<thread folder>` (`<source>:<file name>` for encrypted chats).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

from mindupload.errors import ParseError
from mindupload.ingest.sources import ParseResult, SourceSpec
from mindupload.ingest.sources._common import MAX_US, MIN_US, read_head, to_messages
from mindupload.ingest.sources._exports import BadRecords, ExportTree, Rows, fix_mojibake, json_records, tree_names

READ_FOLDERS = frozenset({"inbox", "archived_threads", "e2ee_cutover"})
SKIPPED_FOLDERS = frozenset({"message_requests", "filtered_threads"})
MEDIA_KEYS = ("photos", "videos", "audio_files", "files")
HINT = (
    'Download your information again with format "JSON" (not HTML) and point this source at the zip or the '
    "unpacked folder."
)

_THREAD_FILE = re.compile(r"(?:^|/)([a-z_]+)/([^/]+)/message_(\d+)\.(json|html)$")
_DYI_HEAD = re.compile(r'^\{\s*"participants"\s*:')
_E2EE_HEAD = re.compile(r'"(?:threadName|senderName)"\s*:')
# English notices Meta writes as ordinary messages from their actor (other languages stay text).
_NOTICE = re.compile(
    r"^(?:(?:named the group|changed the group photo|added .+ to the group|removed .+ from the group|left the group"
    r"|set the nickname|set (?:his|her|their|your) own nickname|set the emoji|changed the theme"
    r"|started (?:a|an) (?:video |audio )?(?:chat|call)|joined the (?:video |audio )?(?:chat|call)"
    r"|created the group|changed the chat theme|pinned a message|unpinned a message)\b.*)",
    re.IGNORECASE | re.DOTALL,
)
_REACTION = re.compile(r"Reacted .{1,20} to your message|Liked a message", re.IGNORECASE | re.DOTALL)
_PLACEHOLDER = re.compile(r"sent (?:an attachment|a photo|a video|a voice message|a GIF|a sticker|a link)\.")


def sniff(path: Path) -> bool:
    """A thread file of either kind, or a folder or zip holding thread folders or encrypted-chat files."""
    if path.is_file() and path.suffix.lower() != ".zip":
        head = read_head(path)
        return head.startswith("{") and (_is_dyi(head) or _E2EE_HEAD.search(head) is not None)
    names = tree_names(path)
    if any(_thread_file(n) for n in names):
        return True
    json_names = [n for n in names if n.lower().endswith(".json")][:20]
    if not json_names:
        return False
    with ExportTree(path) as tree:
        return any(
            _E2EE_HEAD.search(head) or (re.fullmatch(r"message_\d+\.json", n) and _is_dyi(head))
            for n in json_names
            if (head := tree.head(n))
        )


def _is_dyi(head: str) -> bool:
    return _DYI_HEAD.match(head) is not None and ('"sender_name"' in head or '"messages"' in head)


def _thread_file(name: str) -> re.Match | None:
    m = _THREAD_FILE.search(name)
    return m if m and (m[1] in READ_FOLDERS or m[1] in SKIPPED_FOLDERS) else None


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
        self.row = _DyiRows()

    def parse(self) -> ParseResult:
        threads, encrypted, skipped, html = self._files()
        if not threads and not encrypted:
            if html:
                raise ParseError(
                    self.spec.path, "this is Meta's HTML download, which mind-upload cannot read.", hint=HINT
                )
            raise ParseError(self.spec.path, "no Messenger or Instagram message files found here.", hint=HINT)
        for thread, files in sorted(threads.items()):
            self._read_thread(thread, files)
        for name in encrypted:
            self._read_encrypted(name)
        self.bad.check()
        notes = [f"{len(skipped)} message-request threads were not read."] if skipped else []
        table = to_messages(self.spec.name, self.buffer.table(), self.spec.me)
        return ParseResult(table, units_read=self.bad.read, bad_lines=self.bad.numbers(), unit="record", notes=notes)

    def _files(self) -> tuple[dict[str, list[tuple[int, str]]], list[str], set[str], bool]:
        """Thread folders with their (part number, file), encrypted-chat files, skipped threads, any HTML."""
        threads: dict[str, list[tuple[int, str]]] = defaultdict(list)
        encrypted, skipped, html = [], set(), False
        if self.tree.is_single_file:
            (name,) = self.tree.names()
            head = self.tree.head(name)
            if _is_dyi(head):
                part = re.fullmatch(r"message_(\d+)\.json", name)
                threads[self.spec.path.parent.name or "thread"].append((int(part[1]) if part else 1, name))
            elif _E2EE_HEAD.search(head):
                encrypted.append(name)
            return threads, encrypted, skipped, html
        for name in self.tree.names():
            m = _thread_file(name)
            part = re.fullmatch(r"message_(\d+)\.json", name)
            if part is not None:  # the folder of one thread
                threads[self.spec.path.name].append((int(part[1]), name))
            elif m is None:
                if name.lower().endswith(".json") and _E2EE_HEAD.search(self.tree.head(name)):
                    encrypted.append(name)
            elif m[4] == "html":
                html = True
            elif m[1] in SKIPPED_FOLDERS:
                skipped.add(m[2])
            else:
                threads[m[2]].append((int(m[3]), name))
        return threads, encrypted, skipped, html

    def _read_thread(self, thread: str, files: list[tuple[int, str]]) -> None:
        conversation = f"{self.spec.name}:{thread}"
        row = self.row
        for _, name in sorted(files, reverse=True):  # message_N.json (oldest) first
            where = self.tree.where(name)
            rows = []
            number = 0
            for number, message in enumerate(json_records(self.tree, name, "messages.item"), 1):
                try:
                    rows.append(row(conversation, message))
                except _BadRecord as bad:
                    self.bad.add(where, number, str(bad), ordinal=self.bad.read + number)
            self.bad.read += number
            rows.reverse()  # each file is newest first
            self.buffer.extend(rows)

    def _read_encrypted(self, name: str) -> None:
        conversation = f"{self.spec.name}:{PurePosixPath(name).stem}"
        where = self.tree.where(name)
        for number, message in enumerate(json_records(self.tree, name, "messages.item"), 1):
            self.bad.read += 1
            try:
                self.buffer.add(_encrypted_row(conversation, message))
            except _BadRecord as bad:
                self.bad.add(where, number, str(bad))


class _DyiRows:
    """Rows of "Download your information" messages. The hot loop: what does not change per message (a
    sender's repaired name and the prefixes of notices they write) is worked out once per sender."""

    def __init__(self) -> None:
        self._senders: dict[str, tuple[str, tuple[str, ...]]] = {}

    def __call__(self, conversation: str, message: Any) -> tuple:
        if message.__class__ is not dict:
            raise _BadRecord("not a JSON object")
        ms = message.get("timestamp_ms")
        if ms.__class__ is not int:
            ms = _ms(ms, "timestamp_ms")
        timestamp = ms * 1000
        if not MIN_US <= timestamp <= MAX_US:
            raise _BadRecord("unreadable `timestamp_ms`")
        raw = message.get("sender_name")
        known = self._senders.get(raw) if raw.__class__ is str else None
        if known is None:
            known = self._sender(raw)
        sender, prefixes = known
        text = message.get("content")
        if text.__class__ is not str:
            text = ""
        elif not text.isascii():
            text = fix_mojibake(text)
        if not SPECIAL_KEYS.isdisjoint(message) or text.startswith(prefixes):
            text, kind = _special(message, sender, text)
        else:
            kind = "text"
        return (conversation, timestamp, sender, None, None, text, kind, None, None)

    def _sender(self, raw: Any) -> tuple[str, tuple[str, ...]]:
        sender = _name(raw, "sender_name")
        actors = dict.fromkeys((sender, sender.split()[0], "You"))
        self._senders[raw] = known = (sender, (*(a + " " for a in actors), *NOTICE_STARTS))
        return known


# Keys that make a message something other than plain text; texts starting with an actor's name (or these
# words) may be notices or placeholders.
SPECIAL_KEYS = frozenset({"is_unsent", "call_duration", "type", "sticker", "gifs", "share", *MEDIA_KEYS})
NOTICE_STARTS = ("Reacted ", "reacted ", "Liked a message", "liked a message")


def _ms(value: Any, field: str) -> int:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _BadRecord(f"no `{field}`")
    return int(value)


def _ms_to_us(value: Any, field: str) -> int:
    us = _ms(value, field) * 1000
    if not MIN_US <= us <= MAX_US:
        raise _BadRecord(f"unreadable `{field}`")
    return us


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _BadRecord(f"no `{field}`")
    return fix_mojibake(value)


def _special(message: dict, sender: str, text: str) -> tuple[str, str]:
    """(text, kind) of a message that is not plain text: unsent, a call, a notice, a sticker, media."""
    if message.get("is_unsent"):
        return "", "deleted"
    if "call_duration" in message or message.get("type") == "Call":
        return "", "call"
    if message.get("type") in ("Subscribe", "Unsubscribe") or _is_notice(text, sender):
        return text, "system"
    if message.get("sticker") or message.get("gifs"):
        return "", "sticker"
    placeholder = _by_actor(text, sender, _PLACEHOLDER)
    if any(message.get(key) for key in MEDIA_KEYS) or (message.get("share") and (placeholder or not text)):
        return "" if placeholder else text, "media"
    if placeholder:
        return "", "media"
    return text, "text"


def _by_actor(text: str, sender: str, pattern: re.Pattern) -> bool:
    """`text` is "<actor> <pattern>", the actor being the sender's full or first name, or "You"."""
    text = text.strip()
    return any(
        text.startswith(actor + " ") and pattern.fullmatch(text[len(actor) + 1 :])
        for actor in dict.fromkeys((sender, sender.split()[0], "You"))
    )


def _is_notice(text: str, sender: str) -> bool:
    """An English notice written as a message by its actor ("Anna named the group ...", "You left the group."),
    or a reaction written as a message ("Reacted ❤ to your message", "Liked a message")."""
    if not text:
        return False
    return _by_actor(text, sender, _NOTICE) or _REACTION.fullmatch(text.strip()) is not None


def _encrypted_row(conversation: str, message: Any) -> tuple:
    if not isinstance(message, dict):
        raise _BadRecord("not a JSON object")
    timestamp = _ms_to_us(message.get("timestamp"), "timestamp")
    sender = _name(message.get("senderName"), "senderName")
    text = message.get("text")
    text = fix_mojibake(text) if isinstance(text, str) else ""
    if message.get("isUnsent"):
        text, kind = "", "deleted"
    elif message.get("type") == "placeholder":  # a stand-in for something not exported
        kind = "system"
    elif message.get("media"):
        kind = "media"
    else:
        kind = "text" if text else "system"
    return (conversation, timestamp, sender, None, None, text, kind, None, None)

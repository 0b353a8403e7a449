"""iMessage and SMS from a Mac's Messages database, `~/Library/Messages/chat.db` (also the same SQLite file
copied out of an iPhone backup, named `3d0d7e5fb2ce288813306e4d4636395e047a3d28`).

The database is opened read-only (`mode=ro`): nothing is ever written to it. Read from `message`:

- `text`, or when it is NULL (usual since macOS 13) the NSAttributedString in `attributedBody`, decoded by
  `typedstream`; U+FFFC marks where an attachment sat and is removed;
- `date`: nanoseconds since 2001-01-01 UTC (seconds before macOS 10.13);
- `is_from_me` (the user's own messages: `me` is implicit), `handle_id` -> `handle.id` (phone or email) as the
  sender of the others;
- `associated_message_type` non-zero: a tapback (reaction) or its removal, not a message: skipped;
- `item_type` non-zero: a group event (renamed, joined, left, ...): kind `system`;
- `date_retracted` set: unsent, kind `deleted`; `date_edited`: the row holds the final text, kept as one message;
- `cache_has_attachments`: kind `media`, the text its caption;
- `thread_originator_guid`: the message it replies to.

Conversations come from `chat` through `chat_message_join` (group chats hold several handles, each message's
sender is its handle).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from mindupload.errors import ParseError
from mindupload.ingest.sources import ParseResult, SourceSpec
from mindupload.ingest.sources._common import MAX_US, MIN_US, MessageBuffer, to_messages
from mindupload.ingest.sources.typedstream import TypedStreamError, attributed_text

log = logging.getLogger(__name__)

SQLITE_MAGIC = b"SQLite format 3\x00"
REQUIRED = {"message", "handle", "chat", "chat_message_join"}
APPLE_EPOCH_S = 978_307_200  # 2001-01-01T00:00:00Z in Unix seconds
NANOSECONDS_FROM = 10**11  # dates at or above this are nanoseconds (1e11 s after 2001 is the year 5170)
ME = "me"
HINT = (
    "Point `path:` at a copy of ~/Library/Messages/chat.db (quit Messages first, or copy chat.db-wal with it), "
    "or at the file 3d0d7e5fb2ce288813306e4d4636395e047a3d28 of an unencrypted iPhone backup."
)
# Optional columns: older databases lack them, and NULL stands in.
OPTIONAL = (
    "attributedBody",
    "associated_message_type",
    "item_type",
    "cache_has_attachments",
    "date_edited",
    "date_retracted",
    "thread_originator_guid",
)


def sniff(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        if f.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            return False
    try:
        with _read_only(path) as db:
            return _tables(db) >= REQUIRED
    except sqlite3.Error:
        return False


def parse(spec: SourceSpec) -> ParseResult:
    try:
        with _read_only(spec.path) as db:
            return _read(spec, db)
    except sqlite3.DatabaseError as error:
        raise ParseError(spec.path, f"the database cannot be read ({_reason(error)}).", hint=HINT) from None


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection (`mode=ro`): SQLite refuses every write and the database file is never modified.

    A database in WAL mode (as Messages keeps it) needs the -shm index even to read, so SQLite creates -wal and
    -shm beside it; when they were not there before and hold nothing, they are removed again on close.
    """
    side = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    existed = [p.exists() for p in side]
    db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    try:
        db.execute("PRAGMA query_only = ON")
        yield db
    finally:
        db.close()
        wal, _ = side
        if not any(existed) and (not wal.exists() or wal.stat().st_size == 0):
            for p in side:
                p.unlink(missing_ok=True)


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _reason(error: sqlite3.Error) -> str:
    # SQLite's messages name the problem ("file is not a database", "no such table"), never row contents.
    return str(error).split(":")[0]


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _read(spec: SourceSpec, db: sqlite3.Connection) -> ParseResult:
    missing = REQUIRED - _tables(db)
    if missing:
        raise ParseError(
            spec.path,
            f"this SQLite file is not a Messages database (no table {', '.join(sorted(missing))}).",
            hint=HINT,
        )
    have = _columns(db, "message")
    optional = ", ".join(f"m.{c}" if c in have else f"NULL AS {c}" for c in OPTIONAL)
    query = f"""
        SELECT m.ROWID, m.guid, m.text, m.date, m.is_from_me, h.id, c.guid, c.chat_identifier, {optional}
        FROM message AS m
        LEFT JOIN handle AS h ON h.ROWID = m.handle_id
        LEFT JOIN chat_message_join AS j ON j.message_id = m.ROWID
        LEFT JOIN chat AS c ON c.ROWID = j.chat_id
        ORDER BY m.ROWID
    """
    me_name = spec.me[0] if spec.me else ME
    buffer = MessageBuffer()
    records, bad, tapbacks = 0, [], 0
    seen: set[int] = set()
    for row in db.execute(query):
        (rowid, guid, text, date, from_me, handle, chat_guid, chat_id, body, associated, item_type, attachments,
         _edited, retracted, thread) = row  # fmt: skip
        if rowid in seen:
            continue  # a message joined to two chats (rare): kept in the first
        seen.add(rowid)
        records += 1
        if associated:
            tapbacks += 1
            continue
        try:
            timestamp = _timestamp_us(date)
            words = text if text is not None else attributed_text(body or b"")
        except (TypedStreamError, ValueError, TypeError):
            bad.append(records)
            log.warning("%s: message ROWID %s: unreadable date or attributedBody", spec.path, rowid)
            continue
        words = words.replace("\ufffc", "").strip() if attachments else words.replace("\ufffc", "")
        if retracted:
            kind = "deleted"
        elif item_type:
            kind = "system"
        elif attachments:
            kind = "media"
        else:
            kind = "text"
        mine = bool(from_me)
        conversation = chat_guid or chat_id or (f"handle:{handle}" if handle else "unknown")
        buffer.append(
            f"{spec.name}:{conversation}",
            timestamp,
            me_name if mine else (handle or ""),
            words,
            kind,
            is_self=mine,
            native_id=guid,
            reply_to=thread,
        )
    if tapbacks:
        log.info("%s: skipped %d tapbacks (reactions)", spec.path, tapbacks)
    table = to_messages(spec.name, buffer.table(), spec.me or (ME,))
    return ParseResult(table=table, units_read=records, bad_lines=bad, unit="record")


def _timestamp_us(date) -> int:
    if isinstance(date, float):
        date = int(date)
    if not isinstance(date, int):
        raise ValueError("no date")
    seconds, nanoseconds = divmod(date, 10**9) if abs(date) >= NANOSECONDS_FROM else (date, 0)
    us = (seconds + APPLE_EPOCH_S) * 1_000_000 + nanoseconds // 1000
    if not MIN_US <= us <= MAX_US:
        raise ValueError("date out of range")
    return us

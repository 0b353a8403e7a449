"""What the Telegram and generic parsers share: a compact buffer for messages as read, and the step that turns
it into a MESSAGE_SCHEMA table (time order, message ids, replies, who is "me")."""

from __future__ import annotations

import zipfile
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mindupload.errors import ParseError
from mindupload.ingest import table as messages
from mindupload.ingest.sources import match_self

# Messages in file order, before sorting. `native_id`/`reply_to` are the export's own ids, as strings;
# `is_self` is null where the export does not say and `me` decides; `sender_id` is an id `me` may name.
BUFFER_SCHEMA = pa.schema(
    [
        pa.field("conversation", pa.string()),
        pa.field("timestamp", pa.int64()),  # microseconds since the Unix epoch, UTC
        pa.field("sender", pa.string()),
        pa.field("sender_id", pa.string()),
        pa.field("is_self", pa.bool_()),
        pa.field("text", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("native_id", pa.string()),
        pa.field("reply_to", pa.string()),
    ]
)

# Resource limits (config `limits:`; the defaults are the schema's). Every parser applies those that fit its
# format, so that no export, however broken or hostile, takes more than a bounded amount of memory.
DEFAULT_MAX_LINE_BYTES = 1 << 20
DEFAULT_MAX_JSON_DEPTH = 64
DEFAULT_MAX_ARCHIVE_BYTES = 4 << 30
DEFAULT_MAX_ARCHIVE_RATIO = 200
LIMITS_HINT = "If the export is genuine, raise `limits.{key}` in the config (now {value})."

# Year 1 to 9999, the range of Python datetimes, in microseconds: values outside are misread numbers.
MIN_US = -62_135_596_800 * 1_000_000
MAX_US = 253_402_300_799 * 1_000_000


class MessageBuffer:
    """Rows appended one by one, moved to Arrow every `batch_rows` rows so that a big export costs Arrow's
    compact memory rather than a Python object per field."""

    def __init__(self, batch_rows: int = 20_000) -> None:
        self._batch_rows = batch_rows
        self._columns: list[list] = [[] for _ in BUFFER_SCHEMA]
        self._batches: list[pa.RecordBatch] = []

    def append(
        self,
        conversation: str,
        timestamp_us: int,
        sender: str,
        text: str,
        kind: str,
        *,
        sender_id: str | None = None,
        is_self: bool | None = None,
        native_id: str | None = None,
        reply_to: str | None = None,
    ) -> None:
        row = (conversation, timestamp_us, sender, sender_id, is_self, text, kind, native_id, reply_to)
        for column, value in zip(self._columns, row, strict=True):
            column.append(value)
        if len(self._columns[0]) >= self._batch_rows:
            self._flush()

    def table(self) -> pa.Table:
        self._flush()
        return pa.Table.from_batches(self._batches, schema=BUFFER_SCHEMA)

    def _flush(self) -> None:
        if self._columns[0]:
            self._batches.append(pa.RecordBatch.from_arrays(self._columns, schema=BUFFER_SCHEMA))
            self._columns = [[] for _ in BUFFER_SCHEMA]


def to_messages(source: str, rows: pa.Table, me: Collection[str], self_ids: Collection[str] = ()) -> pa.Table:
    """The buffered rows as MESSAGE_SCHEMA: sorted stably by time within each conversation, numbered from 0,
    replies pointing at message ids, `is_self` decided where the export did not say.

    A row is the user's own when the export says so; otherwise when its `sender_id` is one of `self_ids`
    (an id the export itself names as the user's) or its sender or sender id matches `me`.
    """
    if rows.num_rows == 0:
        return messages.empty()
    rows = _name_senders_by_id(rows)
    rows = rows.append_column("_row", pa.array(np.arange(rows.num_rows)))
    rows = rows.sort_by([("conversation", "ascending"), ("timestamp", "ascending"), ("_row", "ascending")])
    # Small integer codes for the conversations; sorted rows keep each conversation's codes together.
    codes = rows.column("conversation").combine_chunks().dictionary_encode().indices
    message_id = _position_in_group(codes.to_numpy())
    columns = {
        "source": pa.repeat(pa.scalar(source, pa.string()), rows.num_rows),
        "conversation_id": rows.column("conversation"),
        "message_id": message_id,
        "timestamp": rows.column("timestamp").cast(pa.timestamp("us", tz="UTC")),
        "sender": rows.column("sender"),
        "is_self": _is_self(rows, me, self_ids),
        "text": rows.column("text"),
        "kind": rows.column("kind"),
        "reply_to": _resolve_replies(rows, codes.cast(pa.string()), message_id),
    }
    return pa.table(columns).cast(messages.MESSAGE_SCHEMA)


def _position_in_group(codes: np.ndarray) -> pa.Array:
    """0, 1, 2, ... restarting wherever the code changes."""
    index = np.arange(len(codes))
    is_start = np.diff(codes, prepend=-1) != 0
    return pa.array(index - np.maximum.accumulate(np.where(is_start, index, 0)))


def _resolve_replies(rows: pa.Table, conversation: pa.Array, message_id: pa.Array) -> pa.Array:
    """The message id of the first row in the same conversation whose native id a reply names, else null."""

    def keys(ids: str) -> pa.ChunkedArray:
        # Conversation codes hold no NUL, so "code NUL id" cannot collide across conversations.
        return pc.binary_join_element_wise(conversation, rows.column(ids), "\x00")

    # A row without an id (or without a reply) has a null key, and null keys never match each other.
    return pc.take(message_id, pc.index_in(keys("reply_to"), value_set=keys("native_id"), skip_nulls=True))


def _name_senders_by_id(rows: pa.Table) -> pa.Table:
    """Rows without a sender name (Telegram omits `from` on some messages) take the name their sender id has
    on other rows (the most frequent one), else the id itself."""
    sender, sender_id = rows.column("sender"), rows.column("sender_id")
    unnamed = pc.or_(pc.is_null(sender), pc.equal(sender, ""))
    if not pc.any(unnamed).as_py():
        return rows
    named = rows.select(["sender_id", "sender"]).filter(pc.and_(pc.invert(unnamed), pc.is_valid(sender_id)))
    counts = named.group_by(["sender_id", "sender"]).aggregate([([], "count_all")]).to_pylist()
    best: dict[str, tuple[int, str]] = {}
    for row in counts:
        best[row["sender_id"]] = max(best.get(row["sender_id"], (0, "")), (row["count_all"], row["sender"]))
    ids = pa.array(list(best), pa.string())
    names = pa.array([name for _, name in best.values()], pa.string())
    known = pc.take(names, pc.index_in(sender_id, value_set=ids))
    filled = pc.if_else(unnamed, pc.coalesce(known, sender_id, ""), sender)
    return rows.set_column(rows.schema.get_field_index("sender"), "sender", filled)


def self_id_forms(me: Collection[str]) -> list[str]:
    """The sender ids an entry of `me` may name: itself, and `user123` for a bare Telegram id `123`."""
    forms = []
    for entry in me:
        entry = entry.strip()
        forms.append(entry)
        if entry.isdigit():
            forms.append(f"user{entry}")
    return forms


def _is_self(rows: pa.Table, me: Collection[str], self_ids: Collection[str]) -> pa.ChunkedArray:
    me = tuple(me)
    sender, sender_id = rows.column("sender"), rows.column("sender_id")
    by_me = pc.or_(match_self(sender, me), match_self(sender_id, tuple(self_id_forms(me))))
    # A sender id is the user's wherever one of its messages is: by name, or by the export's own word.
    ids = {*self_ids, *pc.unique(pc.filter(sender_id, by_me)).drop_null().to_pylist()}
    by_id = pc.fill_null(pc.is_in(sender_id, value_set=pa.array(sorted(ids), pa.string())), False)
    return pc.coalesce(rows.column("is_self"), pc.or_(by_id, by_me))


def read_lines(path: Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """(line number, text) for each line, split on "\\n" only: U+2028 and U+0085 occur inside messages.

    A byte-order mark on the first line (as spreadsheet programs write) is dropped. A line longer than
    `max_line_bytes` is an error (it is never held whole in memory).
    """
    with open(path, "rb") as f:
        for number, raw in enumerate(iter(lambda: f.readline(max_line_bytes + 1), b""), 1):
            if len(raw) > max_line_bytes:
                raise line_too_long(path, number, max_line_bytes)
            try:
                yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise ParseError(
                    path, "this line is not valid UTF-8 text.", line=number, hint="Save the file as UTF-8."
                ) from None


def read_head(path: Path, size: int = 4096) -> str:
    """The first bytes of a file as text, for sniffing; undecodable bytes are dropped."""
    if not path.is_file():
        return ""
    with open(path, "rb") as f:
        return f.read(size).decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")


# ----------------------------------------------------------------------------------- resource limits


def line_too_long(path: Path, line: int, max_line_bytes: int) -> ParseError:
    return ParseError(
        path,
        f"this line is longer than {_size(max_line_bytes)}: not a chat export, or a damaged one.",
        line=line,
        hint=LIMITS_HINT.format(key="max_line_bytes", value=max_line_bytes),
    )


def check_line_lengths(path: Path, newlines: np.ndarray, max_line_bytes: int) -> None:
    """ParseError on the first line longer than `max_line_bytes`, given the positions of the "\\n" bytes."""
    if not len(newlines):
        return
    lengths = np.diff(newlines, prepend=-1) - 1
    longest = int(lengths.argmax())
    if lengths[longest] > max_line_bytes:
        raise line_too_long(path, longest + 1, max_line_bytes)


def check_archive(path: Path, members: Iterable[zipfile.ZipInfo], max_bytes: int, max_ratio: float) -> None:
    """ParseError before anything is extracted when the members to be read would expand to more than
    `max_bytes` together, or one of them more than `max_ratio` times its compressed size (a zip bomb).
    zipfile never reads past a member's declared size, so the declared sizes bound what extraction holds."""
    total = 0
    for info in members:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1 << 20 and ratio > max_ratio:
            raise ParseError(
                path,
                f"a file in this zip expands {ratio:.0f} times ({_size(info.compress_size)} to "
                f"{_size(info.file_size)}): no chat export compresses like that.",
                hint=LIMITS_HINT.format(key="max_archive_ratio", value=max_ratio),
            )
    if total > max_bytes:
        raise ParseError(
            path,
            f"the chats in this zip expand to {_size(total)}, over the limit of {_size(max_bytes)}.",
            hint=LIMITS_HINT.format(key="max_archive_bytes", value=max_bytes),
        )


class DepthLimitedReader:
    """A binary file for streaming JSON parsers that fails, before the parser sees them, on bytes nesting
    arrays and objects deeper than `max_depth`: a parser that tracks its path (ijson's prefixes) needs
    memory growing with the square of the depth, and a 400 KB file can nest 200,000 levels.

    Each chunk is scanned with NumPy: quotes not escaped by an odd run of backslashes toggle "inside a
    string"; brackets outside strings move the depth.
    """

    def __init__(self, f: IO[bytes], path: Path, max_depth: int) -> None:
        self._f = f
        self._path = path
        self._max_depth = max_depth
        self._depth = 0
        self._in_string = False
        self._backslashes = 0  # the run of backslashes that ended the previous chunk
        self._line = 1

    def tell(self) -> int:
        return self._f.tell()

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        if data:
            self._scan(data)
        return data

    def _scan(self, data: bytes) -> None:
        a = np.frombuffer(data, np.uint8)
        quotes = np.flatnonzero(a == 34)
        if quotes.size and (self._backslashes or data.find(b"\\") >= 0):
            # Only quotes right after a backslash can be escaped: look at those alone (few) in Python.
            after = np.flatnonzero(a[np.maximum(quotes - 1, 0)] == 92)
            if self._backslashes and quotes[0] == 0:
                after = np.union1d(after, [0])
            escaped = [i for i in after.tolist() if self._escaped(data, int(quotes[i]))]
            quotes = np.delete(quotes, escaped)
        brackets = np.flatnonzero((a == 91) | (a == 123) | (a == 93) | (a == 125))
        if brackets.size:
            inside = (np.searchsorted(quotes, brackets) + self._in_string) % 2 == 1
            brackets = brackets[~inside]
            step = np.where((a[brackets] == 91) | (a[brackets] == 123), 1, -1)
            depth = self._depth + np.cumsum(step)
            if depth.size and depth.max() > self._max_depth:
                at = int(brackets[int(np.argmax(depth > self._max_depth))])
                raise ParseError(
                    self._path,
                    f"the JSON nests deeper than {self._max_depth} levels here: no chat export does.",
                    line=self._line + data.count(b"\n", 0, at),
                    hint=LIMITS_HINT.format(key="max_json_depth", value=self._max_depth),
                )
            self._depth = int(depth[-1]) if depth.size else self._depth
        self._in_string = bool((self._in_string + quotes.size) % 2)
        self._line += data.count(b"\n")
        stripped = data.rstrip(b"\\")
        run = len(data) - len(stripped)
        self._backslashes = run + (self._backslashes if not stripped else 0)

    def _escaped(self, data: bytes, at: int) -> bool:
        run = 0
        while at - run - 1 >= 0 and data[at - run - 1] == 92:
            run += 1
        if run == at:  # the run reaches the chunk's start: add the previous chunk's
            run += self._backslashes
        return run % 2 == 1


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"

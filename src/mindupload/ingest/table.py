"""The normalized message table: the one data contract every parser writes and every later stage reads."""

from __future__ import annotations

import os
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from mindupload.files import atomic_path

# What a message is. Parsers map their format's own notions onto these; later stages keep or drop by kind.
KINDS = (
    "text",  # words someone typed
    "media",  # photo, video, voice note, document, ... (text holds a caption, if any)
    "sticker",  # stickers and GIFs
    "call",  # voice or video call notices
    "system",  # encryption notices, joins, subject changes, pins, ...
    "deleted",  # "This message was deleted"
    "forwarded",  # someone else's words passed on: never trained as the user's own
)

MESSAGE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("message_id", pa.int64(), nullable=False),  # order within the conversation, from 0
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("sender", pa.string(), nullable=False),
        pa.field("is_self", pa.bool_(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("reply_to", pa.int64(), nullable=True),  # message_id in the same conversation
    ],
    metadata={"mindupload.contract": "messages/v1"},
)


def conform(table: pa.Table) -> pa.Table:
    """Cast a parser's table to MESSAGE_SCHEMA (column order, types, nullability) or fail loudly.

    A failure here is a bug in a parser, not a user error, so it raises ValueError.
    """
    missing = set(MESSAGE_SCHEMA.names) - set(table.column_names)
    if missing:
        raise ValueError(f"message table lacks columns {sorted(missing)}")
    table = table.select(MESSAGE_SCHEMA.names)
    for name in ("source", "conversation_id", "message_id", "timestamp", "sender", "is_self", "text", "kind"):
        if table.column(name).null_count:
            raise ValueError(f"message table has nulls in non-nullable column {name!r}")
    return table.cast(MESSAGE_SCHEMA)


def empty() -> pa.Table:
    return MESSAGE_SCHEMA.empty_table()


def write_atomic(table: pa.Table, path: str | os.PathLike) -> None:
    """Parquet that appears at `path` only once complete: no half-written table is ever seen."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read(path: str | os.PathLike) -> pa.Table:
    return pq.read_table(path, schema=MESSAGE_SCHEMA)


def combine(paths: Iterable[str | os.PathLike]) -> pa.Table:
    """One table from the per-export tables, sorted by source, conversation and message order."""
    tables = [read(p) for p in paths]
    table = pa.concat_tables(tables) if tables else empty()
    return table.sort_by([("source", "ascending"), ("conversation_id", "ascending"), ("message_id", "ascending")])

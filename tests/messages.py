"""Small message tables for tests, built the way parsers build them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from mindupload.ingest import table

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def make_messages(rows, source: str = "test", minutes_apart: float = 1.0) -> pa.Table:
    """rows: (conversation, sender, is_self, text[, kind[, minutes since start]]) in order per conversation."""
    cols = {name: [] for name in table.MESSAGE_SCHEMA.names}
    order: dict[str, int] = {}
    for i, row in enumerate(rows):
        conv, sender, is_self, text, *rest = row
        kind = rest[0] if rest else "text"
        minute = rest[1] if len(rest) > 1 else i * minutes_apart
        cols["source"].append(source)
        cols["conversation_id"].append(conv)
        cols["message_id"].append(order.setdefault(conv, 0))
        order[conv] += 1
        cols["timestamp"].append(START + timedelta(minutes=minute))
        cols["sender"].append(sender)
        cols["is_self"].append(is_self)
        cols["text"].append(text)
        cols["kind"].append(kind)
        cols["reply_to"].append(None)
    return table.conform(pa.table(cols))

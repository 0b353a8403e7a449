"""Contacts and conversations the user excluded: dropped right after parsing, so no file ever holds them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from mindupload.ingest.sources import normalize_name


@dataclass(frozen=True)
class Excluded:
    """How many rows and conversations the exclusions removed (counts only: no names, no text)."""

    messages: int
    conversations: int


def exclude(table: pa.Table, contacts: Collection[str], conversations: Collection[str]) -> tuple[pa.Table, Excluded]:
    """`table` without the excluded contacts' messages and without the excluded conversations.

    A conversation is dropped whole when it is listed, or when every sender in it apart from the user is an
    excluded contact (a one-to-one chat with that person): the user's own messages there are about them.
    """
    if table.num_rows == 0 or not (contacts or conversations):
        return table, Excluded(0, 0)
    conversation = table.column("conversation_id")
    by_contact = _is_listed(normalize_name(table.column("sender")), [*contacts], normalize=True)
    dropped_conversations = _listed_conversations(conversation, conversations)
    dropped_conversations = pc.or_(dropped_conversations, _only_excluded_others(table, by_contact))
    drop = pc.or_(by_contact, dropped_conversations)
    kept = table.filter(pc.invert(drop))
    gone = pc.count_distinct(conversation).as_py() - pc.count_distinct(kept.column("conversation_id")).as_py()
    return kept, Excluded(messages=table.num_rows - kept.num_rows, conversations=gone)


def _is_listed(values: pa.ChunkedArray, listed: list[str], *, normalize: bool = False) -> pa.ChunkedArray:
    wanted = pa.array(listed, pa.string())
    if normalize:
        wanted = normalize_name(wanted)
    return pc.fill_null(pc.is_in(values, value_set=wanted), False)


def _listed_conversations(conversation: pa.ChunkedArray, listed: Collection[str]) -> pa.ChunkedArray:
    """True on rows of a listed conversation: by its whole id, or by the part after `<source>:`."""
    whole = _is_listed(conversation, [*listed])
    after_source = pc.replace_substring_regex(conversation, r"^[^:]*:", "")
    return pc.or_(whole, _is_listed(after_source, [*listed]))


def _only_excluded_others(table: pa.Table, by_contact: pa.ChunkedArray) -> pa.ChunkedArray:
    """True on rows of conversations where some excluded contact writes and every other non-user sender is one."""
    other = pc.invert(table.column("is_self"))
    flags = pa.table(
        {
            "conversation_id": table.column("conversation_id"),
            "excluded": pc.and_(other, by_contact),
            "kept_other": pc.and_(other, pc.invert(by_contact)),
        }
    )
    per_conversation = flags.group_by("conversation_id").aggregate([("excluded", "any"), ("kept_other", "any")])
    whole = pc.and_(per_conversation.column("excluded_any"), pc.invert(per_conversation.column("kept_other_any")))
    ids = pc.filter(per_conversation.column("conversation_id"), whole)
    return pc.is_in(table.column("conversation_id"), value_set=ids.combine_chunks())


def group_conversations(table: pa.Table) -> list[str]:
    """Ids of the conversations where more than one other person writes (system notices do not count)."""
    writes = pc.and_(pc.invert(table.column("is_self")), pc.not_equal(table.column("kind"), "system"))
    writes = pc.and_(writes, pc.not_equal(table.column("sender"), ""))
    others = table.filter(writes).group_by("conversation_id").aggregate([("sender", "count_distinct")])
    groups = others.filter(pc.greater(others.column("sender_count_distinct"), 1))
    return sorted(groups.column("conversation_id").to_pylist())


def without_conversations(table: pa.Table, conversations: Collection[str]) -> pa.Table:
    return table.filter(pc.invert(_is_listed(table.column("conversation_id"), [*conversations])))

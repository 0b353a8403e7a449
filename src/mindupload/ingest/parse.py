"""Parse one export into the normalized message table, and refuse to lose data quietly."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from mindupload.errors import ParseError, UserError
from mindupload.ingest import table as messages
from mindupload.ingest.exclusions import Excluded, exclude, group_conversations, without_conversations
from mindupload.ingest.sources import ParseResult, SourceSpec, parser_for

log = logging.getLogger(__name__)


def ingest(spec: SourceSpec) -> tuple[pa.Table, dict]:
    """The export's messages in MESSAGE_SCHEMA, and a report of counts (never message text)."""
    result = parser_for(spec)(spec)
    check_bad_lines(spec, result)
    table = messages.conform(result.table)
    if table.num_rows == 0:
        raise UserError(f"{spec.path}: the export holds no messages. Is it empty, or the wrong file?")
    table, excluded = exclude(table, spec.exclude_contacts, spec.exclude_conversations)
    if table.num_rows == 0:
        raise UserError(
            f"{spec.path}: privacy.exclude_contacts / exclude_conversations exclude every message of this export. "
            "Remove the source from `sources:` instead."
        )
    table, oddities = check_messages(spec, table)
    if table.num_rows == 0:
        raise UserError(
            f"{spec.path}: no message is left to train on: {_counts_text(oddities)}. Is this the right file?"
        )
    table, groups = decide_groups(spec, table)
    check_self_found(spec, table)
    return table, {**report(spec, result, table), **excluded_report(excluded), **oddities, **groups}


FUTURE_MARGIN_US = 86_400 * 1_000_000  # a day: time zones and clocks a little ahead are not "the future"


def check_messages(spec: SourceSpec, table: pa.Table) -> tuple[pa.Table, dict]:
    """The format-independent checks every export gets, as counted warnings (never silent, never quoted):

    - a message longer than `max_message_chars` is dropped (before anything tokenizes it): no chat message
      is that long, and one that is would be cut to pieces by `sequence_len` anyway;
    - NUL characters (a damaged, zero-filled file) are removed from texts and names;
    - a message without a sender (not a notice or a deletion marker) is dropped: nobody can be said to have
      written it;
    - messages dated more than a day after now are kept and counted: a phone's clock was wrong, or the
      dates were misread (WhatsApp: see `date_order`).
    """
    text, sender = table.column("text"), table.column("sender")
    counts = {}
    with_nul = pc.or_(pc.match_substring(text, "\x00"), pc.match_substring(sender, "\x00"))
    counts["messages_with_nul_removed"] = pc.sum(with_nul).as_py() or 0
    if counts["messages_with_nul_removed"]:
        text, sender = (pc.replace_substring(c, "\x00", "") for c in (text, sender))
        table = table.set_column(table.schema.get_field_index("text"), "text", text)
        table = table.set_column(table.schema.get_field_index("sender"), "sender", sender)
    too_long = pc.greater(pc.utf8_length(text), spec.max_message_chars)
    # Notices and "this message was deleted" markers are never trained: no sender needed.
    notice = pc.is_in(table.column("kind"), value_set=pa.array(["system", "call", "deleted"]))
    no_sender = pc.and_(pc.equal(pc.utf8_trim_whitespace(sender), ""), pc.invert(notice))
    no_sender = pc.and_(no_sender, pc.invert(table.column("is_self")))
    counts["messages_too_long"] = pc.sum(too_long).as_py() or 0
    counts["messages_without_sender"] = pc.sum(no_sender).as_py() or 0
    drop = pc.or_(too_long, no_sender)
    if counts["messages_too_long"] or counts["messages_without_sender"]:
        table = table.filter(pc.invert(drop))
    now_us = int(time.time() * 1_000_000)
    future = pc.greater(table.column("timestamp").cast(pa.int64()), now_us + FUTURE_MARGIN_US)
    counts["messages_in_future"] = pc.sum(future).as_py() or 0
    for key, what in _WARNINGS.items():
        if counts[key]:
            log.warning("%s: %d message(s) %s", spec.path, counts[key], what.format(limit=spec.max_message_chars))
    return table, counts


_WARNINGS = {
    "messages_with_nul_removed": "held NUL characters (a damaged file?); the NULs were removed",
    "messages_too_long": "longer than {limit} characters (limits.max_message_chars) were dropped",
    "messages_without_sender": "without a sender were dropped",
    "messages_in_future": "are dated more than a day from now (a wrong clock or misread dates?); kept",
}


def _counts_text(counts: dict) -> str:
    parts = [f"{n} {key.removeprefix('messages_').replace('_', ' ')}" for key, n in counts.items() if n]
    return ", ".join(parts) or "nothing readable"


def decide_groups(spec: SourceSpec, table: pa.Table) -> tuple[pa.Table, dict]:
    """Group conversations (more than one other person) kept or dropped whole, as `group_chats` says."""
    groups = group_conversations(table)
    counts = {"group_conversations": len(groups), "group_chats": "included" if spec.group_chats else "excluded"}
    if spec.group_chats or not groups:
        return table, {**counts, "excluded_group_messages": 0}
    kept = without_conversations(table, groups)
    if kept.num_rows == 0:
        raise UserError(
            f"{spec.path}: every conversation of this export is a group chat, and `group_chats` is false for it. "
            "Set `group_chats: true` for this source, or remove it from `sources:`."
        )
    log.info("%s: left out %d group conversation(s) (group_chats: false)", spec.path, len(groups))
    return kept, {**counts, "excluded_group_messages": table.num_rows - kept.num_rows}


def excluded_report(excluded: Excluded) -> dict:
    return {"excluded_messages": excluded.messages, "excluded_conversations": excluded.conversations}


def check_bad_lines(spec: SourceSpec, result: ParseResult) -> None:
    bad = result.bad_lines
    if not bad:
        return
    fraction = len(bad) / max(result.units_read, 1)
    shown = ", ".join(str(n) for n in bad[:5]) + (" ..." if len(bad) > 5 else "")
    if fraction > spec.max_bad_fraction:
        raise ParseError(
            spec.path,
            f"{len(bad)} of {result.units_read} {result.unit}s could not be read ({result.unit}s {shown}).",
            line=bad[0],
            unit=result.unit,
            hint=(
                "Check that the file is a complete, unedited export. To skip unreadable "
                f"{result.unit}s instead, raise `max_bad_fraction` for this source (now {spec.max_bad_fraction})."
            ),
        )
    log.warning("%s: skipped %d unreadable %ss (%s)", spec.path, len(bad), result.unit, shown)


def check_self_found(spec: SourceSpec, table: pa.Table) -> None:
    if pc.any(table.column("is_self")).as_py():
        return
    senders = Counter(table.column("sender").to_pylist())
    shown, hidden, unnamed = shown_senders(senders, table.num_rows)
    found = ", ".join(shown) if shown else "none that looks like a name"
    if hidden:
        found += f" (and {hidden} other sender{'s' if hidden > 1 else ''} not shown: see the rule in docs/privacy.md)"
    if unnamed:
        found += f"; {unnamed} message{'s' if unnamed > 1 else ''} without a sender"
    raise UserError(
        f"{spec.path}: none of the names in `me` ({', '.join(spec.me) or 'none given'}) sends any message "
        f"in this export. Senders found: {found}. Set `me:` (or this source's `me:`) to the name you appear under."
    )


# A sender is shown in an error only when it is plausibly a person's name: a misread line can put message text
# where the sender goes, and errors end up in logs. Rule: at least MIN_MESSAGES messages and MIN_SHARE of the
# export's messages, at most MAX_NAME_CHARS characters and MAX_NAME_WORDS words, some letter, and none of the
# characters or digit runs that names do not have but text, links and phone numbers do.
MIN_MESSAGES = 2
MIN_SHARE = 0.01
MAX_NAME_CHARS = 40
MAX_NAME_WORDS = 4
MAX_SHOWN = 8
_NOT_IN_NAMES = re.compile(r"[:/@<>\[\]{}\\|=#*_\"?!;,]|\d{3}|\s{2}|\.\w")
_TELEGRAM_ID = re.compile(r"(user|channel)\d{1,20}")


def plausible_name(name: str, messages: int, total: int) -> bool:
    """Whether a sender may be named in an error (see the rule above)."""
    name = name.strip()
    if not name or messages < MIN_MESSAGES or messages < MIN_SHARE * total:
        return False
    if _TELEGRAM_ID.fullmatch(name):
        return True
    return (
        len(name) <= MAX_NAME_CHARS
        and len(name.split()) <= MAX_NAME_WORDS
        and any(ch.isalpha() for ch in name)
        and not _NOT_IN_NAMES.search(name)
    )


def shown_senders(senders: Counter, total: int) -> tuple[list[str], int, int]:
    """The senders an error may name (most messages first, at most MAX_SHOWN), how many others there are,
    and how many messages have no sender."""
    unnamed = sum(n for name, n in senders.items() if not name.strip())
    named = [(name, n) for name, n in senders.most_common() if name.strip()]
    shown = [name for name, n in named if plausible_name(name, n, total)][:MAX_SHOWN]
    return shown, len(named) - len(shown), unnamed


def report(spec: SourceSpec, result: ParseResult, table: pa.Table) -> dict:
    kinds = Counter(table.column("kind").to_pylist())
    is_self = table.column("is_self")
    return {
        "source": spec.name,
        "path": str(spec.path),
        f"{result.unit}s_read": result.units_read,
        f"{result.unit}s_skipped": len(result.bad_lines),
        "messages": table.num_rows,
        "own_messages": pc.sum(is_self).as_py() or 0,
        "conversations": pc.count_distinct(table.column("conversation_id")).as_py(),
        "kinds": dict(sorted(kinds.items())),
        **({"notes": result.notes} if result.notes else {}),
    }

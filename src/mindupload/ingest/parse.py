"""Parse one export into the normalized message table, and refuse to lose data quietly."""

from __future__ import annotations

import logging
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
    table, groups = decide_groups(spec, table)
    check_self_found(spec, table)
    return table, {**report(spec, result, table), **excluded_report(excluded), **groups}


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
    senders = Counter(table.column("sender").to_pylist()).most_common(8)
    found = ", ".join(name for name, _ in senders)
    raise UserError(
        f"{spec.path}: none of the names in `me` ({', '.join(spec.me) or 'none given'}) sends any message "
        f"in this export. Senders found: {found}. Set `me:` (or this source's `me:`) to the name you appear under."
    )


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
        "notes": result.notes,
    }

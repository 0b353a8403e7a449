"""Messages -> turns: keep what is worth learning from, merge runs of one sender, cut sessions, split by time.

Everything here is vectorized over the whole table (pyarrow/numpy): a million messages take about a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mindupload.errors import UserError

TURN_SCHEMA = pa.schema(
    [
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("session", pa.int64(), nullable=False),  # counts up within a conversation
        pa.field("split", pa.string(), nullable=False),  # train | validation
        pa.field("turn_index", pa.int64(), nullable=False),  # order within the conversation, from 0
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),  # of the turn's first message
        pa.field("sender", pa.string(), nullable=False),
        pa.field("is_self", pa.bool_(), nullable=False),
        pa.field("text", pa.string(), nullable=False),  # the messages joined with "\n"
        pa.field("messages", pa.int64(), nullable=False),  # how many messages were merged
    ],
    metadata={"mindupload.contract": "turns/v1"},
)

DROPPED_KINDS = ("system", "call", "deleted", "forwarded")  # never anyone's own words
MEDIA_KINDS = ("media", "sticker")


@dataclass(frozen=True)
class TurnOptions:
    session_gap_hours: float = 0.0  # 0: no sessions
    media: str = "drop"  # drop | placeholder
    media_placeholder: str = "<media>"
    validation_fraction: float = 0.1

    @classmethod
    def from_config(cls, config: dict) -> TurnOptions:
        return cls(
            session_gap_hours=float(config["turns"]["session_gap_hours"]),
            media=config["turns"]["media"],
            media_placeholder=config["turns"]["media_placeholder"],
            validation_fraction=float(config["split"]["validation_fraction"]),
        )


def build_turns(messages: pa.Table, options: TurnOptions) -> tuple[pa.Table, dict]:
    """The turns table and counts of what was kept and dropped."""
    kept, dropped = keep_messages(messages, options)
    if kept.num_rows == 0:
        shown = ", ".join(f"{kind} {n}" for kind, n in sorted(dropped.items()))
        raise UserError(
            f"no message is left to train on once notices, media and empty messages are dropped ({shown}). "
            "Set `turns.media: placeholder` to keep media as a placeholder, or add exports with text."
        )
    kept = kept.sort_by([("conversation_id", "ascending"), ("message_id", "ascending")])
    session = sessions(kept, options.session_gap_hours)
    turns = merge_runs(kept, session)
    turns = turns.append_column(pa.field("split", pa.string()), split_by_time(turns, options.validation_fraction))
    turns = turns.select(TURN_SCHEMA.names).cast(TURN_SCHEMA)
    return turns, turn_report(messages, kept, dropped, turns)


def keep_messages(messages: pa.Table, options: TurnOptions) -> tuple[pa.Table, dict]:
    """Drop notices and (by config) media; media kept as placeholder shows its caption if it has one."""
    kind = messages.column("kind")
    drop = pc.is_in(kind, value_set=pa.array(DROPPED_KINDS))
    is_media = pc.is_in(kind, value_set=pa.array(MEDIA_KINDS))
    if options.media == "drop":
        drop = pc.or_(drop, is_media)
    else:
        blank = pc.equal(pc.utf8_trim_whitespace(messages.column("text")), "")
        text = pc.if_else(pc.and_(is_media, blank), options.media_placeholder, messages.column("text"))
        messages = messages.set_column(messages.schema.get_field_index("text"), "text", text)
    empty = pc.equal(pc.utf8_trim_whitespace(messages.column("text")), "")
    reason = pc.if_else(drop, kind, "empty")
    drop = pc.or_(drop, empty)
    dropped = pc.value_counts(pc.filter(reason, drop)).to_pylist()
    return messages.filter(pc.invert(drop)), {d["values"]: d["counts"] for d in dropped}


def sessions(messages: pa.Table, gap_hours: float) -> np.ndarray:
    """Session number per message: a new one where the conversation changes or nobody wrote for `gap_hours`."""
    n = messages.num_rows
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    new_conv = change_points(messages.column("conversation_id"))
    if gap_hours > 0:
        ts = messages.column("timestamp").cast(pa.int64()).to_numpy()
        gap = np.zeros(n, dtype=bool)
        gap[1:] = np.diff(ts) > gap_hours * 3600e6
        new_session = new_conv | gap
    else:
        new_session = new_conv
    # Number sessions from 0 within each conversation.
    global_session = np.cumsum(new_session) - 1
    first_of_conv = global_session[np.flatnonzero(new_conv)]
    conv_index = np.cumsum(new_conv) - 1
    return global_session - first_of_conv[conv_index]


def merge_runs(messages: pa.Table, session: np.ndarray) -> pa.Table:
    """One row per run of consecutive messages of one sender within a session (the seed's turn rule)."""
    n = messages.num_rows
    starts = change_points(messages.column("conversation_id")) | change_points(messages.column("sender"))
    if n:
        starts[1:] |= session[1:] != session[:-1]
    first = np.flatnonzero(starts)
    offsets = np.append(first, n).astype(np.int32)
    values = messages.column("text").combine_chunks()
    text = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), values), "\n")
    conv = messages.column("conversation_id").take(first)
    new_conv = change_points(conv)
    turn_index = np.arange(len(first)) - np.flatnonzero(new_conv)[np.cumsum(new_conv) - 1]
    return pa.table(
        {
            "conversation_id": conv,
            "session": pa.array(session[first] if n else session, pa.int64()),
            "turn_index": pa.array(turn_index, pa.int64()),
            "timestamp": messages.column("timestamp").take(first),
            "sender": messages.column("sender").take(first),
            "is_self": messages.column("is_self").take(first),
            "text": text,
            "messages": pa.array(np.diff(offsets), pa.int64()),
        }
    )


def split_by_time(turns: pa.Table, validation_fraction: float) -> pa.Array:
    """The latest `validation_fraction` of each conversation's turns -> validation, the rest -> train.

    The cut moves forward past own turns so that validation starts with someone else's turn: an own turn
    at the very start of validation would have no context and be wasted. Conversations shorter than
    1 / validation_fraction turns hold out nothing this way; when that leaves validation without a single own
    turn (many short chats), whole conversations are held out instead, the most recent first, until about
    `validation_fraction` of all turns are held out, as long as at least one conversation stays for training.
    """
    n = turns.num_rows
    split = np.full(n, "train", dtype=object)
    if n == 0:
        return pa.array(split, pa.string())
    conv_start = np.flatnonzero(change_points(turns.column("conversation_id")))
    conv_end = np.append(conv_start[1:], n)
    is_self = turns.column("is_self").to_numpy(zero_copy_only=False)
    for start, end in zip(conv_start, conv_end, strict=True):
        cut = end - int((end - start) * validation_fraction)
        while cut < end and is_self[cut]:
            cut += 1
        split[cut:end] = "validation"
    target = int(n * validation_fraction)
    if target >= MIN_HELD_TURNS and not (is_self & (split == "validation")).any():
        _hold_out_whole_conversations(turns, split, is_self, conv_start, conv_end, target)
    return pa.array(split, pa.string())


MIN_HELD_TURNS = 2  # someone's turn and an own answer: the least one validation example holds


def _hold_out_whole_conversations(
    turns: pa.Table, split: np.ndarray, is_self: np.ndarray, starts: np.ndarray, ends: np.ndarray, target: int
) -> None:
    last = turns.column("timestamp").cast(pa.int64()).to_numpy(zero_copy_only=False)[ends - 1]
    # A conversation helps validation only with an own turn after someone else's (an answer to score).
    answered = [bool(is_self[start + 1 : end].any()) for start, end in zip(starts, ends, strict=True)]
    held, kept = 0, len(starts)
    for i in np.argsort(-last, kind="stable"):
        if held >= target or kept == 1:
            break
        if answered[i]:
            split[starts[i] : ends[i]] = "validation"
            held += ends[i] - starts[i]
            kept -= 1


def change_points(column: pa.ChunkedArray | pa.Array | np.ndarray) -> np.ndarray:
    """True where a value differs from the one before it (and at the first row)."""
    n = len(column)
    out = np.ones(n, dtype=bool)
    if n > 1:
        if isinstance(column, np.ndarray):
            out[1:] = column[1:] != column[:-1]
        else:
            values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            differs = pc.not_equal(values.slice(1), values.slice(0, n - 1))
            out[1:] = pc.fill_null(differs, True).to_numpy(zero_copy_only=False)
    return out


def turn_report(messages: pa.Table, kept: pa.Table, dropped: dict, turns: pa.Table) -> dict:
    is_self = turns.column("is_self")
    split = turns.column("split")
    return {
        "messages_in": messages.num_rows,
        "messages_kept": kept.num_rows,
        "messages_dropped": dict(sorted(dropped.items())),
        "turns": turns.num_rows,
        "own_turns": pc.sum(is_self).as_py() or 0,
        "validation_turns": pc.sum(pc.equal(split, "validation")).as_py() or 0,
        "validation_own_turns": pc.sum(pc.and_(is_self, pc.equal(split, "validation"))).as_py() or 0,
        "sessions": int(
            np.sum(change_points(turns.column("conversation_id")) | change_points(turns.column("session")))
        ),
    }

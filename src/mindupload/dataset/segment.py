"""Turns -> training examples: random 2-10-turn segments, each starting with someone else's turn and ending
with one of the user's own, then fitted to `sequence_len` with the base model's real tokenizer.

Every own turn that follows someone else's turn lands in exactly one segment: segments partition each run of
turns (one split of one session of one conversation) into consecutive *exchanges*: other people's turns,
then one own turn. Own turns that open a run have no context and are counted, not trained.

Exchanges are found with numpy over the whole table and a segment is a list of row ranges, so a million
messages segment in about a second; the text itself is laid out by `render.layout`, the one renderer.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from mindupload.dataset.turns import change_points
from mindupload.errors import UserError
from mindupload.files import atomic_text_file
from mindupload.render import Identity, Markers, Piece, example_json, head, layout, line

SPLITS = ("train", "validation")
TokenCounter = Callable[[list[str]], list[int]]


@dataclass(frozen=True)
class SegmentOptions:
    seed: int = 42
    min_turns: int = 2
    max_turns: int = 10
    sequence_len: int = 4096

    @classmethod
    def from_config(cls, config: dict) -> SegmentOptions:
        seg = config["segments"]
        return cls(seg["seed"], seg["min_turns"], seg["max_turns"], seg["sequence_len"])


class Exchange(NamedTuple):  # a tuple: there is one per own turn, hundreds of thousands on big exports
    """Rows [first, own) of the turns table are context; row `own` is the user's answer."""

    first: int
    own: int

    @property
    def size(self) -> int:
        return self.own - self.first + 1


@dataclass
class Segment:
    split: str
    conversation_id: str
    exchanges: list[Exchange]

    @property
    def turns(self) -> int:
        return sum(ex.size for ex in self.exchanges)


@dataclass
class SegmentStats:
    own_turns: int = 0
    own_turns_without_context: int = 0  # own turns opening a run: nothing to answer
    own_turns_dropped_for_length: int = 0
    context_turns_trimmed_for_length: int = 0
    segments_split_for_length: int = 0
    segments_dropped_for_length: int = 0
    trailing_context_turns: int = 0  # other people's turns nobody answered
    segments: Counter = field(default_factory=Counter)  # per split
    turns_per_segment: Counter = field(default_factory=Counter)
    max_tokens: int = 0  # of the segments counted exactly (see fit_to_length)
    segments_counted: int = 0  # tokenized to check their length (the others provably fit)

    def as_dict(self) -> dict:
        own_in_segments = self.own_turns - self.own_turns_without_context - self.own_turns_dropped_for_length
        return {
            "segments": dict(self.segments),
            "own_turns": self.own_turns,
            "own_turns_in_segments": own_in_segments,
            "own_turn_coverage": round(own_in_segments / self.own_turns, 4) if self.own_turns else 0.0,
            "own_turns_without_context": self.own_turns_without_context,
            "own_turns_dropped_for_length": self.own_turns_dropped_for_length,
            "context_turns_trimmed_for_length": self.context_turns_trimmed_for_length,
            "segments_split_for_length": self.segments_split_for_length,
            "segments_dropped_for_length": self.segments_dropped_for_length,
            "trailing_context_turns": self.trailing_context_turns,
            "turns_per_segment": dict(sorted(self.turns_per_segment.items())),
            "max_tokens": self.max_tokens,
            "segments_counted": self.segments_counted,
        }


class Renderer:
    """Lays out segments of one turns table: each row's line rendered once, pieces by `render.layout`."""

    def __init__(self, turns: pa.Table, identity: Identity, markers: Markers):
        labels = identity.labels(
            turns.column("conversation_id").to_pylist(),
            turns.column("sender").to_pylist(),
            turns.column("is_self").to_pylist(),
        )
        self.lines = [line(label, text) for label, text in zip(labels, turns.column("text").to_pylist(), strict=True)]
        self.opening = head(identity, markers)
        self.eos = markers.eos

    def pieces(self, seg: Segment) -> list[Piece]:
        lines = self.lines
        return layout([(lines[ex.first : ex.own], lines[ex.own]) for ex in seg.exchanges], self.opening, self.eos)


# ---------------------------------------------------------------- cutting runs into segments


def find_exchanges(turns: pa.Table, max_turns: int, stats: SegmentStats) -> tuple[list[Exchange], np.ndarray]:
    """Every answered own turn as an Exchange, and the run number of each, in table order.

    A group chat can put more context before one answer than a segment holds: the oldest is trimmed.
    """
    n = turns.num_rows
    run_start = change_points(turns.column("split")) | change_points(turns.column("conversation_id"))
    run_start |= change_points(turns.column("session"))
    run_id = np.cumsum(run_start) - 1
    first_row_of_run = np.flatnonzero(run_start)
    is_self = turns.column("is_self").to_numpy(zero_copy_only=False).astype(bool) if n else np.zeros(0, bool)
    own = np.flatnonzero(is_self)
    previous_own = np.concatenate(([-1], own[:-1]))
    first = np.maximum(previous_own + 1, first_row_of_run[run_id[own]])
    answered = first < own
    stats.own_turns += len(own)
    stats.own_turns_without_context += int(np.sum(~answered))
    first, own = first[answered], own[answered]
    stats.trailing_context_turns += int(n - len(own) - stats.own_turns_without_context - np.sum(own - first))
    trimmed = np.maximum(first, own - (max_turns - 1))
    stats.context_turns_trimmed_for_length += int(np.sum(trimmed - first))
    exchanges = list(map(Exchange._make, zip(trimmed.tolist(), own.tolist(), strict=True)))
    return exchanges, run_id[own]


def plan(sizes: Sequence[int], rng: random.Random, lo: int, hi: int) -> list[int]:
    """How many exchanges each segment takes, so that segment turn counts fall in [lo, hi].

    Each segment aims at a random length in [lo, hi] and takes the feasible cut nearest to it; a cut is
    feasible when the rest can still be cut within bounds (known from the end by dynamic programming).
    Where no cut is feasible (a run shorter than `lo`), the segment takes what fits under `hi`.
    """
    m = len(sizes)
    feasible = _feasible_suffixes(sizes, lo, hi)
    counts: list[int] = []
    i = 0
    while i < m:
        target = rng.randint(lo, hi)
        best, best_gap, fallback, total = 0, hi + 1, 0, 0
        for j in range(i, m):
            total += sizes[j]
            if total > hi and j > i:
                break
            fallback = j - i + 1
            if total >= lo and feasible[j + 1] and abs(total - target) < best_gap:
                best, best_gap = j - i + 1, abs(total - target)
        take = best or fallback
        counts.append(take)
        i += take
    return counts


def _feasible_suffixes(sizes: Sequence[int], lo: int, hi: int) -> list[bool]:
    """feasible[i]: exchanges i.. can be cut into segments of lo..hi turns."""
    m = len(sizes)
    if m and lo <= min(sizes) and max(sizes) <= hi:
        return [True] * (m + 1)  # every exchange alone is a valid segment: the common two-person case
    feasible = [False] * m + [True]
    for i in range(m - 1, -1, -1):
        total = 0
        for j in range(i, m):
            total += sizes[j]
            if total > hi:
                break
            if total >= lo and feasible[j + 1]:
                feasible[i] = True
                break
    return feasible


def cut(turns: pa.Table, options: SegmentOptions, stats: SegmentStats) -> list[Segment]:
    """All segments, in table order (split, conversation, session, time); the same seed cuts the same way."""
    exchanges, run_of = find_exchanges(turns, options.max_turns, stats)
    split = turns.column("split").to_pylist()
    conv = turns.column("conversation_id").to_pylist()
    session = turns.column("session").to_pylist()
    segments: list[Segment] = []
    bounds = np.append(np.flatnonzero(change_points(run_of)), len(exchanges)).tolist()
    for a, b in itertools.pairwise(bounds):
        row = exchanges[a].own
        # One generator per run: adding a source or a conversation leaves the others' cuts unchanged.
        rng = random.Random(f"{options.seed}/{split[row]}/{conv[row]}/{session[row]}")
        i = a
        for take in plan([ex.size for ex in exchanges[a:b]], rng, options.min_turns, options.max_turns):
            segments.append(Segment(split[row], conv[row], exchanges[i : i + take]))
            i += take
    return segments


# ---------------------------------------------------------------- fitting to sequence_len


def fit_to_length(
    segments: list[Segment],
    renderer: Renderer,
    count_tokens: TokenCounter,
    sequence_len: int,
    stats: SegmentStats,
) -> list[tuple[Segment, list[Piece]]]:
    """Segments with their pieces, each at most `sequence_len` tokens as axolotl will count them.

    axolotl tokenizes each piece on its own and concatenates, so a segment's length is the sum of its
    pieces' lengths. Too long: split between exchanges; a single exchange too long loses its oldest context
    turns; an answer too long even alone is dropped and counted. Order is kept.

    Where the counter has a `bound` (model.tokenizer.length_bound), only the segments whose bound exceeds
    `sequence_len` are tokenized, with the LONGEST_COUNTED longest beside them for the report's longest
    segment: on chat data that is a few percent of the text, and the tokenizer was 80% of the stage's time.
    """
    done: dict[int, list[tuple[Segment, list[Piece], int | None]]] = {}
    pending = list(enumerate(segments))
    while pending:
        rendered = [renderer.pieces(seg) for _, seg in pending]
        lengths, exact = _segment_lengths(rendered, count_tokens, sequence_len, stats)
        retry: list[tuple[int, Segment]] = []
        for (pos, seg), pcs, n, known in zip(pending, rendered, lengths, exact, strict=True):
            if n <= sequence_len:
                done.setdefault(pos, []).append((seg, pcs, n if known else None))
            else:
                retry.extend((pos, part) for part in _shorter(seg, stats))
        pending = retry
    out = []
    for pos in sorted(done):
        for seg, pcs, n in done[pos]:
            if n is not None:
                stats.max_tokens = max(stats.max_tokens, n)
            out.append((seg, pcs))
    return out


LONGEST_COUNTED = 256  # segments counted exactly for the longest-segment figure, whatever their bound


def _shorter(seg: Segment, stats: SegmentStats) -> list[Segment]:
    if len(seg.exchanges) > 1:
        stats.segments_split_for_length += 1
        half = len(seg.exchanges) // 2
        return [Segment(seg.split, seg.conversation_id, part) for part in (seg.exchanges[:half], seg.exchanges[half:])]
    ex = seg.exchanges[0]
    context = ex.own - ex.first
    if context > 1:
        stats.context_turns_trimmed_for_length += context - context // 2
        return [Segment(seg.split, seg.conversation_id, [Exchange(ex.own - context // 2, ex.own)])]
    stats.own_turns_dropped_for_length += 1
    stats.segments_dropped_for_length += 1
    return []


def _segment_lengths(
    rendered: list[list[Piece]], count_tokens: TokenCounter, sequence_len: int, stats: SegmentStats
) -> tuple[list[int], list[bool]]:
    """Each segment's token count, or an upper bound of it no greater than `sequence_len`; and which are exact."""
    flat = [p.text for pcs in rendered for p in pcs]
    sizes = np.fromiter((len(pcs) for pcs in rendered), np.int64, len(rendered))
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])) if len(sizes) else sizes
    bound = getattr(count_tokens, "bound", None)
    if bound is None or not flat:
        counted = np.ones(len(rendered), bool)
        piece_counts = np.asarray(count_tokens(flat), np.int64)
    else:
        piece_counts = bound(flat)
        seg_bound = np.add.reduceat(piece_counts, starts)
        counted = seg_bound > sequence_len
        counted[np.argsort(seg_bound, kind="stable")[-LONGEST_COUNTED:]] = True
        pick = np.repeat(counted, sizes)
        piece_counts[pick] = count_tokens([flat[i] for i in np.flatnonzero(pick).tolist()])
    stats.segments_counted += int(counted.sum())
    lengths = np.add.reduceat(piece_counts, starts) if len(flat) else np.zeros(len(rendered), np.int64)
    return lengths.tolist(), counted.tolist()


# ---------------------------------------------------------------- the stage


def examples(
    turns: pa.Table,
    identity: Identity,
    markers: Markers,
    options: SegmentOptions,
    count_tokens: TokenCounter | None,
    stats: SegmentStats,
) -> Iterator[tuple[str, str]]:
    """(split, JSONL line) for every example, in order. `count_tokens=None` skips the length check."""
    segments = cut(turns, options, stats)
    renderer = Renderer(turns, identity, markers)
    if count_tokens is None:
        fitted: Iterable[tuple[Segment, list[Piece]]] = ((seg, renderer.pieces(seg)) for seg in segments)
    else:
        fitted = fit_to_length(segments, renderer, count_tokens, options.sequence_len, stats)
    for seg, pcs in fitted:
        stats.segments[seg.split] += 1
        stats.turns_per_segment[seg.turns] += 1
        yield seg.split, example_json(pcs)


def build_segments(
    turns: pa.Table,
    identity: Identity,
    markers: Markers,
    options: SegmentOptions,
    count_tokens: TokenCounter | None,
) -> tuple[dict[str, list[str]], dict]:
    """JSON lines per split, in memory, and the stage's report."""
    stats = SegmentStats()
    lines: dict[str, list[str]] = {split: [] for split in SPLITS}
    for split, line_ in examples(turns, identity, markers, options, count_tokens, stats):
        lines[split].append(line_)
    return lines, stats.as_dict()


def write_segments(
    turns: pa.Table,
    identity: Identity,
    markers: Markers,
    options: SegmentOptions,
    count_tokens: TokenCounter | None,
    paths: dict[str, str | os.PathLike],
) -> dict:
    """Stream the examples into one JSONL file per split (each written atomically); the stage's report.

    No training example at all is a UserError saying why, and no file is written.
    """
    stats = SegmentStats()
    with contextlib.ExitStack() as stack:
        files = {split: stack.enter_context(atomic_text_file(paths[split])) for split in SPLITS}
        for split, line_ in examples(turns, identity, markers, options, count_tokens, stats):
            files[split].write(line_ + "\n")
        check_examples(turns, stats)
    return stats.as_dict()


def check_examples(turns: pa.Table, stats: SegmentStats) -> None:
    """UserError with the reason when the training split is empty (never a successful run without data)."""
    if stats.segments["train"]:
        return
    n, own = turns.num_rows, stats.own_turns
    if n == 0:
        why = "no message is left after dropping notices, media and empty messages"
    elif own == 0:
        why = "none of the turns left is yours (see `me:`)"
    elif own == n:
        why = f"every turn ({n}) is yours: nobody else writes, so no turn of yours answers anyone"
    elif stats.own_turns_without_context == own:
        why = f"no turn of yours follows someone else's ({own} own turns, each opens its conversation or session)"
    elif stats.own_turns_dropped_for_length:
        why = (
            f"every exchange is longer than segments.sequence_len ({stats.own_turns_dropped_for_length} dropped); "
            "raise it"
        )
    elif stats.segments["validation"]:
        held_out = stats.segments["validation"]
        why = f"all {held_out} example(s) are in the validation split; lower split.validation_fraction"
    else:
        why = "no turn of yours could be made into an example"
    raise UserError(f"no training example: {why}. Add exports in which you answer other people.")

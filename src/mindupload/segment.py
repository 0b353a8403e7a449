"""Turns -> training examples: random 2-10-turn segments, each starting with someone else's turn and ending
with one of the user's own, then fitted to `sequence_len` with the base model's real tokenizer.

Every own turn that follows someone else's turn lands in exactly one segment: segments partition each run of
turns into consecutive *exchanges* (other people's turns, then one own turn). Own turns that open a session
have no context and are counted, not trained.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from mindupload.render import Identity, Markers, Turn, pieces

SPLITS = ("train", "validation")


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


@dataclass(frozen=True)
class Exchange:
    """Other people's turns, then the user's answer. Turns are (turn_index, Turn)."""

    context: tuple[tuple[int, Turn], ...]
    own: tuple[int, Turn]

    def __len__(self) -> int:
        return len(self.context) + 1

    def trimmed(self, keep: int) -> Exchange:
        """The same answer with only the latest `keep` context turns."""
        return Exchange(self.context[-keep:], self.own)


@dataclass
class Segment:
    split: str
    conversation_id: str
    exchanges: list[Exchange]

    @property
    def turns(self) -> list[Turn]:
        return [t for ex in self.exchanges for _, t in (*ex.context, ex.own)]

    @property
    def turn_indexes(self) -> list[int]:
        return [i for ex in self.exchanges for i, _ in (*ex.context, ex.own)]

    def render(self, identity: Identity, markers: Markers) -> list[dict]:
        return [p.as_json() for p in pieces(self.turns, identity, markers)]


@dataclass
class SegmentStats:
    own_turns: int = 0
    own_turns_without_context: int = 0  # own turns opening a session: nothing to answer
    own_turns_dropped_for_length: int = 0
    context_turns_trimmed_for_length: int = 0
    segments_split_for_length: int = 0
    segments_dropped_for_length: int = 0
    trailing_context_turns: int = 0  # other people's turns nobody answered
    segments: Counter = field(default_factory=Counter)  # per split
    turns_per_segment: Counter = field(default_factory=Counter)
    max_tokens: int = 0

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
        }


# ---------------------------------------------------------------- cutting runs into segments


def runs(turns: pa.Table, identity: Identity) -> Iterator[tuple[tuple[str, str, int], list[tuple[int, Turn]]]]:
    """(split, conversation, session) -> its turns in order, labelled through `identity`."""
    cols = {name: turns.column(name).to_pylist() for name in ("split", "conversation_id", "session")}
    index = turns.column("turn_index").to_pylist()
    senders = turns.column("sender").to_pylist()
    is_self = turns.column("is_self").to_pylist()
    texts = turns.column("text").to_pylist()
    key, run = None, []
    for i in range(turns.num_rows):
        k = (cols["split"][i], cols["conversation_id"][i], cols["session"][i])
        if k != key:
            if run:
                yield key, run
            key, run = k, []
        run.append((index[i], Turn(identity.speaker(senders[i], is_self[i]), is_self[i], texts[i])))
    if run:
        yield key, run


def exchanges(run: Sequence[tuple[int, Turn]], stats: SegmentStats) -> list[Exchange]:
    out: list[Exchange] = []
    context: list[tuple[int, Turn]] = []
    for item in run:
        if not item[1].is_self:
            context.append(item)
            continue
        stats.own_turns += 1
        if context:
            out.append(Exchange(tuple(context), item))
        else:
            stats.own_turns_without_context += 1
        context = []
    stats.trailing_context_turns += len(context)
    return out


def plan(sizes: Sequence[int], rng: random.Random, lo: int, hi: int) -> list[int]:
    """How many exchanges each segment takes, so that segment turn counts fall in [lo, hi].

    Each segment aims at a random length in [lo, hi] and takes the feasible cut nearest to it; a cut is
    feasible when the rest can still be cut within bounds (known from the end by dynamic programming).
    Where no cut is feasible (a run shorter than `lo`), the segment takes what fits under `hi`.
    """
    m = len(sizes)
    feasible = [False] * (m + 1)
    feasible[m] = True
    for i in range(m - 1, -1, -1):
        total = 0
        for j in range(i, m):
            total += sizes[j]
            if total > hi:
                break
            if total >= lo and feasible[j + 1]:
                feasible[i] = True
                break
    counts: list[int] = []
    i = 0
    while i < m:
        target = rng.randint(lo, hi)
        best, best_gap, fallback, total = 0, None, 0, 0
        for j in range(i, m):
            total += sizes[j]
            if total > hi and j > i:
                break
            fallback = j - i + 1
            if lo <= total <= hi and feasible[j + 1]:
                gap = abs(total - target)
                if best_gap is None or gap < best_gap:
                    best, best_gap = j - i + 1, gap
        take = best or fallback
        counts.append(take)
        i += take
    return counts


def cut(turns: pa.Table, identity: Identity, options: SegmentOptions, stats: SegmentStats) -> list[Segment]:
    """All segments, in order of split, conversation, session and time; the same seed cuts the same way."""
    segments: list[Segment] = []
    for (split, conversation, session), run in runs(turns, identity):
        exs = [_fit_turn_bound(ex, options.max_turns, stats) for ex in exchanges(run, stats)]
        # One generator per run: adding a source or a conversation leaves the others' cuts unchanged.
        rng = random.Random(f"{options.seed}/{split}/{conversation}/{session}")
        i = 0
        for take in plan([len(ex) for ex in exs], rng, options.min_turns, options.max_turns):
            segments.append(Segment(split, conversation, exs[i : i + take]))
            i += take
    return segments


def _fit_turn_bound(ex: Exchange, max_turns: int, stats: SegmentStats) -> Exchange:
    """A group chat can put more context before one answer than a segment holds: keep the latest."""
    if len(ex) <= max_turns:
        return ex
    stats.context_turns_trimmed_for_length += len(ex) - max_turns
    return ex.trimmed(max_turns - 1)


# ---------------------------------------------------------------- fitting to sequence_len

TokenCounter = Callable[[list[str]], list[int]]


def fit_to_length(
    segments: list[Segment],
    count_tokens: TokenCounter,
    identity: Identity,
    markers: Markers,
    sequence_len: int,
    stats: SegmentStats,
) -> list[tuple[Segment, list[dict]]]:
    """Segments with their rendered pieces, each at most `sequence_len` tokens as axolotl will count them.

    axolotl tokenizes each piece on its own and concatenates, so a segment's length is the sum of its
    pieces' lengths. Too long: split between exchanges; a single exchange too long loses its oldest context
    turns; an answer too long even alone is dropped and counted. Order is kept.
    """
    done: dict[int, list[tuple[Segment, list[dict], int]]] = {}
    pending = list(enumerate(segments))
    while pending:
        rendered = [seg.render(identity, markers) for _, seg in pending]
        lengths = _segment_lengths(rendered, count_tokens)
        retry: list[tuple[int, Segment]] = []
        for (pos, seg), pcs, n in zip(pending, rendered, lengths, strict=True):
            if n <= sequence_len:
                done.setdefault(pos, []).append((seg, pcs, n))
            else:
                retry.extend((pos, part) for part in _shorter(seg, stats))
        pending = retry
    out = []
    for pos in sorted(done):
        for seg, pcs, n in done[pos]:
            stats.max_tokens = max(stats.max_tokens, n)
            out.append((seg, pcs))
    return out


def _shorter(seg: Segment, stats: SegmentStats) -> list[Segment]:
    if len(seg.exchanges) > 1:
        stats.segments_split_for_length += 1
        half = len(seg.exchanges) // 2
        return [Segment(seg.split, seg.conversation_id, part) for part in (seg.exchanges[:half], seg.exchanges[half:])]
    ex = seg.exchanges[0]
    if len(ex.context) > 1:
        stats.context_turns_trimmed_for_length += len(ex.context) - len(ex.context) // 2
        return [Segment(seg.split, seg.conversation_id, [ex.trimmed(len(ex.context) // 2)])]
    stats.own_turns_dropped_for_length += 1
    stats.segments_dropped_for_length += 1
    return []


def _segment_lengths(rendered: list[list[dict]], count_tokens: TokenCounter) -> list[int]:
    flat = [p["text"] for pcs in rendered for p in pcs]
    counts = iter(count_tokens(flat))
    return [sum(next(counts) for _ in pcs) for pcs in rendered]


# ---------------------------------------------------------------- the stage


def build_segments(
    turns: pa.Table,
    identity: Identity,
    markers: Markers,
    options: SegmentOptions,
    count_tokens: TokenCounter | None,
) -> tuple[dict[str, list[str]], dict]:
    """JSON lines per split, and the stage's report. `count_tokens=None` skips the length check (benchmarks)."""
    stats = SegmentStats()
    segments = cut(turns, identity, options, stats)
    if count_tokens is None:
        fitted = [(seg, seg.render(identity, markers)) for seg in segments]
    else:
        fitted = fit_to_length(segments, count_tokens, identity, markers, options.sequence_len, stats)
    lines: dict[str, list[str]] = {split: [] for split in SPLITS}
    for seg, pcs in fitted:
        lines[seg.split].append(json.dumps({"segments": pcs}, ensure_ascii=False))
        stats.segments[seg.split] += 1
        stats.turns_per_segment[len(seg.turns)] += 1
    return lines, stats.as_dict()

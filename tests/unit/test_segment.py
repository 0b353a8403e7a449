import json
import random

import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from messages import make_messages

from mindupload.dataset.segment import SegmentOptions, SegmentStats, build_segments, cut, plan
from mindupload.dataset.turns import TurnOptions, build_turns
from mindupload.model import tokenizer
from mindupload.render import Identity, Markers

ME = Identity(name="Elijah")
MARKERS = Markers(bos="<s>", eos="</s>")

texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(str.strip)
# A conversation: who speaks each message (True = me), possibly with other people of a group chat.
speakers = st.sampled_from(["Elijah", "Anna", "Bob"])
conversations = st.lists(st.tuples(speakers, texts), min_size=1, max_size=60)


def table_of(convs):
    rows = [(f"c{i}", who, who == "Elijah", text) for i, conv in enumerate(convs) for who, text in conv]
    return make_messages(rows)


def turns_of(convs, validation_fraction=0.2, session_gap_hours=0):
    turns, _ = build_turns(
        table_of(convs),
        TurnOptions(validation_fraction=validation_fraction, session_gap_hours=session_gap_hours),
    )
    return turns


def own_turns_with_context(turns):
    """(split, conversation, turn_index) of every own turn that follows someone else's in its run."""
    out, prev = set(), None
    for row in turns.to_pylist():
        run = (row["split"], row["conversation_id"], row["session"])
        if row["is_self"] and prev is not None and prev[0] == run and not prev[1]:
            out.add((*run[:2], row["turn_index"]))
        prev = (run, row["is_self"])
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.lists(conversations, min_size=1, max_size=4),
    st.integers(0, 2**32),
    st.integers(2, 5),
    st.integers(0, 8),
)
def test_every_answered_own_turn_lands_in_exactly_one_segment_of_one_split(convs, seed, lo, extra):
    turns = turns_of(convs)
    options = SegmentOptions(seed=seed, min_turns=lo, max_turns=lo + extra)
    stats = SegmentStats()
    segments = cut(turns, options, stats)
    index = turns.column("turn_index").to_pylist()
    placed = [
        (s.split, s.conversation_id, index[row]) for s, row in ((s, ex.own) for s in segments for ex in s.exchanges)
    ]
    assert len(placed) == len(set(placed))
    assert set(placed) == own_turns_with_context(turns)
    assert stats.own_turns == pc.sum(turns.column("is_self")).as_py() or 0


@settings(max_examples=150, deadline=None)
@given(st.lists(conversations, min_size=1, max_size=3), st.integers(0, 2**32))
def test_every_segment_has_the_seed_shape(convs, seed):
    lines, _ = build_segments(turns_of(convs), ME, MARKERS, SegmentOptions(seed=seed), None)
    for line in lines["train"] + lines["validation"]:
        segs = json.loads(line)["segments"]
        assert segs[0]["label"] is False
        assert segs[0]["text"].startswith("<s>CONTEXT: Elijah is talking to a friend.\n")
        assert segs[-1]["label"] is True and segs[-1]["text"].endswith("</s>")
        assert [s["label"] for s in segs] == [False, True] * (len(segs) // 2)
        for s in segs[1:-1:2]:
            assert s["text"].startswith("\nElijah: ") and s["text"].endswith("\n")
        assert segs[-1]["text"].startswith("\nElijah: ")
        assert all(not s["text"].startswith("\n") for s in segs[2::2])
        assert "".join(s["text"] for s in segs).count("<s>") == 1 + sum(s["text"].count("<s>") for s in segs[1:])


@settings(max_examples=60, deadline=None)
@given(st.lists(conversations, min_size=1, max_size=3), st.integers(0, 2**32))
def test_the_same_seed_gives_byte_identical_output(convs, seed):
    options = SegmentOptions(seed=seed)
    a, _ = build_segments(turns_of(convs), ME, MARKERS, options, None)
    b, _ = build_segments(turns_of(convs), ME, MARKERS, options, None)
    assert a == b


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 60), st.integers(2, 6), st.integers(0, 8), st.integers(0, 2**32))
def test_two_person_segments_keep_within_bounds_unless_the_run_is_shorter(exchanges, lo, extra, seed):
    sizes = [2] * exchanges
    hi = lo + extra
    counts = plan(sizes, random.Random(seed), lo, hi)
    assert sum(counts) == exchanges
    totals = [2 * c for c in counts]
    if 2 * exchanges < lo:
        assert len(totals) <= 1
    elif lo <= 2 or (any(lo <= even <= hi for even in range(0, hi + 1, 2)) and _partitionable(2 * exchanges, lo, hi)):
        assert all(lo <= t <= hi for t in totals)
    assert all(t <= max(hi, 2) for t in totals)


def _partitionable(total, lo, hi):
    ok = [True] + [False] * total
    for n in range(1, total + 1):
        ok[n] = any(ok[n - k] for k in range(lo, min(hi, n) + 1) if k % 2 == 0)
    return ok[total]


def test_segment_lengths_vary_at_random_across_the_bounds():
    turns = turns_of([[("Anna" if i % 2 == 0 else "Elijah", f"m{i}") for i in range(2000)]], validation_fraction=0)
    _, report = build_segments(turns, ME, MARKERS, SegmentOptions(seed=1), None)
    assert set(report["turns_per_segment"]) == {2, 4, 6, 8, 10}


def test_a_changed_seed_changes_the_cuts():
    turns = turns_of([[("Anna" if i % 2 == 0 else "Elijah", f"m{i}") for i in range(200)]])
    a, _ = build_segments(turns, ME, MARKERS, SegmentOptions(seed=1), None)
    b, _ = build_segments(turns, ME, MARKERS, SegmentOptions(seed=2), None)
    assert a != b


@pytest.mark.parametrize("sequence_len", [40, 60, 120])
def test_no_segment_exceeds_sequence_len_by_the_real_tokenizer(tiny_tokenizer, sequence_len):
    rng = random.Random(7)
    words = ["hi", "climbing", "derailleur", "ok ok", "carrément", "🙃", "bref"]
    conv = [
        ("Anna" if i % 2 == 0 else "Elijah", " ".join(rng.choices(words, k=rng.randint(1, 25)))) for i in range(300)
    ]
    markers = tokenizer.markers(tiny_tokenizer)
    count = tokenizer.counter(tiny_tokenizer)
    turns = turns_of([conv])
    lines, report = build_segments(turns, ME, markers, SegmentOptions(sequence_len=sequence_len), count)
    for line in lines["train"] + lines["validation"]:
        segs = json.loads(line)["segments"]
        # axolotl tokenizes each piece alone and concatenates
        assert sum(count([s["text"] for s in segs])) <= sequence_len
    assert report["max_tokens"] <= sequence_len
    assert report["segments_split_for_length"] > 0
    assert (
        report["own_turns_in_segments"] + report["own_turns_dropped_for_length"] + report["own_turns_without_context"]
    ) == report["own_turns"]
    if sequence_len == 40:
        assert report["segments_dropped_for_length"] > 0


def test_each_other_speaker_of_a_group_keeps_a_distinct_label():
    """`friend`, `friend 2`, ... in the order they first speak, per conversation; real names when asked."""
    group = [("Anna", "hi all"), ("Bob", "hey"), ("Elijah", "hello you two"), ("Anna", "how are you"),
             ("Elijah", "good")]  # fmt: skip
    duo = [("Bob", "still there?"), ("Elijah", "yes")]
    turns = turns_of([group, duo], validation_fraction=0)
    options = SegmentOptions(seed=1, min_turns=10, max_turns=10)
    lines, _ = build_segments(turns, ME, MARKERS, options, None)
    text = "".join(seg["text"] for line in lines["train"] for seg in json.loads(line)["segments"])
    assert "friend: hi all\nfriend 2: hey" in text
    assert "\nElijah: hello you two\nfriend: how are you" in text
    assert "friend: still there?" in text  # Bob is the first other speaker of the other chat
    real = Identity(name="Elijah", use_real_names=True)
    lines, _ = build_segments(turns, real, MARKERS, options, None)
    assert "Anna: hi all\nBob: hey" in "".join(json.loads(line)["segments"][0]["text"] for line in lines["train"])


def test_labels_are_recognised_as_someone_elses():
    assert [ME.is_other_label(label) for label in ("friend", "friend 2", "friend 12", "Elijah", "friendly", "Bob")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert Identity(name="Elijah", use_real_names=True).is_other_label("Bob")

import pyarrow.compute as pc
from messages import make_messages

from mindupload.dataset.turns import TurnOptions, build_turns


def rows_of(turns):
    return list(zip(turns.column("sender").to_pylist(), turns.column("text").to_pylist(), strict=True))


def test_consecutive_messages_of_one_sender_merge_with_newlines():
    msgs = make_messages(
        [
            ("c", "Anna", False, "hi"),
            ("c", "Anna", False, "you there?"),
            ("c", "Eli", True, "yes"),
            ("c", "Eli", True, "line one\n\nline three"),
        ]
    )
    turns, report = build_turns(msgs, TurnOptions(validation_fraction=0))
    assert rows_of(turns) == [("Anna", "hi\nyou there?"), ("Eli", "yes\nline one\n\nline three")]
    assert turns.column("messages").to_pylist() == [2, 2]
    assert report["turns"] == 2 and report["own_turns"] == 1


def test_notices_are_dropped_and_counted_and_media_follow_config():
    msgs = make_messages(
        [
            ("c", "Anna", False, "hi"),
            ("c", "Anna", False, "", "media"),
            ("c", "Anna", False, "look!", "media"),
            ("c", "Anna", False, "Missed voice call", "call"),
            ("c", "system", False, "X joined", "system"),
            ("c", "Eli", True, "", "deleted"),
            ("c", "Eli", True, "fwd text", "forwarded"),
            ("c", "Eli", True, "nice"),
        ]
    )
    dropped, report = build_turns(msgs, TurnOptions(validation_fraction=0))
    assert rows_of(dropped) == [("Anna", "hi"), ("Eli", "nice")]
    assert report["messages_dropped"] == {"call": 1, "deleted": 1, "forwarded": 1, "media": 2, "system": 1}
    kept, _ = build_turns(msgs, TurnOptions(validation_fraction=0, media="placeholder", media_placeholder="<m>"))
    assert rows_of(kept) == [("Anna", "hi\n<m>\nlook!"), ("Eli", "nice")]


def test_a_long_silence_starts_a_new_session_only_when_configured():
    msgs = make_messages(
        [
            ("c", "Anna", False, "hi", "text", 0),
            ("c", "Eli", True, "yo", "text", 1),
            ("c", "Eli", True, "next day", "text", 60 * 30),
            ("c", "Anna", False, "ok", "text", 60 * 30 + 1),
        ]
    )
    one, _ = build_turns(msgs, TurnOptions(validation_fraction=0))
    assert one.column("session").to_pylist() == [0, 0, 0]
    two, report = build_turns(msgs, TurnOptions(validation_fraction=0, session_gap_hours=6))
    assert two.column("session").to_pylist() == [0, 0, 1, 1]
    assert rows_of(two)[1:3] == [("Eli", "yo"), ("Eli", "next day")]  # not merged across the gap
    assert report["sessions"] == 2


def test_validation_is_the_latest_part_of_each_conversation_and_starts_with_context():
    rows = []
    for conv in ("a", "b"):
        for i in range(10):
            rows.append((conv, "Eli" if i % 2 else "Anna", bool(i % 2), f"{conv}{i}"))
    turns, _ = build_turns(make_messages(rows), TurnOptions(validation_fraction=0.3))
    for conv in ("a", "b"):
        mine = turns.filter(pc.equal(turns.column("conversation_id"), conv))
        split = mine.column("split").to_pylist()
        assert split == ["train"] * 7 + ["validation"] * 3 or split == ["train"] * 8 + ["validation"] * 2
        first_val = split.index("validation")
        assert not mine.column("is_self")[first_val].as_py()
        ts = mine.column("timestamp").to_pylist()
        assert max(ts[:first_val]) < min(ts[first_val:])


def short_chats(n: int, turns_each: int = 4):
    """`n` conversations of a few turns each (other, own, ...), conversation i later than i - 1."""
    return [
        (f"c{i:02d}", "Eli" if t % 2 else "Anna", bool(t % 2), f"{i}-{t}", "text", 60 * i + t)
        for i in range(n)
        for t in range(turns_each)
    ]


def test_many_short_conversations_hold_out_whole_recent_conversations():
    """Conversations under 1 / validation_fraction turns hold out nothing on their own: validation would be
    empty. Whole conversations are held out instead, the latest first, to about the fraction."""
    turns, report = build_turns(make_messages(short_chats(30)), TurnOptions(validation_fraction=0.1))
    validation = turns.filter(pc.equal(turns.column("split"), "validation"))
    held = sorted(set(validation.column("conversation_id").to_pylist()))
    assert held == ["c27", "c28", "c29"]  # 12 turns of 120: the three latest conversations
    assert report["validation_turns"] == 12 and report["validation_own_turns"] == 6


def test_too_little_data_for_one_validation_example_holds_out_nothing():
    _, report = build_turns(make_messages(short_chats(3)), TurnOptions(validation_fraction=0.1))
    assert report["validation_turns"] == 0  # 12 turns: a tenth is not even one example

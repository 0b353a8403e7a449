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

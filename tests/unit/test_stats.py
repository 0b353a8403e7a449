"""The dataset stats file shows exclusions and the redaction summary, counts only."""

from __future__ import annotations

from mindupload.dataset.stats import render_stats

SOURCE = {
    "source": "chat",
    "lines_read": 10,
    "lines_skipped": 0,
    "messages": 8,
    "own_messages": 4,
    "conversations": 1,
    "excluded_messages": 3,
    "excluded_conversations": 1,
}
TURNS = {"messages_dropped": {}, "messages_kept": 8, "messages_in": 8, "turns": 6, "own_turns": 3, "sessions": 1}
TURNS |= {"validation_turns": 1}
SEGMENTS = {
    "segments": {"train": 2, "validation": 1},
    "own_turn_coverage": 1.0,
    "own_turns_in_segments": 3,
    "own_turns": 3,
    "own_turns_without_context": 0,
    "segments_split_for_length": 0,
    "segments_dropped_for_length": 0,
    "context_turns_trimmed_for_length": 0,
    "max_tokens": 40,
    "turns_per_segment": {"2": 3},
}
REDACTION = {
    "replaced": {"other": {"PHONE": 2, "NAME": 1}, "own": {"NAME": 3}},
    "messages_changed": {"other": 3, "own": 2},
}


def test_stats_show_exclusions_and_redaction_counts():
    text = render_stats([SOURCE], TURNS, SEGMENTS, REDACTION)
    assert "| chat | 10 lines | 0 | 8 | 4 | 1 | 3 / 1 |" in text
    assert "- items replaced: 3 in other people's messages, 3 in yours (NAME 4, PHONE 2)" in text
    assert "[../reports/redaction.md](../reports/redaction.md)" in text


def test_stats_without_a_redaction_report_have_no_redaction_section():
    assert "Redaction" not in render_stats([SOURCE], TURNS, SEGMENTS)


def test_stats_show_what_a_parser_noted_about_an_export():
    noted = {**SOURCE, "source": "dc", "notes": ["Discord data package: it holds only your own messages."]}
    text = render_stats([SOURCE, noted], TURNS, SEGMENTS)
    assert "\n- dc: Discord data package: it holds only your own messages.\n" in text
    assert "- chat:" not in text


def test_an_empty_validation_set_is_said_plainly():
    assert "validation.jsonl is empty" not in render_stats([SOURCE], TURNS, SEGMENTS)
    empty = SEGMENTS | {"segments": {"train": 2}}
    assert "- **validation.jsonl is empty**: no held-out own turn answers someone" in render_stats(
        [SOURCE], TURNS, empty
    )


def test_a_parsers_decisions_are_listed_with_their_evidence():
    source = SOURCE | {"notes": ["date order mdy (guessed, no part is above 12: ...)"]}
    text = render_stats([source, SOURCE | {"source": "other"}], TURNS, SEGMENTS)
    assert "## Noted while reading\n\n- chat: date order mdy (guessed, no part is above 12: ...)\n" in text
    assert "## Noted" not in render_stats([SOURCE], TURNS, SEGMENTS)


def test_group_conversations_are_counted_per_source():
    kept = SOURCE | {"group_conversations": 1, "group_chats": "included", "excluded_group_messages": 0}
    out = SOURCE | {"source": "tg", "group_conversations": 1, "group_chats": "excluded", "excluded_group_messages": 9}
    text = render_stats([kept, out], TURNS, SEGMENTS)
    assert "- chat: 1 of 1 conversation(s) are group chats" in text
    assert "- tg: 1 group conversation(s) left out (9 messages; group_chats: false); 1 kept" in text

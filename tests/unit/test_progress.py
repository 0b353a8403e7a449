"""Progress of long steps: a log line per tenth, counts only, nothing for short steps."""

import logging

from mindupload.progress import Progress


def test_a_long_step_logs_a_line_per_tenth_with_counts_only(caplog):
    caplog.set_level(logging.INFO, logger="mindupload")
    with Progress("counting tokens", 1000, "texts", min_total=100) as progress:
        for _ in range(250):
            progress.update(4)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "counting tokens: 10% (100 of 1000 texts)"
    assert lines[-1] == "counting tokens: 100% (1000 of 1000 texts)"
    assert len(lines) == 10


def test_a_jump_past_several_tenths_logs_one_line(caplog):
    caplog.set_level(logging.INFO, logger="mindupload")
    with Progress("redacting", 100, "messages", min_total=10) as progress:
        progress.update(55)
    assert [r.getMessage() for r in caplog.records] == ["redacting: 50% (55 of 100 messages)"]


def test_a_short_step_says_nothing(caplog):
    caplog.set_level(logging.INFO, logger="mindupload")
    with Progress("redacting", 50, "messages") as progress:
        progress.update(50)
    assert caplog.records == []

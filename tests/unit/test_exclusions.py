"""Excluded contacts and conversations are dropped right after parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from messages import make_messages

from mindupload import config
from mindupload.errors import UserError
from mindupload.ingest.exclusions import exclude
from mindupload.ingest.parse import ingest
from mindupload.ingest.sources import SourceSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

ROWS = [
    ("src:1", "Anna Keller", False, "hi"),
    ("src:1", "Me", True, "hey"),
    ("src:2", "Bob", False, "yo"),
    ("src:2", "anna  KELLER", False, "hello all"),
    ("src:2", "Me", True, "hi both"),
    ("src:3", "Carl", False, "x"),
]


def test_an_excluded_contact_loses_their_messages_and_their_one_to_one_chats():
    kept, excluded = exclude(make_messages(ROWS), ["Anna Keller"], [])
    assert kept.column("text").to_pylist() == ["yo", "hi both", "x"]  # group chat src:2 stays, without her
    assert (excluded.messages, excluded.conversations) == (3, 1)


def test_conversations_match_by_id_or_by_the_part_after_the_source():
    kept, excluded = exclude(make_messages(ROWS), [], ["src:1", "3"])
    assert set(kept.column("conversation_id").to_pylist()) == {"src:2"}
    assert (excluded.messages, excluded.conversations) == (3, 2)


def test_ingest_reports_counts_and_refuses_to_exclude_a_whole_export():
    cfg = config.validate(
        {
            "me": ["Elijah Moreau"],
            "sources": {"tg": {"path": str(EXAMPLES / "exports/telegram/result.json")}},
            "privacy": {"exclude_contacts": ["marco rossi"]},
        }
    )
    with pytest.raises(UserError, match="exclude every message of this export"):
        ingest(SourceSpec.from_config(cfg, "tg"))
    cfg["privacy"] = {"exclude_contacts": ["Nobody"], "exclude_conversations": []}
    table, report = ingest(SourceSpec.from_config(cfg, "tg"))
    assert report["excluded_messages"] == 0 and table.num_rows == report["messages"]

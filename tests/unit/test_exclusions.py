"""Excluded contacts and conversations are dropped right after parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from messages import make_messages

from mindupload import config
from mindupload.errors import UserError
from mindupload.ingest.exclusions import exclude, group_conversations
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


def test_group_conversations_are_those_where_more_than_one_other_person_writes():
    rows = [*ROWS, ("src:3", "Carl", False, "Dee joined", "system"), ("src:3", "Dee", False, "", "system")]
    assert group_conversations(make_messages(rows)) == ["src:2"]


def whole_account(tmp_path: Path, **switches) -> dict:
    data = (Path(__file__).parents[1] / "fixtures/telegram/whole_account.json").read_text()
    (tmp_path / "result.json").write_text(data)
    cfg = config.validate({"me": ["Alex Doe"], "sources": {"tg": {"path": str(tmp_path / "result.json"), **switches}}})
    return cfg


def test_group_chats_are_kept_by_default_and_counted(tmp_path):
    cfg = whole_account(tmp_path)
    table, report = ingest(SourceSpec.from_config(cfg, "tg"))
    assert (report["group_conversations"], report["group_chats"], report["excluded_group_messages"]) == (
        1,
        "included",
        0,
    )
    assert "tg:5500" in table.column("conversation_id").to_pylist()


@pytest.mark.parametrize(("top", "per_source"), [(False, None), (True, False)])
def test_group_chats_false_leaves_groups_out_globally_or_per_source(tmp_path, top, per_source):
    cfg = whole_account(tmp_path, group_chats=per_source)
    cfg["group_chats"] = top
    table, report = ingest(SourceSpec.from_config(cfg, "tg"))
    assert set(table.column("conversation_id").to_pylist()) == {"tg:4400112233"}
    assert report["group_chats"] == "excluded" and report["excluded_group_messages"] > 0
    assert report["conversations"] == 1


def test_a_per_source_true_keeps_groups_against_a_global_false(tmp_path):
    cfg = whole_account(tmp_path, group_chats=True)
    cfg["group_chats"] = False
    assert ingest(SourceSpec.from_config(cfg, "tg"))[1]["group_chats"] == "included"

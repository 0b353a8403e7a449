"""Discord: DiscordChatExporter JSON (file, folder, zip) and Discord's own data package."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from exports import FIXTURES, check_expected, expected, rows, spec_for, zip_folder

from mindupload.errors import ParseError
from mindupload.ingest.sources import SourceSpec, _exports, detect_format, discord

DCE = FIXTURES / "discord" / "dce"
PACKAGE = FIXTURES / "discord" / "package"


def test_a_folder_of_exports_reads_every_channel_exactly():
    check_expected(discord.parse, DCE)


def test_the_zip_of_the_folder_reads_the_same(tmp_path):
    check_expected(discord.parse, DCE, zip_folder(DCE, tmp_path / "discord.zip", prefix="exports/"))


def test_one_file_is_one_conversation():
    result = discord.parse(spec_for(DCE, DCE / "dm_jamie.json"))
    want = [row for row in expected(DCE)["messages"] if row[0] == "dc:900000000000000111"]
    assert rows(result) == want


@pytest.mark.parametrize("me", ["700000000000000001", "ALEXDOE", "alex  doe"])
def test_me_matches_the_author_id_name_or_nickname(me):
    result = discord.parse(SourceSpec("dc", DCE, me=(me,)))
    own = set(result.table.filter(result.table.column("is_self")).column("text").to_pylist())
    assert "pads or cable?" in own or me == "alex  doe"  # the thread message has no nickname
    assert "yes! can you bring the spare tube? 🚲" in own


def test_a_channel_exported_twice_is_read_once(tmp_path):
    folder = tmp_path / "dce"
    shutil.copytree(DCE, folder)
    shutil.copy(folder / "dm_jamie.json", folder / "dm_jamie [part 2].json")
    result = discord.parse(spec_for(DCE, folder))
    assert rows(result) == expected(DCE)["messages"]
    assert result.notes == ["5 messages found in more than one file were read once."]


def dce_file(tmp_path: Path, messages: list) -> Path:
    data = json.loads((DCE / "dm_jamie.json").read_text(encoding="utf-8"))
    data["messages"] = messages
    path = tmp_path / "channel.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_bad_record_is_named_by_file_and_record_without_its_text(tmp_path):
    good = json.loads((DCE / "dm_jamie.json").read_text(encoding="utf-8"))["messages"]
    broken = {**good[1], "timestamp": "yesterday", "content": "SECRET words"}
    path = dce_file(tmp_path, [good[0], broken, good[2]])
    with pytest.raises(ParseError) as error:
        discord.parse(SourceSpec("dc", path, me=("alexdoe",)))
    message = str(error.value)
    assert f"{path}, record 2: unreadable `timestamp`" in message
    assert "SECRET" not in message


def test_bad_records_are_skipped_within_max_bad_fraction(tmp_path, caplog):
    good = json.loads((DCE / "dm_jamie.json").read_text(encoding="utf-8"))["messages"]
    path = dce_file(tmp_path, [good[0], {**good[1], "author": None}, good[2]])
    with caplog.at_level(logging.WARNING):
        result = discord.parse(SourceSpec("dc", path, me=("alexdoe",), max_bad_fraction=0.5))
    assert result.bad_lines == [2] and result.units_read == 3 and result.table.num_rows == 2
    assert f"{path}, record 2: no `author` with an `id`" in caplog.text


def test_a_truncated_export_names_the_record_where_it_stops(tmp_path):
    text = (DCE / "dm_jamie.json").read_text(encoding="utf-8")
    path = tmp_path / "cut.json"
    path.write_text(text[: text.index('"id": "1000000000000000003"') + 10], encoding="utf-8")
    with pytest.raises(ParseError, match=r"cut\.json, record 3: the JSON ends early: the file is truncated"):
        discord.parse(SourceSpec("dc", path))


def test_the_data_package_reads_json_and_csv_channels_as_the_users_own():
    check_expected(discord.parse, PACKAGE)


def test_the_data_package_zip_as_downloaded_reads_the_same(tmp_path):
    check_expected(discord.parse, PACKAGE, zip_folder(PACKAGE, tmp_path / "package.zip"))


@pytest.mark.parametrize("path", [DCE, DCE / "club_general.json", PACKAGE])
def test_auto_detection(path):
    assert detect_format(path) == "discord"
    assert discord.sniff(path)


def test_other_exports_are_not_taken_for_discord():
    for path in (FIXTURES / "telegram" / "personal_chat.json", FIXTURES / "slack" / "export", FIXTURES / "messenger"):
        assert not discord.sniff(path)


def test_files_above_the_whole_file_size_are_streamed_with_the_same_result(monkeypatch):
    monkeypatch.setattr(_exports, "WHOLE_FILE_BYTES", 0)
    check_expected(discord.parse, DCE)
    check_expected(discord.parse, PACKAGE)


def test_the_parse_report_carries_the_package_note(tmp_path):
    from mindupload.ingest.parse import ingest

    _, report = ingest(SourceSpec("dc", PACKAGE))
    assert report["notes"] == [discord.PACKAGE_NOTE]
    assert report["records_read"] == 5 and report["own_messages"] == 5


@pytest.mark.parametrize("size", [1 << 10, 40 << 20])  # decoded whole, and streamed
def test_json_nested_past_the_depth_limit_fails_at_once_with_bounded_memory(tmp_path, size):
    """A 400 KB file nesting 200,000 levels made streaming parsers use memory growing with the square of the
    depth (issue 15); every JSON file of these exports goes through the same depth guard as Telegram's."""
    head = '{"guild": {"id": "1", "name": "g"}, "channel": {"id": "2", "type": "DirectTextChat"}, "messages": ['
    body = " " * max(0, size - 400_000) + "[" * 200_000
    path = tmp_path / "deep.json"
    path.write_text(head + body)
    with pytest.raises(ParseError, match="nests deeper than 64 levels"):
        discord.parse(SourceSpec("dc", path, format="discord", me=("alexdoe",)))


def test_a_zip_member_that_expands_like_a_bomb_is_refused_before_it_is_read(tmp_path):
    import zipfile

    path = tmp_path / "package.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("deep/c1/messages.json", "[" + " " * (8 << 20) + "]")  # 8 MB of spaces: ~1000x
    with _exports.ExportTree(path, SourceSpec("dc", path)) as tree, pytest.raises(ParseError, match="expands"):
        tree.read_json("deep/c1/messages.json")

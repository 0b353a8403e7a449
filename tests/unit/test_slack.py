"""Slack workspace export: the zip as downloaded or its folder."""

from __future__ import annotations

import json
import shutil

import pyarrow.compute as pc
import pytest
from exports import FIXTURES, check_expected, zip_folder

from mindupload.errors import ParseError
from mindupload.ingest.sources import SourceSpec, detect_format, slack

EXPORT = FIXTURES / "slack" / "export"


def test_the_export_reads_every_channel_dm_and_group_dm_exactly():
    check_expected(slack.parse, EXPORT)


def test_the_zip_as_downloaded_reads_the_same(tmp_path):
    check_expected(slack.parse, EXPORT, zip_folder(EXPORT, tmp_path / "Acme Slack export Mar 1 2023 - Mar 31 2023.zip"))


@pytest.mark.parametrize("me", ["U01ALEX", "alex", "Alex Doe"])
def test_me_matches_the_user_id_handle_or_names(me):
    result = slack.parse(SourceSpec("sl", EXPORT, me=(me,)))
    assert set(result.table.filter(result.table.column("is_self")).column("sender").to_pylist()) == {"Alex"}


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("hi <@U02JAMIE>", "hi @Jamie Rivera"),
        ("hi <@U09GONE>", "hi @U09GONE"),
        ("<@U03SAM|sam> ok", "@sam ok"),
        ("see <#C02RIDES>", "see #rides"),
        ("see <#C02RIDES|rides>", "see #rides"),
        ("<!channel> and <!here|here>", "@channel and @here"),
        ("<!subteam^S01|@mechanics> help", "@mechanics help"),
        ("<!date^1678784400^{date}|March 14th, 2023>", "March 14th, 2023"),
        ("<https://example.org|the site> <https://example.org/a>", "the site https://example.org/a"),
        ("<mailto:a@example.org|a@example.org>", "a@example.org"),
        ("5 &lt; 6 &amp;&amp; 7 &gt; 6", "5 < 6 && 7 > 6"),
        ("a &lt;b&gt; c", "a <b> c"),
    ],
)
def test_markup_is_rendered_as_the_text_people_saw(tmp_path, raw, shown):
    folder = tmp_path / "export"
    shutil.copytree(EXPORT, folder)
    (folder / "general" / "2023-03-14.json").write_text(
        json.dumps([{"type": "message", "user": "U01ALEX", "ts": "1678784400.000100", "text": raw}])
    )
    result = slack.parse(SourceSpec("sl", folder, me=("Alex",)))
    general = result.table.filter(pc.equal(result.table.column("conversation_id"), "sl:general"))
    assert general.column("text")[0].as_py() == shown


def test_a_bad_record_is_named_by_day_file_and_record(tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(EXPORT, folder)
    day = folder / "D0AB12CD" / "2023-03-14.json"
    data = json.loads(day.read_text())
    data[1]["ts"] = "soon"
    day.write_text(json.dumps(data))
    with pytest.raises(ParseError) as error:
        slack.parse(SourceSpec("sl", folder, me=("Alex",)))
    assert f"{day}, record 2: no readable `ts`" in str(error.value)
    assert "brakes" not in str(error.value)


def test_auto_detection_needs_users_json_beside_a_conversation_list(tmp_path):
    assert detect_format(EXPORT) == "slack"
    folder = tmp_path / "export"
    shutil.copytree(EXPORT, folder)
    (folder / "users.json").unlink()
    assert not slack.sniff(folder)

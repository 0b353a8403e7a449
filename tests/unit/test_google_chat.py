"""Google Chat from Google Takeout."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import pytest
from exports import FIXTURES, check_expected, expected, rows, spec_for, zip_folder
from hypothesis import given
from hypothesis import strategies as st

from mindupload.errors import ParseError
from mindupload.ingest.sources import SourceSpec, detect_format, google_chat
from mindupload.ingest.sources.google_chat import _BadRecord, _Dates, created_us

TAKEOUT = FIXTURES / "google_chat" / "takeout"
DM = TAKEOUT / "Takeout" / "Google Chat" / "Groups" / "DM 3xAbCdEAAAE"


def test_the_takeout_reads_every_dm_and_space_exactly_with_the_owner_as_me():
    check_expected(google_chat.parse, TAKEOUT)


def test_the_takeout_zip_as_downloaded_reads_the_same(tmp_path):
    check_expected(google_chat.parse, TAKEOUT, zip_folder(TAKEOUT, tmp_path / "takeout-20240501T000000Z-001.zip"))


def test_one_messages_json_reads_that_conversation_with_me_set():
    result = google_chat.parse(SourceSpec("gc", DM / "messages.json", me=("alex.doe@example.org",)))
    assert rows(result) == [row for row in expected(TAKEOUT)["messages"] if row[0] == "gc:DM 3xAbCdEAAAE"]


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("Wednesday, March 15, 2023 at 2:04:05 PM UTC", datetime(2023, 3, 15, 14, 4, 5)),
        ("Wednesday, March 15, 2023 at 2:04:05\u202fPM UTC", datetime(2023, 3, 15, 14, 4, 5)),
        ("Thursday, March 16, 2023 at 12:00:00 AM UTC", datetime(2023, 3, 16, 0, 0, 0)),
        ("Thursday, March 16, 2023 at 12:30:00 PM UTC", datetime(2023, 3, 16, 12, 30, 0)),
        ("March 16, 2023 at 9:15:00 AM UTC", datetime(2023, 3, 16, 9, 15, 0)),
        ("Thursday, March 16, 2023 at 10:15:00 AM GMT+01:00", datetime(2023, 3, 16, 9, 15, 0)),
    ],
)
def test_created_date_is_read(text, moment):
    assert created_us(text) == int(moment.replace(tzinfo=UTC).timestamp()) * 1_000_000


@pytest.mark.parametrize(
    "text", ["Mittwoch, 15. März 2023 um 14:04:05 UTC", "March 32, 2023 at 1:00:00 PM UTC", "", None]
)
def test_unreadable_dates_are_bad_records(text):
    with pytest.raises(_BadRecord):
        created_us(text)


def test_a_bad_record_is_named_by_file_and_record(tmp_path):
    folder = tmp_path / "takeout"
    shutil.copytree(TAKEOUT, folder)
    path = folder / "Takeout/Google Chat/Groups/Space AAAAbikeclub/messages.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["messages"][1]["creator"] = None
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ParseError) as error:
        google_chat.parse(spec_for(TAKEOUT, folder))
    assert f"{path}, record 2: no `creator`" in str(error.value)


def test_auto_detection():
    assert detect_format(TAKEOUT) == "google_chat"
    assert detect_format(DM / "messages.json") == "google_chat"


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)), st.sampled_from([" ", "\u202f"]))
def test_dates_read_with_the_remembered_day_match_the_full_reading(moment, space):
    text = moment.strftime(f"%A, %B %-d, %Y at %-I:%M:%S{space}%p UTC")
    dates = _Dates()
    dates(moment.strftime("%A, %B %-d, %Y at 1:00:00 AM UTC"))  # the day is remembered now
    want = int(moment.replace(tzinfo=UTC, microsecond=0).timestamp()) * 1_000_000
    assert dates(text) == created_us(text) == want

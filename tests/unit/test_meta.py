"""Messenger and Instagram: Meta's "Download your information" JSON, and Messenger's encrypted-chats download."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from exports import FIXTURES, check_expected, expected, rows, spec_for, zip_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mindupload.errors import ParseError
from mindupload.ingest.sources import SourceSpec, _exports, detect_format, meta
from mindupload.ingest.sources._exports import fix_mojibake

MESSENGER = FIXTURES / "messenger" / "facebook-alexdoe-2024-05-02"
SECURE = FIXTURES / "messenger" / "secure-storage"
INSTAGRAM = FIXTURES / "instagram" / "instagram-alexdoe-2024-05-02"
THREAD = MESSENGER / "your_activity_across_facebook" / "messages" / "inbox" / "jamierivera_10158"


def meta_escaped(text: str) -> str:
    """What Meta writes: each UTF-8 byte of the text as its own character (then escaped as \\u00XX by JSON)."""
    return text.encode("utf-8").decode("latin-1")


def test_a_download_reads_every_thread_oldest_file_first_with_mojibake_repaired():
    check_expected(meta.parse, MESSENGER)


def test_the_zip_as_downloaded_reads_the_same(tmp_path):
    check_expected(meta.parse, MESSENGER, zip_folder(MESSENGER, tmp_path / "facebook-alexdoe-2024-05-02.zip"))


def test_one_thread_folder_reads_that_thread():
    result = meta.parse(spec_for(MESSENGER, THREAD))
    assert rows(result) == [row for row in expected(MESSENGER)["messages"] if row[0] == "fb:jamierivera_10158"]


def test_one_file_with_a_byte_order_mark_reads_that_part():
    assert (THREAD / "message_1.json").read_bytes().startswith(b"\xef\xbb\xbf")
    result = meta.parse(spec_for(MESSENGER, THREAD / "message_1.json"))
    assert [row[5] for row in rows(result)] == [
        "Deal. Same time as usual\nand bring Zoë",
        "",
        "",
        "",
        "Reacted 😂 to your message ",
    ]


def test_the_encrypted_chats_download_is_read():
    check_expected(meta.parse, SECURE)


def test_instagram_has_the_same_shape():
    check_expected(meta.parse, INSTAGRAM)


@pytest.mark.parametrize("path", [MESSENGER, SECURE, INSTAGRAM, THREAD, THREAD / "message_2.json"])
def test_auto_detection(path):
    assert detect_format(path) in ("messenger", "instagram")


def test_the_html_download_is_refused_with_what_to_do(tmp_path):
    thread = tmp_path / "messages" / "inbox" / "jamie_1"
    thread.mkdir(parents=True)
    (thread / "message_1.html").write_text("<html></html>")
    with pytest.raises(ParseError, match=r'HTML download.*format "JSON"'):
        meta.parse(SourceSpec("fb", tmp_path))


def test_a_bad_record_is_named_by_file_and_record(tmp_path):
    folder = tmp_path / "fb"
    shutil.copytree(MESSENGER, folder)
    part = folder / "your_activity_across_facebook/messages/inbox/jamierivera_10158/message_2.json"
    data = json.loads(part.read_text(encoding="utf-8"))
    del data["messages"][3]["timestamp_ms"]
    part.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ParseError) as error:
        meta.parse(SourceSpec("fb", folder, me=("Alex Doe",)))
    assert f"{part}, record 4: no `timestamp_ms`" in str(error.value)
    assert "Salut" not in str(error.value)


# --- mojibake --------------------------------------------------------------------------------------------------


@given(st.text(max_size=40))
def test_mojibake_round_trips(text):
    assert fix_mojibake(meta_escaped(text)) == text


@given(st.text(max_size=40).filter(lambda t: any(ord(c) > 0xFF for c in t)))
def test_correct_text_is_left_alone(text):
    assert fix_mojibake(text) == text


@pytest.mark.parametrize("text", ["café", "naïve Zoë", "plain ascii", "ß", "\u00a0"])
def test_correct_latin_text_is_left_alone(text):
    assert fix_mojibake(text) == text


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=30))
def test_mojibake_round_trips_through_the_parser(tmp_path, text):
    thread = {
        "participants": [{"name": meta_escaped("Zoë")}, {"name": "Alex Doe"}],
        "messages": [
            {"sender_name": meta_escaped("Zoë"), "timestamp_ms": 1714564800000, "content": meta_escaped(text)}
        ],
    }
    path = tmp_path / "message_1.json"
    path.write_text(json.dumps(thread, ensure_ascii=True), encoding="ascii")
    result = meta.parse(SourceSpec("fb", path, me=("Alex Doe",)))
    assert result.table.column("text").to_pylist() in ([text], [""])  # "" where the text reads as a notice
    assert result.table.column("sender").to_pylist() == ["Zoë"]


def test_message_requests_are_not_read_and_the_stats_say_so():
    result = meta.parse(spec_for(MESSENGER))
    assert "Some Stranger" not in result.table.column("sender").to_pylist()
    assert result.notes == ["1 message-request threads were not read."]


def test_files_outside_inbox_are_not_threads(tmp_path: Path):
    (tmp_path / "messages").mkdir()
    (tmp_path / "messages" / "autofill_information.json").write_text('{"autofill_information_v2": {}}')
    assert not meta.sniff(tmp_path)


def test_files_above_the_whole_file_size_are_streamed_with_the_same_result(monkeypatch):
    monkeypatch.setattr(_exports, "WHOLE_FILE_BYTES", 0)
    check_expected(meta.parse, MESSENGER)
    check_expected(meta.parse, SECURE)

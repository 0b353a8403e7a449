"""The SMS Backup & Restore XML parser: a fixture with its expected parse, streaming in bounded memory, the
app's surrogate-pair emoji across read boundaries, and bad input."""

from __future__ import annotations

import base64
import tracemalloc
from pathlib import Path

import pytest
from expected import check

from mindupload.errors import ParseError
from mindupload.ingest.sources import SourceSpec, detect_format, sms

FIXTURE = Path(__file__).parents[1] / "fixtures" / "sms" / "backup.xml"
HEAD = b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<smses count=\"1\">\n"


def test_fixture() -> None:
    check(FIXTURE, "sms", sms.parse)


def test_fixture_is_detected() -> None:
    assert detect_format(FIXTURE) == "sms"


def sms_row(n: int, body: str = "hi", box: str = "1", address: str = "+15550100") -> bytes:
    return (
        f'<sms address="{address}" date="{1_700_000_000_000 + n * 1000}" type="{box}" body="{body}" '
        'contact_name="Robin" />\n'
    ).encode()


def write(tmp_path: Path, *rows: bytes, close: bool = True) -> Path:
    path = tmp_path / "sms.xml"
    path.write_bytes(HEAD + b"".join(rows) + (b"</smses>\n" if close else b""))
    return path


@pytest.mark.parametrize("chunk", [7, 16, 23, 64])
def test_surrogate_pairs_are_joined_wherever_a_read_ends(tmp_path: Path, monkeypatch, chunk: int) -> None:
    monkeypatch.setattr(sms, "CHUNK", chunk)
    bodies = ["&#55357;&#56842;", "a&#xD83D;&#xDE0A;b", "&#55357;", "&#56842;x&#128512;", "&amp;#55357;"]
    path = write(tmp_path, *(sms_row(i, b) for i, b in enumerate(bodies)))
    texts = sms.parse(SourceSpec("s", path)).table.column("text").to_pylist()
    assert texts == ["😊", "a😊b", "\ufffd", "\ufffdx😀", "&#55357;"]


def test_sent_and_received_and_skipped_boxes(tmp_path: Path) -> None:
    rows = [sms_row(0, "in", "1"), sms_row(1, "out", "2"), sms_row(2, "draft", "3"), sms_row(3, "failed", "5")]
    result = sms.parse(SourceSpec("s", write(tmp_path, *rows), me=("Eli",)))
    table = result.table
    assert table.column("text").to_pylist() == ["in", "out"]
    assert table.column("sender").to_pylist() == ["Robin", "Eli"]
    assert table.column("is_self").to_pylist() == [False, True]
    assert result.units_read == 4 and result.bad_lines == []


def test_a_truncated_file_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, sms_row(0), sms_row(1), b'<sms address="+1" date="1" ty', close=False)
    with pytest.raises(ParseError, match=r"sms\.xml, line 5: not valid XML here") as error:
        sms.parse(SourceSpec("s", path))
    assert "hi" not in str(error.value)


def test_other_xml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calls.xml"
    path.write_bytes(b'<?xml version="1.0"?>\n<calls count="0"></calls>\n')
    assert not sms.sniff(path)
    with pytest.raises(ParseError, match="not an SMS Backup & Restore file"):
        sms.parse(SourceSpec("s", path))


def test_memory_stays_bounded_with_large_inline_media(tmp_path: Path) -> None:
    """40 MMS with 1 MiB images (about 56 MB of XML): Python's peak allocation stays near one message's size."""
    media = base64.b64encode(bytes(range(256)) * 4096)
    path = tmp_path / "big.xml"
    with open(path, "wb") as f:
        f.write(HEAD)
        for n in range(40):
            f.write(
                f'<mms date="{1_700_000_000_000 + n}" msg_box="1" address="+15550100"><parts>'
                f'<part ct="text/plain" text="pic {n}" /><part ct="image/jpeg" data="'.encode()
                + media
                + b'" /></parts><addrs><addr address="+15550100" type="137" /></addrs></mms>\n'
            )
            f.write(sms_row(n))
        f.write(b"</smses>\n")
    assert path.stat().st_size > 50_000_000
    tracemalloc.start()
    try:
        result = sms.parse(SourceSpec("s", path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.table.num_rows == 80
    assert set(result.table.column("kind").to_pylist()) == {"media", "text"}
    assert peak < 12 * len(media), peak  # a few copies of one image, never the file

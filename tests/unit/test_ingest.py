import json
import subprocess
import sys
from pathlib import Path

import pytest

from mindupload.errors import UserError
from mindupload.ingest.parse import ingest
from mindupload.ingest.sources import SourceSpec, detect_format

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_formats_are_recognised_from_the_files_first_bytes():
    assert detect_format(EXAMPLES / "exports/WhatsApp Chat with Anna.txt") == "whatsapp"
    assert detect_format(EXAMPLES / "exports/telegram/result.json") == "telegram"
    assert detect_format(EXAMPLES / "generic/chat.csv") == "generic"


def test_an_unknown_format_says_what_is_supported(tmp_path):
    odd = tmp_path / "notes.txt"
    odd.write_text("shopping list\nmilk\neggs\n")
    with pytest.raises(UserError, match=r"notes\.txt: cannot tell which chat export this is.*set `format:`"):
        ingest(SourceSpec(name="x", path=odd, me=("Eli",)))


def test_a_missing_export_names_the_config_key(tmp_path):
    with pytest.raises(UserError, match=r"no such file\. Check `path:`"):
        ingest(SourceSpec(name="x", path=tmp_path / "gone.txt", me=("Eli",)))


def test_a_file_of_another_format_than_configured_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"result\.json"):
        ingest(SourceSpec(name="x", path=EXAMPLES / "exports/telegram/result.json", format="whatsapp", me=("E",)))


def test_the_cli_prints_one_line_and_leaves_no_output(tmp_path):
    odd = tmp_path / "notes.txt"
    odd.write_text("shopping list\nmilk\n")
    spec = {
        "name": "x",
        "path": str(odd),
        "format": "auto",
        "me": ["Eli"],
        "date_order": "auto",
        "timezone": "UTC",
        "max_bad_fraction": 0.0,
    }
    out = tmp_path / "x.parquet"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mindupload",
            "parse",
            "--spec",
            json.dumps(spec),
            "--table",
            str(out),
            "--report",
            str(tmp_path / "x.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("mindupload: error: ") and "Traceback" not in proc.stderr
    assert "milk" not in proc.stderr  # never message text
    assert not out.exists() and not list(tmp_path.glob(".x.parquet*"))

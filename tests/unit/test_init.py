"""`mindupload init`: every export of a folder found through the format registry, senders shown on the terminal
only, `me` proposed, a config written that validates and lists every export, never overwritten silently."""

from __future__ import annotations

import json
import logging
import sys
import types
from pathlib import Path

import pytest
import yaml
from own_chats import ME, OTHERS, WHATSAPP_ZIP, copy_exports

from mindupload import cli, config
from mindupload.ingest import init as init_module
from mindupload.ingest.sources import FORMATS

EXAMPLES = Path(__file__).parents[2] / "examples"


def run_init(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """`mindupload init` in `tmp_path` as a user runs it: exit code, stdout, stderr."""
    import contextlib
    import io
    import os

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["init", *args])
    finally:
        os.chdir(cwd)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def user(tmp_path) -> Path:
    copy_exports(tmp_path / "data")
    return tmp_path


def test_init_lists_each_export_with_its_senders_and_writes_a_config_that_validates(user, caplog):
    with caplog.at_level(logging.DEBUG):
        code, out, err = run_init(user)
    assert code == 0, err
    assert f"data/{WHATSAPP_ZIP}  (whatsapp, 1 conversation(s), 2024-04-13 to " in out
    assert "data/lee.csv  (generic" in out
    assert "data/Telegram Desktop/ChatExport_2024-06-30/result.json  (telegram" in out
    for name in (ME, *OTHERS):
        assert name in out
    assert f"me: {ME}  (writes in 3 of 3 exports)" in out
    assert "1 other file(s) in data" in out  # the photo in the Telegram folder (the zip holds its own)
    cfg = config.validate(yaml.safe_load((user / "my-config.yaml").read_text()))
    assert cfg["me"] == [ME]
    assert sorted(cfg["sources"]) == ["generic", "telegram", "whatsapp"]
    assert cfg["sources"]["whatsapp"]["path"] == f"data/{WHATSAPP_ZIP}"
    assert {s["format"] for s in cfg["sources"].values()} == {"whatsapp", "telegram", "generic"}
    # Names go to the terminal, not to stderr (which Snakemake would copy into logs) nor to the log.
    # (Logs name files, and a WhatsApp zip is named after the contact: that path is the one exception.)
    for name in (ME, *OTHERS):
        assert name not in err and name not in caplog.text.replace(WHATSAPP_ZIP, "")
    # The config holds the user's own name and paths, never the other people's names.
    text = (user / "my-config.yaml").read_text()
    assert not [name for name in OTHERS if name in text.replace(f"data/{WHATSAPP_ZIP}", "")]


def test_the_message_counts_are_those_the_parsers_read(user):
    _, out, _ = run_init(user)
    csv_rows = (Path(__file__).parents[1] / "fixtures/own_chats/lee.csv").read_text().splitlines()[1:]
    own = sum(1 for row in csv_rows if ",robin quinn," in row)
    assert f"  robin quinn  {own:>8}" in out
    assert f"  Lee Moreno   {len(csv_rows) - own:>8}" in out


def test_an_existing_config_is_never_overwritten_without_force(user):
    (user / "my-config.yaml").write_text("me: [Somebody]\n")
    code, _, err = run_init(user)
    assert code == 1 and "my-config.yaml exists" in err and "--force" in err
    assert (user / "my-config.yaml").read_text() == "me: [Somebody]\n"
    assert run_init(user, "--force")[0] == 0
    assert config.load(user / "my-config.yaml")["me"] == [ME]


def test_output_and_folder_can_be_named(user):
    (user / "data").rename(user / "exports")
    code, _, err = run_init(user, "exports", "--output", "configs/robin.yaml")
    assert code == 0, err
    assert config.load(user / "configs/robin.yaml")["sources"]["telegram"]["path"].startswith("exports/")


def test_one_export_alone_does_not_say_who_you_are(tmp_path):
    copy_exports(tmp_path / "all")
    (tmp_path / "data").mkdir()
    (tmp_path / "all" / "lee.csv").rename(tmp_path / "data" / "lee.csv")
    code, out, _ = run_init(tmp_path)
    assert code == 0
    assert "could not tell which sender is you" in out
    cfg = yaml.safe_load((tmp_path / "my-config.yaml").read_text())
    assert cfg["me"] == ["YOUR NAME AS IN THE EXPORTS"]  # fails at parse with a clear error until edited


def test_the_account_of_a_whole_account_telegram_export_is_you(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    whole = Path(__file__).parents[1] / "fixtures/telegram/whole_account.json"
    (data / "result.json").write_bytes(whole.read_bytes())
    code, out, _ = run_init(tmp_path)
    assert code == 0
    assert "(you, says the export)" in out
    assert "marked as you by the export itself" in out


def test_an_export_that_cannot_be_read_is_shown_and_left_out(user):
    html = Path(__file__).parents[1] / "fixtures/telegram/messages.html"
    (user / "data" / "messages.html").write_bytes(html.read_bytes())
    (user / "data" / "result.json").write_text('{"messages": [')  # truncated
    code, out, err = run_init(user)
    assert code == 0, err
    assert "data/result.json  (telegram): cannot be read, left out: " in out
    cfg = config.load(user / "my-config.yaml")
    assert len(cfg["sources"]) == 3
    assert "not readable as telegram, left out" in (user / "my-config.yaml").read_text()


def test_a_folder_without_exports_is_an_error(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.md").write_text("hello")
    code, _, err = run_init(tmp_path)
    assert code == 1 and "no chat export found (1 other files)" in err
    assert not (tmp_path / "my-config.yaml").exists()
    assert run_init(tmp_path, "nowhere")[2].startswith("mindupload: error: nowhere: no such folder")


def test_a_format_added_to_the_registry_is_found_and_read_by_its_own_parser(user, monkeypatch):
    """Formats added later take part through FORMATS: their `sniff` finds the file, their `parse` reads it."""
    from mindupload.ingest.sources import ParseResult, generic

    module = types.ModuleType("fake_lines_format")
    module.sniff = lambda path: path.suffix == ".lines"
    module.parse = lambda spec: ParseResult(
        table=generic.parse(spec.__class__(**{**spec.__dict__, "path": spec.path.with_suffix(".csv")})).table,
        units_read=1,
    )
    monkeypatch.setitem(sys.modules, "fake_lines_format", module)
    monkeypatch.setitem(FORMATS, "lines", "fake_lines_format")
    (user / "data" / "other.lines").write_text("anything")
    (user / "data" / "other.csv").write_bytes((user / "data" / "lee.csv").read_bytes())
    code, out, err = run_init(user, "--force")
    assert code == 0, err
    assert "data/other.lines  (lines, " in out


def test_names_in_the_config_are_quoted_yaml(tmp_path):
    export = init_module.Export(path=Path("data/a: b.txt"), format="whatsapp", messages=1, conversations=1)
    proposal = init_module.Proposal(me=['Zoë "Z" #1', "yes"], why="test", unmatched=[])
    text = init_module.render_config([export], proposal, Path("data"), "Europe/Paris")
    cfg = yaml.safe_load(text)
    assert cfg["me"] == ['Zoë "Z" #1', "yes"]
    assert cfg["sources"]["whatsapp"] == {"path": "data/a: b.txt", "format": "whatsapp", "timezone": "Europe/Paris"}
    json.dumps(cfg)

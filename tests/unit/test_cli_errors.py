"""How the `mindupload` command reports failures: user errors in one line, bugs without their message."""

import pytest

from mindupload import cli
from mindupload.config import commands as config_commands
from mindupload.errors import UserError

CANARY = "meet me at 12 Elm Street"


def _failing_with(error):
    def command(args):
        raise error

    return command


def test_a_user_error_is_one_line_naming_the_problem(monkeypatch, capsys):
    monkeypatch.setattr(config_commands, "cmd_config_docs", _failing_with(UserError("data/chat.txt:3: no date")))
    assert cli.main(["config-docs"]) == 1
    assert capsys.readouterr().err == "mindupload: error: data/chat.txt:3: no date\n"


def test_a_bug_is_reported_by_type_and_place_but_never_by_its_message(monkeypatch, capsys):
    monkeypatch.delenv("MINDUPLOAD_DEBUG", raising=False)
    monkeypatch.setattr(config_commands, "cmd_config_docs", _failing_with(KeyError(CANARY)))
    assert cli.main(["config-docs"]) == 2
    err = capsys.readouterr().err
    assert "internal error: KeyError" in err and f"{__file__}:" in err and "in command" in err
    assert CANARY not in err and "Traceback" not in err


def test_the_debug_switch_shows_the_whole_error(monkeypatch):
    monkeypatch.setenv("MINDUPLOAD_DEBUG", "1")
    monkeypatch.setattr(config_commands, "cmd_config_docs", _failing_with(KeyError(CANARY)))
    with pytest.raises(KeyError, match=CANARY):
        cli.main(["config-docs"])

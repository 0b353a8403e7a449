"""Options handed to a job outside its command line: by reference, never by text."""

from __future__ import annotations

import os

import pytest

from mindupload import joboptions
from mindupload.errors import UserError

OPTIONS = {"exclude_contacts": ["Canary Contact"], "system_prompt": "CONTEXT: canary persona"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in [name for name in os.environ if name.startswith(joboptions.PREFIX)]:
        monkeypatch.delenv(name)
    yield
    for name in [name for name in os.environ if name.startswith(joboptions.PREFIX)]:
        del os.environ[name]


def test_the_reference_names_a_digest_and_brings_the_options_back():
    reference = joboptions.hand_over(OPTIONS)
    assert reference.startswith("env:MINDUPLOAD_OPTIONS_")
    assert "Canary" not in reference and "canary" not in reference
    assert joboptions.read(reference, "--spec") == OPTIONS


def test_other_options_get_another_reference_the_same_ones_the_same():
    first = joboptions.hand_over(OPTIONS)
    assert joboptions.hand_over(dict(reversed(OPTIONS.items()))) == first
    assert joboptions.hand_over({**OPTIONS, "exclude_contacts": ["Someone Else"]}) != first


def test_a_child_process_inherits_them():
    import subprocess
    import sys

    reference = joboptions.hand_over(OPTIONS)
    code = "import sys; from mindupload import joboptions; print(joboptions.read(sys.argv[1], '--x'))"
    out = subprocess.run([sys.executable, "-c", code, reference], capture_output=True, text=True, check=True).stdout
    assert "Canary Contact" in out


def test_json_text_works_by_hand():
    assert joboptions.read('{"a": [1]}', "--options") == {"a": [1]}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("env:MINDUPLOAD_OPTIONS_0123456789abcdef0123456789abcdef", "not in this process's environment"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_values_are_one_line_errors(value, message):
    with pytest.raises(UserError, match=message) as error:
        joboptions.read(value, "--options")
    assert "\n" not in str(error.value) and str(error.value).startswith("--options")


def test_options_changed_behind_the_reference_are_refused():
    reference = joboptions.hand_over(OPTIONS)
    os.environ[reference.removeprefix("env:")] = '{"exclude_contacts": []}'
    with pytest.raises(UserError, match="does not hold the options it names"):
        joboptions.read(reference, "--spec")


def test_options_too_large_for_a_process_environment_are_refused_before_any_job():
    with pytest.raises(UserError, match=r"privacy\.blocklist"):
        joboptions.hand_over({"blocklist": ["term"] * 30_000})

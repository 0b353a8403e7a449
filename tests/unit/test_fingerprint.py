"""Code fingerprints: a command's fingerprint changes exactly when the code behind it does."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from mindupload import fingerprint
from mindupload.ingest.sources import FORMATS

COMMANDS = '''
"""The stage's commands."""

import argparse

LIMIT = 3


def cmd_make(args):
    """Make it."""
    from pkg.stage import maker

    maker.make(_twice(args.n))


def _twice(n):
    return 2 * n


def cmd_report(args):
    from pkg.stage import reporter

    reporter.report()


def register(sub):
    p = sub.add_parser("make", help="make it")
    p.add_argument("--n", type=int, default=1)
    p.set_defaults(func=cmd_make)

    p = sub.add_parser("report", help="report it")
    p.add_argument("--style", default="short")
    p.set_defaults(func=cmd_report)
'''

FILES = {
    "__init__.py": '__version__ = "1.0"\n',
    "errors.py": "class Oops(Exception):\n    pass\n",
    "stage/__init__.py": '"""A stage."""\n',
    "stage/commands.py": COMMANDS,
    "stage/maker.py": "from pkg import __version__\nfrom pkg.errors import Oops\n\n\n"
    "def make(n):\n    # the real work\n    return n + 1\n",
    "stage/reporter.py": "def report():\n    return 'ok'\n",
    "stage/unused.py": "X = 1\n",
}


@pytest.fixture
def package(tmp_path) -> Path:
    root = tmp_path / "pkg"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def fingerprints(root: Path) -> dict[str, str]:
    pkg = fingerprint.Package(root)
    return {command: pkg.command_fingerprint(command) for command in ("make", "report")}


def edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_command_reaches_the_modules_its_handler_imports_and_their_parents(package):
    pkg = fingerprint.Package(package)
    assert pkg.command_modules("make") == {"pkg.stage", "pkg.stage.maker", "pkg.errors"}
    assert pkg.command_modules("report") == {"pkg.stage", "pkg.stage.reporter"}


@pytest.mark.parametrize(
    ("name", "old", "new", "changed"),
    [
        ("stage/maker.py", "return n + 1", "return n + 2", {"make"}),  # a module the handler imports
        ("errors.py", "pass", "code = 2", {"make"}),  # imported by that module
        ("stage/commands.py", "return 2 * n", "return 3 * n", {"make"}),  # a helper the handler calls
        ("stage/commands.py", "default=1", "default=5", {"make"}),  # one of its options
        ("stage/commands.py", 'default="short"', 'default="long"', {"report"}),
        ("stage/commands.py", "LIMIT = 3", "LIMIT = 4", {"make", "report"}),  # shared by every handler
        ("stage/__init__.py", '"""A stage."""', "SETTING = 1", {"make", "report"}),  # runs on import
        ("stage/unused.py", "X = 1", "X = 2", set()),
        ("__init__.py", '"1.0"', '"2.0"', set()),  # the version is provenance, not code
        ("stage/maker.py", "# the real work", "# the real work, done well", set()),
        ("stage/commands.py", '"""Make it."""', '"""Make it, then stop."""', set()),
        ("stage/maker.py", "return n + 1", "return (n\n            + 1)", set()),  # formatting
    ],
)
def test_a_fingerprint_changes_exactly_when_the_code_behind_the_command_does(package, name, old, new, changed):
    before = fingerprints(package)
    edit(package, name, old, new)
    after = fingerprints(package)
    assert {command for command in before if before[command] != after[command]} == changed


def test_modules_loaded_by_name_count_when_named(package):
    pkg = fingerprint.Package(package)
    assert pkg.command_fingerprint("report") != pkg.command_fingerprint("report", ["pkg.stage.unused"])
    assert "pkg.stage.unused" in pkg.command_modules("report", ["pkg.stage.unused"])


def test_an_unknown_command_is_named():
    with pytest.raises(KeyError, match="cmd_no_such"):
        fingerprint.Package().command("no-such")


# ---------------------------------------------------------------- the real package


RULES = Path(__file__).resolve().parents[2] / "workflow" / "rules"


def rule_blocks() -> dict[str, str]:
    """Each rule's text, by name, from workflow/rules/*.smk."""
    blocks = {}
    for path in sorted(RULES.glob("*.smk")):
        for block in re.split(r"^(?=rule )", path.read_text(), flags=re.M)[1:]:
            blocks[block.split()[1].rstrip(":")] = block
    return blocks


def workflow_commands() -> dict[str, str]:
    """rule -> the mindupload subcommand its shell runs."""
    return {rule: m[1] for rule, block in rule_blocks().items() if (m := re.search(r"mindupload ([a-z-]+) ", block))}


def test_every_rule_runs_its_command_with_exec_and_carries_its_code_fingerprint():
    commands = workflow_commands()
    assert {"parse_source", "segment", "train", "sample_replies", "serve"} <= set(commands)
    for rule, command in commands.items():
        block = rule_blocks()[rule]
        if rule == "merge":  # a chain (axolotl merge-lora, the template, a rename): only the rename publishes
            assert block.rstrip().endswith('"mv {params.work_dir}/merged {output} && rm -r {params.work_dir}"')
        else:
            assert f"exec mindupload {command} " in block, f"{rule}: run `exec mindupload {command}` (no orphan)"
        if rule != "forget":  # no output to rerun
            expected = "code=parse_code," if rule == "parse_source" else f'code=code("{command}"),'
            assert expected in block, f"{rule}: params need {expected}"


def test_the_training_rules_carry_the_training_software():
    blocks = rule_blocks()
    assert all("software=TRAINING_SOFTWARE" in blocks[rule] for rule in ("check", "train", "merge"))
    assert "software" not in blocks["axolotl_config"] and "tokenizer=tokenizer_identity()" in blocks["segment"]


def test_each_format_counts_only_for_its_own_sources():
    pkg = fingerprint.Package()
    whatsapp = pkg.command_modules("parse", [FORMATS["whatsapp"]])
    telegram = pkg.command_modules("parse", [FORMATS["telegram"]])
    assert FORMATS["whatsapp"] in whatsapp and FORMATS["whatsapp"] not in telegram
    assert "mindupload.ingest.parse" in whatsapp & telegram


def test_the_chat_page_is_behind_serve_only():
    pkg = fingerprint.Package()
    commands = set(workflow_commands().values())
    behind = {command for command in commands if "mindupload.serving.chat_ui" in pkg.command_modules(command)}
    assert behind == {"serve", "api"}  # the API checks its address with the chat page's code; neither has outputs


def test_every_module_that_makes_an_output_is_behind_some_command():
    """A module nobody reaches by import would change no fingerprint: a module loaded by name (like the
    formats) must be named to the fingerprint, or listed here as making no output."""
    pkg = fingerprint.Package()
    reached = set(FORMATS.values())
    for command in set(workflow_commands().values()):
        reached |= pkg.command_modules(command, FORMATS.values() if command == "parse" else ())
        reached.add(pkg.command(command)[0])
    no_output = {
        "mindupload",  # the version: provenance, recorded in outputs (mindupload.provenance)
        "mindupload.__main__",
        "mindupload.cli",  # dispatches and prints errors
        "mindupload.config.commands",
        "mindupload.config.docs",  # config/README.md, not a workflow output
        "mindupload.config.workflow",  # validates the config in the Snakefile: what it fills in are params
        "mindupload.ingest.init",  # `mindupload init` writes a config for a person, not a workflow output
        "mindupload.remote",
        "mindupload.remote.commands",
        "mindupload.remote.profiles",
    }
    assert set(pkg.paths) - reached == no_output


def test_the_whole_package_is_fingerprinted_in_well_under_a_second():
    import time

    start = time.process_time()
    pkg = fingerprint.Package()
    for command in set(workflow_commands().values()):
        pkg.command_fingerprint(command)
    assert time.process_time() - start < 1.5


# ---------------------------------------------------------------- software and model folders


def test_versions_come_from_installed_metadata():
    assert fingerprint.versions("pytest", "no-such-distribution-here") == (
        f"pytest=={pytest.__version__} no-such-distribution-here (not installed)"
    )


def test_a_model_folder_is_known_by_its_small_files_not_its_weights(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"vocab": 1}')
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 100)
    first = fingerprint.folder_digest(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\1" * 100)
    assert fingerprint.folder_digest(tmp_path) == first
    (tmp_path / "tokenizer.json").write_text('{"vocab": 2}')
    assert fingerprint.folder_digest(tmp_path) != first

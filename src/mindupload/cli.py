"""`mindupload`: one subcommand per workflow rule. Rules call these; so can a person, to debug one stage.

Options that come from the config arrive as one JSON argument, so a rule passes exactly its `params`
(and Snakemake reruns the rule exactly when they change). User errors print one line and exit 1; anything
else is a bug, reported by type and place only (its message may quote a chat) unless MINDUPLOAD_DEBUG is set.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable

from mindupload.errors import DiskFullError, UserError, is_disk_full

# Each stage package owns its subcommands (`<stage>/commands.py`: handlers beside their arguments); listed in
# the workflow's order, which is also the order of `mindupload --help`.
COMMANDS = (
    "mindupload.ingest.commands",
    "mindupload.privacy.commands",
    "mindupload.model.commands",
    "mindupload.dataset.commands",
    "mindupload.training.commands",
    "mindupload.evaluation.commands",
    "mindupload.serving.commands",
    "mindupload.hub.commands",
    "mindupload.remote.commands",
    "mindupload.config.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mindupload", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    def command() -> None:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO, format="mindupload: %(message)s", stream=sys.stderr)
        args.func(args)

    return run(command)


def run(command: Callable[[], object]) -> int:
    """Run `command` as the CLI runs every subcommand: the exit status, and failures printed to stderr as one
    line (user errors, a full disk, Ctrl-C) or as a bug report without the error's message."""
    try:
        command()
    except KeyboardInterrupt:
        # Outputs appear only when complete (mindupload.files), so an interrupted command leaves none behind.
        print("mindupload: interrupted; no partial output was written.", file=sys.stderr)
        return 130
    except UserError as e:
        print(f"mindupload: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        if is_disk_full(e):  # a write outside mindupload.files: the file's name if the error has it
            print(f"mindupload: error: {DiskFullError(e.filename or 'a file being written', e.errno)}", file=sys.stderr)
            return 1
        if os.environ.get("MINDUPLOAD_DEBUG"):
            raise
        print(internal_error(e), file=sys.stderr)
        return 2
    return 0


def internal_error(error: BaseException) -> str:
    """A bug report without the exception's message: a KeyError or a pandas error can quote a chat message,
    and Snakemake copies stderr into logs."""
    frames = traceback.extract_tb(error.__traceback__)
    return "\n".join(
        [
            f"mindupload: internal error: {type(error).__name__} (its message is not shown: it may quote your chats)",
            *(f"  at {frame.filename}:{frame.lineno} in {frame.name}" for frame in frames),
            "Please report it with the lines above; MINDUPLOAD_DEBUG=1 shows the full message (it may hold text).",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())

"""`mindupload config-docs`: config/README.md, generated from the one config schema."""

from __future__ import annotations

import argparse
import sys


def cmd_config_docs(args: argparse.Namespace) -> None:
    from mindupload.config.docs import render

    sys.stdout.write(render())


def register(sub) -> None:
    p = sub.add_parser("config-docs", help="print config/README.md, generated from the config schema")
    p.set_defaults(func=cmd_config_docs)

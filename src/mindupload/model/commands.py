"""`mindupload embedded-model`: the base model stage's command (workflow/rules/model.smk)."""

from __future__ import annotations

import argparse


def cmd_embedded_model(args: argparse.Namespace) -> None:
    from mindupload.model import embedded

    embedded.convert(args.output)


def register(sub) -> None:
    p = sub.add_parser("embedded-model", help="convert the bundled SmolLM2-135M-Instruct GGUF to a model folder")
    p.add_argument("--output", required=True)
    p.set_defaults(func=cmd_embedded_model)

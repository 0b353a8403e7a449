"""`mindupload upload` and `push-adapter`: the Hub step (workflow/rules/hub.smk), only when the config names a
repo."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_upload(args: argparse.Namespace) -> None:
    from mindupload.hub import push

    settings = {**json.loads(args.settings), **push.describe_base_model(args.base_model)}
    report = json.loads(Path(args.report).read_text(encoding="utf-8"))
    push.push_dataset(args.repo, args.private == "true", args.train, args.validation, report, settings, args.receipt)


def cmd_push_adapter(args: argparse.Namespace) -> None:
    from mindupload.hub import push

    settings = {**json.loads(args.settings), **push.describe_base_model(args.base_model)}
    push.push_adapter(args.repo, args.private == "true", args.adapter, settings, args.receipt)


def register(sub) -> None:
    p = sub.add_parser("upload", help="train/validation + a dataset card -> a (private) Hub dataset repo; a receipt")
    _hub_arguments(p)
    p.add_argument("--train", required=True)
    p.add_argument("--validation", required=True)
    p.add_argument("--report", required=True, help="segments.json: counts for the card")
    p.set_defaults(func=cmd_upload)

    p = sub.add_parser("push-adapter", help="the adapter + a model card -> a (private) Hub model repo; a receipt")
    _hub_arguments(p)
    p.add_argument("--adapter", required=True, help="the adapter folder written by `train`")
    p.set_defaults(func=cmd_push_adapter)


def _hub_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", required=True, help="`namespace/name`, or `name` in the token owner's namespace")
    p.add_argument("--private", choices=["true", "false"], default="true")
    p.add_argument("--settings", required=True, help="the settings the card describes, as JSON (no names, no text)")
    p.add_argument("--base-model", required=True, help="named on the card (a local folder by its name only)")
    p.add_argument("--receipt", required=True, help="JSON receipt: repo id, revision, file digests")

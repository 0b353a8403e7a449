"""`mindupload parse` and `combine`: the ingest stage's commands (workflow/rules/ingest.smk); `init`, which
writes a first config from a folder of exports."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("mindupload")


def cmd_parse(args: argparse.Namespace) -> None:
    from mindupload import joboptions
    from mindupload.files import write_json
    from mindupload.ingest import table
    from mindupload.ingest.parse import ingest
    from mindupload.ingest.sources import SourceSpec

    spec = joboptions.read(args.spec, "--spec")
    lists = {key: tuple(spec[key]) for key in ("me", "exclude_contacts", "exclude_conversations") if key in spec}
    spec = SourceSpec(**{**spec, **lists, "path": Path(spec["path"])})
    messages, report = ingest(spec)
    table.write_atomic(messages, args.table)
    write_json(report, args.report)
    counts = report["messages"], report["own_messages"], report["conversations"]
    log.info("%s: %d messages (%d own) in %d conversation(s)", spec.name, *counts)
    if report["excluded_messages"]:
        log.info(
            "%s: excluded %d messages in %d whole conversation(s) and elsewhere",
            spec.name,
            report["excluded_messages"],
            report["excluded_conversations"],
        )


def cmd_combine(args: argparse.Namespace) -> None:
    from mindupload.ingest import table

    combined = table.combine(args.tables)
    table.write_atomic(combined, args.table)
    log.info("combined %d tables: %d messages", len(args.tables), combined.num_rows)


def cmd_init(args: argparse.Namespace) -> None:
    from mindupload.ingest.init import init

    init(Path(args.folder), Path(args.output), args.force)


def register(sub) -> None:
    p = sub.add_parser(
        "init",
        help="list who writes in each export of a folder and write a first config (my-config.yaml)",
        description="Find every chat export in FOLDER, print each one's senders with message counts and dates "
        "(on this terminal only), propose `me`, and write a config listing every export.",
    )
    p.add_argument("folder", nargs="?", default="data", help="where your exports are (default: data)")
    p.add_argument("--output", "-o", default="my-config.yaml", help="the config to write (default: my-config.yaml)")
    p.add_argument("--force", action="store_true", help="replace the output file if it exists")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("parse", help="one chat export -> normalized message table (Parquet)")
    p.add_argument("--spec", required=True, help="the source as JSON (SourceSpec fields) or an env: reference")
    p.add_argument("--table", required=True)
    p.add_argument("--report", required=True)
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("combine", help="per-export tables -> one table")
    p.add_argument("tables", nargs="+")
    p.add_argument("--table", required=True)
    p.set_defaults(func=cmd_combine)

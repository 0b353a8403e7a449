"""`mindupload parse` and `combine`: the ingest stage's commands (workflow/rules/ingest.smk)."""

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


def register(sub) -> None:
    p = sub.add_parser("parse", help="one chat export -> normalized message table (Parquet)")
    p.add_argument("--spec", required=True, help="the source as JSON (SourceSpec fields) or an env: reference")
    p.add_argument("--table", required=True)
    p.add_argument("--report", required=True)
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("combine", help="per-export tables -> one table")
    p.add_argument("tables", nargs="+")
    p.add_argument("--table", required=True)
    p.set_defaults(func=cmd_combine)

"""`mindupload redact` and `forget`: the privacy stage's commands (workflow/rules/privacy.smk)."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("mindupload")


def cmd_redact(args: argparse.Namespace) -> None:
    from mindupload import files, joboptions
    from mindupload.ingest import table
    from mindupload.privacy.redact import RedactOptions, redact_table, render_report

    options = RedactOptions.from_json(joboptions.read(args.options, "--options"))
    redacted, report = redact_table(table.read(args.messages), options)
    table.write_atomic(redacted, args.table)
    files.write_json(report, args.report)
    files.write_text_atomic(render_report(report), args.markdown)
    changed = report["messages_changed"]
    log.info("redacted: %d of other people's messages and %d of yours changed", changed["other"], changed["own"])


def cmd_forget(args: argparse.Namespace) -> None:
    from mindupload.privacy.forget import KEPT, forget, forget_hub_copies, pushed_dataset_repos

    repos = pushed_dataset_repos(args.root, args.hub_dataset)
    removed = forget(args.root, kept=(*KEPT, *args.keep))
    cached = forget_hub_copies(repos)
    for path in [*removed, *cached]:
        print(f"removed {path}")
    print(
        f"forgot {len(removed) + len(cached)} derived file(s) and folder(s); kept your exports and the public "
        "base model. Copies you pushed (Hub repos, storage buckets) and wandb runs are not touched."
    )


def register(sub) -> None:
    p = sub.add_parser("redact", help="messages -> messages with personal data and names replaced (+ report)")
    p.add_argument("--options", required=True, help="RedactOptions as JSON, or the workflow's env: reference")
    p.add_argument("--messages", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--report", required=True, help="counts per type and side (JSON), never the replaced text")
    p.add_argument("--markdown", required=True, help="the same report as Markdown")
    p.set_defaults(func=cmd_redact)

    p = sub.add_parser("forget", help="delete all data derived from your chats (results/, logs/, .snakemake records)")
    p.add_argument("--root", default=".", help="the workflow's folder (default: here)")
    p.add_argument("--keep", nargs="*", default=[], help="paths under the root to keep as well (this run's log)")
    p.add_argument("--hub-dataset", default="", help="hub.dataset_repo: its copy in the Hugging Face cache goes too")
    p.set_defaults(func=cmd_forget)

"""`mindupload turns`, `segment` and `stats`: the dataset stage's commands (workflow/rules/turns.smk,
segment.smk)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger("mindupload")


def cmd_turns(args: argparse.Namespace) -> None:
    from mindupload.dataset.turns import TurnOptions, build_turns
    from mindupload.files import write_json
    from mindupload.ingest import table

    turns, report = build_turns(table.read(args.messages), TurnOptions(**json.loads(args.options)))
    table.write_atomic(turns, args.table)
    write_json(report, args.report)
    log.info("%d turns (%d own), %d for validation", report["turns"], report["own_turns"], report["validation_turns"])


def cmd_segment(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq

    from mindupload import joboptions, provenance
    from mindupload.dataset.segment import SegmentOptions, write_segments
    from mindupload.files import write_json
    from mindupload.model import tokenizer
    from mindupload.render import Identity

    tok = tokenizer.load_for_counting(args.base_model)
    report = write_segments(
        pq.read_table(args.turns),
        Identity(**joboptions.read(args.identity, "--identity")),
        tokenizer.markers(tok),
        SegmentOptions(**json.loads(args.options)),
        tokenizer.counter(tok),
        {"train": args.train, "validation": args.validation},
    )
    report["provenance"] = provenance.collect(tokenizer.identity(args.base_model))
    write_json(report, args.report)
    log.info("segments: %s; own-turn coverage %.1f%%", report["segments"], 100 * report["own_turn_coverage"])
    if not report["segments"].get("validation", 0):
        log.warning("validation.jsonl is empty: no held-out own turn answers someone (see results/dataset/stats.md)")


def cmd_stats(args: argparse.Namespace) -> None:
    from mindupload.dataset.stats import render_stats
    from mindupload.files import write_text_atomic

    def load(path: str) -> dict:
        return json.loads(Path(path).read_text(encoding="utf-8"))

    redaction = load(args.redaction) if args.redaction else None
    text = render_stats([load(p) for p in args.sources], load(args.turns), load(args.segments), redaction)
    write_text_atomic(text, args.output)


def cmd_plots(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq

    from mindupload.dataset import plots
    from mindupload.files import write_text_atomic

    messages = pq.read_table(args.messages, columns=["timestamp", "source"])
    turns = pq.read_table(args.turns, columns=["timestamp", "split", "is_self"])
    write_text_atomic(plots.messages_per_month(messages), args.messages_per_month)
    write_text_atomic(plots.turns_by_split(turns), args.turns_by_split)
    write_text_atomic(plots.own_vs_other(turns), args.own_vs_other)


def register(sub) -> None:
    p = sub.add_parser("turns", help="messages -> turns, sessions and the train/validation split")
    p.add_argument("--options", required=True, help="TurnOptions as JSON")
    p.add_argument("--messages", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--report", required=True)
    p.set_defaults(func=cmd_turns)

    p = sub.add_parser("segment", help="turns -> axolotl input_output JSONL, fitted to sequence_len")
    p.add_argument("--options", required=True, help="SegmentOptions as JSON")
    p.add_argument("--identity", required=True, help="Identity as JSON, or the workflow's env: reference")
    p.add_argument("--base-model", required=True)
    p.add_argument("--turns", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--validation", required=True)
    p.add_argument("--report", required=True)
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("stats", help="stage reports -> a short human-readable stats file")
    p.add_argument("--sources", nargs="+", required=True, help="the parse reports")
    p.add_argument("--turns", required=True)
    p.add_argument("--segments", required=True)
    p.add_argument("--redaction", help="the redaction report (JSON)")
    p.add_argument("--output", required=True)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("plots", help="message and turn tables -> SVG pictures of the dataset (counts only)")
    p.add_argument("--messages", required=True, help="the (redacted) message table")
    p.add_argument("--turns", required=True, help="the turns table")
    p.add_argument("--messages-per-month", required=True, help="SVG: messages per month, by source")
    p.add_argument("--turns-by-split", required=True, help="SVG: turns per month, train and validation")
    p.add_argument("--own-vs-other", required=True, help="SVG: your turns and other people's, per split")
    p.set_defaults(func=cmd_plots)

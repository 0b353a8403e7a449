"""Redaction quality and speed: `python benchmarks/bench_redaction.py [--messages N] [--seed S]`.

1. Recall and precision per type on the labelled test set of tests/pii_corpus.py (at least 200 planted items
   of each type in the formats of several countries, plus distractors), and on its held-out part (phone
   notations and distractors the recognizers were never tuned on). An item counts as recalled when spans of
   its type cover all of it; a reported span counts as correct when it overlaps a planted item of its type.
2. Throughput of the whole `redact` stage (`redact_table`, default options) on a message table of N messages
   (default 1,000,000): the bundled example chats' messages repeated, with 2% of messages from the labelled
   set mixed in (real chats hold far fewer), and on the labelled set alone (every message holds digits or
   personal data: the worst case).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))

from pii_corpus import TYPES, corpus, held_out_corpus, score  # noqa: E402

from mindupload import config  # noqa: E402
from mindupload.ingest.sources import SourceSpec, parser_for  # noqa: E402
from mindupload.ingest.table import MESSAGE_SCHEMA  # noqa: E402
from mindupload.privacy.redact import RedactOptions, Redactor, redact_table  # noqa: E402

EXAMPLE = HERE.parent / "examples/exports/WhatsApp Chat with Anna.txt"


def quality(options: RedactOptions, seed: int) -> None:
    redactor = Redactor(options)
    main, held = score(corpus(seed), redactor.spans), score(held_out_corpus(seed), redactor.spans)
    print("| type | planted | recall | precision (false positives) | held-out planted | held-out recall | "
          "held-out precision |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for t in TYPES:
        fp, held_fp = main.predicted[t] - main.correct[t], held.predicted[t] - held.correct[t]
        held_cells = (
            f"{held.planted[t]} | {held.recall(t):.3f} | {held.precision(t):.3f} ({held_fp})"
            if held.planted[t] or held.predicted[t]
            else "- | - | -"
        )
        print(f"| {t} | {main.planted[t]} | {main.recall(t):.3f} | {main.precision(t):.3f} ({fp}) | {held_cells} |")


def throughput(options: RedactOptions, messages: int, seed: int) -> None:
    spec = SourceSpec("bench", EXAMPLE, me=("Elijah Moreau",))
    examples = parser_for(spec)(spec).table
    rng = np.random.default_rng(seed)
    pii = [s.text for s in corpus(seed)]
    base = examples.column("text").to_pylist()
    texts = [base[i % len(base)] for i in range(messages)]
    for i in rng.choice(messages, size=messages // 50, replace=False):
        texts[i] = pii[i % len(pii)]
    table = _table(texts, examples.column("sender").to_pylist(), examples.column("is_self").to_pylist())
    start = time.perf_counter()
    _, report = redact_table(table, options)
    seconds = time.perf_counter() - start
    print(
        f"\nredact_table on {messages:,} messages (2% from the labelled set): {seconds:.1f} s, "
        f"{messages / seconds:,.0f} messages/s; {report['screened_in']:,} passed the Arrow prefilters"
    )
    only = _table(pii, ["Anna Keller"], [False])
    start = time.perf_counter()
    redact_table(only, options)
    seconds = time.perf_counter() - start
    print(f"redact_table on the labelled set alone ({len(pii):,} messages): {len(pii) / seconds:,.0f} messages/s")


def _table(texts: list[str], senders: list[str], is_self: list[bool]) -> pa.Table:
    n = len(texts)
    return pa.table(
        {
            "source": ["bench"] * n,
            "conversation_id": ["bench"] * n,
            "message_id": np.arange(n),
            "timestamp": pa.array(np.arange(n) * 60_000_000, pa.timestamp("us", tz="UTC")),
            "sender": [senders[i % len(senders)] for i in range(n)],
            "is_self": [is_self[i % len(is_self)] for i in range(n)],
            "text": texts,
            "kind": ["text"] * n,
            "reply_to": pa.nulls(n, pa.int64()),
        }
    ).cast(MESSAGE_SCHEMA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    cfg = config.validate({"me": ["Elijah Moreau"], "sources": {"bench": {"path": str(EXAMPLE)}}})
    options = RedactOptions.from_config(cfg)
    quality(options, args.seed)
    throughput(options, args.messages, args.seed)


if __name__ == "__main__":
    main()

"""Pictures of the dataset for the report: messages per month per source, turns per month by split, your turns
against other people's. Counts only: no message text, no sender name (sources are the config's keys)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from mindupload.charts import bars, counts

SPLITS = ("train", "validation")
SPLIT_COLORS = {"train": "#3b7dd8", "validation": "#e0a84f"}


def tally(table: pa.Table, group: str, series: str) -> dict[str, dict[str, int]]:
    """{group value: {series value: rows}}, with a `month` column made from `timestamp` on demand."""
    if "month" in (group, series):
        table = table.append_column("month", pc.strftime(table.column("timestamp"), format="%Y-%m"))
    rows = table.group_by([group, series]).aggregate([([], "count_all")]).to_pylist()
    out: dict[str, dict[str, int]] = {}
    for row in sorted(rows, key=lambda r: (str(r[group]), str(r[series]))):
        out.setdefault(str(row[group]), {})[str(row[series])] = row["count_all"]
    return out


def messages_per_month(messages: pa.Table) -> str:
    """Messages per month, one series per source."""
    months = tally(messages, "month", "source")
    sources = sorted({s for m in months.values() for s in m})
    groups = {month: {s: m.get(s, 0) for s in sources} for month, m in months.items()}
    return bars("Messages per month, by source", counts(groups), digits=0)


def turns_by_split(turns: pa.Table) -> str:
    """Turns per month, train and validation: where the time split falls in each conversation."""
    months = tally(turns, "month", "split")
    groups = {month: {s: m.get(s, 0) for s in SPLITS} for month, m in months.items()}
    return bars("Turns per month, train and validation", counts(groups), colors=SPLIT_COLORS, digits=0)


def own_vs_other(turns: pa.Table) -> str:
    """Your turns (trained) and other people's (context), per split."""
    splits = tally(turns, "split", "is_self")
    groups = {
        s: {"yours": splits.get(s, {}).get("True", 0), "others'": splits.get(s, {}).get("False", 0)} for s in SPLITS
    }
    colors = {"yours": "#2f9e6b", "others'": "#9aa5b1"}
    return bars("Turns: yours (trained) and other people's (context)", counts(groups), colors=colors, digits=0)


def segment_lengths(histogram: list[dict], sequence_len: int) -> str:
    """The format check's length histogram (tokens per example), against sequence_len."""
    groups = {
        (f"{row['from']}–{row['to']}" if row["from"] <= sequence_len else f">{sequence_len}"): {
            "examples": {"value": row["count"]}
        }
        for row in histogram
    }
    return bars(f"Examples by length in tokens (window: {sequence_len})", groups, digits=0)

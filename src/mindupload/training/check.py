"""The format check, before any training: axolotl's own preprocess on the dataset, verified example by
example against the JSONL it came from, and a report a person can read.

For every example: the pieces alternate other people's text (label false) and the user's (label true),
starting with context that opens with the base model's BOS token and ending with an own turn that ends with
its EOS token; axolotl's labels are -100 exactly on the label:false pieces and equal the token ids on the
label:true ones; nothing is longer than `sequence_len`. Errors name the split, the example number (its line
in the JSONL file) and what is wrong, never the message text.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mindupload.errors import UserError
from mindupload.training import axolotl_config as train_config

log = logging.getLogger(__name__)

IGNORE = -100  # axolotl's label for tokens that are not trained
SPLITS = ("train", "validation")
MAX_LISTED = 10  # violations named in the error; report.json keeps up to MAX_KEPT
MAX_KEPT = 200
SHOWN_EXAMPLES = 3
PACKING_SIZES = (512, 1024, 2048, 4096, 8192)


@dataclass(frozen=True)
class Example:
    split: str
    number: int  # line number in its JSONL file, from 1
    pieces: tuple[tuple[bool, str], ...]


@dataclass
class Tokenized:
    ids: list[int]
    labels: list[int]  # what axolotl must produce: -100 on label:false pieces, the ids on label:true ones
    piece_ends: list[int]  # token index where each piece ends


@dataclass
class Findings:
    """Violations, counted by kind; the first few are kept in full."""

    kept: list[str] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)

    def add(self, kind: str, message: str) -> None:
        self.kinds[kind] += 1
        if len(self.kept) < MAX_KEPT:
            self.kept.append(message)

    def __bool__(self) -> bool:
        return bool(self.kinds)

    @property
    def count(self) -> int:
        return sum(self.kinds.values())


# ---------------------------------------------------------------- reading the dataset


def read_examples(path: str | Path, split: str) -> list[Example]:
    """The JSONL examples; UserError naming the file and line where one is not in the segments format."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                examples.append(Example(split, number, _pieces(line, path, number)))
    return examples


def _pieces(line: str, path: str | Path, number: int) -> tuple[tuple[bool, str], ...]:
    rebuild = "Rebuild the dataset with `snakemake dataset`."
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise UserError(f"{path}, line {number}: not valid JSON. {rebuild}") from None
    segments = record.get("segments") if isinstance(record, dict) else None
    if not isinstance(segments, list) or not segments:
        raise UserError(
            f"{path}, line {number}: no `segments` list (axolotl's input_output format needs one). {rebuild}"
        )
    pieces = []
    for piece in segments:
        if not (
            isinstance(piece, dict) and isinstance(piece.get("label"), bool) and isinstance(piece.get("text"), str)
        ):
            raise UserError(f"{path}, line {number}: a segment without a boolean `label` and a `text`. {rebuild}")
        pieces.append((piece["label"], piece["text"]))
    return tuple(pieces)


# ---------------------------------------------------------------- tokenizing as axolotl does


def tokenize(examples: list[Example], tokenizer) -> list[Tokenized]:
    """Each piece tokenized alone without special tokens, ids concatenated: axolotl's input_output."""
    texts = [text for ex in examples for _, text in ex.pieces]
    ids = iter(_encode(tokenizer, texts))
    out = []
    for ex in examples:
        tok = Tokenized([], [], [])
        for label, _ in ex.pieces:
            piece = next(ids)
            tok.ids += piece
            tok.labels += piece if label else [IGNORE] * len(piece)
            tok.piece_ends.append(len(tok.ids))
        out.append(tok)
    return out


def _encode(tokenizer, texts: list[str], batch: int = 4096) -> list[list[int]]:
    out: list[list[int]] = []
    for start in range(0, len(texts), batch):
        out += tokenizer(texts[start : start + batch], add_special_tokens=False)["input_ids"]
    return out


# ---------------------------------------------------------------- checks on the dataset itself


@dataclass(frozen=True)
class Specials:
    bos: str | None
    bos_id: int | None
    eos: str
    eos_id: int


def check_specials(tokenizer) -> Specials:
    """BOS and EOS text must each be the base model's single special token; else training would learn
    them as plain characters (SmolLM2's tokenizer splits `<s>`), and the model would never learn to stop."""
    if tokenizer.eos_token is None:
        raise UserError(f"base model tokenizer {tokenizer.name_or_path!r} has no EOS token: nothing to stop on.")
    bos = tokenizer.bos_token or None
    for name, text, token_id in (
        ("BOS", bos, tokenizer.bos_token_id),
        ("EOS", tokenizer.eos_token, tokenizer.eos_token_id),
    ):
        if text is None:
            continue
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if ids != [token_id]:
            raise UserError(
                f"the base model's {name} text {text!r} tokenizes to {len(ids)} tokens {ids[:8]} instead of its "
                f"single {name} token (id {token_id}): it would be trained as plain characters. Use a tokenizer "
                f"that treats {text!r} as a special token, or a base model whose {name} it is."
            )
    return Specials(bos, tokenizer.bos_token_id if bos else None, tokenizer.eos_token, tokenizer.eos_token_id)


def check_layout(ex: Example, tok: Tokenized, specials: Specials, sequence_len: int, findings: Findings) -> None:
    where = f"{ex.split} example {ex.number}"
    labels = [label for label, _ in ex.pieces]
    if labels[0]:
        findings.add("layout", f"{where}: starts with a label:true piece; the first must be context (label:false).")
    if not labels[-1]:
        findings.add("layout", f"{where}: ends with a label:false piece; the last must be your own turn (label:true).")
    for i in range(1, len(labels)):
        if labels[i] == labels[i - 1]:
            findings.add(
                "layout",
                f"{where}: pieces {i} and {i + 1} are both label:{str(labels[i]).lower()}; pieces must alternate "
                "other people's text (false) and yours (true).",
            )
            break
    if specials.bos_id is not None and tok.ids[:1] != [specials.bos_id]:
        findings.add(
            "bos",
            f"{where}: does not start with the base model's BOS token {specials.bos!r} (id {specials.bos_id}); "
            "was the dataset built for another tokenizer?",
        )
    if tok.ids[-1:] != [specials.eos_id]:
        findings.add(
            "eos",
            f"{where}: does not end with the base model's EOS token {specials.eos!r} (id {specials.eos_id}); "
            "the model would never learn to stop.",
        )
    if len(tok.ids) > sequence_len:
        findings.add("length", f"{where}: {len(tok.ids)} tokens, above sequence_len {sequence_len}.")


# ---------------------------------------------------------------- comparing with axolotl's preprocess


def compare(examples: list[Example], expected: list[Tokenized], prepared, split: str, findings: Findings) -> int:
    """Match axolotl's rows to our examples by token ids (it may shuffle), then compare labels.
    Returns how many examples were matched."""
    waiting: dict[tuple[int, ...], list[int]] = {}
    for i, tok in enumerate(expected):
        waiting.setdefault(tuple(tok.ids), []).append(i)
    unmatched = 0
    for row_ids, row_labels in zip(prepared["input_ids"], prepared["labels"], strict=True):
        candidates = waiting.get(tuple(row_ids))
        if not candidates:
            unmatched += 1
            continue
        i = candidates.pop()
        _compare_labels(examples[i], expected[i], list(row_labels), findings)
    if unmatched:
        findings.add(
            "tokens",
            f"{split}: {unmatched} of axolotl's examples are tokenized differently from the base model's tokenizer.",
        )
    for indexes in waiting.values():
        for i in indexes:
            findings.add("missing", f"{split} example {examples[i].number}: missing from axolotl's prepared data.")
    return len(prepared["input_ids"]) - unmatched


def _compare_labels(ex: Example, tok: Tokenized, labels: list[int], findings: Findings) -> None:
    where = f"{ex.split} example {ex.number}"
    trained_context = sum(1 for want, got in zip(tok.labels, labels, strict=True) if want == IGNORE and got != IGNORE)
    wrong_own = sum(1 for want, got in zip(tok.labels, labels, strict=True) if want != IGNORE and got != want)
    if trained_context:
        findings.add(
            "labels", f"{where}: {trained_context} token(s) of label:false text are trained (labels must be -100)."
        )
    if wrong_own:
        findings.add("labels", f"{where}: {wrong_own} token(s) of label:true text are not trained on their own ids.")


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def axolotl_preprocess(cfg_path: Path, cfg: dict) -> dict:
    """axolotl's preprocess (what `axolotl preprocess` does, without its debug print of a decoded example):
    tokenizes, drops what axolotl drops, and saves to `dataset_prepared_path`, where training finds it."""
    scratch = Path(tempfile.mkdtemp(prefix="mindupload-check-"))  # axolotl writes a debug.log in output_dir
    try:
        with _environ({**train_config.axolotl_environ(cfg), "AXOLOTL_IS_PREPROCESS": "1"}):
            from axolotl.cli.config import load_cfg
            from axolotl.common.datasets import load_datasets
            from axolotl.utils.trainer import disable_datasets_caching

            loaded = load_cfg(str(cfg_path), is_preprocess=True, output_dir=str(scratch))
            with disable_datasets_caching():
                meta = load_datasets(cfg=loaded)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"train": meta.train_dataset, "validation": meta.eval_dataset}


# ---------------------------------------------------------------- statistics


def pack(lengths: list[int], capacity: int) -> int:
    """Bins that first-fit-decreasing needs: each example, longest first, goes into the first bin it fits."""
    import numpy as np

    room = np.empty(0, dtype=np.int64)
    for length in sorted((n for n in lengths if n <= capacity), reverse=True):
        fits = np.flatnonzero(room >= length)
        if fits.size:
            room[fits[0]] -= length
        else:
            room = np.append(room, capacity - length)
    return int(room.size)


def packing(lengths: list[int], capacity: int) -> dict:
    bins = pack(lengths, capacity)
    total = sum(n for n in lengths if n <= capacity)
    return {"sequence_len": capacity, "bins": bins, "efficiency": round(total / (bins * capacity), 4) if bins else 0.0}


def histogram(lengths: list[int], sequence_len: int, buckets: int = 16) -> list[dict]:
    width = max(1, -(-sequence_len // buckets))  # buckets up to sequence_len; one more for longer examples
    counts = Counter(min(n // width, buckets - 1) if n <= sequence_len else buckets for n in lengths)
    rows = [{"from": b * width, "to": (b + 1) * width - 1, "count": counts[b]} for b in range(buckets)]
    if counts[buckets]:
        rows.append({"from": sequence_len + 1, "to": max(lengths), "count": counts[buckets]})
    return rows


def split_stats(tokens: list[Tokenized]) -> dict:
    lengths = [len(t.ids) for t in tokens]
    trained = sum(sum(1 for x in t.labels if x != IGNORE) for t in tokens)
    total = sum(lengths)
    return {
        "examples": len(tokens),
        "tokens": total,
        "trained_tokens": trained,
        "trained_share": round(trained / total, 4) if total else 0.0,
        "max_tokens": max(lengths, default=0),
        "mean_tokens": round(total / len(tokens), 1) if tokens else 0.0,
    }


PACKING_METHOD = (
    "first-fit-decreasing over the train split: examples, longest first, each go into the first sequence_len "
    "window with room; efficiency = total tokens / (windows x sequence_len). axolotl's multipack sampler packs "
    "per batch, so the real figure is close to this, or a little lower."
)


# ---------------------------------------------------------------- the report


def write_report(report: dict, shown: list[tuple[Example, Tokenized]], tokenizer, report_dir: Path) -> None:
    from mindupload import files
    from mindupload.dataset.plots import segment_lengths

    report_dir.mkdir(parents=True, exist_ok=True)
    files.write_json(report, report_dir / "report.json")
    files.write_text_atomic(segment_lengths(report["histogram"], report["sequence_len"]), report_dir / "lengths.svg")
    files.write_text_atomic(render_html(report, shown, tokenizer), report_dir / "report.html")


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }
.ok { color: #17692e; } .bad { color: #b3261e; }
.example { font-family: ui-monospace, monospace; white-space: pre-wrap; border: 1px solid #ccc;
  padding: .8em; line-height: 1.9; }
.t { border-right: 1px solid #bbb; padding: 0 1px; }
.trained { background: #c8f0c8; } .context { color: #666; } .special { font-weight: bold; color: #7a3db8; }
.bar { background: #6a8fd8; height: 1em; display: inline-block; }
td, th { padding: .2em .6em; text-align: left; }
"""


def render_html(report: dict, shown: list[tuple[Example, Tokenized]], tokenizer) -> str:
    e = html.escape
    status = (
        '<p class="ok">All checks passed.</p>'
        if report["ok"]
        else f'<p class="bad">{report["violations"]["count"]} problem(s):</p><ul>'
        + "".join(f"<li>{e(v)}</li>" for v in report["violations"]["first"][:50])
        + "</ul>"
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Dataset check</title><style>{STYLE}</style>",
        "</head><body><h1>Dataset check</h1>",
        f"<p>Base model <code>{e(report['base_model'])}</code>, sequence_len {report['sequence_len']}.</p>",
        status,
        _counts_table(report),
        _packing_html(report),
        _histogram_html(report["histogram"]),
        "<h2>Examples, token by token</h2><p>Green tokens are trained (your turns, label true); grey ones are "
        "context. Hover a token for its id.</p>",
    ]
    for ex, tok in shown:
        parts.append(f"<h3>{e(ex.split)} example {ex.number}</h3>{_tokens_html(ex, tok, tokenizer)}")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _counts_table(report: dict) -> str:
    keys = ("examples", "tokens", "trained_tokens", "trained_share", "max_tokens", "mean_tokens")
    head = "".join(f"<th>{k.replace('_', ' ')}</th>" for k in keys)
    rows = "".join(
        f"<tr><th>{split}</th>" + "".join(f"<td>{stats[k]}</td>" for k in keys) + "</tr>"
        for split, stats in report["splits"].items()
    )
    return f"<h2>Counts</h2><table><tr><th></th>{head}</tr>{rows}</table>"


def _packing_html(report: dict) -> str:
    rows = "".join(
        f"<tr><td>{p['sequence_len']}</td><td>{p['bins']}</td><td>{100 * p['efficiency']:.1f}%</td></tr>"
        for p in report["packing_at"]
    )
    main = report["packing"]
    return (
        f"<h2>Packing</h2><p>At sequence_len {main['sequence_len']} the train split packs into {main['bins']} "
        f"windows, {100 * main['efficiency']:.1f}% full. {html.escape(report['packing_method'])}</p>"
        f"<table><tr><th>sequence_len</th><th>windows</th><th>efficiency</th></tr>{rows}</table>"
    )


def _histogram_html(rows: list[dict]) -> str:
    top = max((r["count"] for r in rows), default=0) or 1
    body = "".join(
        f"<tr><td>{r['from']}-{r['to']}</td><td>{r['count']}</td>"
        f"<td><span class='bar' style='width:{20 * r['count'] / top:.2f}em'></span></td></tr>"
        for r in rows
    )
    return f"<h2>Token lengths (all splits)</h2><table><tr><th>tokens</th><th>examples</th><th></th></tr>{body}</table>"


def _tokens_html(ex: Example, tok: Tokenized, tokenizer) -> str:
    special = set(tokenizer.all_special_ids)
    spans, start = [], 0
    for (label, text), end in zip(ex.pieces, tok.piece_ends, strict=True):
        for token_id, shown in zip(tok.ids[start:end], _token_texts(tokenizer, text), strict=True):
            kind = "trained" if label else "context"
            if token_id in special:
                kind += " special"
            visible = html.escape(shown).replace("\n", "↵\n")
            spans.append(f'<span class="t {kind}" title="id {token_id}">{visible}</span>')
        start = end
    return f'<div class="example">{"".join(spans)}</div>'


def _token_texts(tokenizer, text: str) -> list[str]:
    """Each token's own stretch of the text (from offsets); the later tokens of a character split across
    several byte tokens show as empty."""
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError:  # slow tokenizers have no offsets
        return [tokenizer.decode([i]) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]
    out, seen = [], -1
    for start, end in enc["offset_mapping"]:
        out.append(text[max(start, seen) : end] if end > seen else "")
        seen = max(seen, end)
    return out


# ---------------------------------------------------------------- the stage


def run(
    axolotl_config: str | Path,
    train: str | Path,
    validation: str | Path,
    report_dir: str | Path,
    hub_receipt: str | Path | None = None,
) -> dict:
    """Check the dataset; write report.html and report.json; UserError listing the first violations.

    When the config reads the dataset from the Hub (`hub_receipt` given), the check runs on the local files,
    offline: the receipt proves they are the bytes pushed, and the config must pin the receipt's revision."""
    from mindupload.model import tokenizer as tokenizers

    cfg_path = Path(axolotl_config)
    cfg = train_config.read(cfg_path)
    with contextlib.ExitStack() as stack:
        if hub_receipt is not None:
            cfg = local_twin(cfg, hub_receipt, train, validation)
            cfg_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mindupload-check-"))) / "local.yaml"
            train_config.write(cfg, cfg_path)
        return _run(cfg_path, cfg, train, validation, report_dir, tokenizers)


def local_twin(cfg: dict, hub_receipt: str | Path, train: str | Path, validation: str | Path) -> dict:
    """The axolotl config with its Hub datasets replaced by the local files the receipt says were pushed."""
    from mindupload import receipts

    receipt = receipts.read_receipt(hub_receipt)
    receipts.check_receipt_matches(receipt, hub_receipt, train, validation)
    pinned = {(d["path"], d.get("revision")) for d in (*cfg.get("datasets", []), *cfg.get("test_datasets", []))}
    if pinned != {(receipt["repo_id"], receipt["revision"])}:
        raise UserError(
            f"the axolotl config does not read {receipt['repo_id']} at {receipt['revision']} (the receipt "
            f"{hub_receipt}); render it again with `mindupload axolotl-config --hub-receipt`."
        )
    twin = {key: value for key, value in cfg.items() if key != "hf_use_auth_token"}
    twin["datasets"] = [train_config.local_dataset(train)]
    if cfg.get("test_datasets"):
        twin["test_datasets"] = [train_config.local_dataset(validation, split="train")]
    return twin


def _run(cfg_path: Path, cfg: dict, train, validation, report_dir, tokenizers) -> dict:
    _check_paths(cfg, train, validation)
    sequence_len = int(cfg["sequence_len"])
    tokenizer = tokenizers.load(str(cfg["base_model"]))
    specials = check_specials(tokenizer)
    examples = {"train": read_examples(train, "train"), "validation": read_examples(validation, "validation")}
    if not examples["train"]:
        raise UserError(f"{train}: no training examples. Check `me:` and your exports, then rebuild the dataset.")
    expected = {split: tokenize(exs, tokenizer) for split, exs in examples.items()}
    findings = Findings()
    for split in SPLITS:
        for ex, tok in zip(examples[split], expected[split], strict=True):
            check_layout(ex, tok, specials, sequence_len, findings)
    if not findings:  # axolotl only runs on data that can be right
        prepared = axolotl_preprocess(cfg_path, cfg)
        for split in SPLITS:
            if prepared[split] is not None:
                compare(examples[split], expected[split], prepared[split], split, findings)
            elif examples[split]:
                findings.add("missing", f"{split}: axolotl prepared no data for this split.")
    report = build_report(cfg, expected, findings, specials)
    shown = list(zip(examples["train"], expected["train"], strict=True))[:SHOWN_EXAMPLES]
    write_report(report, shown, tokenizer, Path(report_dir))
    if findings:
        raise UserError(_summary(findings, Path(report_dir)))
    log.info("check passed: %s", {s: r["examples"] for s, r in report["splits"].items()})
    return report


def _check_paths(cfg: dict, train: str | Path, validation: str | Path) -> None:
    """The files given are the ones in the axolotl config (the rule tracks them; axolotl reads them)."""
    configured = [d["path"] for d in cfg.get("datasets", [])] + [d["path"] for d in cfg.get("test_datasets", [])]
    for path in (train, validation):
        if Path(path).is_file() and Path(path).stat().st_size and str(Path(path).resolve()) not in configured:
            raise UserError(
                f"{path}: not a dataset of the axolotl config; render it again with `mindupload axolotl-config`."
            )


def build_report(cfg: dict, expected: dict[str, list[Tokenized]], findings: Findings, specials: Specials) -> dict:
    sequence_len = int(cfg["sequence_len"])
    train_lengths = [len(t.ids) for t in expected["train"]]
    all_lengths = [len(t.ids) for toks in expected.values() for t in toks]
    longest = max(train_lengths, default=0)
    return {
        "ok": not findings,
        "base_model": str(cfg["base_model"]),
        "sequence_len": sequence_len,
        "specials": {"bos": specials.bos, "bos_id": specials.bos_id, "eos": specials.eos, "eos_id": specials.eos_id},
        "splits": {split: split_stats(toks) for split, toks in expected.items()},
        "packing": packing(train_lengths, sequence_len),
        "packing_at": [
            packing(train_lengths, size) for size in sorted({*PACKING_SIZES, sequence_len}) if size >= longest
        ],
        "packing_method": PACKING_METHOD,
        "histogram": histogram(all_lengths, sequence_len),
        "violations": {"count": findings.count, "kinds": dict(findings.kinds), "first": findings.kept},
    }


def _summary(findings: Findings, report_dir: Path) -> str:
    listed = "; ".join(findings.kept[:MAX_LISTED])
    more = f"; and {findings.count - MAX_LISTED} more" if findings.count > MAX_LISTED else ""
    return (
        f"the dataset check found {findings.count} problem(s): {listed}{more}. "
        f"See {report_dir / 'report.html'}; fix the data (or the base model) and rebuild the dataset."
    )

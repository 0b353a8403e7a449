"""Hostile, broken and huge exports through the data path (parse -> redact -> turns -> segment -> stats), each
run as the CLI runs a stage (`mindupload.cli.run`), with canaries planted in every field.

Every case must end in one of two ways: a one-line user error (exit 1) that leaves no output and no temporary
file behind, or a dataset (exit 0) with whatever was skipped counted in the reports. In both, no canary may
appear in stderr, in the logs or in any written file but the dataset itself (and the Parquet tables, which hold
the messages by design); excluded contacts and blocklist terms appear nowhere at all. No case may end in a
traceback, an internal error or a run that exits 0 without a training example.

The cases that need Snakemake itself (config errors, the whole `dataset` target) are in
tests/workflow/test_bad_inputs_workflow.py.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mindupload import cli, config
from mindupload.errors import UserError
from mindupload.files import write_json
from mindupload.ingest.sources import SourceSpec

ROOT = Path(__file__).resolve().parents[2]

CANARY = {
    "text": "zqtextcanary",  # in message text: may reach the dataset, nothing else
    "sender": "Zqsendercanary",  # a sender's name (a rare one, so never "plausibly a name" in an error)
    "conversation": "zqconvcanary",  # a conversation's name or id
    "excluded": "Zqexcluded Canary",  # an excluded contact: nowhere at all
    "excluded_text": "zqexcludedtextcanary",  # what the excluded contact wrote: nowhere at all
    "blocklist": "zqblockcanary",  # a blocklist term planted in text: nowhere at all
    "persona": "zqpersonacanary",  # in the system prompt: in the dataset, nowhere else
}
NOWHERE = ("excluded", "excluded_text", "blocklist")  # not even in the dataset
DATA_FILES = ("train.jsonl", "validation.jsonl")  # where kept text and the persona belong
ME = "Elijah Moreau"
OTHER = "Anna Keller"


# ----------------------------------------------------------------------------------------------- harness


@dataclass
class Outcome:
    rc: int
    stage: str  # the stage that failed, or "done"
    stderr: str
    logs: str
    workdir: Path

    @property
    def error(self) -> str:
        return "\n".join(line for line in self.stderr.splitlines() if line.startswith("mindupload: error:"))


def base_config(path: Path, fmt: str = "auto", **sections) -> dict:
    cfg = {
        "me": [ME],
        "sources": {"src": {"path": str(path), "format": fmt}},
        "identity": {"system_prompt": "CONTEXT: {me} " + CANARY["persona"] + " is talking to a friend."},
        "privacy": {"exclude_contacts": [CANARY["excluded"]], "blocklist": [CANARY["blocklist"]]},
        "segments": {"sequence_len": 512},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return config.validate(cfg)


def run_data_path(workdir: Path, cfg: dict, tokenizer, spec_changes: dict | None = None) -> list[tuple[str, int]]:
    """The dataset stages in order, each under cli.run; (stage, exit status) up to the first failure."""
    from mindupload.dataset.segment import SegmentOptions, write_segments
    from mindupload.dataset.stats import render_stats
    from mindupload.dataset.turns import TurnOptions, build_turns
    from mindupload.files import write_text_atomic
    from mindupload.ingest import table
    from mindupload.ingest.parse import ingest
    from mindupload.model.tokenizer import counter, markers
    from mindupload.privacy.redact import RedactOptions, redact_table
    from mindupload.render import Identity

    res = workdir / "results"
    spec = replace(SourceSpec.from_config(cfg, "src"), **(spec_changes or {}))
    reports: dict[str, dict] = {}

    def parse() -> None:
        messages, report = ingest(spec)
        table.write_atomic(messages, res / "messages/src.parquet")
        write_json(report, res / "messages/src.json")
        reports["source"] = report

    def redact() -> None:
        redacted, report = redact_table(table.read(res / "messages/src.parquet"), RedactOptions.from_config(cfg))
        table.write_atomic(redacted, res / "messages_redacted.parquet")
        write_json(report, res / "reports/redaction.json")
        reports["redaction"] = report

    def turns() -> None:
        built, report = build_turns(table.read(res / "messages_redacted.parquet"), TurnOptions.from_config(cfg))
        table.write_atomic(built, res / "turns.parquet")
        write_json(report, res / "turns.json")
        reports["turns"] = report

    def segment() -> None:
        import pyarrow.parquet as pq

        paths = {split: res / f"dataset/{split}.jsonl" for split in ("train", "validation")}
        report = write_segments(
            pq.read_table(res / "turns.parquet"),
            Identity.from_config(cfg),
            markers(tokenizer),
            SegmentOptions.from_config(cfg),
            counter(tokenizer),
            paths,
        )
        write_json(report, res / "dataset/segments.json")
        reports["segments"] = report

    def stats() -> None:
        text = render_stats([reports["source"]], reports["turns"], reports["segments"], reports["redaction"])
        write_text_atomic(text, res / "dataset/stats.md")

    done = []
    for name, stage in (("parse", parse), ("redact", redact), ("turns", turns), ("segment", segment), ("stats", stats)):
        rc = cli.run(stage)
        done.append((name, rc))
        if rc:
            break
    return done


@pytest.fixture
def run(tmp_path, capsys, caplog, tiny_tokenizer, monkeypatch):
    """run(path, fmt=..., spec=..., **config sections) -> Outcome, with every leak check already done."""
    monkeypatch.delenv("MINDUPLOAD_DEBUG", raising=False)
    caplog.set_level("DEBUG")

    def go(path: Path, fmt: str = "auto", spec: dict | None = None, **sections) -> Outcome:
        cfg = base_config(path, fmt, **sections)
        stages = run_data_path(tmp_path, cfg, tiny_tokenizer, spec)
        failed = [name for name, rc in stages if rc]
        outcome = Outcome(
            rc=stages[-1][1],
            stage=failed[0] if failed else "done",
            stderr=capsys.readouterr().err,
            logs=caplog.text,
            workdir=tmp_path,
        )
        check_outcome(outcome)
        return outcome

    return go


def written_files(workdir: Path) -> dict[str, bytes]:
    return {
        p.relative_to(workdir).as_posix(): p.read_bytes()
        for p in workdir.rglob("*")
        if p.is_file() and not p.relative_to(workdir).as_posix().startswith("in/")
    }


def check_outcome(outcome: Outcome) -> None:
    """What holds for every case, whatever its input."""
    said = outcome.stderr + outcome.logs
    assert "Traceback" not in said and "internal error" not in said, said
    assert outcome.rc in (0, 1), said
    for key, canary in CANARY.items():
        assert canary.lower() not in said.lower(), f"the {key} canary leaked into stderr or the logs:\n{said}"
    files = written_files(outcome.workdir)
    assert not [rel for rel in files if rel.endswith(".tmp")], "a temporary file was left behind"
    for rel, data in files.items():
        text = data.decode("utf-8", errors="replace").lower()
        allowed = rel.endswith(DATA_FILES) or rel.endswith(".parquet")
        for key, canary in CANARY.items():
            if key in NOWHERE or not allowed:
                assert canary.lower() not in text, f"the {key} canary leaked into {rel}"
    if outcome.rc:
        assert len(outcome.error.splitlines()) == 1, f"not one error line:\n{outcome.stderr}"
        # The failed stage wrote nothing: no table, report or dataset of its own.
        assert "results/dataset/train.jsonl" not in files
    else:
        train = outcome.workdir / "results/dataset/train.jsonl"
        assert train.stat().st_size > 0, "exit 0 without a training example"


def fails(outcome: Outcome, stage: str, *needles: str) -> None:
    assert outcome.rc == 1 and outcome.stage == stage, (outcome.stage, outcome.stderr)
    for needle in needles:
        assert needle in outcome.error, outcome.error


def source_report(outcome: Outcome) -> dict:
    return json.loads((outcome.workdir / "results/messages/src.json").read_text())


# ------------------------------------------------------------------------------------------- exports


def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    return folder


def chat_rows(exchanges: int = 6) -> list[tuple[str, str]]:
    """(sender, text) of a healthy chat with every canary planted in the text fields."""
    rows = []
    for i in range(exchanges):
        rows += [(OTHER, f"question {i} {CANARY['text']} about {CANARY['blocklist']}"), (ME, f"answer {i} sure")]
    rows += [(CANARY["excluded"], f"{CANARY['excluded_text']} hi all"), (CANARY["sender"], "one-off hello")]
    rows += [(OTHER, "and then?"), (ME, "then we go")]
    return rows


def whatsapp(
    tmp_path: Path, rows: list[tuple[str, str]] | None = None, name: str = "chat.txt", extra: str = ""
) -> Path:
    rows = rows or chat_rows()
    lines = [f"12/03/2024, {10 + i // 60:02d}:{i % 60:02d} - {sender}: {text}" for i, (sender, text) in enumerate(rows)]
    path = inputs(tmp_path) / name
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def generic_jsonl(tmp_path: Path, rows: list[dict] | None = None, name: str = "chat.jsonl") -> Path:
    if rows is None:
        rows = [
            {"conversation": CANARY["conversation"], "sender": s, "timestamp": f"2024-03-12T10:{i:02d}:00", "text": t}
            for i, (s, t) in enumerate(chat_rows())
        ]
    path = inputs(tmp_path) / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def telegram(tmp_path: Path, messages: list | None = None, raw: str | None = None) -> Path:
    if messages is None:
        messages = [
            {"id": i, "type": "message", "date_unixtime": str(1710237600 + 60 * i), "from": s, "text": t}
            for i, (s, t) in enumerate(chat_rows())
        ]  # fmt: skip
    path = inputs(tmp_path) / "result.json"
    export = {"name": CANARY["conversation"], "type": "personal_chat", "id": 42, "messages": messages}
    path.write_text(raw if raw is not None else json.dumps(export, ensure_ascii=False), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------ healthy baselines


@pytest.mark.parametrize("fmt", ["whatsapp", "generic", "telegram"])
def test_a_healthy_export_with_canaries_in_every_field_builds_a_dataset(run, tmp_path, fmt):
    path = {"whatsapp": whatsapp, "generic": generic_jsonl, "telegram": telegram}[fmt](tmp_path)
    outcome = run(path)
    assert outcome.rc == 0
    dataset = (tmp_path / "results/dataset/train.jsonl").read_text()
    assert CANARY["persona"] in dataset and CANARY["text"] in dataset
    assert source_report(outcome)["excluded_messages"] == 1


# ------------------------------------------------------------------------------------- the generic format


def test_generic_csv_without_a_header_row(run, tmp_path):
    path = inputs(tmp_path) / "chat.csv"
    path.write_text(f"{OTHER},2024-03-12T10:00:00,{CANARY['text']}\n", encoding="utf-8")
    fails(run(path), "parse", "is the header row missing")


def test_generic_csv_whose_first_row_is_data_holding_a_column_name(run, tmp_path):
    path = inputs(tmp_path) / "chat.csv"
    path.write_text(f"{CANARY['sender']},text,{CANARY['text']}\nsender,timestamp,text\n", encoding="utf-8")
    fails(run(path), "parse", "no column 'sender'", "text (field 2)")


def test_generic_jsonl_whose_first_object_lacks_a_column(run, tmp_path):
    rows = [{"from": CANARY["sender"], "timestamp": 1, "text": CANARY["text"]}]
    fails(run(generic_jsonl(tmp_path, rows)), "parse", "no column 'sender'")


def test_generic_csv_with_a_stray_quote(run, tmp_path):
    path = inputs(tmp_path) / "chat.csv"
    path.write_text(f'sender,timestamp,text\n{OTHER},2024-03-12T10:00:00,"{CANARY["text"]}" b\n', encoding="utf-8")
    fails(run(path), "parse", "line 2")


def test_generic_csv_with_a_quote_that_never_ends(run, tmp_path):
    path = inputs(tmp_path) / "chat.csv"
    path.write_text(f'sender,timestamp,text\n{OTHER},2024-03-12T10:00:00,"{CANARY["text"]}\n', encoding="utf-8")
    fails(run(path), "parse", "never ends")


def test_generic_csv_with_nul_bytes_is_cleaned_and_counted(run, tmp_path):
    rows = [f"{s},2024-03-12T10:{i:02d}:00,{t}" for i, (s, t) in enumerate(chat_rows())]
    rows[0] += "\x00\x00"
    path = inputs(tmp_path) / "chat.csv"
    path.write_text("sender,timestamp,text\n" + "\n".join(rows) + "\n", encoding="utf-8")
    outcome = run(path)
    assert outcome.rc == 0 and source_report(outcome)["messages_with_nul_removed"] == 1


def test_generic_jsonl_with_a_nul_character_in_text_is_cleaned_and_counted(run, tmp_path):
    path = generic_jsonl(tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["text"] += "\x00\x00"
    outcome = run(generic_jsonl(tmp_path, rows))
    assert outcome.rc == 0 and source_report(outcome)["messages_with_nul_removed"] == 1
    assert "\\u0000" not in (tmp_path / "results/dataset/train.jsonl").read_text()
    assert "NUL characters" in (tmp_path / "results/dataset/stats.md").read_text()


def test_generic_jsonl_nested_deeper_than_python_allows(run, tmp_path):
    path = generic_jsonl(tmp_path)
    path.write_text(path.read_text() + '{"text": ' + "[" * 200_000 + "\n")
    fails(run(path), "parse", "line 17")


def test_generic_line_longer_than_the_limit(run, tmp_path):
    rows = [{"sender": OTHER, "timestamp": 1, "text": CANARY["text"] * 200_000}]  # 2.4 MB on one line
    fails(run(generic_jsonl(tmp_path, rows)), "parse", "longer than 1.0 MB", "limits.max_line_bytes")


def test_a_message_over_the_length_limit_is_dropped_and_counted(run, tmp_path):
    path = generic_jsonl(tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["text"] = CANARY["text"] + "x" * 30_000
    outcome = run(generic_jsonl(tmp_path, rows))
    assert outcome.rc == 0 and source_report(outcome)["messages_too_long"] == 1
    assert "over limits.max_message_chars" in (tmp_path / "results/dataset/stats.md").read_text()


def test_a_message_without_a_sender_is_dropped_and_counted(run, tmp_path):
    path = generic_jsonl(tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[2]["sender"] = ""
    outcome = run(generic_jsonl(tmp_path, rows))
    assert outcome.rc == 0 and source_report(outcome)["messages_without_sender"] == 1


def test_messages_dated_in_the_future_are_kept_and_counted(run, tmp_path):
    path = generic_jsonl(tmp_path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[-1]["timestamp"] = "2999-01-01T00:00:00"
    outcome = run(generic_jsonl(tmp_path, rows))
    assert outcome.rc == 0 and source_report(outcome)["messages_in_future"] == 1
    assert "dated in the future" in (tmp_path / "results/dataset/stats.md").read_text()


def test_generic_invalid_utf8(run, tmp_path):
    path = inputs(tmp_path) / "chat.csv"
    path.write_bytes(b"sender,timestamp,text\n" + f"{OTHER},1,{CANARY['text']}".encode() + b"\xff\xfe\n")
    fails(run(path), "parse", "line 2", "not valid UTF-8")


def test_generic_unreadable_timestamp(run, tmp_path):
    rows = [{"sender": OTHER, "timestamp": "yesterday", "text": CANARY["text"]}]
    fails(run(generic_jsonl(tmp_path, rows)), "parse", "line 1")


def test_generic_empty_file(run, tmp_path):
    path = inputs(tmp_path) / "chat.csv"
    path.write_text("")
    fails(run(path), "parse", "empty")


# ------------------------------------------------------------------------------------ format detection


def test_binary_garbage_with_format_auto(run, tmp_path):
    path = inputs(tmp_path) / "chat.txt"
    path.write_bytes(os.urandom(1 << 16).replace(b"\n", b"") + b"\x00" * 100 + CANARY["text"].encode())
    fails(run(path), "parse", "cannot tell which chat export")


def test_text_with_nul_bytes_and_format_auto(run, tmp_path):
    path = inputs(tmp_path) / "notes.txt"
    path.write_bytes(b"sender,timestamp,text\x00\n" + CANARY["text"].encode() + b"\n")
    fails(run(path), "parse", "cannot tell which chat export")


def test_a_missing_file(run, tmp_path):
    fails(run(tmp_path / "in" / "nothing.txt"), "parse", "no such file")


# ----------------------------------------------------------------------------------------------- Telegram


def test_telegram_nested_200000_levels_deep_fails_fast_in_bounded_memory(run, tmp_path):
    deep = "[" * 200_000 + "]" * 200_000  # 400 KB; ijson alone would need memory growing with depth squared
    raw = '{"name": "x", "type": "personal_chat", "id": 1, "messages": [{"id": 1, "text": ' + deep + "}]}"
    started = time.perf_counter()
    fails(run(telegram(tmp_path, raw=raw)), "parse", "nests deeper than 64 levels", "limits.max_json_depth")
    assert time.perf_counter() - started < 20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 4 << 20  # KiB: under 4 GiB, whatever ran before


def test_telegram_brackets_and_escaped_quotes_inside_text_are_not_nesting(run, tmp_path):
    path = telegram(tmp_path)
    export = json.loads(path.read_text())
    export["messages"][0]["text"] = '[[[{{{ \\" [[[' * 200 + CANARY["text"]
    export["messages"][2]["text"] = ["\\\\", {"type": "bold", "text": '"[[[[' * 100}]
    outcome = run(telegram(tmp_path, raw=json.dumps(export)))
    assert outcome.rc == 0


def test_telegram_truncated(run, tmp_path):
    path = telegram(tmp_path)
    fails(run(telegram(tmp_path, raw=path.read_text()[:-40])), "parse", "truncated")


def test_telegram_html_export(run, tmp_path):
    raw = f"<html><head><title>Exported Data</title></head><body>{CANARY['text']}</body></html>"
    fails(run(telegram(tmp_path, raw=raw), fmt="telegram"), "parse", "HTML export")


def test_telegram_garbage_named_result_json(run, tmp_path):
    fails(run(telegram(tmp_path, raw=f"{CANARY['text']} {{not json"), fmt="telegram"), "parse", "not JSON")


def test_telegram_without_dates(run, tmp_path):
    messages = [{"id": 1, "type": "message", "from": OTHER, "text": CANARY["text"]}]
    outcome = run(telegram(tmp_path, messages))
    fails(outcome, "parse", "1 of 1 records could not be read")
    assert "no date_unixtime and no date" in outcome.logs  # the missing fields are named, the text is not


def test_telegram_message_without_sender_or_id_is_dropped_and_counted(run, tmp_path):
    path = telegram(tmp_path)
    export = json.loads(path.read_text())
    export["messages"][0].pop("from")
    outcome = run(telegram(tmp_path, raw=json.dumps(export)))
    assert outcome.rc == 0 and source_report(outcome)["messages_without_sender"] == 1


# ----------------------------------------------------------------------------------------------- WhatsApp


def zipped(tmp_path: Path, members: dict[str, bytes], name: str = "chat.zip") -> Path:
    path = inputs(tmp_path) / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return path


def test_a_zip_that_expands_a_thousand_times(run, tmp_path):
    chat = whatsapp(tmp_path).read_bytes()
    path = zipped(tmp_path, {"_chat.txt": chat + b"\n" * (64 << 20)})  # 64 MB of newlines in ~64 KB
    fails(run(path), "parse", "expands", "limits.max_archive_ratio")


def test_a_zip_over_the_total_size_limit(run, tmp_path):
    chat = whatsapp(tmp_path).read_bytes()
    path = zipped(tmp_path, {"_chat.txt": chat + os.urandom(3 << 19).hex().encode()})  # 3 MB of hex
    fails(run(path, limits={"max_archive_bytes": 1 << 20}), "parse", "over the limit", "limits.max_archive_bytes")


def test_a_zip_with_two_text_files(run, tmp_path):
    path = zipped(tmp_path, {"notes.txt": CANARY["text"].encode(), "other.txt": b"x"})
    fails(run(path, fmt="whatsapp"), "parse", "holds no WhatsApp chat")


def test_a_zip_with_two_text_files_and_format_auto(run, tmp_path):
    path = zipped(tmp_path, {"notes.txt": CANARY["text"].encode(), "other.txt": b"x"})
    fails(run(path), "parse", "cannot tell which chat export")


def test_a_damaged_zip(run, tmp_path):
    good = zipped(tmp_path, {"_chat.txt": whatsapp(tmp_path).read_bytes()}).read_bytes()
    path = inputs(tmp_path) / "damaged.zip"
    path.write_bytes(good[: len(good) // 2])
    fails(run(path, fmt="whatsapp"), "parse", "damaged")


def test_whatsapp_format_on_a_file_that_is_not_an_export(run, tmp_path):
    path = inputs(tmp_path) / "notes.txt"
    path.write_text(f"{CANARY['text']}\nshopping list\n")
    fails(run(path, fmt="whatsapp"), "parse", "not a WhatsApp export")


def test_whatsapp_line_longer_than_the_limit(run, tmp_path):
    path = whatsapp(tmp_path, extra=f"12/03/2024, 11:00 - {OTHER}: " + CANARY["text"] * 100 + "\n")
    fails(run(path, limits={"max_line_bytes": 1024}), "parse", "line 17", "longer than 1.0 KB")


def test_whatsapp_invalid_utf8(run, tmp_path):
    path = whatsapp(tmp_path)
    path.write_bytes(path.read_bytes() + f"12/03/2024, 11:00 - {OTHER}: {CANARY['text']}".encode() + b"\xc3\x28\n")
    fails(run(path), "parse", "line 17", "not valid UTF-8")


def test_whatsapp_impossible_dates(run, tmp_path):
    path = whatsapp(tmp_path, extra=f"31/02/2024, 11:00 - {OTHER}: {CANARY['text']}\n")
    fails(run(path), "parse", "line 17")


def test_whatsapp_nul_bytes_in_a_message_are_removed_and_counted(run, tmp_path):
    path = whatsapp(tmp_path, extra=f"12/03/2024, 11:00 - {OTHER}: zero\x00\x00filled\n12/03/2024, 11:01 - {ME}: ok\n")
    outcome = run(path)
    assert outcome.rc == 0 and source_report(outcome)["messages_with_nul_removed"] == 1


# ------------------------------------------------------------------------------------- who is "me"


def test_wrong_me_names_only_plausible_senders(run, tmp_path):
    # A continuation line that looks like a header: its "sender" is message text and must not be shown.
    extra = f"12/03/2024, 11:00 - {CANARY['text']} said: and more\n"
    outcome = run(whatsapp(tmp_path, extra=extra), me=["Somebody Else"])
    fails(outcome, "parse", f"Senders found: {OTHER}, {ME} (and 2 other senders not shown")


def test_wrong_me_when_most_messages_have_no_sender(run, tmp_path):
    notices = "".join(f"12/03/2024, 09:{i:02d} - Messages are end-to-end encrypted.\n" for i in range(30))
    path = inputs(tmp_path) / "chat.txt"
    path.write_text(notices + whatsapp(tmp_path).read_text())
    outcome = run(path, me=["Somebody Else"])
    fails(outcome, "parse", f"Senders found: {OTHER}, {ME} (")
    assert "Senders found: ," not in outcome.error and "30 messages without a sender" in outcome.error


def test_the_sender_rule(tmp_path):
    from collections import Counter

    from mindupload.ingest.parse import plausible_name, shown_senders

    for name in (OTHER, "Mom ❤️", "user123456", "~ Eli", "Zoë O'Neil", "Jean-Luc"):
        assert plausible_name(name, 10, 100), name
    for name in ("meet me at 12 Elm Street", "+44 7700 900461", "see https://x.org", "a: b", "x" * 41, ""):
        assert not plausible_name(name, 10, 100), name
    assert not plausible_name(OTHER, 1, 10) and not plausible_name(OTHER, 5, 1000)
    shown, hidden, unnamed = shown_senders(Counter({"": 50, OTHER: 30, CANARY["text"]: 1}), 81)
    assert (shown, hidden, unnamed) == ([OTHER], 1, 50)


# ---------------------------------------------------------------------------- silent wrong results


def test_only_you_speak(run, tmp_path):
    outcome = run(whatsapp(tmp_path, [(ME, f"note {i} {CANARY['text']}") for i in range(5)]))
    fails(outcome, "segment", "no training example: every turn (1) is yours")


def test_an_export_of_one_message(run, tmp_path):
    fails(run(whatsapp(tmp_path, [(ME, CANARY["text"])])), "segment", "no training example", "every turn (1)")


def test_your_turns_never_answer_anyone(run, tmp_path):
    rows = [(ME, f"first {CANARY['text']}"), (OTHER, "nobody answers this")]
    fails(run(whatsapp(tmp_path, rows)), "segment", "no turn of yours follows someone else's")


def test_only_media_and_notices(run, tmp_path):
    rows = [(OTHER, "<Media omitted>"), (ME, "<Media omitted>"), (OTHER, "This message was deleted")]
    fails(run(whatsapp(tmp_path, rows)), "turns", "no message is left to train on", "media 2")


def test_every_exchange_longer_than_sequence_len(run, tmp_path):
    rows = [(OTHER, "word " * 300 + CANARY["text"]), (ME, "word " * 300)]
    fails(run(whatsapp(tmp_path, rows), segments={"sequence_len": 64}), "segment", "longer than segments.sequence_len")


def test_excluding_every_sender(run, tmp_path):
    rows = [(CANARY["excluded"], CANARY["excluded_text"]), (ME, "ok")] * 3
    fails(run(whatsapp(tmp_path, rows)), "parse", "exclude every message")


def test_an_empty_export(run, tmp_path):
    path = inputs(tmp_path) / "chat.txt"
    path.write_text("")
    fails(run(path, fmt="whatsapp"), "parse", "empty")


# ----------------------------------------------------------------------------------------- the machine


def test_stale_temporaries_of_a_killed_run_go_with_the_next_success(run, tmp_path):
    dataset = tmp_path / "results/dataset"
    dataset.mkdir(parents=True)
    stale = [dataset / ".train.jsonl.k1ll3d00.tmp", dataset / ".validation.jsonl.x_y_z_00.tmp"]
    for path in stale:
        path.write_text("")
    assert run(whatsapp(tmp_path)).rc == 0  # (check_outcome: no *.tmp anywhere afterwards)
    assert not any(path.exists() for path in stale)


DRIVER = """
import sys
from pathlib import Path
from mindupload import cli
from mindupload.files import write_json
from mindupload.ingest import table
from mindupload.ingest.parse import ingest
from mindupload.ingest.sources import SourceSpec

def parse():
    messages, report = ingest(SourceSpec("src", Path(sys.argv[1]), me=("Elijah Moreau",)))
    table.write_atomic(messages, sys.argv[2])
    write_json(report, sys.argv[3])

sys.exit(cli.run(parse))
"""


def driver(tmp_path: Path, source: Path, **popen) -> subprocess.Popen:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("MINDUPLOAD_DEBUG", None)
    args = [sys.executable, "-c", DRIVER, str(source), str(out / "src.parquet"), str(out / "src.json")]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_a_full_disk_names_the_file_and_leaves_nothing(tmp_path):
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # noqa: E731 -- `ulimit -f 4`
    rows = [(OTHER if i % 2 else ME, f"{CANARY['text']} {os.urandom(200).hex()}") for i in range(200)]
    proc = driver(tmp_path, whatsapp(tmp_path, rows), preexec_fn=limit)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert err.startswith("mindupload: error: File too large") and str(tmp_path / "out") in err
    assert "Traceback" not in err and CANARY["text"] not in err
    assert list((tmp_path / "out").iterdir()) == []


def test_ctrl_c_is_no_traceback_and_leaves_nothing(tmp_path):
    fifo = tmp_path / "in" / "chat.txt"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    keep_open = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a writer that never writes: the reader blocks
    try:
        proc = driver(tmp_path, fifo)
        deadline = time.monotonic() + 60
        while not any(os.readlink(fd) == str(fifo) for fd in Path(f"/proc/{proc.pid}/fd").glob("*")):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(keep_open)
    assert proc.returncode == 130, err
    assert err == "mindupload: interrupted; no partial output was written.\n"
    assert list((tmp_path / "out").iterdir()) == []


# ---------------------------------------------------------------------------------------------- config


def config_error(cfg: dict) -> str:
    with pytest.raises(UserError) as error:
        config.validate(cfg)
    message = str(error.value)
    assert "\n" not in message and "Failed validating" not in message
    return message


MINIMAL = {"me": [ME], "sources": {"src": {"path": "chat.txt"}}}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"privacy": {"blocklist": CANARY["blocklist"]}}, "config: privacy.blocklist: should be a list, not text."),
        ({"privacy": {"exclude_contact": [CANARY["excluded"]]}}, "privacy.exclude_contact: unknown key. Did you mean"),
        ({"identity": {"system_prompt": 42}}, "config: identity.system_prompt: should be text, not a number."),
        ({"sources": {CANARY["conversation"] + " x": {"path": "x"}}}, "config: sources: a name here may hold only"),
        ({"me": []}, "config: me: should list at least 1 entry."),
        ({"segments": {"min_turns": 8, "max_turns": 4}}, "segments.min_turns (8) is above segments.max_turns (4)"),
        ({"turns": {"media": CANARY["text"]}}, "config: turns.media: should be one of drop, placeholder."),
        ({"privacy": {"phone_regions": [CANARY["text"]]}}, "config: privacy.phone_regions[0]: does not have"),
        ({CANARY["text"]: 1}, "config: (top level): an unknown key (not shown: it resembles none). Known keys"),
        ({"privacy": {"blocklst": []}}, "config: privacy.blocklst: unknown key. Did you mean `blocklist`?"),
    ],
)
def test_a_config_error_is_one_line_without_the_values(change, expected):
    message = config_error({**MINIMAL, **change})
    assert expected in message
    assert not [c for c in CANARY.values() if c in message], message


def test_a_config_without_me_names_the_key():
    assert (
        config_error({"sources": MINIMAL["sources"]})
        == "config: me: missing; this key is required (see config/README.md)."
    )


def test_a_yaml_syntax_error_names_file_and_line_but_not_its_text(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"me: [{ME}]\nprivacy:\n  blocklist: [{CANARY['blocklist']}\n  x: 1\n")
    with pytest.raises(UserError) as error:
        config.load(path)
    assert str(error.value).startswith(f"{path}, line 4, column 4: not valid YAML")
    assert CANARY["blocklist"] not in str(error.value)


def test_a_source_key_written_twice_is_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        f"me: [{ME}]\nsources:\n  chat: {{path: a.txt}}\n  other: {{path: b.txt}}\n  chat: {{path: c.txt}}\n"
    )
    with pytest.raises(UserError, match=r"line 5: key `chat` is written twice .*first on line 3"):
        config.load(path)


# ------------------------------------------------------------------------------- the JSON depth guard

json_values = st.recursive(
    st.one_of(st.integers(), st.text(alphabet='[]{}"\\ab\n', max_size=8), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text('"\\[{a', max_size=4), inner, max_size=4)
    ),
    max_leaves=30,
)


def true_depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((true_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((true_depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(1, 9))
def test_the_depth_guard_sees_the_nesting_the_parser_sees_in_any_chunking(value, chunk):
    """Brackets and quotes inside strings, escaped quotes and backslash runs across chunk edges: the guard
    fails exactly when the nesting is deeper than the limit."""
    import io

    from mindupload.errors import ParseError
    from mindupload.ingest.sources._common import DepthLimitedReader

    data = json.dumps(value).encode()
    depth = true_depth(value)
    for limit in (depth, depth - 1) if depth else (0,):
        reader = DepthLimitedReader(io.BytesIO(data), Path("x.json"), limit)
        try:
            while reader.read(chunk):
                pass
        except ParseError:
            assert limit < depth
        else:
            assert limit >= depth

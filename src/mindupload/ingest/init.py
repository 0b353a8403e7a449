"""`mindupload init`: find the chat exports in a folder, show who writes in each, propose `me`, write a config.

Every format of the registry (`mindupload.ingest.sources.FORMATS`) takes part through its own `sniff` and
`parse`, so a format added there is found here too. Sender names go to the terminal (stdout) only, never to a
log; the config written holds the proposed `me` and the export paths, and counts, never other people's names.
"""

from __future__ import annotations

import importlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from mindupload.errors import UserError
from mindupload.ingest.sources import FORMATS, SourceSpec, normalize_name

SHOWN_SENDERS = 12  # rows of a sender table; the rest are counted
COMMAND = "snakemake --cores all --configfile={config} dataset"


@dataclass
class Export:
    """One export found in the folder, as read with its format's own parser (without `me`)."""

    path: Path
    format: str
    messages: int = 0
    conversations: int = 0
    group_conversations: int = 0  # conversations with more than two senders
    first: date | None = None
    last: date | None = None
    senders: list[tuple[str, int, date, date]] = field(default_factory=list)  # name, messages, first, last
    self_names: list[str] = field(default_factory=list)  # senders the export itself marks as the user
    skipped_units: int = 0
    unit: str = "line"
    error: str | None = None  # why it could not be read


@dataclass
class Proposal:
    me: list[str]
    why: str
    unmatched: list[Path]  # exports where no name of `me` writes


def find_exports(folder: Path) -> tuple[list[tuple[Path, str]], int]:
    """(path, format) of every file some format recognises, in path order, and the number of other files."""
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder. Put your exports in it (or name another folder).")
    found, others = [], 0
    for path in _files(folder):
        name = sniff(path)
        if name is None:
            others += 1
        else:
            found.append((path, name))
    return found, others


def _files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def sniff(path: Path) -> str | None:
    """The first registered format whose `sniff` recognises the file, else None."""
    for name, module in FORMATS.items():
        try:
            if importlib.import_module(module).sniff(path):
                return name
        except (OSError, ValueError):
            continue
    return None


def read_export(path: Path, format_name: str) -> Export:
    """The export's senders and dates, parsed by its format's own `parse` with every line allowed to fail."""
    export = Export(path=path, format=format_name)
    spec = SourceSpec(name="init", path=path, format=format_name, max_bad_fraction=1.0)
    try:
        result = importlib.import_module(FORMATS[format_name]).parse(spec)
    except UserError as e:
        export.error = str(e)
        return export
    table = result.table
    export.skipped_units, export.unit = len(result.bad_lines), result.unit
    export.messages = table.num_rows
    if table.num_rows == 0:
        return export
    days = pc.cast(table.column("timestamp"), pa.date32())
    export.first, export.last = pc.min(days).as_py(), pc.max(days).as_py()
    # Who writes: system notices (joins, the encryption notice, which iOS files under the other person) do not count.
    writes = pc.and_(pc.not_equal(table.column("sender"), ""), pc.not_equal(table.column("kind"), "system"))
    written = table.append_column("day", days).filter(writes)
    stats = written.group_by("sender").aggregate([([], "count_all"), ("day", "min"), ("day", "max")]).to_pylist()
    export.senders = sorted(
        ((row["sender"], row["count_all"], row["day_min"], row["day_max"]) for row in stats),
        key=lambda row: (-row[1], row[0]),
    )
    export.self_names = sorted(set(written.filter(written.column("is_self")).column("sender").to_pylist()))
    per_conversation = written.group_by("conversation_id").aggregate([("sender", "count_distinct")])
    export.conversations = pc.count_distinct(table.column("conversation_id")).as_py()
    export.group_conversations = pc.sum(pc.greater(per_conversation.column("sender_count_distinct"), 2)).as_py() or 0
    return export


def propose_me(exports: list[Export]) -> Proposal:
    """The names the user writes under: what an export itself says (a Telegram whole-account export knows its
    account), and the one name that writes in the most exports when it writes in at least two of them."""
    readable = [e for e in exports if e.senders]
    in_exports: Counter[str] = Counter()
    spelling: dict[str, str] = {}
    for export in readable:
        for name, *_ in export.senders:
            key = _key(name)
            spelling.setdefault(key, name)
            in_exports[key] += 1
    marked = list(dict.fromkeys(name for e in readable for name in e.self_names))
    me, why = list(marked), "marked as you by the export itself" if marked else ""
    ranked = in_exports.most_common()
    if ranked and ranked[0][1] >= 2 and (len(ranked) == 1 or ranked[1][1] < ranked[0][1]):
        key, count = ranked[0]
        if key not in {_key(name) for name in me}:
            me.append(spelling[key])
        why = "; ".join(filter(None, [why, f"writes in {count} of {len(readable)} exports"]))
    wanted = {_key(name) for name in me}
    unmatched = [e.path for e in readable if not wanted & {_key(name) for name, *_ in e.senders}]
    return Proposal(me=me, why=why, unmatched=unmatched)


def _key(name: str) -> str:
    return normalize_name(pa.array([name], pa.string()))[0].as_py()


def source_names(exports: list[Export]) -> list[str]:
    """Keys for `sources:`: the format and a number (file names often hold a contact's name, and a source's
    key names output files and log lines)."""
    counts: Counter[str] = Counter(e.format for e in exports)
    seen: Counter[str] = Counter()
    names = []
    for export in exports:
        seen[export.format] += 1
        names.append(export.format if counts[export.format] == 1 else f"{export.format}_{seen[export.format]}")
    return names


def local_timezone() -> str | None:
    """This computer's IANA zone (from TZ or /etc/localtime), a guess at where the phone was."""
    zone = os.environ.get("TZ", "").lstrip(":")
    if not zone:
        target = os.path.realpath("/etc/localtime")
        zone = target.partition("zoneinfo/")[2]
    return zone or None


def render_config(exports: list[Export], proposal: Proposal, folder: Path, zone: str | None) -> str:
    """my-config.yaml: every readable export, the proposed `me`, commented choices. No other people's names."""
    q = _quote
    zone = zone or "UTC"
    me = proposal.me or ["YOUR NAME AS IN THE EXPORTS"]
    lines = [
        f"# Written by `mindupload init {folder}`. Every key, with its default: config/README.md. This file",
        "# replaces config/config.yaml (the demo) when given with --configfile; keys left out take their defaults.",
        "#   " + COMMAND.format(config="my-config.yaml") + "        # the dataset only",
        "#   snakemake --cores all --configfile=my-config.yaml                # dataset, check, training, samples",
        "",
        "# The names (or Telegram ids such as 123456) you write under, in any export; the first is the name the",
        "# model speaks as (or set identity.name).",
        "# " + (f"Proposed: {proposal.why}." if proposal.why else "Could not tell which sender is you: write it here."),
        f"me: [{', '.join(q(name) for name in me)}]",
        "",
        "sources:",
    ]
    readable = [e for e in exports if not e.error]
    names = dict(zip((id(e) for e in readable), source_names(readable), strict=True))
    for export in exports:
        if export.error:
            lines += [f"  # {q(str(export.path))}: not readable as {export.format}, left out (see `mindupload init`)."]
            continue
        name = names[id(export)]
        span = f"{export.first} to {export.last}" if export.first else "no messages"
        groups = f", {export.group_conversations} of them group chats" if export.group_conversations else ""
        lines += [
            f"  {name}:  # {export.messages} messages in {export.conversations} conversation(s){groups}, {span}",
            f"    path: {q(str(export.path))}",
            f"    format: {export.format}",
            "    # Where the phone or computer was: exports that write local times without a zone are read in it",
            f"    # (guessed from this computer{'' if zone != 'UTC' else ': none found'}); others ignore it.",
            f"    timezone: {q(zone)}",
        ]
        if export.group_conversations:
            lines += [
                f"    # {export.group_conversations} group conversation(s): each other person gets a label of their",
                "    # own (friend, friend 2, ...); to leave them out:",
                "    # group_chats: false",
            ]
        if export.path in proposal.unmatched:
            lines += ["    # None of the names in `me` writes here: add the one you write under.", "    # me: []"]
    lines += [
        "",
        "identity:",
        "  # The text at the top of every example: describe yourself after {me}, as the seed did.",
        '  system_prompt: "CONTEXT: {me} is talking to a friend."',
        "",
        "# The base model: the default, SmolLM2-135M-Instruct (shipped inside a Python package), runs on a CPU and",
        "# shows the pipeline working; a real clone trains a larger model on a GPU (see README, config/README.md):",
        "# base_model: mistralai/Mistral-7B-v0.1",
        "",
        "# People and conversations to leave out entirely (names as in the exports, ids as in the tables):",
        "# privacy:",
        "#   exclude_contacts: []",
        "#   exclude_conversations: []",
        "",
    ]
    return "\n".join(lines)


def _quote(text: str) -> str:
    """A YAML scalar for any string: JSON's double-quoted form is valid YAML."""
    return json.dumps(text, ensure_ascii=False)


def sender_table(export: Export) -> list[str]:
    """The terminal table of one export: each sender with message count and the days of the first and last."""
    if export.error:
        return [f"{export.path}  ({export.format}): cannot be read, left out: {export.error}"]
    span = f"{export.first} to {export.last}" if export.first else "no messages"
    groups = f", {export.group_conversations} group" if export.group_conversations else ""
    head = f"{export.path}  ({export.format}, {export.conversations} conversation(s){groups}, {span})"
    lines = [head]
    if export.skipped_units:
        lines.append(f"  {export.skipped_units} {export.unit}(s) could not be read (the workflow will stop on them)")
    width = max([len("sender"), *(len(name) for name, *_ in export.senders[:SHOWN_SENDERS])])
    lines.append(f"  {'sender':<{width}}  {'messages':>8}  {'first':<10}  last")
    for name, count, first, last in export.senders[:SHOWN_SENDERS]:
        mark = "  (you, says the export)" if name in export.self_names else ""
        lines.append(f"  {name:<{width}}  {count:>8}  {first}  {last}{mark}".rstrip())
    if len(export.senders) > SHOWN_SENDERS:
        rest = export.senders[SHOWN_SENDERS:]
        lines.append(f"  ... and {len(rest)} more senders ({sum(r[1] for r in rest)} messages)")
    return lines


def init(folder: Path, output: Path, force: bool, echo: Callable[[str], None] = print) -> Path:
    """Find the exports in `folder`, print their senders, write `output`. Returns the path written."""
    if output.exists() and not force:
        raise UserError(f"{output} exists; it is left as it is. Use --force to replace it, or --output another file.")
    found, others = find_exports(folder)
    if not found:
        raise UserError(
            f"{folder}: no chat export found ({others} other files). Put your WhatsApp .txt/.zip, Telegram "
            "result.json or generic .csv/.jsonl exports there; README 'Supported exports' lists the formats."
        )
    exports = [read_export(path, name) for path, name in found]
    for export in exports:
        echo("")
        for line in sender_table(export):
            echo(line)
    echo("")
    if others:
        echo(f"{others} other file(s) in {folder} are no chat export mind-upload knows (media, ...): not used.")
    readable = [e for e in exports if not e.error]
    if not readable:
        raise UserError(f"{folder}: none of {len(exports)} exports found can be read (see above): no config written.")
    proposal = propose_me(readable)
    if proposal.me:
        echo(f"me: {', '.join(proposal.me)}  ({proposal.why})")
    else:
        echo("me: could not tell which sender is you (no name writes in more than one export): set `me:` yourself.")
    for path in proposal.unmatched:
        echo(f"  none of these names writes in {path}: add yours to `me:` (or that source's `me:`).")
    from mindupload.files import write_text_atomic

    write_text_atomic(render_config(exports, proposal, folder, local_timezone()), output)
    echo(f"Wrote {output}: {len(readable)} source(s). Check `me:` and `timezone:` in it, then run:")
    echo("  " + COMMAND.format(config=output))
    return output

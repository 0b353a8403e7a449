"""Chat export formats: one module per format behind one small registry.

A parser is a function `parse(spec: SourceSpec) -> ParseResult`. It reads the export at `spec.path`,
returns a table in `mindupload.ingest.table.MESSAGE_SCHEMA` and counts of what it read, and raises
`mindupload.errors.ParseError` (file, line or record, what is wrong, what to do) for input it cannot read.
Parsers never guess silently: lines they skip are counted in `ParseResult.bad_lines` and the run fails
when they exceed `spec.max_bad_fraction`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from mindupload.errors import UserError

# Format name -> module under mindupload.ingest.sources that defines `parse` and `sniff`.
FORMATS = {
    "whatsapp": "mindupload.ingest.sources.whatsapp",
    "discord": "mindupload.ingest.sources.discord",
    "messenger": "mindupload.ingest.sources.meta",
    "instagram": "mindupload.ingest.sources.meta",
    "slack": "mindupload.ingest.sources.slack",
    "google_chat": "mindupload.ingest.sources.google_chat",
    "telegram": "mindupload.ingest.sources.telegram",
    "line": "mindupload.ingest.sources.line",
    "sms": "mindupload.ingest.sources.sms",
    "imessage": "mindupload.ingest.sources.imessage",
    "signal": "mindupload.ingest.sources.signal",
    "generic": "mindupload.ingest.sources.generic",
}


LIMIT_KEYS = ("max_line_bytes", "max_message_chars", "max_json_depth", "max_archive_bytes", "max_archive_ratio")


@dataclass(frozen=True)
class SourceSpec:
    """One export, as the user configured it."""

    name: str  # the source's key in config `sources:`; names output files
    path: Path
    format: str = "auto"
    me: tuple[str, ...] = ()  # names or ids the user appears under in this export
    date_order: str = "auto"  # WhatsApp: auto | dmy | mdy | ymd
    timezone: str = "UTC"  # zone of timestamps written without one (WhatsApp, generic)
    max_bad_fraction: float = 0.0  # share of lines/records that may be skipped before the run fails
    exclude_contacts: tuple[str, ...] = ()  # sender names whose messages are dropped after parsing
    exclude_conversations: tuple[str, ...] = ()  # conversation ids dropped whole after parsing
    # Resource limits (config `limits:`; these defaults are the schema's).
    max_line_bytes: int = 1 << 20
    max_message_chars: int = 20_000
    max_json_depth: int = 64
    max_archive_bytes: int = 4 << 30
    max_archive_ratio: float = 200
    group_chats: bool = True  # keep conversations where more than one other person writes

    @classmethod
    def from_config(cls, config: dict, name: str) -> SourceSpec:
        """Source `name` of a validated config, with the global `me` and privacy exclusions folded in."""
        src = config["sources"][name]
        return cls(
            name=name,
            path=Path(src["path"]),
            format=src["format"],
            me=tuple(dict.fromkeys([*config["me"], *src["me"]])),
            date_order=src["date_order"],
            timezone=src["timezone"],
            max_bad_fraction=float(src["max_bad_fraction"]),
            exclude_contacts=tuple(config["privacy"]["exclude_contacts"]),
            exclude_conversations=tuple(config["privacy"]["exclude_conversations"]),
            **{key: value for key, value in config["limits"].items() if key in LIMIT_KEYS},
            group_chats=config["group_chats"] if src.get("group_chats") is None else src["group_chats"],
        )


@dataclass
class ParseResult:
    table: pa.Table
    units_read: int  # lines (text formats) or records (JSON formats) read
    bad_lines: list[int] = field(default_factory=list)  # 1-based lines/records that could not be read
    unit: str = "line"
    notes: list[str] = field(default_factory=list)  # what the stats should say: decisions taken, caveats (no chat text)


def parser_for(spec: SourceSpec) -> Callable[[SourceSpec], ParseResult]:
    name = spec.format if spec.format != "auto" else detect_format(spec.path)
    if name not in FORMATS:
        raise UserError(f"{spec.path}: unknown format {name!r}; use one of {', '.join(FORMATS)} or 'auto'.")
    return importlib.import_module(FORMATS[name]).parse


def detect_format(path: Path) -> str:
    """The format whose `sniff(path)` recognises the file's first bytes."""
    if not path.exists():
        raise UserError(f"{path}: no such file. Check `path:` of this source in your config.")
    for name, module in FORMATS.items():
        if importlib.import_module(module).sniff(path):
            return name
    raise UserError(
        f"{path}: cannot tell which chat export this is. Supported: {', '.join(FORMATS)} (see docs/exports.md, "
        "docs/phone-exports.md and docs/generic-format.md). If it is one of these, set `format:` for this source."
    )


def normalize_name(names: pa.Array) -> pa.Array:
    """Sender names compared case-insensitively, with outer and repeated inner spaces ignored."""
    import pyarrow.compute as pc

    names = pc.utf8_trim_whitespace(pc.utf8_lower(names))
    return pc.replace_substring_regex(names, r"\s+", " ")


def match_self(senders: pa.Array, me: tuple[str, ...]) -> pa.Array:
    """True where the sender is one of the names or ids in `me`."""
    import pyarrow.compute as pc

    wanted = normalize_name(pa.array(list(me), pa.string()))
    return pc.fill_null(pc.is_in(normalize_name(senders), value_set=wanted), False)

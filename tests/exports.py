"""Expected parses of the multi-file chat exports (Discord, Messenger, Instagram, Slack, Google Chat).

Each fixture export `tests/fixtures/<format>/<NAME>` (a folder, or a file) has its expected parse in
`tests/fixtures/<format>/<NAME>.expected.json`: `records` and `bad_records` as the parser reports them,
`options` for the SourceSpec, `notes`, and `messages` as [conversation, sender, is_self, UTC time, kind, text,
reply_to] in table order.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from mindupload.ingest import table as messages
from mindupload.ingest.sources import ParseResult, SourceSpec

FIXTURES = Path(__file__).parent / "fixtures"
COLUMNS = ("conversation_id", "sender", "is_self", "timestamp", "kind", "text", "reply_to")


def expected(fixture: Path) -> dict:
    return json.loads(fixture.with_name(fixture.name + ".expected.json").read_text(encoding="utf-8"))


def rows(result: ParseResult) -> list[list]:
    table = messages.conform(result.table)  # the contract holds
    columns = [table.column(name).to_pylist() for name in COLUMNS]
    out = []
    for row in zip(*columns, strict=True):
        row = list(row)
        row[3] = row[3].strftime("%Y-%m-%d %H:%M:%S.%f")
        out.append(row)
    return out


def spec_for(fixture: Path, path: Path | None = None, **overrides) -> SourceSpec:
    options = expected(fixture)["options"]
    return SourceSpec(options.get("source", "src"), path or fixture, me=tuple(options.get("me", ())), **overrides)


def check_expected(parse, fixture: Path, path: Path | None = None) -> None:
    """`parse` reads the fixture (or `path`, the same export in another shape) exactly as expected."""
    want = expected(fixture)
    result = parse(spec_for(fixture, path))
    assert rows(result) == want["messages"]
    assert result.units_read == want["records"]
    assert result.bad_lines == want["bad_records"]
    assert result.unit == "record"
    assert result.notes == want["notes"]


def zip_folder(folder: Path, target: Path, prefix: str = "") -> Path:
    """The folder as a zip (as the services hand it out), its files under `prefix`."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return target

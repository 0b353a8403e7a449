"""The WhatsApp export parser: fixtures, options, bad input, and properties checked against a slow,
obvious pure-Python parser (the oracle below) and against the messages an export was rendered from.

Each fixture `tests/fixtures/whatsapp/NAME.txt` has its expected parse in `NAME.expected.json`:
`lines` and `bad_lines` (1-based) as the parser reports them, `options` for the SourceSpec, and
`messages` as [sender, local time, kind, text] in time order.
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mindupload.errors import ParseError, UserError
from mindupload.ingest.parse import ingest
from mindupload.ingest.sources import ParseResult, SourceSpec, match_self
from mindupload.ingest.sources.whatsapp import parse, sniff
from mindupload.ingest.table import MESSAGE_SCHEMA, conform

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "whatsapp"
FIXTURE_FILES = sorted(FIXTURES.glob("*.txt"))
LRM, NNBSP, LRE, PDF = "\u200e", "\u202f", "\u202a", "\u202c"
AMPM_SPACES = ("\u202f", "\u2009", "\u00a0", " ", "")
TIMEZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")


def spec(path: Path, **options) -> SourceSpec:
    return SourceSpec(name="chat", path=path, format="whatsapp", **options)


def rows(result, tz: str = "UTC") -> list[list]:
    """[sender, local time, kind, text] per message, the local time in `tz`."""
    table = result.table
    zone = ZoneInfo(tz)
    return [
        [sender, ts.astimezone(zone).replace(tzinfo=None).isoformat(" "), kind, text]
        for sender, ts, kind, text in zip(
            *(table.column(c).to_pylist() for c in ("sender", "timestamp", "kind", "text")), strict=True
        )
    ]


def write(tmp_path: Path, text: str, name: str = "chat.txt", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# ------------------------------------------------------------------------------------------ fixtures


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_fixture(path: Path) -> None:
    expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
    me = tuple(expected["options"].get("me", ()))
    result = parse(spec(path, me=me))
    table = result.table

    assert rows(result) == expected["messages"]
    assert result.units_read == expected["lines"]
    assert result.bad_lines == expected["bad_lines"]
    assert table.schema == MESSAGE_SCHEMA
    assert conform(table).equals(table)
    n = table.num_rows
    assert table.column("message_id").to_pylist() == list(range(n))
    assert set(table.column("source").to_pylist()) == set(table.column("conversation_id").to_pylist()) == {"chat"}
    assert table.column("reply_to").null_count == n
    lowered = {name.lower() for name in me}
    assert table.column("is_self").to_pylist() == [s.lower() in lowered for s in table.column("sender").to_pylist()]


def test_there_is_a_fixture_per_variant() -> None:
    assert len(FIXTURE_FILES) >= 15
    assert all(p.with_suffix(".expected.json").exists() for p in FIXTURE_FILES)


def test_ingest_runs_on_a_fixture() -> None:
    path = FIXTURES / "android_dmy_am_pm_dots.txt"
    table, report = ingest(spec(path, me=("Alice Martin",)))
    assert report["messages"] == table.num_rows == 7
    assert report["own_messages"] == 3
    assert report["kinds"] == {"media": 1, "system": 1, "text": 5}


def test_ingest_refuses_unreadable_lines_unless_allowed() -> None:
    path = FIXTURES / "android_bad_lines_out_of_order.txt"
    with pytest.raises(ParseError, match=r"line 1\b"):
        ingest(spec(path, me=("Alice Martin",)))
    _, report = ingest(spec(path, me=("Alice Martin",), max_bad_fraction=0.6))
    assert report["lines_skipped"] == 5


# ------------------------------------------------------------------------------ day and month order


def dates(tmp_path: Path, *stamps: str, **options) -> list[str]:
    """The local dates parse gives for Android-style lines with these date parts (times 10:00)."""
    text = "".join(f"{d}, 10:00 - Alice Martin: hi {i}\n" for i, d in enumerate(stamps))
    return [r[1][:10] for r in rows(parse(spec(write(tmp_path, text), **options)))]


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        (["13/1/20", "2/2/20"], ["2020-01-13", "2020-02-02"]),  # a first part above 12: day first
        (["1/13/20", "2/2/20"], ["2020-01-13", "2020-02-02"]),  # a second part above 12: month first
        (["11/5/20", "12/5/20", "1/6/20"], ["2020-05-11", "2020-05-12", "2020-06-01"]),  # first goes down
        (["5/11/20", "5/12/20", "6/1/20"], ["2020-05-11", "2020-05-12", "2020-06-01"]),  # second goes down
        (["12/12/19", "1/1/20"], ["2019-12-12", "2020-01-01"]),  # going down across a new year says nothing
        (["1/5/20", "2/5/20", "3/5/20"], ["2020-05-01", "2020-05-02", "2020-05-03"]),  # first changes more
        (["5/1/20", "5/2/20", "5/3/20"], ["2020-05-01", "2020-05-02", "2020-05-03"]),  # second changes more
        (["1/2/20"], ["2020-02-01"]),  # undecidable: day first
    ],
)
def test_day_month_order_is_inferred(tmp_path: Path, stamps: list[str], expected: list[str]) -> None:
    assert dates(tmp_path, *stamps) == expected


def test_day_month_order_can_be_set(tmp_path: Path) -> None:
    assert dates(tmp_path, "1/2/20", date_order="mdy") == ["2020-01-02"]
    assert dates(tmp_path, "1/2/20", date_order="dmy") == ["2020-02-01"]
    # With the wrong order set, dates that cannot exist are unreadable lines, not guesses.
    result = parse(spec(write(tmp_path, "13/1/20, 10:00 - A: x\n1/2/20, 10:00 - A: y\n"), date_order="mdy"))
    assert result.bad_lines == [1]
    assert rows(result) == [["A", "2020-01-02 10:00:00", "text", "y"]]


def test_year_first_can_be_set_for_two_digit_years(tmp_path: Path) -> None:
    text = "[18/06/13, 21:25:15] Alice Martin: hi\n"
    assert rows(parse(spec(write(tmp_path, text))))[0][1] == "2013-06-18 21:25:15"
    assert rows(parse(spec(write(tmp_path, text), date_order="ymd")))[0][1] == "2018-06-13 21:25:15"


def test_unknown_date_order_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="date_order"):
        parse(spec(write(tmp_path, "1/2/20, 10:00 - A: x\n"), date_order="ydm"))


# ----------------------------------------------------------------------------------------- time zones


def utc_times(tmp_path: Path, local: list[str], tz: str) -> list[datetime]:
    text = "".join(f"{stamp} - Alice Martin: m{i}\n" for i, stamp in enumerate(local))
    result = parse(spec(write(tmp_path, text), timezone=tz, date_order="dmy"))
    table = result.table
    by_text = dict(zip(table.column("text").to_pylist(), table.column("timestamp").to_pylist(), strict=True))
    return [by_text[f"m{i}"] for i in range(len(local))]


def test_local_times_are_converted_to_utc(tmp_path: Path) -> None:
    got = utc_times(tmp_path, ["15/01/2021, 12:00", "15/07/2021, 12:00"], "Europe/Berlin")
    assert got == [datetime(2021, 1, 15, 11, tzinfo=UTC), datetime(2021, 7, 15, 10, tzinfo=UTC)]
    assert all(t.utcoffset().total_seconds() == 0 for t in got)


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
def test_clock_changes_follow_zoneinfo(tmp_path: Path, tz: str) -> None:
    """On days the clock changes, times are converted one by one: a repeated hour means its first pass,
    a skipped one keeps the offset from before the change (Python's fold=0)."""
    days = {"Europe/Berlin": ("28/03/2021", "31/10/2021"), "America/New_York": ("14/03/2021", "07/11/2021")}
    days["Australia/Lord_Howe"] = ("04/04/2021", "03/10/2021")
    stamps = [f"{day}, {h:02d}:{m:02d}" for day in days[tz] for h in range(5) for m in (0, 15, 30, 45)]
    zone = ZoneInfo(tz)
    expected = [datetime.strptime(s, "%d/%m/%Y, %H:%M").replace(tzinfo=zone).astimezone(UTC) for s in stamps]
    assert utc_times(tmp_path, stamps, tz) == expected


def test_unknown_timezone_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="Mars/Olympus"):
        parse(spec(write(tmp_path, "1/2/20, 10:00 - A: x\n"), timezone="Mars/Olympus"))


# ------------------------------------------------------------------------------------------------ zip


def zipped(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("member", ["_chat.txt", "WhatsApp Chat with Bob Okafor.txt", "export/_chat.txt"])
def test_zip_exports_are_read_in_place(tmp_path: Path, member: str) -> None:
    source = FIXTURES / "ios_year_first.txt"
    path = zipped(tmp_path, {"00000003-PHOTO-2018-06-13-21-30-00.jpg": b"\xff\xd8\xff", member: source.read_bytes()})
    assert sniff(path)
    assert rows(parse(spec(path))) == rows(parse(spec(source)))
    assert [p.name for p in tmp_path.iterdir()] == ["export.zip"]  # nothing extracted


def test_a_localized_chat_name_beside_another_txt_is_found(tmp_path: Path) -> None:
    """Spanish phones write "Chat de WhatsApp con X.txt"; a .txt sent in the chat is not a chat."""
    source = FIXTURES / "android_spanish_am_pm.txt"
    members = {
        "notas de la reunión.txt": b"llevar pan\ncomprar fruta\n",
        "Chat de WhatsApp con Ana.txt": source.read_bytes(),
    }
    path = zipped(tmp_path, members)
    assert sniff(path)
    result = parse(spec(path))
    assert rows(result) == rows(parse(spec(source)))
    assert set(result.table.column("conversation_id").to_pylist()) == {"chat"}


def test_every_chat_in_a_zip_is_its_own_conversation(tmp_path: Path, caplog) -> None:
    first, second = FIXTURES / "ios_year_first.txt", FIXTURES / "android_german.txt"
    path = zipped(tmp_path, {"WhatsApp Chat with Bob.txt": first.read_bytes(), "_chat.txt": second.read_bytes()})
    with caplog.at_level(logging.INFO):
        result = parse(spec(path))
    table = result.table
    conversations = table.column("conversation_id").to_pylist()
    assert sorted(set(conversations)) == ["chat:1", "chat:2"]
    one = table.filter(pc.equal(table.column("conversation_id"), "chat:1"))
    two = table.filter(pc.equal(table.column("conversation_id"), "chat:2"))
    assert rows(ParseResult(one, 0)) == rows(parse(spec(first)))
    assert rows(ParseResult(two, 0)) == rows(parse(spec(second)))
    assert one.column("message_id").to_pylist() == list(range(one.num_rows))
    assert result.units_read == len(first.read_bytes().splitlines()) + len(second.read_bytes().splitlines())
    assert "export.zip: chat WhatsApp Chat with Bob.txt is conversation chat:1" in caplog.text
    assert "is conversation chat:2" in caplog.text
    conform(table)


def test_zip_without_a_chat_is_refused(tmp_path: Path) -> None:
    path = zipped(tmp_path, {"photo.jpg": b"\xff\xd8\xff", "a.txt": b"x", "b.txt": b"y"})
    assert not sniff(path)
    with pytest.raises(ParseError, match=r"export\.zip: this zip holds no WhatsApp chat"):
        parse(spec(path))


def test_damaged_zip_is_refused(tmp_path: Path) -> None:
    good = zipped(tmp_path, {"_chat.txt": (FIXTURES / "android_german.txt").read_bytes()}).read_bytes()
    path = tmp_path / "export.zip"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ParseError, match=r"export\.zip: the zip file is damaged"):
        parse(spec(path))


# ------------------------------------------------------------------------------------------ bad input

SECRET = "Zanzibar-7Q"  # message text: must never appear in errors


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        (b"", 1, "empty"),
        (b"\xef\xbb\xbf", 1, "empty"),
        (f"just some notes about {SECRET}\nand more\n".encode(), 1, "not a WhatsApp export"),
        (f'{{"name": "{SECRET}", "messages": []}}'.encode(), 1, "not a WhatsApp export"),
        (f"1/2/20, 10:00 - A: ok\n1/2/20, 10:01 - B: {SECRET}\n1/2/20, 10:02 - A: \xff{SECRET}\n", 3, "UTF-8"),
        (f"1/2/20, 10:00 - A: {SECRET}\n{SECRET} \xc3\x28\n", 2, "not valid UTF-8"),
    ],
)
def test_bad_input_names_file_and_line_but_no_text(tmp_path: Path, content: bytes | str, line: int, what: str) -> None:
    path = tmp_path / "my-export.txt"
    path.write_bytes(content.encode("latin-1") if isinstance(content, str) else content)  # latin-1: raw bytes
    with pytest.raises(ParseError) as caught:
        parse(spec(path))
    message = str(caught.value)
    assert message.startswith(f"{path}, line {line}: ")
    assert what in message
    assert caught.value.line == line
    assert SECRET not in message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-16-le"])
def test_utf16_with_a_byte_order_mark_is_read(tmp_path: Path, encoding: str) -> None:
    source = FIXTURES / "ios_narrow_space.txt"
    text = source.read_text(encoding="utf-8")
    bom = "" if encoding == "utf-16" else "\ufeff"  # Python writes the mark itself for plain "utf-16"
    path = write(tmp_path, bom + text, encoding=encoding)
    result = parse(spec(path))
    assert rows(result) == rows(parse(spec(source)))
    assert result.units_read == 7


def test_big_files_are_read_in_chunks_that_never_cut_a_character(tmp_path: Path) -> None:
    header = "1/2/20, 10:00 - Alice: "  # 23 bytes: 4-byte emoji after it straddle every 8 MiB boundary
    body = "🧀" * (5 << 20)  # 20 MiB
    path = write(tmp_path, f"{header}{body}\n{header}x\n")
    assert [r[3] for r in rows(parse(spec(path, max_line_bytes=32 << 20)))] == [body, "x"]


def test_a_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"missing\.txt: cannot read the export"):
        parse(spec(tmp_path / "missing.txt"))


def test_lone_carriage_returns_stay_in_messages(tmp_path: Path) -> None:
    path = write(tmp_path, "1/2/20, 10:00 - A: one\rtwo\r\n1/2/20, 10:01 - B: x\r\n")
    assert [r[3] for r in rows(parse(spec(path)))] == ["one\rtwo", "x"]


def test_a_file_of_only_unreadable_headers_gives_no_messages(tmp_path: Path) -> None:
    result = parse(spec(write(tmp_path, "31/02/2020, 10:00 - A: x\ny\n30/02/2020, 10:00 - B: z\n")))
    assert result.table.num_rows == 0
    assert result.table.schema == MESSAGE_SCHEMA
    assert result.bad_lines == [1, 2, 3]


# ----------------------------------------------------------------------------------------------- sniff


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_sniff_knows_every_fixture(path: Path) -> None:
    assert sniff(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x01\x02\xff" * 100, b'{"name": "x", "type": "personal_chat", "messages": []}',
     b"timestamp,sender,text\n2020-01-01T10:00:00Z,A,hi\n", b"Dear diary,\ntoday 1/2/20 was fine.\n"],
)  # fmt: skip
def test_sniff_refuses_other_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "other.txt"
    path.write_bytes(content)
    assert not sniff(path)
    assert not sniff(tmp_path / "missing.txt")


def test_sniff_reads_only_the_start(tmp_path: Path) -> None:
    path = write(tmp_path, "x\n" * 5000 + "1/2/20, 10:00 - A: hi\n")
    assert not sniff(path)


# ------------------------------------------------------------------------------ the oracle: slow, plain


@dataclass(frozen=True)
class Stamp:
    """Date and time parts as written; they need not make a real date."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int = 0


@dataclass(frozen=True)
class Variant:
    """A header format: {d} {dd} {m} {mm} {yy} {yyyy} {H} {HH} {h} {hh} {MM} {SS}, {sp} the space before an
    AM/PM marker {ap:FORM} (FORM: the marker as written for a.m. or p.m.)."""

    fmt: str
    order: str  # the true day/month order

    @property
    def ios(self) -> bool:
        return self.fmt.startswith("[")

    @property
    def twelve_hour(self) -> bool:
        return "{ap:" in self.fmt

    @property
    def seconds(self) -> bool:
        return "{SS}" in self.fmt

    def render(self, s: Stamp, space: str = " ") -> str:
        h12 = s.hour % 12 or 12
        values = {
            "d": str(s.day), "dd": f"{s.day:02d}", "m": str(s.month), "mm": f"{s.month:02d}",
            "yy": f"{s.year % 100:02d}", "yyyy": f"{s.year:04d}", "H": str(s.hour), "HH": f"{s.hour:02d}",
            "h": str(h12), "hh": f"{h12:02d}", "MM": f"{s.minute:02d}", "SS": f"{s.second:02d}", "sp": space,
        }  # fmt: skip

        def value(m: re.Match) -> str:
            if m[1] == "ap":  # the form's first letter gives the case
                letter = "a" if s.hour < 12 else "p"
                return (letter if m[2][0].islower() else letter.upper()) + m[2][1:]
            return values[m[1]]

        return TOKEN.sub(value, self.fmt)


TOKEN = re.compile(r"\{(\w+)(?::([^}]*))?\}")
VARIANTS = [
    Variant("{d}/{m}/{yy}, {h}:{MM}{sp}{ap:p.m.} - ", "dmy"),
    Variant("{dd}-{mm}-{yyyy}, {hh}.{MM}{sp}{ap:PM} - ", "dmy"),
    Variant("{dd}.{mm}.{yy} {HH}.{MM}.{SS}: ", "dmy"),
    Variant("[{mm}.{dd}.{yy} {HH}:{MM}:{SS}] ", "mdy"),
    Variant("{d}.{m}.{yyyy} klo {H}.{MM}.{SS} - ", "dmy"),
    Variant("{d}. {m}. {yyyy}. {HH}:{MM}:{SS} ", "dmy"),
    Variant("[{d}/{m}/{yy} {h}:{MM}:{SS}{sp}{ap:p. m.}] ", "dmy"),
    Variant("[{yyyy}/{mm}/{dd}, {HH}:{MM}:{SS}] ", "ymd"),
    Variant("{m}/{d}/{yy}, {HH}:{MM} - ", "mdy"),
    Variant("{dd}.{mm}.{yy}, {HH}:{MM} - ", "dmy"),
    Variant("{yyyy}-{mm}-{dd}, {h}:{MM}{sp}{ap:p.m.} - ", "ymd"),
    Variant("{dd}/{mm}/{yyyy}, {hh}:{MM}{sp}{ap:a. m.} - ", "dmy"),
    Variant("[{m}/{d}/{yy}, {h}:{MM}:{SS}{sp}{ap:PM}] ", "mdy"),
]
BARE_SPACE = VARIANTS[5]  # "13. 6. 2018. 21:25:15 Name: text": a body or name starting "- " or "am " is ambiguous


@cache
def header_pattern(variant: Variant) -> re.Pattern:
    """A full header of `variant` at the start of a line; date parts as c1, c2, c3 in written order."""
    out, last, position = [f"{LRM}?"], 0, 0
    for m in TOKEN.finditer(variant.fmt):
        out.append(re.escape(variant.fmt[last : m.start()]))
        last = m.end()
        name = m[1]
        if name in ("d", "dd", "m", "mm", "yy", "yyyy"):
            position += 1
            digits = {"yy": "{2}", "yyyy": "{4}"}.get(name, "{1,2}")
            out.append(f"(?P<c{position}>[0-9]{digits})")
        elif name in ("H", "HH", "h", "hh"):
            out.append("(?P<hour>[0-9]{1,2})")
        elif name in ("MM", "SS"):
            out.append(f"(?P<{'minute' if name == 'MM' else 'second'}>[0-9]{{2}})")
        elif name == "sp":
            out.append("[\u202f\u2009\u00a0 ]?")
        else:
            letters = "ap" if m[2][0].islower() else "AP"
            out.append(f"(?P<ap>[{letters}])" + re.escape(m[2][1:]))
    out.append(re.escape(variant.fmt[last:]))
    return re.compile("".join(out))


NOTICE_AS_SENDER = re.compile(r" (changed the subject|changed the group|changed this group|created group) ")
BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
OMITTED = {"image": "media", "video": "media", "audio": "media", "document": "media", "Contact card": "media"}
OMITTED |= {"sticker": "sticker", "GIF": "sticker"}
DELETED = {"This message was deleted", "You deleted this message"}
CALLS = tuple(f"Missed {c} call" for c in ("voice", "video", "group voice", "group video"))
EDITED = "<This message was edited>"


def oracle_kind(first: str, has_sender: bool, ios: bool) -> str:
    lrm = first.startswith(LRM)
    core = first[1:] if lrm else first
    if core in ("<Media omitted>", "<media omitted>"):
        return "media"
    if core in DELETED or (core.endswith(".") and core[:-1] in DELETED):
        return "deleted"
    if lrm and core.endswith(" omitted") and core[: -len(" omitted")] in OMITTED:
        return OMITTED[core[: -len(" omitted")]]
    if lrm and core.endswith("document omitted"):
        return "media"
    if core.startswith("<attached: ") and core.endswith(">") and len(core) >= 12:
        return "media"
    if first.endswith(" (file attached)"):
        return "sticker" if first.startswith("STK-") and len(first) >= 20 else "media"
    if core.startswith(CALLS):
        return "call"
    if not has_sender or (lrm and ios):
        return "system"
    return "text"


def oracle_text(kind: str, body: str) -> str:
    end = len(body)
    if body.endswith(EDITED):
        end -= len(EDITED)
        if body[:end].endswith(LRM):
            end -= 1
        if body[:end].endswith((" ", "\n")):
            end -= 1
    first = body.split("\n", 1)[0]
    begin = 0
    if kind in ("media", "sticker"):
        begin = len(first) + 1 if len(body) > len(first) else len(body)
    elif kind == "deleted":
        begin = len(body)
    elif kind in ("system", "call") and body.startswith(LRM):
        begin = 1
    return body[begin:end] if begin < end else ""


def oracle_sender(name: str) -> str:
    name = BIDI.sub("", name).strip()
    return name[1:].strip() if name.startswith("~") else name


def oracle_order(parts: list[tuple[int, int, int]], year_first: bool) -> str:
    if year_first:
        return "ymd"
    if any(p[0] > 12 for p in parts):
        return "dmy"
    if any(p[1] > 12 for p in parts):
        return "mdy"
    down = [sum(b[2] == a[2] and b[k] < a[k] for a, b in pairwise(parts)) for k in (0, 1)]
    if down[0] != down[1]:
        return "dmy" if down[0] > down[1] else "mdy"
    changes = [sum(b[k] != a[k] for a, b in pairwise(parts)) for k in (0, 1)]
    return "mdy" if changes[1] > changes[0] else "dmy"


def oracle_time(m: re.Match, order: str, twelve_hour: bool, tz: str) -> datetime | None:
    parts = dict(zip(order, (int(m["c1"]), int(m["c2"]), int(m["c3"])), strict=True))
    year = parts["y"] + 2000 if parts["y"] < 100 else parts["y"]
    hour, minute, second = int(m["hour"]), int(m["minute"]), int(m.groupdict().get("second") or 0)
    if twelve_hour:
        if hour > 12:
            return None
        hour = hour % 12 + (12 if m["ap"] in "pP" else 0)
    try:
        local = datetime(year, parts["m"], parts["d"], hour, minute, second)
    except ValueError:
        return None
    return local.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def oracle(text: str, variant: Variant, date_order: str = "auto", tz: str = "UTC"):
    """(sender, UTC time, kind, text) per message in time order, and the unreadable 1-based lines."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    pattern = header_pattern(variant)
    messages: list[tuple[int, re.Match, list[str]]] = []  # first line number, header, lines of the body
    bad = []
    for number, line in enumerate(lines, start=1):
        m = pattern.match(line)
        if m:
            messages.append((number, m, [line[m.end() :]]))
        elif messages:
            messages[-1][2].append(line)
        else:
            bad.append(number)
    parts = [(int(m["c1"]), int(m["c2"]), int(m["c3"])) for _, m, _ in messages]
    year_first = TOKEN.search(variant.fmt)[1] == "yyyy"
    order = oracle_order(parts, year_first) if date_order == "auto" else date_order
    out = []
    for number, m, body_lines in messages:
        when = oracle_time(m, order, variant.twelve_hour, tz)
        if when is None:
            bad += range(number, number + len(body_lines))
            continue
        first = body_lines[0]
        cut = first.find(": ")
        sender = first[:cut] if cut >= 0 else None
        if sender is not None and not variant.ios and NOTICE_AS_SENDER.search(sender):
            sender = None
        body = "\n".join([first[cut + 2 :] if sender is not None else first, *body_lines[1:]])
        kind = oracle_kind(body.split("\n", 1)[0], sender is not None, variant.ios)
        out.append((oracle_sender(sender) if sender is not None else "", when, kind, oracle_text(kind, body)))
    out.sort(key=lambda message: message[1])  # stable
    return out, sorted(bad)


def line_count(text: str) -> int:
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    return len(text.split("\n")) - text.endswith("\n")


def parsed(result) -> list[tuple]:
    table = result.table
    return list(zip(*(table.column(c).to_pylist() for c in ("sender", "timestamp", "kind", "text")), strict=True))


def test_the_oracle_agrees_with_every_fixture() -> None:
    """The oracle is only worth something if it reads the fixtures as they are written down."""
    by_name = {
        "android_dmy_am_pm_dots": VARIANTS[0], "android_dashes_dot_time": VARIANTS[1],
        "dots_colon_after_time": VARIANTS[2], "ios_mdy_dots": VARIANTS[3], "android_finnish_klo": VARIANTS[4],
        "spaced_dots": VARIANTS[5], "ios_spanish_am_pm": VARIANTS[6], "ios_year_first": VARIANTS[7],
        "android_mdy_24h": VARIANTS[8], "android_german": VARIANTS[9], "android_year_first_am_pm": VARIANTS[10],
        "android_spanish_am_pm": VARIANTS[11], "ios_narrow_space": VARIANTS[12],
    }  # fmt: skip
    for name, variant in by_name.items():
        path = FIXTURES / f"{name}.txt"
        expected = json.loads(path.with_suffix(".expected.json").read_text(encoding="utf-8"))
        got, bad = oracle(path.read_text(encoding="utf-8"), variant)
        local = [[s, t.replace(tzinfo=None).isoformat(" "), k, x] for s, t, k, x in got]
        assert (local, bad) == (expected["messages"], expected["bad_lines"]), name


# ---------------------------------------------------------------------------------------- properties

NAME_START = "BCDEFGHIJKLMNOQRSTUVWXYZbcdefghijklmnoqrstuvwxyzÉØÅßçñΩжы日本😀🎉"
NAME_REST = NAME_START + "aApP0123456789 .'-_&()+~éöüäñ👍🏽"
names = st.builds(
    lambda first, rest: (first + rest).rstrip(),
    st.sampled_from(NAME_START),
    st.text(st.sampled_from(NAME_REST), max_size=24),
)
TRICKY = [*"0123456789/.:-[], ampAMP", LRM, NNBSP, "\u2028", "\u0085", "\u00a0", "\t", "😀", "🧀", "é", "ß"]
line_texts = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\n\r", exclude_categories=("Cs",)), max_size=40),
    st.text(st.sampled_from(TRICKY + list("abc xyz")), max_size=40),
)
NOTICES = [
    "Messages and calls are end-to-end encrypted. No one outside of this chat can read them.",
    "You created group “Trip”",
    "Alice added Bob",
    "Bob left",
    "Alice changed the subject from “a” to “b”",
    "Your security code with Bob changed. Tap to learn more.",
]


def datetimes_for(variant: Variant):
    return st.datetimes(datetime(2009, 1, 1), datetime(2030, 12, 31, 23, 59, 59)).map(
        lambda t: Stamp(t.year, t.month, t.day, t.hour, t.minute, t.second if variant.seconds else 0)
    )


@st.composite
def messages(draw, variant: Variant):
    """(stamp, sender as written or None, body as written, expected sender, kind, text)."""
    stamp = draw(datetimes_for(variant))
    name = draw(names)
    written = draw(st.sampled_from([name, name, f"~{NNBSP}{name}", f"{LRE}{name}{PDF}"]))
    kind = draw(st.sampled_from(["text"] * 6 + ["edited", "media", "caption", "sticker", "deleted", "call", "system"]))
    ios = variant.ios
    if kind in ("text", "edited"):
        lines = draw(st.lists(line_texts, min_size=1, max_size=4))
        text = "\n".join(lines)
        assume(oracle_kind(lines[0], True, ios) == "text" and not text.endswith(EDITED))
        assume(not any(header_pattern(variant).match(line) for line in lines[1:]))
        if variant is BARE_SPACE:
            assume(not lines[0].startswith(("-", "a", "p", "A", "P")))
        if kind == "edited":
            assume(not text.endswith(LRM))
            return stamp, written, f"{text} {EDITED}", name, "text", text
        return stamp, written, text, name, "text", text
    if kind == "caption":
        if ios:
            return stamp, written, f"{LRM}<attached: 00000012-PHOTO-2018-06-13.jpg>", name, "media", ""
        caption = draw(st.lists(line_texts, min_size=0, max_size=3))
        assume(not any(header_pattern(variant).match(line) for line in caption))
        assume(not (caption and caption[-1].endswith(EDITED)))
        body = "\n".join([f"IMG-{draw(st.integers(0, 9999))}-WA0001.jpg (file attached)", *caption])
        return stamp, written, body, name, "media", "\n".join(caption)
    if kind == "media":
        omitted = LRM + draw(st.sampled_from(["image", "video", "audio", "document", "Contact card"])) + " omitted"
        body = omitted if ios else draw(st.sampled_from(["<Media omitted>", "<media omitted>"]))
        return stamp, written, body, name, kind, ""
    if kind == "sticker":
        omitted = LRM + draw(st.sampled_from(["sticker", "GIF"])) + " omitted"
        return stamp, written, omitted if ios else "STK-1-WA2.webp (file attached)", name, kind, ""
    if kind == "deleted":
        body = draw(st.sampled_from(sorted(DELETED)))
        return stamp, written, f"{LRM}{body}." if ios else body, name, kind, ""
    notice = draw(st.sampled_from(CALLS[:2])) if kind == "call" else draw(st.sampled_from(NOTICES))
    if ios:  # iOS: the other person's name as author, an LRM before the text
        return stamp, written, LRM + notice, name, kind, notice
    return stamp, None, notice, "", kind, notice


def render(draw, variant: Variant, items: list[tuple[Stamp, str | None, str]]) -> str:
    lines = []
    for stamp, sender, body in items:
        lrm = LRM if draw(st.booleans()) and draw(st.booleans()) else ""
        head = variant.render(stamp, space=draw(st.sampled_from(AMPM_SPACES)))
        lines.append(lrm + head + (f"{sender}: " if sender is not None else "") + body)
    text = "\n".join(lines)
    if text.endswith("\n") or draw(st.booleans()):
        text += "\n"  # a final newline, or none (a body that ends with a blank line needs one)
    if draw(st.booleans()) and draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    if draw(st.booleans()) and draw(st.booleans()):
        text = "\ufeff" + text
    return text


def local_to_utc(s: Stamp, tz: str) -> datetime:
    return datetime(s.year, s.month, s.day, s.hour, s.minute, s.second).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


@st.composite
def exports(draw):
    """A rendered export and the messages it was rendered from, in time order."""
    variant = draw(st.sampled_from(VARIANTS))
    tz = draw(st.sampled_from(TIMEZONES))
    items = draw(st.lists(messages(variant), min_size=1, max_size=12))
    items.sort(key=lambda m: (m[0].year, m[0].month, m[0].day, m[0].hour, m[0].minute, m[0].second))
    text = render(draw, variant, [m[:3] for m in items])
    expected = [(sender, local_to_utc(stamp, tz), kind, body) for stamp, _, _, sender, kind, body in items]
    expected.sort(key=lambda m: m[1])  # stable, as the parser sorts
    return variant, tz, text, expected, items


PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)


@PROPERTY
@given(exports())
def test_parse_gives_back_the_messages_an_export_was_rendered_from(tmp_path_factory, case) -> None:
    variant, tz, text, expected, items = case
    path = write(tmp_path_factory.mktemp("rt"), text)
    result = parse(spec(path, date_order=variant.order, timezone=tz))
    assert parsed(result) == expected
    assert result.bad_lines == []
    assert result.units_read == line_count(text)
    if variant.order == "ymd" or any(stamp.day > 12 for stamp, *_ in items):  # the file tells the order
        assert parsed(parse(spec(path, timezone=tz))) == expected


@st.composite
def messy_exports(draw):
    """Exports with unreadable lines, impossible dates, notices, look-alike lines, lines out of order."""
    variant = draw(st.sampled_from(VARIANTS))
    pattern = header_pattern(variant)
    real = datetimes_for(variant)
    impossible = st.builds(
        Stamp,
        st.integers(2009, 2030),
        st.integers(0, 14),
        st.integers(0, 33),
        st.integers(0, 23) if variant.twelve_hour else st.integers(0, 26),
        st.integers(0, 61),
        st.integers(0, 61) if variant.seconds else st.just(0),
    )
    firsts = st.one_of(
        line_texts,
        st.sampled_from(
            ["<Media omitted>", "<media omitted>", "This message was deleted", "You deleted this message.",
             "IMG-1.jpg (file attached)", "STK-2.webp (file attached)", "STK- (file attached)",
             "<attached: 0001-PHOTO.jpg>", "<attached: >", "Missed voice call", "Missed group video call",
             "x <This message was edited>", f"{LRM}<This message was edited>", f"a: b {LRM} {EDITED}",
             "Alice changed the subject to “x: y”", "Bob: hi: there", "notes: 1: 2"]
            + [LRM + k + " omitted" for k in OMITTED] + [LRM + n for n in NOTICES] + [f"{LRM}x document omitted"]
        ),
    )  # fmt: skip
    lines = [draw(line_texts) for _ in range(draw(st.integers(0, 2)))]
    for _ in range(draw(st.integers(1, 10))):
        stamp = draw(st.one_of(real, real, real, impossible))
        head = variant.render(stamp, space=draw(st.sampled_from(AMPM_SPACES)))
        sender = draw(st.one_of(st.none(), names, names))
        first = draw(firsts)
        if variant is BARE_SPACE and sender is None:
            assume(not first.startswith(("-", "a", "p", "A", "P")))
        lines.append(head + (f"{sender}: " if sender is not None else "") + first)
        for _ in range(draw(st.integers(0, 2))):
            lines.append(draw(st.one_of(line_texts, real.map(lambda s: variant.render(s)[:6] + " later"))))
    assume(any(pattern.match(line) for line in lines))
    text = "\n".join(lines) + draw(st.sampled_from(["", "\n"]))
    return variant, text


@PROPERTY
@given(messy_exports(), st.sampled_from(TIMEZONES), st.sampled_from(["auto", "auto", "dmy", "mdy", "ymd"]))
def test_parse_agrees_with_the_oracle_on_messy_exports(tmp_path_factory, case, tz: str, order: str) -> None:
    variant, text = case
    path = write(tmp_path_factory.mktemp("messy"), text)
    me = ("Bob", "b")
    result = parse(spec(path, date_order=order, timezone=tz, me=me))
    expected, bad = oracle(text, variant, order, tz)
    assert parsed(result) == expected
    assert result.bad_lines == bad
    assert result.units_read == line_count(text)
    senders = result.table.column("sender").combine_chunks()
    assert result.table.column("is_self").to_pylist() == match_self(senders, me).to_pylist()


@pytest.mark.parametrize(
    ("lines", "order", "evidence"),
    [
        (["13/06/2018, 21:25 - A: x", "14/06/2018, 21:26 - B: y"], "dmy", "certain: a first part is above 12"),
        (["06/13/2018, 21:25 - A: x", "06/14/2018, 21:26 - B: y"], "mdy", "certain: a second part is above 12"),
        (["03/01/2018, 21:25 - A: x", "03/02/2018, 21:26 - B: y"], "mdy", "the second part changes more often"),
        (["01/03/2018, 21:25 - A: x", "01/03/2018, 21:26 - B: y"], "dmy", "day first by default"),
    ],
)
def test_the_date_order_decision_and_its_evidence_are_reported(tmp_path, lines, order, evidence) -> None:
    path = tmp_path / "chat.txt"
    path.write_text("\n".join(lines) + "\n")
    (note,) = parse(spec(path)).notes
    assert note.startswith(f"date order {order} (") and evidence in note
    assert parse(spec(path, date_order=order)).notes == [f"date order {order} (set in the config)"]

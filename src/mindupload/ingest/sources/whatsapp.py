"""WhatsApp chat exports: the `.txt` that "Export chat" writes on Android or iOS, or the `.zip` holding it.

Large exports are read without a per-line Python loop and without decoding the file into one Python
string (one emoji would make CPython hold all of it at 4 bytes per character):

1. The file goes once into a NumPy byte buffer; NumPy finds the newlines, Arrow checks the UTF-8.
2. The header layout (separators, digit widths, AM/PM marker) is learnt from the first lines.
3. Every line's header is read from a fixed-width window of its first bytes, token by token; a line
   that is not a full header continues the message before it.
4. Senders, kinds and bodies come from byte positions; Arrow copies the spans out in C++.

Python only looks at the first lines, at rare rows (long names, notices without author) and at the
few distinct sender names. Work over rows runs in chunks, so temporaries stay small and in cache.
"""

from __future__ import annotations

import logging
import mmap
import os
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from mindupload.errors import ParseError, UserError
from mindupload.ingest.sources import ParseResult, SourceSpec, match_self
from mindupload.ingest.sources._common import check_archive, check_line_lengths
from mindupload.ingest.table import KINDS, MESSAGE_SCHEMA

log = logging.getLogger(__name__)

LRM = "\u200e"  # left-to-right mark: iOS puts it before notices and placeholders
_LRM = LRM.encode()
_PAD = 64  # zero bytes kept after the text, so byte windows never run off the buffer
_CHUNK_ROWS = 1 << 16
_CHUNK_BYTES = 1 << 23
_WORKERS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
_SAMPLE_BYTES = 1 << 20  # where the header layout is learnt (and where a header must appear)
_SAMPLE_LINES = 1000
_SNIFF_BYTES = 4096
_SENDER_WINDOW = 40  # bytes searched for the ": " after a sender before Python looks further
_DATE_ORDERS = ("auto", "dmy", "mdy", "ymd")
_EMPTY = "the file is empty."
_EXPORT_AGAIN = "Export the chat again from WhatsApp."

TEXT, MEDIA, STICKER, CALL, SYSTEM, DELETED = (
    KINDS.index(k) for k in ("text", "media", "sticker", "call", "system", "deleted")
)

# Every header variant seen in the wild, to learn a file's layout from its first lines (not to read it).
_HEADER = re.compile(
    r"(?P<open>\[?)"
    r"(?P<d1>\d{1,4})(?P<s1>[./-] ?)(?P<d2>\d{1,2})(?P<s2>[./-] ?)(?P<d3>\d{4}|\d{1,2})"
    r"(?P<s3>\.?,? (?:klo )?)"
    r"(?P<h>\d{1,2})(?P<s4>[:.])(?P<mi>\d{2})(?:(?P<s5>[:.])(?P<sec>\d{2}))?"
    r"(?:(?P<sp>[ \u202f\u00a0\u2009]?)(?P<ap>[aApP]\.?[ \u202f\u00a0]?[mM]\.?))?"
    r"(?P<close>\] | - |: | )",
    re.ASCII,
)
_AMPM_SPACES = ("\u202f", "\u2009", "\u00a0", " ", "")


@dataclass(frozen=True)
class _Rule:
    """A body whose first line starts with `prefix` and ends with `suffix` (or is exactly `prefix`)."""

    kind: int
    prefix: bytes = b""
    suffix: bytes = b""
    exact: bool = False


def _rules() -> tuple[_Rule, ...]:
    """Placeholders and notices, in the order they are tried. Android writes them bare, iOS after an
    LRM; the iOS "… omitted" ones only count after the LRM (without it, someone typed them)."""
    rules = []
    for lrm in (b"", _LRM):
        rules += [_Rule(MEDIA, lrm + text, exact=True) for text in (b"<Media omitted>", b"<media omitted>")]
        for text in (b"This message was deleted", b"You deleted this message"):
            rules += [_Rule(DELETED, lrm + text, exact=True), _Rule(DELETED, lrm + text + b".", exact=True)]
    for text in (b"image", b"video", b"audio", b"document", b"Contact card"):
        rules.append(_Rule(MEDIA, _LRM + text + b" omitted", exact=True))
    for text in (b"sticker", b"GIF"):
        rules.append(_Rule(STICKER, _LRM + text + b" omitted", exact=True))
    rules.append(_Rule(MEDIA, _LRM, suffix=b"document omitted"))  # "‎Report.pdf • 3 pages ‎document omitted"
    rules += [_Rule(MEDIA, lrm + b"<attached: ", suffix=b">") for lrm in (b"", _LRM)]
    rules += [_Rule(STICKER, b"STK-", suffix=b" (file attached)"), _Rule(MEDIA, suffix=b" (file attached)")]
    for lrm in (b"", _LRM):
        for call in (b"voice", b"video", b"group voice", b"group video"):
            rules.append(_Rule(CALL, lrm + b"Missed " + call + b" call"))
    return tuple(rules)


def _key(prefix: bytes) -> tuple[int, int]:
    """The first (up to) four bytes of `prefix` as a little-endian integer, and the mask they cover."""
    size = min(len(prefix), 4)
    return int.from_bytes(prefix[:size], "little"), (1 << (8 * size)) - 1


_RULES = _rules()
_LONGEST_PREFIX = max(len(r.prefix) for r in _RULES)
_LONGEST_SUFFIX = max(len(r.suffix) for r in _RULES)
# The first four bytes of the rule prefixes without an LRM (little-endian): a cheap filter before the rules.
_PREFIX_KEYS = sorted({_key(r.prefix)[0] for r in _RULES if len(r.prefix) >= 4 and not r.prefix.startswith(_LRM)})
_LRM_KEY = int.from_bytes(_LRM, "little")
_EDITED = b"<This message was edited>"
# Android notices have no author, but one quoting a name with ": " in it looks like "Sender: text".
_NOTICE_AS_SENDER = re.compile(r" (changed the subject|changed the group|changed this group|created group) ")
_MARKS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_EPOCH = datetime(1970, 1, 1)

T = TypeVar("T")


# ------------------------------------------------------------------------------------------- public


def sniff(path: Path) -> bool:
    """True for a WhatsApp `.txt` export or a `.zip` holding one (reads only the first few KB)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
            if head.startswith(b"PK\x03\x04"):
                with zipfile.ZipFile(f) as zf:
                    return bool(_chat_members(zf))
    except (OSError, zipfile.BadZipFile, EOFError):
        return False
    return _looks_like_chat(head)


def _looks_like_chat(head: bytes) -> bool:
    return any(_HEADER.match(line.lstrip(LRM)) for line in _decode_sample(head).split("\n"))


def parse(spec: SourceSpec) -> ParseResult:
    """The whole export as a table in MESSAGE_SCHEMA. A .txt is one conversation, named after the source; a
    zip holding several chats gives one conversation per chat, `<source>:<n>` in the zip's order (the log
    names each chat file). Lines are numbered as if the chats followed each other in that order."""
    _check_options(spec)
    chats = _load(spec.path, spec)
    tables, bad, lines, orders = [], [], 0, []
    for n, (where, text) in enumerate(chats, 1):
        conversation = spec.name if len(chats) == 1 else f"{spec.name}:{n}"
        if len(chats) > 1:
            log.info("%s: chat %s is conversation %s", spec.path, where.removeprefix(f"{spec.path}:"), conversation)
        check_line_lengths(where, text.newlines, spec.max_line_bytes)
        table, bad_lines, order = _parse_text(spec, text, where, conversation)
        orders.append(order)
        tables.append(table)
        bad += [lines + line for line in bad_lines]
        lines += text.lines
    notes = ["date order " + "; ".join(f"{order} ({evidence})" for order, evidence in dict.fromkeys(orders))]
    return ParseResult(table=pa.concat_tables(tables), units_read=lines, bad_lines=bad, notes=notes)


def _parse_text(
    spec: SourceSpec, text: _Text, where: str, conversation: str
) -> tuple[pa.Table, list[int], tuple[str, str]]:
    layout = _learn_layout(text, where)
    headers = _scan_headers(text, layout)
    msgs = _messages(text, headers, layout, spec.date_order)
    bodies = _bodies(text, msgs, layout)
    utc = _to_utc(msgs.local_seconds, spec.timezone)
    order = (msgs.date_order, msgs.date_order_evidence)
    return _table(spec, text, bodies, utc, conversation), msgs.bad_lines, order


def _check_options(spec: SourceSpec) -> None:
    if spec.date_order not in _DATE_ORDERS:
        raise UserError(f"{spec.path}: date_order {spec.date_order!r} is not one of {', '.join(_DATE_ORDERS)}.")
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"{spec.path}: unknown timezone {spec.timezone!r}; use an IANA name such as Europe/Berlin."
        ) from None


def _in_chunks(fn: Callable[[slice], T], n: int, chunk: int = _CHUNK_ROWS) -> list[T]:
    """`fn` over consecutive ranges of `n` rows, in order. Small chunks keep temporaries in cache and in
    memory the process already has."""
    return _run(fn, [slice(start, min(start + chunk, n)) for start in range(0, n, chunk)])


def _run(fn: Callable[[slice], T], ranges: list[slice]) -> list[T]:
    """`fn` over `ranges`, results in order, on all cores: NumPy and Arrow release the GIL in their loops."""
    if len(ranges) < 2 or _WORKERS < 2:
        return [fn(r) for r in ranges]
    with ThreadPoolExecutor(_WORKERS) as pool:
        return list(pool.map(fn, ranges))


# ------------------------------------------------------------------------------------------ reading


@dataclass
class _Text:
    u8: np.ndarray  # UTF-8, "\n" line ends, a final "\n", then at least _PAD zero bytes
    size: int
    newlines: np.ndarray  # position of each line's "\n"

    @property
    def lines(self) -> int:
        return len(self.newlines)

    def line_starts(self, lines: slice) -> np.ndarray:
        before = self.newlines[max(lines.start - 1, 0) : lines.stop - 1] + 1
        return np.concatenate((np.zeros(1, before.dtype), before)) if lines.start == 0 else before


def _load(path: Path, spec: SourceSpec) -> list[tuple[str, _Text]]:
    """Each chat of the export, with the name errors give it: the file, or `file.zip:member.txt`."""
    try:
        with open(path, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
            f.seek(0)
            size = os.fstat(f.fileno()).st_size
            if is_zip:
                return [(where, _text(buf, size, where)) for where, (buf, size) in _read_zip(f, path, spec)]
            buf, size = _map_padded(f, size) or _read_padded(f, size)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise UserError(f"{path}: cannot read the export ({e.strerror}). Check `path:` of this source.") from None
    return [(str(path), _text(buf, size, path))]


def _text(buf: np.ndarray, size: int, path: Path | str) -> _Text:
    buf, size = _to_utf8(buf, size, path)
    if size == 0:
        raise ParseError(path, _EMPTY, line=1, hint=_EXPORT_AGAIN)
    if buf[size - 1] != 10:
        buf[size] = 10  # a missing final newline: the buffer has room for it
        size += 1
    return _without_carriage_returns(buf, size, _newlines(buf, size, path))


def _read_zip(f: BinaryIO, path: Path, spec: SourceSpec) -> list[tuple[str, tuple[np.ndarray, int]]]:
    try:
        with zipfile.ZipFile(f) as zf:
            members = _chat_members(zf)
            if not members:
                raise ParseError(
                    path,
                    "this zip holds no WhatsApp chat (no .txt file in it starts with WhatsApp's message lines).",
                    hint="Use the zip that WhatsApp's 'Export chat' wrote, or the .txt in it.",
                )
            check_archive(path, members, spec.max_archive_bytes, spec.max_archive_ratio)
            chats = []
            for member in members:
                with zf.open(member) as chat:
                    chats.append((f"{path}:{member.filename}", _read_padded(chat, member.file_size)))
            return chats
    except (zipfile.BadZipFile, EOFError) as e:
        raise ParseError(path, f"the zip file is damaged ({type(e).__name__}).", hint=_EXPORT_AGAIN) from None


def _chat_members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Every .txt in the zip that starts like a WhatsApp chat, whatever its (localized) name, in zip order.
    A .txt someone sent as an attachment does not start with WhatsApp's message lines and is left alone."""
    chats = []
    for info in zf.infolist():
        if info.is_dir() or not info.filename.lower().endswith(".txt"):
            continue
        with zf.open(info) as member:
            if _looks_like_chat(member.read(_SNIFF_BYTES)):
                chats.append(info)
    return chats


def _map_padded(f: BinaryIO, size: int) -> tuple[np.ndarray, int] | None:
    """The file mapped copy-on-write (no copy, and pages the system already caches), padded with the zeros
    that follow the end of a file in its last page; None when that page has too little room left."""
    if (-size) % mmap.PAGESIZE <= _PAD:
        return None
    try:
        mapped = np.frombuffer(mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY), np.uint8)
    except (OSError, ValueError):  # not a regular file
        return None
    return as_strided(mapped, shape=(size + 1 + _PAD,)), size


def _read_padded(f: BinaryIO, size: int) -> tuple[np.ndarray, int]:
    """Read up to `size` bytes straight into a zero-padded NumPy buffer (no intermediate bytes object)."""
    buf = np.empty(size + 1 + _PAD, np.uint8)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = f.readinto(view[got:size])
        if not n:
            break
        got += n
    buf[got:] = 0
    return buf, got


def _padded(data: bytes) -> tuple[np.ndarray, int]:
    buf = np.zeros(len(data) + 1 + _PAD, np.uint8)
    buf[: len(data)] = np.frombuffer(data, np.uint8)
    return buf, len(data)


def _to_utf8(buf: np.ndarray, size: int, path: Path | str) -> tuple[np.ndarray, int]:
    """Drop a UTF-8 byte-order mark; re-encode UTF-16 (which some tools write) as UTF-8."""
    head = buf[:3].tobytes()
    if head == b"\xef\xbb\xbf":
        return buf[3:], size - 3
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return _padded(buf[:size].tobytes().decode("utf-16").encode("utf-8"))
        except UnicodeDecodeError as e:
            line = buf[: e.start].tobytes().decode("utf-16", "replace").count("\n") + 1
            raise ParseError(path, "the file is not valid UTF-16 text.", line=line, hint=_EXPORT_AGAIN) from None
    return buf, size


def _newlines(buf: np.ndarray, size: int, path: Path | str) -> np.ndarray:
    """Positions of the "\\n" bytes, found while Arrow checks in C++ that the text is UTF-8 (Python only
    looks for the first bad line when it is not). Positions are 32-bit where the file allows: half the
    memory of every position array."""
    dtype = np.int32 if size + _PAD < 2**31 else np.int64

    def chunk(r: slice) -> np.ndarray:
        offsets = pa.py_buffer(np.array([0, r.stop - r.start], np.int64))
        pc.cast(pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(buf[r])]), pa.large_string())
        return (np.flatnonzero(buf[r] == 10) + r.start).astype(dtype)

    try:
        return np.concatenate([np.zeros(0, dtype), *_run(chunk, _utf8_ranges(buf, size))])
    except pa.ArrowInvalid:
        try:
            buf[:size].tobytes().decode("utf-8")
        except UnicodeDecodeError as e:
            line = int(np.count_nonzero(buf[: e.start] == 10)) + 1
            raise ParseError(path, "the file is not valid UTF-8 text.", line=line, hint=_EXPORT_AGAIN) from None
        raise


def _utf8_ranges(buf: np.ndarray, size: int) -> list[slice]:
    """Byte ranges of about _CHUNK_BYTES that do not cut a UTF-8 character (at most 3 continuation bytes)."""
    cuts = [0]
    for cut in range(_CHUNK_BYTES, size, _CHUNK_BYTES):
        for _ in range(3):
            if buf[cut] & 0xC0 != 0x80:
                break
            cut -= 1
        cuts.append(cut)
    return [slice(a, b) for a, b in zip(cuts, [*cuts[1:], size], strict=True)]


def _without_carriage_returns(buf: np.ndarray, size: int, newlines: np.ndarray) -> _Text:
    """CRLF line ends become LF (a lone CR inside a message is kept)."""
    before = newlines[newlines > 0] - 1
    crlf = before[buf[before] == 13]
    if not crlf.size:
        return _Text(buf, size, newlines)
    keep = np.ones(size, bool)
    keep[crlf] = False
    buf, size = _padded(buf[:size][keep].tobytes())
    return _Text(buf, size, np.flatnonzero(buf[:size] == 10).astype(newlines.dtype))


def _decode_sample(head: bytes) -> str:
    """The first bytes of an export as text, for sniffing and layout learning (never for messages)."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return head.decode("utf-16", "replace").replace("\r", "")
    return head.decode("utf-8", "replace").lstrip("\ufeff").replace("\r", "")


# ------------------------------------------------------------------------------------ header layout


@dataclass(frozen=True)
class _Token:
    """One piece of a header: a number (`widths`: allowed digit counts) or a literal (one of `alts`)."""

    name: str = ""  # numbers: d1, d2, d3, h, mi, sec; the AM/PM literal: ampm (0: a, 1: p)
    widths: tuple[int, ...] = ()
    alts: tuple[bytes, ...] = ()
    canon: int = 0  # bytes it takes in the canonical window: its usual length, so most rows never move

    @property
    def lengths(self) -> tuple[int, ...]:
        return self.widths or tuple(len(a) for a in self.alts)


@dataclass(frozen=True)
class _Layout:
    tokens: tuple[_Token, ...]
    bracket: bool  # iOS family: "[date, time] Name: text"
    year_first: bool  # "2018/06/13": the date order is known

    @property
    def width(self) -> int:
        """The canonical header, plus room for rows whose pieces are longer than canonical."""
        return sum(max(t.lengths) for t in self.tokens)


def _learn_layout(text: _Text, path: Path | str) -> _Layout:
    """The header layout most of the first lines use (an export is written in one locale)."""
    sample = text.u8[: min(text.size, _SAMPLE_BYTES)].tobytes().decode("utf-8", "replace")
    matches = [m for line in sample.split("\n")[:_SAMPLE_LINES] if (m := _HEADER.match(line.lstrip(LRM)))]
    shapes = Counter(s for m in matches if (s := _shape(m)) is not None)
    if not shapes:
        raise ParseError(
            path,
            "not a WhatsApp export: no line near the start begins with a WhatsApp date and time.",
            line=1,
            hint="Use the .txt or .zip that WhatsApp's 'Export chat' writes, or set this source's `format:`.",
        )
    shape = shapes.most_common(1)[0][0]
    log.debug("%s: WhatsApp header layout %r", path, shape)
    return _layout(shape, [m for m in matches if _shape(m) == shape])


def _shape(m: re.Match) -> tuple | None:
    """What a header says about the file's layout: everything but the digits and the AM/PM space."""
    year_first = len(m["d1"]) == 4
    if not year_first and len(m["d3"]) not in (2, 4):
        return None
    ampm = m["ap"]
    if ampm:  # the marker with its first letter standing for either a or p: "PM" -> ("AM", "PM")
        a, p = ("a", "p") if ampm[0].islower() else ("A", "P")
        ampm = (a + ampm[1:], p + ampm[1:])
    year_digits = 0 if year_first else len(m["d3"])
    return (m["open"], year_first, m["s1"], m["s2"], year_digits, m["s3"], m["s4"], m["s5"], ampm, m["close"])


def _layout(shape: tuple, matches: list[re.Match]) -> _Layout:
    """The tokens of a header of this shape; the sample's usual lengths become the canonical ones."""
    bracket, year_first, s1, s2, year_digits, s3, s4, s5, ampm, close = shape

    def num(name: str, widths: tuple[int, ...]) -> _Token:
        usual = Counter(len(m[name]) for m in matches).most_common(1)[0][0]
        return _Token(name=name, widths=widths, canon=usual if usual in widths else max(widths))

    def lit(text: str) -> _Token:
        return _Token(alts=(text.encode(),), canon=len(text.encode()))

    tokens = [lit(bracket)] if bracket else []
    tokens += [num("d1", (4,) if year_first else (1, 2)), lit(s1), num("d2", (1, 2)), lit(s2)]
    tokens += [num("d3", (1, 2) if year_first else (year_digits,)), lit(s3)]
    tokens += [num("h", (1, 2)), lit(s4), num("mi", (2,))]
    if s5:
        tokens += [lit(s5), num("sec", (2,))]
    if ampm:
        usual = Counter(m["sp"] for m in matches).most_common(1)[0][0]
        # The usual space first (most rows match it at once); the empty alternative must stay last.
        spaces = sorted(_AMPM_SPACES, key=lambda s: (s == "", s != usual))
        tokens.append(_Token(alts=tuple(s.encode() for s in spaces), canon=len(usual.encode())))
        tokens.append(_Token(name="ampm", alts=tuple(a.encode() for a in ampm), canon=len(ampm[0].encode())))
    tokens.append(lit(close))
    return _Layout(tokens=tuple(tokens), bracket=bool(bracket), year_first=year_first)


# ---------------------------------------------------------------------------------- header scanning


@dataclass
class _Headers:
    """The lines that are full headers in the file's layout."""

    line: np.ndarray  # 0-based line number
    values: dict[str, np.ndarray]  # d1, d2, d3, h, mi, sec (numbers), ampm (0: a, 1: p)
    end: np.ndarray  # byte where the header ends and the sender (or a notice) starts


def _scan_headers(text: _Text, layout: _Layout) -> _Headers:
    parts = _in_chunks(lambda r: _scan_chunk(text.u8, text.line_starts(r), r.start, layout), text.lines)
    names = parts[0].values.keys()
    return _Headers(
        line=np.concatenate([p.line for p in parts]),
        values={k: np.concatenate([p.values[k] for p in parts]) for k in names},
        end=np.concatenate([p.end for p in parts]),
    )


def _scan_chunk(u8: np.ndarray, starts: np.ndarray, first_line: int, layout: _Layout) -> _Headers:
    """Read the headers of some lines from a window of their first bytes, one token at a time.

    Rows whose number or literal is shorter or longer than the token's canonical length are moved
    within their window, so that every later token sits at the same column in every row.
    """
    begin = starts + _starts_with_lrm(u8, starts).astype(starts.dtype) * len(_LRM)
    first = layout.tokens[0]
    if first.widths:  # only lines that start as a header can be one
        lines = np.flatnonzero(u8[begin] - np.uint8(48) < 10)
    else:
        lines = np.flatnonzero(u8[begin] == first.alts[0][0])
    begin = begin[lines]
    win = sliding_window_view(u8, layout.width)[begin]
    ok = np.ones(len(begin), bool)
    moved = np.zeros(len(begin), np.int32)
    values: dict[str, np.ndarray] = {}
    col = 0
    for token in layout.tokens:
        if token.widths:
            values[token.name], length = _read_number(win, col, token.widths, ok)
        elif token.name == "ampm":
            values[token.name], length = _read_ampm(win, col, token.alts, ok), None
        else:
            which, length = _read_literal(win, col, token.alts, ok)
            if token.name:
                values[token.name] = which
        if length is not None:  # a piece of several possible lengths
            for size in set(token.lengths) - {token.canon}:
                rows = np.flatnonzero(ok & (length == size))
                if rows.size:
                    _move(win, rows, col + size, col + token.canon)
                    moved[rows] += token.canon - size
        col += token.canon
    rows = np.flatnonzero(ok)
    return _Headers(
        line=(lines[rows] + first_line).astype(starts.dtype),
        values={k: v[rows] for k, v in values.items()},
        end=begin[rows] + col - moved[rows],
    )


def _starts_with_lrm(u8: np.ndarray, at: np.ndarray) -> np.ndarray:
    lrm = u8[at] == _LRM[0]
    rows = np.flatnonzero(lrm)
    lrm[rows] = (u8[at[rows] + 1] == _LRM[1]) & (u8[at[rows] + 2] == _LRM[2])
    return lrm


def _read_number(
    win: np.ndarray, col: int, widths: tuple[int, ...], ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Value of the number at `col`, and its digit count where that varies; clears `ok` where there is none.

    Widths are one fixed count, or (1, 2) for days, months and hours without a leading zero.
    """
    digits = [win[:, col + k] - np.uint8(48) for k in range(max(widths))]  # other bytes wrap to >= 10
    if widths == (1, 2):
        one = digits[0] < 10
        two = one & (digits[1] < 10)
        ok &= one
        return np.where(two, digits[0] * np.uint8(10) + digits[1], digits[0]), one.view(np.int8) + two
    value = digits[0].astype(np.int16)
    for digit in digits[1:]:
        value = value * 10 + digit
    for digit in digits:
        ok &= digit < 10
    return value, None


def _read_ampm(win: np.ndarray, col: int, alts: tuple[bytes, ...], ok: np.ndarray) -> np.ndarray:
    """1 where the AM/PM marker at `col` is the p.m. one (the two differ only in their first letter)."""
    am, pm = alts
    first = win[:, col]
    p = first == pm[0]
    ok &= p | (first == am[0])
    ok &= _equal(win[:, col + 1 : col + len(am)], am[1:])
    return p.view(np.uint8)


def _read_literal(
    win: np.ndarray, col: int, alts: tuple[bytes, ...], ok: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Which alternative is at `col`, and its length, where there are several; clears `ok` where none is."""
    hit = _equal(win[:, col : col + len(alts[0])], alts[0])
    if len(alts) == 1:
        ok &= hit
        return None, None
    length = np.where(hit, np.int8(len(alts[0])), np.int8(-1))
    which = np.zeros(len(win), np.int8)
    rest = np.flatnonzero(ok & ~hit)  # usually few: most rows use the first alternative
    for i, alt in enumerate(alts[1:], start=1):
        hit = _equal(win[rest, col : col + len(alt)], alt)
        length[rest[hit]] = len(alt)
        which[rest[hit]] = i
        rest = rest[~hit]
    ok[rest] = False
    return which, length


def _equal(rows: np.ndarray, pattern: bytes) -> np.ndarray:
    """Which rows of a byte matrix start with `pattern` (column by column, stopping once none is left)."""
    hit = np.ones(len(rows), bool)
    for j, byte in enumerate(pattern):
        hit &= rows[:, j] == byte
        if not hit.any():
            break
    return hit


def _move(win: np.ndarray, rows: np.ndarray, src: int, dst: int) -> None:
    """Move bytes [src:] of some rows to start at `dst` (bytes pushed off the end are not needed)."""
    width = win.shape[1]
    if dst > src:
        win[rows, dst:] = win[rows, src : width - (dst - src)]
    else:
        win[rows, dst : width - (src - dst)] = win[rows, src:]


# ---------------------------------------------------------------------------------------- messages


@dataclass
class _Messages:
    """The readable messages, in file order."""

    header_end: np.ndarray  # byte where the sender (or, without one, the body) starts
    line_end: np.ndarray  # byte of the "\n" ending the header line
    end: np.ndarray  # byte where the body ends: the "\n" before the next header
    local_seconds: np.ndarray  # local wall-clock time, as seconds since 1970-01-01
    bad_lines: list[int]
    date_order: str  # dmy | mdy | ymd
    date_order_evidence: str  # why (set by the user, or what in the file decided it)


def _messages(text: _Text, headers: _Headers, layout: _Layout, order: str) -> _Messages:
    """A message per header line, up to the next one; those with impossible dates become bad lines."""
    values = headers.values
    evidence = "set in the config"
    if order == "auto":
        order, evidence = _infer_date_order(values["d1"], values["d2"], values["d3"], layout.year_first)
    parts = _in_chunks(lambda r: _local_seconds({k: v[r] for k, v in values.items()}, order), len(values["d1"]))
    local = np.concatenate([np.zeros(0, np.int64), *(p[0] for p in parts)])
    valid = np.concatenate([np.zeros(0, bool), *(p[1] for p in parts)])
    first, header_end = headers.line, headers.end
    last = np.append(first[1:], first.dtype.type(text.lines)) - 1
    bad = _bad_lines(first, valid, text.lines)
    if bad:  # (copying only when some message is dropped)
        first, last, header_end, local = first[valid], last[valid], header_end[valid], local[valid]
    return _Messages(
        header_end=header_end,
        line_end=text.newlines[first],
        end=text.newlines[last],
        local_seconds=local,
        bad_lines=bad,
        date_order=order,
        date_order_evidence=evidence,
    )


def _bad_lines(line: np.ndarray, valid: np.ndarray, n_lines: int) -> list[int]:
    """1-based lines before the first header and of every message whose header has an impossible date."""
    if line.size and line[0] == 0 and valid.all():
        return []
    starts_message = np.zeros(n_lines, bool)
    starts_message[line] = True
    message = np.cumsum(starts_message) - 1  # -1 before the first header
    readable = np.append(valid, False)[np.where(message < 0, len(valid), message)]
    return (np.flatnonzero(~readable) + 1).tolist()


def _local_seconds(values: dict[str, np.ndarray], order: str) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock seconds since 1970 for each header, and whether its date and time exist."""
    d1, d2, d3, hour, minute = (values[k].astype(np.int32) for k in ("d1", "d2", "d3", "h", "mi"))
    second = values["sec"].astype(np.int32) if "sec" in values else 0
    year, month, day = {"ymd": (d1, d2, d3), "dmy": (d3, d2, d1), "mdy": (d3, d1, d2)}[order]
    year = np.where(year < 100, year + 2000, year)
    valid = (month >= 1) & (month <= 12) & (day >= 1) & (day <= _days_in_month(year, month))
    valid &= (minute <= 59) & (second <= 59)
    if "ampm" in values:
        valid &= hour <= 12
        hour = hour % 12 + 12 * values["ampm"]
    else:
        valid &= hour <= 23
    days = _days_from_civil(year, np.clip(month, 1, 12), day)
    return days.astype(np.int64) * 86400 + (hour * 3600 + minute * 60 + second), valid


def _infer_date_order(d1: np.ndarray, d2: np.ndarray, d3: np.ndarray, year_first: bool) -> tuple[str, str]:
    """A file's day/month order and the evidence for it: a first part above 12 means day first; otherwise the
    part that goes down between consecutive headers within a year is the day; otherwise the one that changes
    more often. Only the first two are certain: the stats show which one decided."""
    if year_first:
        return "ymd", "the year comes first"
    d1, d2 = d1.astype(np.int16), d2.astype(np.int16)
    if (d1 > 12).any():
        return "dmy", "certain: a first part is above 12"
    if (d2 > 12).any():
        return "mdy", "certain: a second part is above 12"
    same_year = d3[1:] == d3[:-1]
    down = [np.count_nonzero((d[1:] < d[:-1]) & same_year) for d in (d1, d2)]
    if down[0] != down[1]:
        day = 0 if down[0] > down[1] else 1
        return ("dmy", "mdy")[day], (
            f"guessed, no part is above 12: from one line to the next within a year, the {('first', 'second')[day]}"
            f" part goes down {down[day]} times (as days do at a new month), the other {down[1 - day]} times; "
            "set `date_order` if dates look wrong"
        )
    changes = [np.count_nonzero(d[1:] != d[:-1]) for d in (d1, d2)]
    if changes[1] > changes[0]:
        return "mdy", (
            f"guessed, no part is above 12: the second part changes more often ({changes[1]} against "
            f"{changes[0]} times); set `date_order` if dates look wrong"
        )
    return "dmy", (
        "guessed, no part is above 12 and neither part tells: day first by default; set `date_order` if dates "
        "look wrong"
    )


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int32)[np.clip(month, 1, 12) - 1]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return days + ((month == 2) & leap)


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (Howard Hinnant's algorithm, vectorized)."""
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _to_utc(local: np.ndarray, timezone: str) -> np.ndarray:
    """UTC seconds for local wall-clock seconds in `timezone`, read as Python's zoneinfo reads them
    (fold=0: a repeated hour means its first pass; a skipped hour keeps the offset from before).

    The offset is looked up once per run of messages on the same local day; only the messages of days
    with a clock change are converted one by one.
    """
    if not local.size or timezone in ("UTC", "Etc/UTC"):
        return local
    zone = ZoneInfo(timezone)
    day = local // 86400
    new_day = np.concatenate(([True], day[1:] != day[:-1]))
    run = np.cumsum(new_day) - 1
    midnight = (day[new_day] * 86400).tolist()
    first = np.array([_offset(zone, s) for s in midnight])
    last = np.array([_offset(zone, s + 86399) for s in midnight])
    utc = local - first[run]
    changing = np.flatnonzero((first != last)[run])
    utc[changing] = [s - _offset(zone, s) for s in local[changing].tolist()]
    return utc


def _offset(zone: ZoneInfo, local_seconds: int) -> int:
    offset = (_EPOCH + timedelta(seconds=local_seconds)).replace(tzinfo=zone).utcoffset()
    return int(offset.total_seconds())


# ------------------------------------------------------------------------------- senders and bodies


@dataclass
class _Bodies:
    sender_names: list[str]  # distinct senders as written; "" for notices without author
    sender_code: np.ndarray  # index into sender_names
    kind: np.ndarray  # index into KINDS
    text_begin: np.ndarray
    text_end: np.ndarray


def _bodies(text: _Text, msgs: _Messages, layout: _Layout) -> _Bodies:
    """Each message's sender, kind and text span."""
    n = len(msgs.header_end)
    parts = _in_chunks(lambda r: _senders(text, msgs.header_end[r], msgs.line_end[r]), n)
    sender_end = np.concatenate([np.zeros(0, msgs.header_end.dtype), *(p[0] for p in parts)])
    names, code = _merge_dictionaries([(p[1], p[2]) for p in parts])
    has_sender = sender_end >= 0
    if not layout.bracket:
        notices = [i for i, name in enumerate(names) if _NOTICE_AS_SENDER.search(name)]
        has_sender &= ~np.isin(code, notices)
    begin = np.where(has_sender, sender_end + 2, msgs.header_end)
    parts = _in_chunks(
        lambda r: _classify(text.u8, begin[r], msgs.line_end[r], msgs.end[r], has_sender[r], layout.bracket),
        n,
    )
    return _Bodies(
        sender_names=[*names, ""],
        sender_code=np.where(has_sender, code, np.int32(len(names))),
        kind=np.concatenate([np.zeros(0, np.int8), *(p[0] for p in parts)]),
        text_begin=np.concatenate([np.zeros(0, begin.dtype), *(p[1] for p in parts)]),
        text_end=np.concatenate([np.zeros(0, begin.dtype), *(p[2] for p in parts)]),
    )


def _senders(text: _Text, begin: np.ndarray, line_end: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Where each header line's sender ends (-1: no sender), and the senders as written, dictionary-coded."""
    end = _sender_ends(text.u8, begin, line_end)
    coded = _spans(text, begin, np.where(end >= 0, end, begin)).dictionary_encode()
    return end, coded.dictionary.to_pylist(), coded.indices.to_numpy(zero_copy_only=False)


def _merge_dictionaries(parts: list[tuple[list[str], np.ndarray]]) -> tuple[list[str], np.ndarray]:
    """One list of names for dictionary-coded chunks, and every chunk's codes into it."""
    index: dict[str, int] = {}
    codes = [np.zeros(0, np.int32)]
    for names, code in parts:
        lookup = np.array([index.setdefault(name, len(index)) for name in names], np.int32)
        codes.append(lookup[code] if lookup.size else code.astype(np.int32))
    return list(index), np.concatenate(codes)


def _sender_ends(u8: np.ndarray, begin: np.ndarray, line_end: np.ndarray) -> np.ndarray:
    """Byte of the first ": " on each header line after `begin` (where the sender ends); -1: none."""
    colon = sliding_window_view(u8, _SENDER_WINDOW)[begin] == ord(":")
    at = colon.argmax(axis=1).astype(begin.dtype)
    found = colon[np.arange(len(begin)), at]
    pos = begin + at
    on_line = found & (pos < line_end)
    spaced = u8[pos + 1] == ord(" ")
    end = np.where(on_line & spaced, pos, -1)
    # Where the window does not settle it (a long name or notice, a ":" inside a name): the whole line.
    unsure = (on_line & ~spaced) | (~found & (line_end - begin >= _SENDER_WINDOW))
    for i in np.flatnonzero(unsure).tolist():
        j = u8[begin[i] : line_end[i]].tobytes().find(b": ")
        end[i] = begin[i] + j if j >= 0 else -1
    return end


def _classify(
    u8: np.ndarray,
    begin: np.ndarray,
    line_end: np.ndarray,
    end: np.ndarray,
    has_sender: np.ndarray,
    bracket: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each message's kind and the span of its text (placeholders and edit markers removed)."""
    head = sliding_window_view(u8, 4)[begin].view("<u4").ravel()
    lrm = (head & 0xFFFFFF) == _LRM_KEY
    maybe = lrm | ~has_sender | (u8[line_end - 1] == ord(")"))
    for key in _PREFIX_KEYS:
        maybe |= head == key
    rows = np.flatnonzero(maybe)  # the few messages that may be placeholders or notices
    found = _match_rules(u8, begin[rows], line_end[rows], head[rows])
    found[(found == TEXT) & (~has_sender[rows] | (lrm[rows] & bracket))] = SYSTEM
    kind = np.zeros(len(begin), np.int8)
    kind[rows] = found
    text_begin = begin.copy()
    media = rows[(found == MEDIA) | (found == STICKER)]  # the caption, if any, is on the next lines
    text_begin[media] = np.minimum(line_end[media] + 1, end[media])
    deleted = rows[found == DELETED]
    text_begin[deleted] = end[deleted]
    notice = rows[((found == SYSTEM) | (found == CALL)) & lrm[rows]]
    text_begin[notice] += len(_LRM)
    text_end = _without_edit_markers(u8, begin, end)
    return kind, np.minimum(text_begin, text_end), text_end


def _match_rules(u8: np.ndarray, begin: np.ndarray, line_end: np.ndarray, head: np.ndarray) -> np.ndarray:
    """The kind of the first rule each first line u8[begin:line_end] matches (TEXT where none does).

    `head` holds each line's first four bytes as one integer: most rules are settled by it, its length
    and its last byte; only the rows left are compared byte by byte.
    """
    length = line_end - begin
    last = u8[line_end - 1]
    heads, tails = sliding_window_view(u8, _LONGEST_PREFIX), sliding_window_view(u8, _LONGEST_SUFFIX)
    kind = np.full(len(begin), TEXT, np.int8)
    open_ = np.ones(len(begin), bool)
    for rule in _RULES:
        need = len(rule.prefix) + len(rule.suffix)
        match = open_ & ((length == need) if rule.exact else (length >= need))
        if rule.prefix:
            key, mask = _key(rule.prefix)
            match &= (head & mask) == key
        if rule.suffix:
            match &= last == rule.suffix[-1]
        rows = np.flatnonzero(match)
        if len(rule.prefix) > 4:
            rows = rows[_equal(heads[begin[rows]], rule.prefix)]
        if len(rule.suffix) > 1:
            rows = rows[_equal(tails[line_end[rows] - len(rule.suffix)], rule.suffix)]
        kind[rows] = rule.kind
        open_[rows] = False
    return kind


def _without_edit_markers(u8: np.ndarray, begin: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Body ends without a final "<This message was edited>" (nor the LRM and space before it)."""
    end = end.copy()
    rows = np.flatnonzero(u8[end - 1] == _EDITED[-1])
    size = len(_EDITED) + len(_LRM) + 1
    tail = sliding_window_view(u8, size)[np.maximum(end[rows] - size, 0)]
    room = end[rows] - begin[rows]
    marked = _equal(tail[:, -len(_EDITED) :], _EDITED) & (room >= len(_EDITED))
    rows, tail, room = rows[marked], tail[marked], room[marked]
    cut = np.full(len(rows), len(_EDITED))
    cut += len(_LRM) * (_equal(tail[:, 1 : 1 + len(_LRM)], _LRM) & (room >= cut + len(_LRM)))
    before = u8[end[rows] - cut - 1]
    cut += ((before == ord(" ")) | (before == 10)) & (room >= cut + 1)
    end[rows] -= cut
    return end


def _clean_sender(raw: str) -> str:
    """A sender without direction marks and without the "~ " WhatsApp puts before non-contacts."""
    name = _MARKS.sub("", raw).strip()
    return name[1:].strip() if name.startswith("~") else name


# ---------------------------------------------------------------------------------------- the table


def _table(spec: SourceSpec, text: _Text, bodies: _Bodies, utc: np.ndarray, conversation: str) -> pa.Table:
    order = _time_order(utc)
    pick = slice(None) if order is None else order
    n = len(utc)
    names = pa.array([_clean_sender(name) for name in bodies.sender_names], pa.string())
    senders = bodies.sender_code[pick]
    source = pa.repeat(pa.scalar(spec.name, pa.string()), n)
    columns = {
        "source": source,
        "conversation_id": pa.repeat(pa.scalar(conversation, pa.string()), n),
        "message_id": pa.array(np.arange(n, dtype=np.int64)),
        "timestamp": pa.array(utc[pick] * 1_000_000, pa.timestamp("us", tz="UTC")),
        "sender": names.take(senders),
        "is_self": match_self(names, spec.me).take(senders),
        "text": _texts(text, bodies, order),
        "kind": pa.array(KINDS, pa.string()).take(bodies.kind[pick]),
        "reply_to": pa.nulls(n, pa.int64()),
    }
    return pa.Table.from_arrays([columns[name] for name in MESSAGE_SCHEMA.names], schema=MESSAGE_SCHEMA)


def _texts(text: _Text, bodies: _Bodies, order: np.ndarray | None) -> pa.Array | pa.ChunkedArray:
    """The message texts: copied out chunk by chunk (on all cores), or all at once when they need sorting."""
    if order is not None:
        return _spans(text, bodies.text_begin, bodies.text_end, order)
    chunks = _in_chunks(lambda r: _spans(text, bodies.text_begin[r], bodies.text_end[r]), len(bodies.text_begin))
    return pa.chunked_array(chunks, pa.string())


def _time_order(utc: np.ndarray) -> np.ndarray | None:
    """Stable time order; None when the export is in order already (nearly always)."""
    if utc.size < 2 or (utc[1:] >= utc[:-1]).all():
        return None
    return np.argsort(utc, kind="stable")


def _spans(text: _Text, begin: np.ndarray, end: np.ndarray, order: np.ndarray | None = None) -> pa.Array:
    """Strings u8[begin[i]:end[i]] (in file order, not overlapping), in `order`, copied out by Arrow.

    The spans and the gaps between them form one string array over the buffer without a copy; its
    even elements are the spans.
    """
    n = len(begin)
    large = text.size >= 2**31 - 1
    offsets = np.empty(2 * n + 1, np.int64 if large else np.int32)
    offsets[0:-1:2] = begin
    offsets[1::2] = end
    offsets[-1] = end[-1] if n else 0
    kind = pa.LargeStringArray if large else pa.StringArray
    interleaved = kind.from_buffers(2 * n, pa.py_buffer(offsets), pa.py_buffer(text.u8))
    picks = np.arange(0, 2 * n, 2, dtype=np.int32) if order is None else 2 * order.astype(np.int32)
    spans = interleaved.take(pa.array(picks))
    return spans.cast(pa.string()) if large else spans

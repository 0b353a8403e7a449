"""LINE chat history exported as text ("Export chat history" in a chat's settings), English or Japanese UI.

    [LINE] Chat history with Anna             [LINE] Annaとのトーク履歴
    Saved on: 2024/01/06 10:00                保存日時：2024/01/06 10:00
    (blank)
    2024.01.05 Friday                         2024/01/05(金)
    09:15<TAB>Anna<TAB>Hi                     09:15<TAB>Anna<TAB>こんにちは
    09:16<TAB>Elijah<TAB>"two                 (a message with line breaks is quoted, inner quotes doubled)
    lines"

Times are the phone's wall clock without a zone: they are read in the source's `timezone`. A line with a time and
one text field is a notice (someone joined, unsent a message, ...). The file is read line by line.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import datetime
from pathlib import Path

from mindupload.errors import ParseError
from mindupload.ingest.sources import ParseResult, SourceSpec
from mindupload.ingest.sources._common import MessageBuffer, read_head, read_lines, to_messages
from mindupload.ingest.sources._localtime import local_us, zone

HEADER = "[LINE]"
_SAVED = re.compile(r"^(?:Saved on|保存日時)\s*[:：]")
# 2024.01.05 Friday / 2024/01/05(金) / 2024/01/05 Fri / 2024-01-05
_DATE_YMD = re.compile(r"^(\d{4})[./-](\d{1,2})[./-](\d{1,2})(?:\s*\(\S{1,9}\)|\s+[A-Za-z]{2,9}\.?)?$")
# Fri, 01/05/2024 (English UI on phones: month first)
_DATE_MDY = re.compile(r"^[A-Za-z]{2,9}\.?,\s+(\d{1,2})/(\d{1,2})/(\d{4})$")
_TIME = re.compile(r"^(午前|午後)?(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s?([AaPp])\.?[Mm]\.?)?$")
MEDIA = frozenset(
    {
        "[Photo]",
        "[Video]",
        "[File]",
        "[Voice message]",
        "[Audio]",
        "[Album]",
        "[Location]",
        "[Contact]",
        "[写真]",
        "[動画]",
        "[ファイル]",
        "[ボイスメッセージ]",
        "[アルバム]",
        "[位置情報]",
        "[連絡先]",
    }
)
STICKERS = frozenset({"[Sticker]", "[スタンプ]", "[GIF]"})
_CALL = re.compile(r"^☎\s")
_UNSENT = ("unsent a message", "メッセージの送信を取り消しました")  # notices: "<name> unsent a message."
HINT = "Export the chat again from LINE (chat settings → Export chat history) and point `path:` at the .txt file."


def sniff(path: Path) -> bool:
    return read_head(path).startswith(HEADER)


def parse(spec: SourceSpec) -> ParseResult:
    tz = zone(spec)
    buffer = MessageBuffer()
    bad: list[int] = []
    day: tuple[int, int, int] | None = None
    last = None  # [line, timestamp_us, sender, kind, text parts]
    quoted: list[tuple[int, str]] | None = None  # lines taken into an open quote, while it is open
    units = 0
    lines = read_lines(spec.path)
    again: deque[tuple[int, str]] = deque()  # lines to read once more: a quote that turned out not to open one

    def flush() -> None:
        if last is not None:
            _, stamp, sender, kind, parts = last
            buffer.append(spec.name, stamp, sender, _unquote("\n".join(parts)), kind)

    def literal_quote(more: list[tuple[int, str]]) -> None:
        """The quote opening the last message was its first character, not LINE's quoting: the message keeps
        its first line and the lines taken into the quote are read again."""
        del last[4][1:]
        again.extendleft(reversed([*quoted, *more]))

    while True:
        item = again.popleft() if again else next(lines, None)
        if item is None:
            if quoted:
                literal_quote([])
                quoted = None
                continue
            break
        number, raw = item
        units = max(units, number)
        line = raw.rstrip("\r\n")
        if number == 1:
            if not line.startswith(HEADER):
                raise ParseError(spec.path, "this is not a LINE chat history: it does not start with [LINE].", 1, HINT)
            continue
        fields = line.split("\t", 2)
        stamp = _time(fields[0]) if len(fields) >= 2 else None
        if quoted is not None:
            if stamp is not None and len(fields) == 3 and fields[1]:
                literal_quote([(number, raw)])  # a message line ends a quote that never closed
                quoted = None
                continue
            quoted.append((number, raw))
            last[4].append(line)
            if _closes_quote(line):
                quoted = None
            continue
        if stamp is not None:
            if day is None:
                bad.append(number)  # a message before any date line
                continue
            flush()
            when = datetime(*day, *stamp)
            sender, text = (fields[1], fields[2]) if len(fields) == 3 else ("", fields[1])
            kind = _kind(sender, text)
            if kind in ("media", "sticker"):
                text = ""  # LINE writes only a placeholder: no caption
            last = [number, local_us(when, tz), sender, kind, [text]]
            if text.startswith('"') and not _closes_quote(text[1:]):
                quoted = []
            continue
        date = _date(line)
        if date is not None:
            flush()
            last, day = None, date
        elif not line.strip():
            continue  # blank lines separate days; blank lines inside a message are within its quotes
        elif last is not None:
            last[4].append(line)  # an unquoted continuation of the message before
        elif not _SAVED.match(line):
            bad.append(number)
    flush()
    if units <= 1:
        raise ParseError(spec.path, "the file holds no messages.", hint=HINT)
    table = to_messages(spec.name, buffer.table(), spec.me)
    return ParseResult(table=table, units_read=units, bad_lines=bad, unit="line")


def _date(line: str) -> tuple[int, int, int] | None:
    line = line.strip()
    if m := _DATE_YMD.match(line):
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
    elif m := _DATE_MDY.match(line):
        y, mo, d = int(m[3]), int(m[1]), int(m[2])
    else:
        return None
    try:
        datetime(y, mo, d)
    except ValueError:
        return None
    return y, mo, d


def _time(text: str) -> tuple[int, int, int] | None:
    m = _TIME.match(text.strip())
    if m is None:
        return None
    hour, minute, second = int(m[2]), int(m[3]), int(m[4] or 0)
    afternoon = m[1] == "午後" or (m[5] or "").lower() == "p"
    if m[1] or m[5]:
        if not 1 <= hour <= 12 and not (m[1] and hour == 0):
            return None
        hour = hour % 12 + (12 if afternoon else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second


def _closes_quote(text: str) -> bool:
    """True if `text` (inside a quoted message) ends it: an odd number of quotes at its end."""
    stripped = text.rstrip("\r")
    trailing = len(stripped) - len(stripped.rstrip('"'))
    return trailing % 2 == 1


def _unquote(text: str) -> str:
    """A multi-line message as LINE quotes it (outer quotes, inner ones doubled) back to its text."""
    if "\n" in text and len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def _kind(sender: str, text: str) -> str:
    if not sender:
        return "deleted" if text.rstrip(".。").endswith(_UNSENT) else "system"
    if text in MEDIA:
        return "media"
    if text in STICKERS:
        return "sticker"
    if _CALL.match(text):
        return "call"
    return "text"

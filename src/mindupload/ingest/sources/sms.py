"""Android SMS and MMS saved by the "SMS Backup & Restore" app (SyncTech): one XML file, `<smses>`.

    <sms address="+15555550100" date="1704448800000" type="1" body="Hi" contact_name="Anna" .../>
    <mms date="..." msg_box="2" address="+1555~+1666" contact_name="Anna, Marco" ...>
      <parts><part ct="text/plain" text="Hello"/><part ct="image/jpeg" data="(base64)"/></parts>
      <addrs><addr address="+1555" type="137"/><addr address="+1666" type="151"/></addrs>
    </mms>

`date` is milliseconds since the Unix epoch (UTC). SMS `type` 1 is received and 2 sent by you; MMS `msg_box` 1
received and 2 sent; drafts, outbox, failed and queued messages were never exchanged and are skipped. A
conversation is the set of other addresses. MMS media arrive inline as base64 and files reach gigabytes: the
file is streamed with iterparse and every element is cleared once read, so memory holds one message at a time
(and the messages read so far, in Arrow).

The app writes emoji as pairs of UTF-16 surrogate character references (`&#55357;&#56832;`), which XML
forbids; they are joined into one reference as the bytes stream by.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO

import pyarrow as pa

from mindupload.errors import ParseError
from mindupload.ingest.sources import ParseResult, SourceSpec
from mindupload.ingest.sources._common import MAX_US, MIN_US, MessageBuffer, read_head, to_messages

SENT, RECEIVED = "2", "1"
MMS_FROM = "137"  # PduHeaders.FROM
NULLS = frozenset({"", "null", "(Unknown)"})
SMIL = "application/smil"
ME = "me"  # sender name of your own messages when `me` names nobody
HINT = 'Export again with SMS Backup & Restore (format XML) and point `path:` at the "sms-*.xml" file.'
CHUNK = 1 << 20

_ROOT = re.compile(r"^(?:\s*(?:<\?[^>]*\?>|<!--.*?-->))*\s*<smses[\s>]", re.S)  # after declarations, comments
_REF = rb"&#(?:[xX]([0-9a-fA-F]{1,6})|([0-9]{1,7}));"
_PAIR = re.compile(_REF + _REF)
_LONE = re.compile(_REF)
_TAIL = 24  # bytes looked at for a reference cut by the end of a read (a pair is at most 22)
_REF_AT_END = re.compile(_REF + rb"$")


def sniff(path: Path) -> bool:
    return _ROOT.match(read_head(path)) is not None


def parse(spec: SourceSpec) -> ParseResult:
    reader = _Reader(spec)
    with open(spec.path, "rb") as f:
        stream = _SurrogateJoiner(f)
        try:
            reader.read(ET.iterparse(stream, events=("start", "end")))
        except ET.ParseError as error:
            raise ParseError(
                spec.path,
                f"not valid XML here ({_expat_reason(error)}); is the file complete?",
                line=error.position[0],
                hint=HINT,
            ) from None
    if not reader.root_seen:
        raise ParseError(spec.path, "this XML file is not an SMS Backup & Restore file (no <smses>).", hint=HINT)
    rows = reader.named_senders(reader.buffer.table())
    table = to_messages(spec.name, rows, spec.me or (ME,))
    return ParseResult(table=table, units_read=reader.records, bad_lines=reader.bad, unit="record")


def _expat_reason(error: ET.ParseError) -> str:
    # Expat's message names the problem and a position, never the file's text.
    return str(error).split(":")[0]


class _Reader:
    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.buffer = MessageBuffer()
        self.records = 0  # <sms> and <mms> elements, numbered from 1
        self.bad: list[int] = []
        self.skipped = 0  # drafts, outbox, failed
        self.root_seen = False
        self.me_name = spec.me[0] if spec.me else ME
        self.names: dict[str, str] = {}  # address -> contact name, from one-to-one messages

    def named_senders(self, rows: pa.Table) -> pa.Table:
        """Group MMS name their sender by address only: use the contact name a one-to-one message gave it."""
        if not self.names:
            return rows
        senders = [self.names.get(_address_key(s), s) for s in rows.column("sender").to_pylist()]
        return rows.set_column(rows.schema.get_field_index("sender"), "sender", pa.array(senders, pa.string()))

    def read(self, events) -> None:
        root = None
        depth = 0
        for event, elem in events:
            if event == "start":
                depth += 1
                if root is None:
                    root = elem
                    if elem.tag != "smses":
                        return
                    self.root_seen = True
                continue
            depth -= 1
            if depth == 1 and elem.tag in ("sms", "mms"):
                self.records += 1
                try:
                    (self._sms if elem.tag == "sms" else self._mms)(elem)
                except _Bad:
                    self.bad.append(self.records)
                root.clear()  # drops this message and everything it held (media included)
            elif depth == 1:
                root.clear()

    def _sms(self, elem: ET.Element) -> None:
        box = elem.get("type")
        if box not in (SENT, RECEIVED):
            self.skipped += 1
            return
        address = _value(elem.get("address"))
        if address is None:
            raise _Bad
        mine = box == SENT
        name = _value(elem.get("contact_name"))
        if name:
            self.names[_address_key(address)] = name
        sender = self.me_name if mine else (name or address)
        self.buffer.append(
            self._conversation([address]),
            _time_us(elem.get("date")),
            sender,
            elem.get("body") or "",
            "text",
            is_self=mine,
        )

    def _mms(self, elem: ET.Element) -> None:
        box = elem.get("msg_box")
        if box not in (SENT, RECEIVED):
            self.skipped += 1
            return
        mine = box == SENT
        stamp = _time_us(elem.get("date"))
        texts, media = [], False
        for part in elem.iterfind("parts/part"):
            content_type = (part.get("ct") or "").lower()
            if content_type == "text/plain":
                texts.append(part.get("text") or "")
            elif content_type != SMIL:
                media = True
        others = [a for a in (_value(x) for x in (elem.get("address") or "").split("~")) if a]
        sender_address = None
        for addr in elem.iterfind("addrs/addr"):
            if addr.get("type") == MMS_FROM:
                sender_address = _value(addr.get("address"))
        if not others:
            raise _Bad
        if mine:
            sender = self.me_name
        elif len(others) == 1:
            sender = _value(elem.get("contact_name")) or others[0]
            if sender != others[0]:
                self.names[_address_key(others[0])] = sender
        else:
            sender = sender_address or others[0]
        self.buffer.append(
            self._conversation(others),
            stamp,
            sender,
            "\n".join(t for t in texts if t),
            "media" if media else "text",
            is_self=mine,
        )

    def _conversation(self, addresses: list[str]) -> str:
        """One id per set of other people: "source:" and their addresses, normalized and sorted."""
        return f"{self.spec.name}:" + "~".join(sorted({_address_key(a) for a in addresses}))


class _Bad(Exception):
    """A record that cannot be read (no date, no address)."""


def _value(text: str | None) -> str | None:
    return None if text is None or text.strip() in NULLS else text.strip()


def _address_key(address: str) -> str:
    """A phone number without spaces, dashes, dots or brackets."""
    return re.sub(r"[\s\-().]", "", address)


def _time_us(text: str | None) -> int:
    try:
        value = int(text) * 1000
    except (TypeError, ValueError):
        raise _Bad from None
    if not MIN_US <= value <= MAX_US:
        raise _Bad
    return value


def _code_point(match: re.Match, first: int) -> int:
    hex_, dec = match.group(first), match.group(first + 1)
    return int(hex_, 16) if hex_ is not None else int(dec)


def _join_pair(match: re.Match) -> bytes:
    high, low = _code_point(match, 1), _code_point(match, 3)
    if 0xD800 <= high <= 0xDBFF and 0xDC00 <= low <= 0xDFFF:
        return b"&#%d;" % (0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    return _LONE.sub(_fix_lone, match.group(0))


def _fix_lone(match: re.Match) -> bytes:
    return b"&#65533;" if 0xD800 <= _code_point(match, 1) <= 0xDFFF else match.group(0)


class _SurrogateJoiner:
    """A binary stream that rewrites surrogate-pair character references into single ones (and lone
    surrogates into U+FFFD), holding back the end of each read so that no reference or pair is cut in two."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._carry = b""

    def read(self, size: int = -1) -> bytes:
        data, self._carry = self._carry, b""
        while True:
            chunk = self._f.read(CHUNK)
            data += chunk
            if not chunk:
                break
            cut = _safe_cut(data)
            if cut > 0:
                data, self._carry = data[:cut], data[cut:]
                break
        if b"&#" not in data:
            return data
        return _LONE.sub(_fix_lone, _PAIR.sub(_join_pair, data))


def _safe_cut(data: bytes) -> int:
    """Where to end this read: before the first "&" near the end (and before a whole reference right in front
    of it, which may be the first half of a pair); len(data) when no "&" is near the end."""
    cut = data.find(b"&", max(0, len(data) - _TAIL))
    if cut == -1:
        return len(data)
    before = _REF_AT_END.search(data, max(0, cut - 12), cut)
    return before.start() if before else cut

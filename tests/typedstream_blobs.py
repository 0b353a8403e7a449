"""attributedBody blobs built the way Messages archives them (see mindupload.ingest.sources.typedstream for the
layout): two shared tables, 0x84 for a first occurrence and references after, attribute runs as (dictionary
number, UTF-16 length) with each distinct dictionary archived once."""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = b"\x04\x0bstreamtyped\x81\xe8\x03"
NEW, NIL, END = b"\x84", b"\x85", b"\x86"
OBJECT = ("NSObject", 0)
CHAINS = {
    "NSAttributedString": (("NSAttributedString", 0), OBJECT),
    "NSMutableAttributedString": (("NSMutableAttributedString", 0), ("NSAttributedString", 0), OBJECT),
    "NSString": (("NSString", 1), OBJECT),
    "NSMutableString": (("NSMutableString", 1), ("NSString", 1), OBJECT),
    "NSDictionary": (("NSDictionary", 0), OBJECT),
    "NSNumber": (("NSNumber", 0), ("NSValue", 0), OBJECT),
    "NSURL": (("NSURL", 0), OBJECT),
    "NSData": (("NSData", 0), OBJECT),
}
PART = "__kIMMessagePartAttributeName"
TRANSFER = "__kIMFileTransferGUIDAttributeName"
LINK = "__kIMLinkAttributeName"
OBJECT_REPLACEMENT = "\ufffc"


@dataclass(frozen=True)
class URL:
    url: str


def integer(value: int) -> bytes:
    if -110 <= value <= 127:
        return struct.pack("b", value)
    if -0x8000 <= value <= 0x7FFF:
        return b"\x81" + struct.pack("<h", value)
    return b"\x82" + struct.pack("<i", value)


def length(value: int) -> bytes:
    return (
        bytes([value])
        if value < 0x80
        else (b"\x81" + struct.pack("<H", value) if value < 0x10000 else b"\x82" + struct.pack("<I", value))
    )


class Archiver:
    def __init__(self) -> None:
        self.out = bytearray(HEADER)
        self.strings: dict[bytes, int] = {}
        self.slots = 0
        self.classes: dict[tuple[str, int], int] = {}
        self.cstrings: dict[bytes, int] = {}

    def ref(self, index: int) -> None:
        self.out += integer(index - 110)

    def shared(self, raw: bytes) -> None:
        if raw in self.strings:
            self.ref(self.strings[raw])
        else:
            self.strings[raw] = len(self.strings)
            self.out += NEW + length(len(raw)) + raw

    def begin(self, name: str) -> None:
        self.out += NEW
        self.slots += 1
        chain = CHAINS[name]
        for i, cls in enumerate(chain):
            if cls in self.classes:
                self.ref(self.classes[cls])
                return
            self.out += NEW
            self.shared(cls[0].encode())
            self.out += integer(cls[1])
            self.classes[cls] = self.slots
            self.slots += 1
            if i == len(chain) - 1:
                self.out += NIL

    def string(self, text: str, mutable: bool = False) -> None:
        self.begin("NSMutableString" if mutable else "NSString")
        self.shared(b"+")
        data = text.encode()
        self.out += length(len(data)) + data + END

    def cstring(self, raw: bytes) -> None:
        if raw in self.cstrings:
            self.ref(self.cstrings[raw])
        else:
            self.cstrings[raw] = self.slots
            self.slots += 1
            self.out += NEW
            self.shared(raw)

    def value(self, value) -> None:
        if isinstance(value, str):
            self.string(value)
        elif isinstance(value, URL):
            self.begin("NSURL")
            self.shared(b"c")
            self.out += b"\x00"
            self.shared(b"@")
            self.string(value.url)
            self.out += END
        elif isinstance(value, int):
            self.begin("NSNumber")
            self.shared(b"*")
            self.cstring(b"i")
            self.shared(b"i")
            self.out += integer(value) + END
        elif isinstance(value, bytes):
            self.begin("NSData")
            self.shared(b"i")
            self.out += integer(len(value))
            self.shared(b"[%dc]" % len(value))
            self.out += value + END
        else:
            raise TypeError(value)

    def dictionary(self, attributes: dict) -> None:
        self.begin("NSDictionary")
        self.shared(b"i")
        self.out += integer(len(attributes))
        for key, value in attributes.items():
            self.shared(b"@")
            self.string(key)
            self.shared(b"@")
            self.value(value)
        self.out += END


def attributed_body(runs: list[tuple[str, dict]], mutable: bool = False) -> bytes:
    """An archived NSAttributedString of the runs' texts, each run with its attribute dictionary."""
    a = Archiver()
    a.shared(b"@")
    a.begin("NSMutableAttributedString" if mutable else "NSAttributedString")
    a.shared(b"@")
    a.string("".join(text for text, _ in runs), mutable=mutable)
    seen: list[dict] = []
    for text, attributes in runs:
        new = attributes not in seen
        if new:
            seen.append(attributes)
        a.shared(b"iI")
        a.out += integer(seen.index(attributes) + 1) + integer(len(text.encode("utf-16-le")) // 2)
        if new:
            a.shared(b"@")
            a.dictionary(attributes)
    a.out += END
    return bytes(a.out)


def plain(text: str, mutable: bool = False) -> bytes:
    return attributed_body([(text, {PART: 0})], mutable=mutable)

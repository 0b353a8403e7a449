"""A reader for Apple's "typedstream" archives (NSArchiver), as Messages stores `message.attributedBody`.

The layout, as public decoders describe it (no official spec exists):

- Header: a version byte (4), a length-prefixed signature (`streamtyped` little-endian, `typedstream`
  big-endian) and the system version as an integer (1000).
- Integers: one signed byte, unless it is a tag: 0x81 then an int16, 0x82 then an int32 (0x83 starts a float).
  Other tags: 0x84 "new", 0x85 nil, 0x86 end of object; 0x92 and up are references (0x92 is index 0).
- Shared strings (type encodings, class names) are written once after 0x84 with a length, later as references
  into a string table. Objects, classes and C strings share a second table, numbered in stream order: an
  object's slot is taken before its class's.
- A value group: a type encoding (`@` object, `+` byte string, `*` C string, `i`, `I`, `c`, `[Nc]`, ...), then
  one value per type character. An object: 0x84, its class (0x84, name, version, superclass, or a reference),
  then value groups until 0x86.

`NSAttributedString` archives its string (an `NSString` whose group `+` holds UTF-8 bytes), then attribute runs:
an `iI` group (attribute dictionary number, run length in UTF-16 units) followed by the dictionary the first
time it is used. `attributed_text` returns the string; the runs say where message parts, attachments (U+FFFC)
and links are, which the parser does not need.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

TAG_INT2, TAG_INT4, TAG_FLOAT = -127, -126, -125
TAG_NEW, TAG_NIL, TAG_END = -124, -123, -122
FIRST_TAG, LAST_TAG, FIRST_REF = -128, -111, -110
MAX_DEPTH = 64
INTEGER_TYPES = frozenset(b"sSiIlLqQ")
STRING_CLASSES = frozenset({"NSString", "NSMutableString"})
ATTRIBUTED_CLASSES = frozenset({"NSAttributedString", "NSMutableAttributedString"})


class TypedStreamError(ValueError):
    """Bytes that are not a typedstream archive this reader understands (the message names no content)."""


@dataclass
class Class:
    name: str
    version: int
    superclass: Class | None


@dataclass
class Object:
    cls: Class | None
    groups: list[list[Any]] = field(default_factory=list)  # the values of each typed group, in order

    def is_a(self, names: frozenset[str]) -> bool:
        cls = self.cls
        while cls is not None:
            if cls.name in names:
                return True
            cls = cls.superclass
        return False


def attributed_text(blob: bytes) -> str:
    """The plain text of an archived NSAttributedString (or NSString); "" for an empty blob."""
    if not blob:
        return ""
    groups = decode(blob)
    root = groups[0][0] if groups and groups[0] else None
    if isinstance(root, Object) and root.is_a(ATTRIBUTED_CLASSES):
        root = root.groups[0][0] if root.groups and root.groups[0] else None
    if isinstance(root, Object) and root.is_a(STRING_CLASSES):
        for group in root.groups:
            if group and isinstance(group[0], bytes):
                try:
                    return group[0].decode("utf-8")
                except UnicodeDecodeError:
                    raise TypedStreamError("the archived string is not UTF-8") from None
        return ""
    raise TypedStreamError("the archive holds no NSAttributedString or NSString")


def decode(blob: bytes) -> list[list[Any]]:
    """The archive's top-level value groups (Messages writes one: the root object)."""
    return _Reader(blob).read_all()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.strings: list[bytes] = []
        self.objects: list[Any] = []
        self.depth = 0
        self.order = "<"

    # -- primitives
    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise TypedStreamError(f"the archive ends early (byte {self.pos})")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def head(self) -> int:
        return struct.unpack("b", self.take(1))[0]

    def integer(self, head: int | None = None, signed: bool = True) -> int:
        head = self.head() if head is None else head
        if head == TAG_INT2:
            return struct.unpack(self.order + ("h" if signed else "H"), self.take(2))[0]
        if head == TAG_INT4:
            return struct.unpack(self.order + ("i" if signed else "I"), self.take(4))[0]
        if FIRST_TAG <= head <= LAST_TAG:
            raise TypedStreamError(f"an integer was expected at byte {self.pos - 1}")
        return head if signed else head & 0xFF

    def reference(self, head: int, table: list) -> Any:
        index = self.integer(head) - FIRST_REF
        if not 0 <= index < len(table):
            raise TypedStreamError(f"a reference to an unknown entry at byte {self.pos - 1}")
        return table[index]

    def shared_string(self) -> bytes | None:
        head = self.head()
        if head == TAG_NIL:
            return None
        if head == TAG_NEW:
            value = self.take(self.integer(signed=False))
            self.strings.append(value)
            return value
        return self.reference(head, self.strings)

    # -- structure
    def read_all(self) -> list[list[Any]]:
        version = self.take(1)[0]
        signature = self.take(self.take(1)[0])
        if signature == b"typedstream":
            self.order = ">"
        elif signature != b"streamtyped" or version not in (3, 4):
            raise TypedStreamError("not a typedstream archive (unknown header)")
        self.integer()  # the system version
        groups = []
        while self.pos < len(self.data):
            groups.append(self.group())
        return groups

    def group(self) -> list[Any]:
        encoding = self.shared_string()
        if not encoding:
            raise TypedStreamError(f"a type encoding was expected at byte {self.pos}")
        return [self.value(t) for t in _split_types(encoding)]

    def value(self, t: bytes) -> Any:
        code = t[:1]
        if code == b"@":
            return self.object()
        if code == b"#":
            return self.klass()
        if code == b"+":
            return self.take(self.integer(signed=False))
        if code in (b"*", b"%", b":"):
            return self.c_string()
        if code in (b"c", b"C"):
            raw = self.take(1)
            return struct.unpack("b" if code == b"c" else "B", raw)[0]
        if code[0] in INTEGER_TYPES:
            return self.integer(signed=code.islower())
        if code in (b"f", b"d"):
            head = self.head()
            if head == TAG_FLOAT:
                return struct.unpack(self.order + code.decode(), self.take(4 if code == b"f" else 8))[0]
            return float(self.integer(head))
        if code == b"[":
            count, inner = _array(t)
            if inner in (b"c", b"C"):
                return self.take(count)
            return [self.value(inner) for _ in range(count)]
        if code == b"{":
            return [self.value(member) for member in _split_types(_struct_members(t))]
        raise TypedStreamError(f"unsupported type encoding {t!r}")

    def c_string(self) -> bytes | None:
        head = self.head()
        if head == TAG_NIL:
            return None
        if head == TAG_NEW:
            slot = len(self.objects)
            self.objects.append(None)
            self.objects[slot] = self.shared_string()
            return self.objects[slot]
        return self.reference(head, self.objects)

    def klass(self) -> Class | None:
        head = self.head()
        if head == TAG_NIL:
            return None
        if head != TAG_NEW:
            found = self.reference(head, self.objects)
            if not isinstance(found, Class):
                raise TypedStreamError(f"a class was expected at byte {self.pos - 1}")
            return found
        name = self.shared_string()
        if name is None:
            raise TypedStreamError(f"a class without a name at byte {self.pos}")
        cls = Class(name.decode("ascii", errors="replace"), self.integer(), None)
        self.objects.append(cls)
        cls.superclass = self.klass()
        return cls

    def object(self) -> Object | None:
        head = self.head()
        if head == TAG_NIL:
            return None
        if head != TAG_NEW:
            return self.reference(head, self.objects)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise TypedStreamError("objects nest too deeply")
        obj = Object(None)
        self.objects.append(obj)
        obj.cls = self.klass()
        while True:
            if self.pos >= len(self.data):
                raise TypedStreamError("an object is not closed: the archive ends early")
            if struct.unpack("b", self.data[self.pos : self.pos + 1])[0] == TAG_END:
                self.pos += 1
                break
            obj.groups.append(self.group())
        self.depth -= 1
        return obj


def _split_types(encoding: bytes) -> list[bytes]:
    """`iI` -> [i, I]; `[12c]@` -> [[12c], @]; `{_NSRange=QQ}` stays one type."""
    out, i = [], 0
    while i < len(encoding):
        start = i
        if encoding[i : i + 1] in (b"[", b"{", b"("):
            close = {b"[": b"]", b"{": b"}", b"(": b")"}[encoding[i : i + 1]]
            depth = 0
            while i < len(encoding):
                ch = encoding[i : i + 1]
                if ch in (b"[", b"{", b"("):
                    depth += 1
                elif ch in (b"]", b"}", b")"):
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            if i >= len(encoding) or encoding[i : i + 1] != close:
                raise TypedStreamError(f"unbalanced type encoding {encoding!r}")
        i += 1
        out.append(encoding[start:i])
    return out


def _array(t: bytes) -> tuple[int, bytes]:
    inner = t[1:-1]
    digits = len(inner) - len(inner.lstrip(b"0123456789"))
    if not digits:
        raise TypedStreamError(f"an array without a length: {t!r}")
    return int(inner[:digits]), inner[digits:]


def _struct_members(t: bytes) -> bytes:
    body = t[1:-1]
    return body.partition(b"=")[2] if b"=" in body else body

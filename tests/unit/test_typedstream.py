"""The typedstream reader on attributedBody blobs: the layout as public decoders document it, byte for byte,
and blobs built by tests/typedstream_blobs.py: plain, multi-part, link, attachment, empty, long, mutable."""

from __future__ import annotations

import pytest
from typedstream_blobs import LINK, OBJECT_REPLACEMENT, PART, TRANSFER, URL, attributed_body, plain

from mindupload.ingest.sources.typedstream import Object, TypedStreamError, attributed_text, decode

# "Hello world!" as Messages archives it: NSAttributedString > NSObject, the NSString, one attribute run
# (dictionary 1, 12 UTF-16 units) whose dictionary holds __kIMMessagePartAttributeName = NSNumber 0.
DOCUMENTED = (
    b"\x04\x0bstreamtyped\x81\xe8\x03\x84\x01@\x84\x84\x84\x12NSAttributedString\x00\x84\x84\x08NSObject\x00"
    b"\x85\x92\x84\x84\x84\x08NSString\x01\x94\x84\x01+\x0cHello world!\x86\x84\x02iI\x01\x0c\x92\x84\x84\x84"
    b"\x0cNSDictionary\x00\x94\x84\x01i\x01\x92\x84\x96\x96\x1d__kIMMessagePartAttributeName\x86\x92\x84\x84"
    b"\x84\x08NSNumber\x00\x84\x84\x07NSValue\x00\x94\x84\x01*\x84\x99\x99\x00\x86\x86\x86"
)


def test_the_documented_layout() -> None:
    assert attributed_text(DOCUMENTED) == "Hello world!"
    root = decode(DOCUMENTED)[0][0]
    assert root.cls.name == "NSAttributedString" and root.cls.superclass.name == "NSObject"
    run, (attributes,) = root.groups[1], root.groups[2]
    assert run == [1, 12]
    key, value = attributes.groups[1][0], attributes.groups[2][0]
    assert key.groups == [[b"__kIMMessagePartAttributeName"]]
    assert value.cls.name == "NSNumber" and value.groups == [[b"i"], [0]]


def test_the_test_archiver_writes_the_documented_bytes() -> None:
    assert plain("Hello world!") == DOCUMENTED


@pytest.mark.parametrize(
    "text", ["hi", "x" * 127, "y" * 128, "z" * 40_000, "emoji 🧗‍♀️ and ümlauts", "line\nbreaks\u2028too", ""]
)
@pytest.mark.parametrize("mutable", [False, True])
def test_plain_bodies(text: str, mutable: bool) -> None:
    assert attributed_text(plain(text, mutable=mutable)) == text


def test_multi_part_body_with_an_attachment() -> None:
    blob = attributed_body(
        [("first part ", {PART: 0}), (OBJECT_REPLACEMENT, {PART: 1, TRANSFER: "at_1_ABC"}), ("last", {PART: 2})]
    )
    assert attributed_text(blob) == f"first part {OBJECT_REPLACEMENT}last"
    runs = [group for group in decode(blob)[0][0].groups[1:] if not isinstance(group[0], Object)]
    assert [length for _, length in runs] == [11, 1, 4]


def test_a_repeated_dictionary_is_referenced_not_archived_again() -> None:
    blob = attributed_body([("a", {PART: 0}), ("b", {PART: 1}), ("c", {PART: 0})])
    groups = decode(blob)[0][0].groups
    assert attributed_text(blob) == "abc"
    assert [g for g in groups[1:] if not isinstance(g[0], Object)] == [[1, 1], [2, 1], [1, 1]]


def test_link_body() -> None:
    url = "https://example.org/a?b=c"
    blob = attributed_body([("see ", {PART: 0}), (url, {PART: 0, LINK: URL(url)})])
    assert attributed_text(blob) == f"see {url}"
    dictionary = decode(blob)[0][0].groups[4][0]
    link = dictionary.groups[4][0]
    assert link.cls.name == "NSURL" and link.groups[1][0].groups == [[url.encode()]]


def test_data_and_strings_as_attribute_values() -> None:
    blob = attributed_body([("x", {PART: 0, "__kIMDataDetectedAttributeName": b"\x00\x01\x02", "k": "v"})])
    assert attributed_text(blob) == "x"


def test_empty_blob_is_empty_text() -> None:
    assert attributed_text(b"") == ""


@pytest.mark.parametrize(
    "blob",
    [
        DOCUMENTED[:40],  # truncated inside the string
        DOCUMENTED[:-1],  # an object never closed
        b"\x04\x0bnotatypedst\x81\xe8\x03",  # another format
        DOCUMENTED.replace(b"\x94\x84\x01+", b"\xf0\x84\x01+"),  # a reference to nothing
    ],
)
def test_damaged_blobs_raise(blob: bytes) -> None:
    with pytest.raises(TypedStreamError):
        attributed_text(blob)


def test_deep_nesting_is_refused() -> None:
    # Each object's first group is another new object ("@" is shared string 0, written as 0x92).
    blob = b"\x04\x0bstreamtyped\x81\xe8\x03\x84\x01@" + b"\x84\x84\x84\x01A\x00\x85\x92" * 1000
    with pytest.raises(TypedStreamError, match="nest too deeply"):
        attributed_text(blob)

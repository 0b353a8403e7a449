"""Deterministic synthetic WhatsApp exports for benchmarks: a two-person chat in Android or iOS style.

`generate` writes the file and returns what a correct parser must find in it (counts and a digest of every
message's sender, kind and text), so a benchmark can check exactness without holding an oracle in memory.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

PEOPLE = ("Alice Marlow", "Bram Okonkwo")
WORDS = (  # noqa: SIM905 (a word list reads better as text)
    "hey how are you doing today I think we should go to the park later maybe tomorrow café naïve "
    "jalapeño über 日本 привет 😂 👍 ❤️ 🎉 🙈 ok sure lol yes no what time dinner train sounds good see "
    "you soon love that haha really wow nice photo weather rain sun"
).split()
START = date(2018, 6, 13)
CHUNK = 20_000


@dataclass(frozen=True)
class Expected:
    """What parsing the generated file must give."""

    lines: int
    messages: int
    digest: str  # sha256 over (sender, kind, text) of every message in order; see `message_digest`


def message_digest(rows: Iterable[tuple[str, str, str]]) -> str:
    """Digest of an iterable of (sender, kind, text) triples, as `generate` computes it."""
    h = hashlib.sha256()
    for sender, kind, text in rows:
        h.update(f"{sender}\x1f{kind}\x1f{text}\x1e".encode())
    return h.hexdigest()


class _Style:
    """How one phone writes the header and the placeholders."""

    def __init__(self, name: str) -> None:
        if name not in ("android", "ios"):
            raise ValueError(f"unknown style {name!r}: use 'android' or 'ios'")
        self.ios = name == "ios"
        self._dates: dict[int, str] = {}

    def date(self, day: int) -> str:
        if day not in self._dates:
            d = START + timedelta(days=day)
            # Android: en-GB "13/06/2018"; iOS: en-US "6/13/18".
            self._dates[day] = f"{d.month}/{d.day}/{d.year % 100:02d}" if self.ios else f"{d:%d/%m/%Y}"
        return self._dates[day]

    def header(self, day: int, second: int, sender: str | None) -> str:
        h, rem = divmod(second, 3600)
        m, s = divmod(rem, 60)
        if self.ios:
            ampm = "AM" if h < 12 else "PM"
            return f"[{self.date(day)}, {(h - 1) % 12 + 1}:{m:02d}:{s:02d}\u202f{ampm}] {sender}: "
        who = f"{sender}: " if sender else ""
        return f"{self.date(day)}, {h:02d}:{m:02d} - {who}"


def _words(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(lo, hi)))


def _message(rng: random.Random, style: _Style, sender: str) -> tuple[str | None, str, str, str]:
    """(sender or None, body as written, kind, expected text)."""
    r = rng.random()
    if r < 0.80:
        text = _words(rng, 1, 12)
        return sender, text, "text", text
    if r < 0.88:  # multi-line, sometimes with a blank line or a date-like continuation
        parts = [_words(rng, 1, 8) for _ in range(rng.randint(2, 4))]
        if rng.random() < 0.3:
            parts.insert(1, "")
        if rng.random() < 0.2:
            parts.append(f"{style.date(rng.randint(0, 900))} works for me")
        text = "\n".join(parts)
        return sender, text, "text", text
    if r < 0.89:
        text = f"{_words(rng, 1, 4)}\u2028{_words(rng, 1, 4)}"
        return sender, text, "text", text
    if r < 0.94:
        return sender, "\u200eimage omitted" if style.ios else "<Media omitted>", "media", ""
    if r < 0.96:
        caption = _words(rng, 1, 6) if rng.random() < 0.5 else ""
        name = f"IMG-20180613-WA{rng.randint(0, 9999):04d}.jpg"
        if style.ios:
            return sender, f"\u200e<attached: {name}>", "media", ""
        body = f"{name} (file attached)" + (f"\n{caption}" if caption else "")
        return sender, body, "media", caption
    if r < 0.97:  # Android shows stickers as media
        return (
            (sender, "\u200esticker omitted", "sticker", "") if style.ios else (sender, "<Media omitted>", "media", "")
        )
    if r < 0.98:
        body = "\u200eThis message was deleted." if style.ios else "This message was deleted"
        return sender, body, "deleted", ""
    if r < 0.99:
        text = _words(rng, 1, 8)
        return sender, f"{text} <This message was edited>", "text", text
    # Notices: iOS gives them an author and an LRM, Android none.
    notice = (
        "Missed voice call" if r < 0.995 else "Messages and calls are end-to-end encrypted. No one else can read them."
    )
    kind = "call" if r < 0.995 else "system"
    return (sender, "\u200e" + notice, kind, notice) if style.ios else (None, notice, kind, notice)


def generate(path: str | Path, n_messages: int, seed: int = 0, style: str = "android") -> Expected:
    """Write a synthetic export of `n_messages` messages to `path`, the same bytes for the same arguments."""
    rng = random.Random(seed)
    fmt = _Style(style)
    digest = hashlib.sha256()
    day, second, lines = 0, 9 * 3600, 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for start in range(0, n_messages, CHUNK):
            out: list[str] = []
            seen: list[str] = []
            for _ in range(min(CHUNK, n_messages - start)):
                second += rng.randint(1, 400)
                if second >= 86400:
                    day, second = day + second // 86400, second % 86400
                sender, body, kind, text = _message(rng, fmt, PEOPLE[rng.random() < 0.5])
                out.append(fmt.header(day, second, sender) + body)
                seen.append(f"{sender or ''}\x1f{kind}\x1f{text}\x1e")
            chunk = "\n".join(out) + "\n"
            lines += chunk.count("\n")
            digest.update("".join(seen).encode())  # the same digest as one update per message
            f.write(chunk)
    return Expected(lines=lines, messages=n_messages, digest=digest.hexdigest())

"""Parse speed of every chat format against the WhatsApp parser: `python benchmarks/bench_sources.py [--messages N]`.

Writes one synthetic export per format into benchmarks/out/sources/ (WhatsApp's with four times the messages,
to be big enough to time; the same two people and word mix as whatsapp_export.py, in each format's own layout
and indentation: DiscordChatExporter JSON, a Messenger thread split into message_N.json files with Meta's
mojibake, a Slack export of day files, a Google Chat Takeout), then parses them all in turn, --runs rounds, in
this process, and prints the fastest CPU time of each (process time and the minimum: on a shared machine wall
time and averages mostly measure the neighbours), MB/s, seconds per MB, messages per second, and each format's
seconds per MB relative to WhatsApp's. Every parse is checked for its message count.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import whatsapp_export  # noqa: E402
from whatsapp_export import PEOPLE, WORDS  # noqa: E402

OUT = HERE / "out" / "sources"
START = datetime(2018, 6, 13, 9, 0, tzinfo=UTC)
IDS = {PEOPLE[0]: "700000000000000001", PEOPLE[1]: "700000000000000002"}


def _conversation(n: int, seed: int = 0):
    """(i, sender, time, text) for n messages alternating in short runs, a minute or so apart."""
    rng = random.Random(seed)
    moment, sender = START, PEOPLE[0]
    for i in range(n):
        if rng.random() < 0.6:
            sender = PEOPLE[1] if sender == PEOPLE[0] else PEOPLE[0]
        moment += timedelta(seconds=rng.randint(5, 600))
        yield i, sender, moment, " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 18)))


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def make_discord(folder: Path, n: int) -> Path:
    messages = []
    for i, sender, moment, text in _conversation(n):
        author = {"id": IDS[sender], "name": sender.split()[0].lower(), "discriminator": "0000", "nickname": sender}
        messages.append(
            {
                "id": str(1_000_000_000_000_000_000 + i),
                "type": "Default",
                "timestamp": moment.isoformat(timespec="milliseconds"),
                "timestampEdited": None,
                "callEndedTimestamp": None,
                "isPinned": False,
                "content": text,
                "author": {**author, "color": None, "isBot": False, "roles": [], "avatarUrl": "https://cdn/x.png"},
                "attachments": [],
                "embeds": [],
                "stickers": [],
                "reactions": [],
                "mentions": [],
                "inlineEmojis": [],
            }
        )
    data = {
        "guild": {"id": "0", "name": "Direct Messages", "iconUrl": "https://cdn/0.png"},
        "channel": {"id": "900", "type": "DirectTextChat", "categoryId": "0", "category": "Private", "name": "b"},
        "dateRange": {"after": None, "before": None},
        "exportedAt": "2024-05-02T10:00:00+00:00",
        "messages": messages,
        "messageCount": len(messages),
    }
    write_json(folder / "dm.json", data)
    return folder / "dm.json"


def make_messenger(folder: Path, n: int) -> Path:
    def mojibake(text: str) -> str:
        return text.encode("utf-8").decode("latin-1")

    rows = [
        {"sender_name": mojibake(s), "timestamp_ms": int(t.timestamp() * 1000), "content": mojibake(x)}
        for _, s, t, x in _conversation(n)
    ]
    rows.reverse()  # newest first, 10,000 a file, message_1.json the newest
    thread = folder / "messages" / "inbox" / "bram_1"
    for part, start in enumerate(range(0, len(rows), 10_000), 1):
        data = {"participants": [{"name": p} for p in PEOPLE], "messages": rows[start : start + 10_000]}
        path = thread / f"message_{part}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=True), encoding="ascii")  # Meta escapes all
    return folder


def make_slack(folder: Path, n: int) -> Path:
    users = [{"id": "U1", "name": "alice", "profile": {"display_name": PEOPLE[0]}}]
    users.append({"id": "U2", "name": "bram", "profile": {"display_name": PEOPLE[1]}})
    write_json(folder / "users.json", users)
    write_json(folder / "channels.json", [{"id": "C1", "name": "general"}])
    days: dict[str, list] = {}
    for _, sender, moment, text in _conversation(n):
        user = "U1" if sender == PEOPLE[0] else "U2"
        ts = f"{moment.timestamp():.6f}"
        days.setdefault(moment.date().isoformat(), []).append(
            {"client_msg_id": ts, "type": "message", "text": text, "user": user, "ts": ts, "team": "T1"}
        )
    for day, messages in days.items():
        write_json(folder / "general" / f"{day}.json", messages)
    return folder


def make_google_chat(folder: Path, n: int) -> Path:
    messages = []
    for i, sender, moment, text in _conversation(n):
        date = moment.strftime("%A, %B %-d, %Y at %-I:%M:%S\u202f%p UTC")
        email = sender.split()[0].lower() + "@example.org"
        topic = f"t{i:09d}"
        messages.append(
            {
                "creator": {"name": sender, "email": email, "user_type": "Human"},
                "created_date": date,
                "text": text,
                "topic_id": topic,
                "message_id": f"DM/{topic}/{topic}",
            }
        )
    write_json(folder / "Takeout" / "Google Chat" / "Groups" / "DM abc" / "messages.json", {"messages": messages})
    return folder


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def parser(fmt: str) -> Callable:
    import importlib

    from mindupload.ingest.sources import FORMATS, SourceSpec

    module = importlib.import_module(FORMATS[fmt])
    return lambda path: module.parse(SourceSpec("bench", path, format=fmt, me=(PEOPLE[0],)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    n = args.messages
    OUT.mkdir(parents=True, exist_ok=True)
    whatsapp = OUT / f"whatsapp-{4 * n}.txt"  # four times the messages: a file big enough to time
    whatsapp_export.generate(whatsapp, 4 * n, style="android")
    exports = {
        "whatsapp": whatsapp,
        "discord": make_discord(OUT / f"discord-{n}", n),
        "messenger": make_messenger(OUT / f"messenger-{n}", n),
        "slack": make_slack(OUT / f"slack-{n}", n),
        "google_chat": make_google_chat(OUT / f"google_chat-{n}", n),
    }
    import pyarrow as pa
    import pyarrow.compute as pc

    pc.sum(pa.array([0]))  # Arrow registers its compute kernels on first use
    parsers = {fmt: parser(fmt) for fmt in exports}
    times: dict[str, list[float]] = {fmt: [] for fmt in exports}
    counts = {}
    for _ in range(args.runs):  # rounds over all formats, so that a busy moment hits them alike
        for fmt, path in exports.items():
            start = time.process_time()
            result = parsers[fmt](path)
            times[fmt].append(time.process_time() - start)
            counts[fmt] = result.table.num_rows
    for fmt, rows in counts.items():
        if fmt != "whatsapp" and rows != n:
            raise SystemExit(f"{fmt}: parsed {rows} messages, expected {n}")
    results = {fmt: (min(times[fmt]), size_mb(path), counts[fmt]) for fmt, path in exports.items()}
    base = results["whatsapp"][0] / results["whatsapp"][1]
    print(f"{n:,} messages per export ({4 * n:,} for WhatsApp), fastest CPU time of {args.runs} rounds")
    print("| format | MB | CPU seconds | MB/s | s per MB | messages/s | s per MB vs WhatsApp |")
    print("|---|---|---|---|---|---|---|")
    for fmt, (seconds, mb, rows) in results.items():
        print(
            f"| {fmt} | {mb:.1f} | {seconds:.2f} | {mb / seconds:.1f} | {seconds / mb:.3f} | "
            f"{rows / seconds:,.0f} | {seconds / mb / base:.2f}x |"
        )


if __name__ == "__main__":
    main()

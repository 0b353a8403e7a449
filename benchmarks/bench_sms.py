"""Parse a large synthetic SMS Backup & Restore file and report its size, the parse time and peak memory.

    python benchmarks/bench_sms.py [--mb 1000] [--media-kb 2048] [--keep]

Writes benchmarks/out/sms-big.xml (text messages, emoji as surrogate pairs, and MMS with inline base64 media
of --media-kb each, about a third of the file's messages), then parses it in a fresh process and prints the
file size, wall seconds, messages and the parser process's peak RSS. The file is deleted unless --keep.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from mindupload.ingest.sources import SourceSpec, sms
start = time.perf_counter()
result = sms.parse(SourceSpec("big", Path(sys.argv[1]), me=("Me",)))
seconds = time.perf_counter() - start
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "messages": result.table.num_rows, "peak_rss_mb": peak_mb}))
"""


def write_backup(path: Path, target_bytes: int, media_bytes: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    media = base64.b64encode(rng.randbytes(media_bytes))
    people = [f"+4915{n:08d}" for n in range(40)]
    written = 0
    with open(path, "wb") as f:
        f.write(b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<smses count=\"0\">\n")
        n = 0
        while written < target_bytes:
            n += 1
            who = rng.choice(people)
            date = 1_600_000_000_000 + n * 60_000
            if n % 3 == 0:
                row = (
                    (
                        f'<mms date="{date}" msg_box="1" address="{who}" contact_name="P{who[-2:]}"><parts>'
                        f'<part seq="-1" ct="application/smil" text="&lt;smil/&gt;" />'
                        f'<part seq="0" ct="text/plain" text="caption {n}" />'
                        f'<part seq="0" ct="image/jpeg" name="IMG_{n}.jpg" data="'
                    ).encode()
                    + media
                    + f'" /></parts><addrs><addr address="{who}" type="137" /></addrs></mms>\n'.encode()
                )
            else:
                kind = rng.choice(("1", "2"))
                row = (
                    f'<sms protocol="0" address="{who}" date="{date}" type="{kind}" subject="null" '
                    f'body="message number {n} &#55357;&#56842; with some words in it" contact_name="P{who[-2:]}" />\n'
                ).encode()
            f.write(row)
            written += len(row)
        f.write(b"</smses>\n")
    return path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=1000, help="file size to write, in MB (10^6 bytes)")
    ap.add_argument("--media-kb", type=int, default=2048, help="size of each MMS image before base64, in KiB")
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    path = OUT / "sms-big.xml"
    t = time.perf_counter()
    size = write_backup(path, args.mb * 10**6, args.media_kb * 1024)
    print(f"wrote {size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), str(HERE.parent / "src")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        print(json.dumps({"file_mb": round(size / 1e6), **json.loads(out)}))
    finally:
        if not args.keep:
            os.unlink(path)


if __name__ == "__main__":
    main()

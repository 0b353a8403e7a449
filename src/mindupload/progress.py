"""Progress of long steps, in counts only (never text): a bar on a terminal, a log line per tenth otherwise.

Rules send a job's stderr to its log file, so there the progress is a line at each 10%; run by hand on a
terminal, tqdm draws a bar. Steps below `min_total` items say nothing: they are over before anyone looks.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("mindupload")

MIN_TOTAL = 20_000  # our choice: about a second of the slowest per-item step (redaction) on this CPU


class Progress:
    def __init__(self, what: str, total: int, unit: str = "items", min_total: int = MIN_TOTAL):
        self.what, self.total, self.unit, self.done, self.tenth = what, total, unit, 0, 0
        self.bar = None
        if total < min_total:
            self.total = 0  # silent
        elif sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=what, unit=f" {unit}", leave=False)

    def update(self, n: int = 1) -> None:
        if not self.total:
            return
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        tenth = min(10, self.done * 10 // self.total)
        if tenth > self.tenth:
            self.tenth = tenth
            log.info("%s: %d%% (%d of %d %s)", self.what, 10 * tenth, self.done, self.total, self.unit)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

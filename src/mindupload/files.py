"""Files that appear whole or not at all: every stage writes its outputs through these, so a killed or failed
job never leaves a half-written file for Snakemake (or a rerun) to take as done."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    with atomic_text_file(path) as f:
        f.write(text)


def write_lines_atomic(lines: Iterable[str], path: str | os.PathLike) -> None:
    with atomic_text_file(path) as f:
        for line in lines:
            f.write(line)
            f.write("\n")


@contextlib.contextmanager
def atomic_text_file(path: str | os.PathLike) -> Iterator[TextIO]:
    """A UTF-8 text file that appears at `path` only when the block finishes without an error."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
        yield f


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """A temporary path beside `path`, renamed onto it when the block succeeds and removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside `path` that replaces it when the block succeeds and is removed when it fails.

    A folder at `path` is therefore always complete: the old one moves aside only for the two renames.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(data: dict, path: str | os.PathLike) -> None:
    """Indented UTF-8 JSON (names and text stay readable), written atomically."""
    write_text_atomic(json.dumps(data, indent=2, ensure_ascii=False) + "\n", path)

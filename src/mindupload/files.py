"""Files that appear whole or not at all: every stage writes its outputs through these, so a killed or failed
job never leaves a half-written file for Snakemake (or a rerun) to take as done."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from mindupload.errors import DiskFullError, is_disk_full


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
    """A temporary path beside `path`, renamed onto it when the block succeeds and removed when it fails.

    A full disk is a DiskFullError naming `path`. Temporaries of `path` left by a killed run (SIGKILL runs no
    clean-up) are removed once a new one has succeeded.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(error):
            raise DiskFullError(path, error.errno) from None
        raise
    remove_stale_temporaries(path)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove `.{name}.*.tmp` files and `.{name}.*` folders beside `path`: what atomic writes of it leave
    behind when the process is killed. Call only once `path` itself is complete."""
    path = Path(path)
    # mkstemp/mkdtemp add 8 characters of [a-z0-9_]; atomic_dir moves the old folder to `.{name}.old`.
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:[a-z0-9_]{{8}}(?P<tmp>\.tmp)?|old)")
    removed = []
    for stale in path.parent.glob(f".{path.name.translate(_GLOB_ESCAPES)}.*"):
        match = pattern.fullmatch(stale.name)
        if match is None:
            continue
        if stale.is_dir() and not stale.is_symlink() and not match["tmp"]:
            shutil.rmtree(stale, ignore_errors=True)
        elif stale.is_file() and match["tmp"]:
            stale.unlink(missing_ok=True)
        else:
            continue
        removed.append(stale)
    return removed


_GLOB_ESCAPES = str.maketrans({"*": "[*]", "?": "[?]", "[": "[[]"})


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
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(error):
            raise DiskFullError(path, error.errno) from None
        raise
    remove_stale_temporaries(path)


def write_json(data: dict, path: str | os.PathLike) -> None:
    """Indented UTF-8 JSON (names and text stay readable), written atomically."""
    write_text_atomic(json.dumps(data, indent=2, ensure_ascii=False) + "\n", path)

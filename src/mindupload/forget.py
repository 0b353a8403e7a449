"""`snakemake forget`: delete everything the workflow derived from your chats, in one command.

Derived data lives in fixed places: `results/` (tables, dataset, reports, axolotl's prepared caches and
checkpoints, adapters, merged models, samples, hub receipts), `logs/`, and Snakemake's own records in
`.snakemake/` (job metadata with each rule's params, run logs, incomplete markers). The embedded public base
model under `results/models/` holds no user data and takes half a minute to rebuild, so it is kept.
Your exports (`data/`, or wherever `sources:` points) are yours and are never touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

KEPT = ("results/models",)  # public base models only: no user data
DERIVED = ("results", "logs", ".snakemake/metadata", ".snakemake/log", ".snakemake/incomplete", ".snakemake/shadow")


def forget(root: str | Path = ".", derived: tuple[str, ...] = DERIVED, kept: tuple[str, ...] = KEPT) -> list[str]:
    """Delete the derived paths under `root` (except `kept` ones and the folders that hold them).

    Returns the deleted paths, relative to `root`, sorted.
    """
    root = Path(root)
    keep = {(root / k).resolve() for k in kept}
    removed: list[str] = []
    for name in derived:
        removed += _remove(root / name, keep, root)
    return sorted(removed)


def _remove(path: Path, keep: set[Path], root: Path) -> list[str]:
    if not path.exists() and not path.is_symlink():
        return []
    resolved = path.resolve() if not path.is_symlink() else path.parent.resolve() / path.name
    if resolved in keep:
        return []
    if path.is_dir() and not path.is_symlink() and any(k.is_relative_to(resolved) for k in keep):
        removed = []
        for child in sorted(path.iterdir()):
            removed += _remove(child, keep, root)
        return removed
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    return [path.relative_to(root).as_posix()]

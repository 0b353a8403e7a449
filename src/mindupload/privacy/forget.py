"""`snakemake forget`: delete everything the workflow derived from your chats, in one command.

Derived data lives in fixed places: `results/` (tables, dataset, reports, axolotl's prepared caches and
checkpoints, adapters, merged models, samples, hub receipts), `logs/`, and Snakemake's own records in
`.snakemake/` (job metadata with each rule's params, run logs, incomplete markers, local copies of files in
remote storage). One copy lives outside the folder: training from the Hub (`train_from: hub`) downloads the
dataset repo into the Hugging Face cache, so that repo's cached copy goes too. The embedded public base
model under `results/models/` holds no user data and takes half a minute to rebuild, so it is kept.
Your exports (`data/`, or wherever `sources:` points) are yours and are never touched.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

KEPT = ("results/models",)  # public base models only: no user data
DERIVED = (
    "results",
    "logs",
    ".snakemake/metadata",
    ".snakemake/log",
    ".snakemake/incomplete",
    ".snakemake/shadow",
    ".snakemake/storage",
    "report.html",  # `snakemake --report report.html` (README): the sample replies and check examples quote chats
    "report.zip",
)
DATASET_RECEIPT = "results/hub/dataset.json"


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


def pushed_dataset_repos(root: str | Path, configured: str = "") -> list[str]:
    """The Hub dataset repos this folder pushed to: the upload receipt's (a full `namespace/name`) and the
    configured one when it names its namespace. Read before `forget` deletes the receipt."""
    repos = {configured} if "/" in configured else set()
    receipt = Path(root) / DATASET_RECEIPT
    # No receipt (nothing pushed from here) or not one we can read: the configured name still counts.
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        repos.add(json.loads(receipt.read_text())["repo_id"])
    return sorted(repos)


def forget_hub_copies(repos: list[str]) -> list[str]:
    """Delete the Hugging Face cache's copies of the dataset `repos` (downloaded when training from the Hub).
    Returns the deleted cache folders."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir()
    except CacheNotFound:
        return []
    cached = [repo for repo in cache.repos if repo.repo_type == "dataset" and repo.repo_id in repos]
    for repo in cached:  # a repo's folder holds its blobs, refs and snapshots: all of it goes
        shutil.rmtree(repo.repo_path)
    return sorted(str(repo.repo_path) for repo in cached)

"""Push receipts: what the Hub step pushed (repo, revision, file digests). The Hub step writes them; training
reads one to train from the pushed dataset at the revision it pins, and checks it against the local splits."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from mindupload.errors import UserError
from mindupload.files import write_json

log = logging.getLogger(__name__)

DATA_FILES = {"train": "data/train.jsonl", "validation": "data/validation.jsonl"}  # paths in the dataset repo


def file_digest(content: bytes) -> dict:
    return {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}


def write_receipt(path: str | Path, repo_id: str, repo_type: str, private: bool, info, files: dict, **extra) -> dict:
    receipt = {
        "repo_id": repo_id,
        "repo_type": repo_type,
        "revision": info.oid,
        "private": private,
        "files": files,
        **extra,
        "pushed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json(receipt, path)
    log.info("pushed %d file(s) to %s %s at revision %s", len(files), repo_type, repo_id, info.oid)
    return receipt


def read_receipt(path: str | Path) -> dict:
    try:
        receipt = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no upload receipt. Push the dataset first with `snakemake upload`.") from None
    except json.JSONDecodeError:
        raise UserError(f"{path}: not an upload receipt (not JSON). Push again with `snakemake upload`.") from None
    if not isinstance(receipt, dict) or not {"repo_id", "revision", "files"} <= receipt.keys():
        raise UserError(
            f"{path}: not an upload receipt (repo_id, revision, files). Push again with `snakemake upload`."
        )
    return receipt


def check_receipt_matches(receipt: dict, receipt_path: str | Path, train: str | Path, validation: str | Path) -> None:
    """The local splits are byte for byte what the receipt says was pushed: else training from the Hub and
    checking the local files would be about different data."""
    for path, local in ((DATA_FILES["train"], train), (DATA_FILES["validation"], validation)):
        pushed = receipt["files"].get(path, {}).get("sha256")
        if pushed != file_digest(Path(local).read_bytes())["sha256"]:
            raise UserError(
                f"{receipt_path}: {local} differs from the {path} pushed to {receipt['repo_id']}; "
                "push it again with `snakemake upload`."
            )

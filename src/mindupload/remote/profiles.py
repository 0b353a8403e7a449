"""`snakemake --profile runpod`: Snakemake looks for a named profile in the working directory and in the user's
and the site's Snakemake config folders, not in `profiles/`. `install` copies one of this repository's profiles
into the user's folder (~/.config/snakemake/<name> on Linux), where the user's own settings (the bucket) then
live outside the repository."""

from __future__ import annotations

import shutil
from pathlib import Path

from mindupload.errors import UserError


def user_profiles_dir() -> Path:
    from snakemake.common import get_appdirs  # the folder Snakemake itself searches

    return Path(get_appdirs().user_config_dir)


def install(name: str, source: Path, force: bool = False) -> Path:
    """Copy the profile folder `source` to the user's Snakemake config folder as `name`; returns the copy."""
    if not (source / "config.yaml").is_file():
        raise UserError(f"{source}: no profile there (no config.yaml). Run this from the repository root.")
    target = user_profiles_dir() / name
    if target.exists() and not force:
        raise UserError(f"{target} exists already: edit it, or pass --force to replace it with {source}.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target

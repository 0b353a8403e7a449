"""Checks the Snakefile runs before Snakemake reads the config file itself."""

from __future__ import annotations

import os
import sys

from mindupload.errors import UserError


def check_config_file(path: str) -> None:
    """Exit with one line naming the file and line of a YAML mistake or a key written twice in `path`."""
    from mindupload.config.yamlfile import load_yaml

    if not os.path.exists(path):
        return  # Snakemake's own message says which file is missing
    try:
        load_yaml(path)
    except UserError as error:
        sys.exit(f"mindupload: error: {error}")

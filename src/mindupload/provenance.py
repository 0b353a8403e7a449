"""Provenance: what made an output a user keeps (the dataset's stats, segment report and Hub card; the
adapter's `training.json` and model card). The mindupload version, the git commit when it runs from a
checkout, the digest of the run's config, and the base model's identity.

None of these is a rule's param: an upgrade reruns only what its new code changes (the code fingerprints in
`mindupload.fingerprint` decide that), and an output keeps the provenance of the run that wrote it. The config
digest reaches a job through the environment, set by the workflow for the jobs it starts (like
`mindupload.joboptions`); a command run by hand records none.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from mindupload import __version__
from mindupload.fingerprint import PACKAGE, digest

CONFIG_DIGEST = "MINDUPLOAD_CONFIG_DIGEST"


def config_digest(config: dict) -> str:
    """A digest of the whole validated config (defaults filled in): two runs with the same one read the same."""
    return digest(json.dumps(config, sort_keys=True, ensure_ascii=False, default=str))


def hand_over_config(config: dict) -> str:
    """For the workflow: the config's digest in this process's environment, for the jobs it starts."""
    os.environ[CONFIG_DIGEST] = config_digest(config)
    return os.environ[CONFIG_DIGEST]


def git_commit(package: Path = PACKAGE) -> str | None:
    """The commit of the checkout the package runs from (`<sha>-dirty` when its files were edited), or None
    when it is installed from a wheel or not tracked by git."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(package), *args], capture_output=True, text=True, check=False)

    try:
        tracked = git("ls-files", "--error-unmatch", "__init__.py")
        head = git("rev-parse", "HEAD")
        if tracked.returncode or head.returncode:
            return None
        edited = git("status", "--porcelain", "--untracked-files=no", "--", ".").stdout.strip()
    except OSError:  # no git here
        return None
    return head.stdout.strip() + ("-dirty" if edited else "")


def collect(base_model: dict | None = None) -> dict:
    """What made the output being written now; `base_model` as `mindupload.model.tokenizer.identity` gives it."""
    found = {
        "mindupload": __version__,
        "git_commit": git_commit(),
        "config_digest": os.environ.get(CONFIG_DIGEST),
    }
    if base_model:
        found["base_model"] = base_model
    return found


def lines(provenance: dict) -> list[str]:
    """Markdown list items for a stats file or a card."""
    out = [f"- mindupload {provenance.get('mindupload')}" + _commit(provenance.get("git_commit"))]
    out.append(f"- config digest: {provenance.get('config_digest') or 'none (not run by the workflow)'}")
    base = provenance.get("base_model")
    if base:
        where = "Hugging Face Hub" if base.get("on_hub") else f"local folder, files digest {base.get('files')}"
        out.append(f"- base model: {base['name']} ({where})")
    return out


def _commit(commit: str | None) -> str:
    return f" (git commit {commit})" if commit else ""

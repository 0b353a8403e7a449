"""The executor's settings (`--runpod-<name>` on the command line, `runpod-<name>:` in a profile) and the
checks that stop a run before any pod exists."""

import difflib
import importlib.metadata
import re
from dataclasses import dataclass, field
from typing import Optional

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import ExecutorSettingsBase

from snakemake_executor_plugin_runpod.api import CLOUD_TYPES

# axolotl's image for the axolotl version the workflow is validated with locally (0.19.0, Python 3.11).
DEFAULT_IMAGE = "axolotlai/axolotl:0.19.0-py3.11-cu128-2.13.0"
# Tags that move: a run must know what it runs.
FLOATING_TAGS = re.compile(r"^(latest|main|nightly|main-latest|.*-latest)$")


# Field types are read at run time by Snakemake to build its command line: no postponed annotations here.
@dataclass
class ExecutorSettings(ExecutorSettingsBase):
    gpu_type: Optional[str] = field(  # noqa: UP045 (Snakemake reads Optional, not X | None)
        default=None,
        metadata={
            "help": "RunPod GPU type id for jobs (e.g. 'NVIDIA A40'); a rule may ask for another one with the "
            "`gpu_model` resource. The key is read from RUNPOD_API_KEY, never from a setting.",
            "required": True,
        },
    )
    image: str = field(
        default=DEFAULT_IMAGE,
        metadata={"help": "Container image for the pods, pinned by tag or digest (no ':latest')."},
    )
    cloud_type: str = field(
        default="SECURE",
        metadata={"help": "RunPod cloud: SECURE, COMMUNITY or ALL.", "choices": list(CLOUD_TYPES)},
    )
    container_disk_gb: int = field(
        default=60, metadata={"help": "Container disk per pod in GB (the image, the model and checkpoints)."}
    )
    max_runtime: float = field(
        default=720.0,
        metadata={
            "help": "Minutes a pod may run before it is terminated and its job failed; a rule's `runtime` "
            "resource lowers it."
        },
    )
    api_grace_seconds: float = field(
        default=600.0,
        metadata={"help": "How long RunPod API errors are tolerated while polling before the job is given up."},
    )
    pip_packages: Optional[str] = field(  # noqa: UP045 (Snakemake reads Optional, not X | None)
        default=None,
        metadata={
            "help": "Pinned packages the pod installs before the job (default: this machine's snakemake and "
            "storage plugin versions)."
        },
    )
    setup_command: Optional[str] = field(  # noqa: UP045 (Snakemake reads Optional, not X | None)
        default=None,
        metadata={"help": "Shell command the pod runs in the deployed workflow sources before the job."},
    )


def check_image(image: str) -> None:
    """An image pinned by a tag that does not move, or by digest; otherwise WorkflowError."""
    name = image.rsplit("/", 1)[-1]
    if "@sha256:" in image:
        return
    if ":" not in name:
        raise WorkflowError(
            f"runpod-image {image!r} has no tag: pin it (e.g. {DEFAULT_IMAGE}) so every run uses the same software."
        )
    tag = name.rsplit(":", 1)[1]
    if FLOATING_TAGS.match(tag):
        raise WorkflowError(
            f"runpod-image {image!r}: the tag {tag!r} moves; pin a release tag (e.g. {DEFAULT_IMAGE}) or a digest."
        )


def check_gpu_type(gpu_type: str, known: list[dict], where: str = "runpod-gpu-type") -> None:
    ids = [g["id"] for g in known]
    if gpu_type in ids:
        return
    names = {g.get("displayName", ""): g["id"] for g in known}
    if gpu_type in names:
        raise WorkflowError(f"{where} {gpu_type!r} is a display name: use the GPU type id {names[gpu_type]!r}.")
    close = difflib.get_close_matches(gpu_type, ids, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else f" Known: {', '.join(sorted(ids))}."
    raise WorkflowError(f"{where} {gpu_type!r}: RunPod has no such GPU type.{hint}")


def default_pip_packages(storage_packages: list[str]) -> str:
    """This machine's snakemake and storage plugins, pinned, so the pod parses the job's arguments the same."""
    pins = []
    for package in ["snakemake", *storage_packages]:
        try:
            pins.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            raise WorkflowError(f"{package} is not installed here: cannot pin it for the pods.") from None
    return " ".join(pins)

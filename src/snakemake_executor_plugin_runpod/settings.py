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
from snakemake_executor_plugin_runpod.pods import image_cuda

# RunPod's own PyTorch image, the tag RunPod's REST v2 schema uses in its create-pod examples (see docs/runpod.md:
# how we know it exists, how to check it). The pod installs the training stack (torch, axolotl) on top of it.
DEFAULT_IMAGE = "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404"
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
    gpu_fallbacks: Optional[str] = field(  # noqa: UP045 (Snakemake reads Optional, not X | None)
        default=None,
        metadata={
            "help": "GPU type ids to try, in order, when RunPod has no capacity for the wanted one "
            "(comma-separated, e.g. 'NVIDIA RTX A6000,NVIDIA L40S')."
        },
    )
    cloud_type: str = field(
        default="SECURE",
        metadata={"help": "RunPod cloud: SECURE or COMMUNITY.", "choices": list(CLOUD_TYPES)},
    )
    min_cuda: Optional[str] = field(  # noqa: UP045 (Snakemake reads Optional, not X | None)
        default=None,
        metadata={
            "help": "Lowest host CUDA version (major.minor) the pod's software needs; pods are only placed on "
            "hosts the catalog lists with such a version (allowedCudaVersions). Default: the CUDA in the "
            "image tag."
        },
    )
    max_cost: Optional[float] = field(  # noqa: UP045 (Snakemake reads Optional, not X | None)
        default=None,
        metadata={
            "help": "Refuse to start a pod whose estimated cost (price per hour x maximum runtime) is above "
            "this many US dollars."
        },
    )
    start_deadline: float = field(
        default=20.0,
        metadata={
            "help": "Minutes a new pod has to show that the job started (its first log line) before it is "
            "terminated and the job failed."
        },
    )
    stop_grace_seconds: float = field(
        default=120.0,
        metadata={"help": "Seconds a pod whose job finished has to stop itself before it is terminated from here."},
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
    names = {g.get("name", ""): g["id"] for g in known}
    if gpu_type in names:
        raise WorkflowError(f"{where} {gpu_type!r} is a display name: use the GPU type id {names[gpu_type]!r}.")
    close = difflib.get_close_matches(gpu_type, ids, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else f" Known: {', '.join(sorted(ids))}."
    raise WorkflowError(f"{where} {gpu_type!r}: RunPod has no such GPU type.{hint}")


CUDA_VERSION = re.compile(r"^\d+\.\d+$")


def min_cuda(setting: str | None, image: str) -> str | None:
    """The host CUDA floor: the setting, else the CUDA version in the image tag, else none."""
    if setting:
        if not CUDA_VERSION.match(str(setting)):
            raise WorkflowError(f"runpod-min-cuda {setting!r}: write it as major.minor, e.g. '13.0'.")
        return str(setting)
    return image_cuda(image)


def gpu_list(primary: str, fallbacks: str | None) -> list[str]:
    return [primary, *(g.strip() for g in (fallbacks or "").split(",") if g.strip())]


def default_pip_packages(storage_packages: list[str]) -> str:
    """This machine's snakemake and storage plugins (and setuptools, the project's build backend), pinned, so the
    pod parses the job's arguments the same and can install the project without reaching for a build backend."""
    pins = []
    for package in ["snakemake", *storage_packages, "setuptools"]:
        try:
            pins.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            raise WorkflowError(f"{package} is not installed here: cannot pin it for the pods.") from None
    return " ".join(pins)

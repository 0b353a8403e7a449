"""What the RunPod workflow tests share: a moto S3 server, a "pod image" (a venv without pip, like the uv-made venv
of an axolotl image, seeing this environment's packages but neither pip nor this checkout's source, so the pod must
bootstrap an installer and install the deployed project), a git working copy of the repository whose exports live
in git-ignored data/, and a RunPod test profile built from profiles/runpod."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "mindupload-test"
API_KEY = "test-key"


def _workflow_helpers():
    spec = importlib.util.spec_from_file_location("workflow_helpers", ROOT / "tests/workflow/test_workflow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _workflow_helpers()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def s3_server():
    """moto's S3 on 127.0.0.1, with an empty test bucket; yields the endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        s3(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def s3(endpoint: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def bucket_keys(endpoint: str, prefix: str = "") -> list[str]:
    pages = s3(endpoint).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


# Left out of the pod image: pip (an axolotl image's venv has none) and this project (the pod installs the deployed
# sources; an editable install would point back at a checkout).
HIDDEN = ("pip", "pip-", "mindupload", "__editable__.mindupload", "_mindupload")


def pod_image(folder: Path) -> Path:
    """A pip-less venv (`python -m venv --without-pip`) that sees this environment's installed packages
    (snakemake, torch, peft, the s3 plugin, ...) through a folder of links that leaves out pip and mind-upload:
    like an axolotl image, it has the libraries, and must find an installer and install mind-upload itself."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    image_site = folder / "image-site-packages"
    image_site.mkdir()
    for site_dir in [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]:
        for entry in Path(site_dir).iterdir():
            if entry.name.startswith(HIDDEN) or (image_site / entry.name).exists():
                continue
            (image_site / entry.name).symlink_to(entry)
    pth = folder / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages" / "_image.pth"
    pth.write_text(f"import site; site.addsitedir({str(image_site)!r})\n")
    return folder / "bin"


def make_repo(tmp: Path, model_dir: Path, **overrides) -> Path:
    """The repository in git (Snakemake ships tracked files to pods), exports in git-ignored data/, and the
    base model inside the working directory (models/, git-ignored)."""
    workdir = helpers.make_workdir(tmp, **overrides)
    for name in ("src", "pyproject.toml", "README.md", ".gitignore"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, workdir / name, ignore=_ignore)
        else:
            shutil.copy(src, workdir / name)
    with (workdir / ".gitignore").open("a") as f:
        f.write("/models/\n")
    cfg = yaml.safe_load((workdir / "config/config.yaml").read_text())
    (workdir / "data").mkdir()
    for name, source in cfg["sources"].items():
        target = workdir / "data" / name / Path(source["path"]).name
        target.parent.mkdir()
        shutil.copy(workdir / source["path"], target)
        source["path"] = str(target.relative_to(workdir))
    # "./": a folder, not the hub id models/tiny-llama. A base_model override (a hub id) wins.
    cfg["base_model"] = overrides.get("base_model", "./models/tiny-llama")
    cfg["training"]["max_steps"] = 2
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    shutil.copytree(model_dir, workdir / "models/tiny-llama")
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org"]
    subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)
    subprocess.run([*git, "add", "-A"], cwd=workdir, check=True)
    subprocess.run([*git, "commit", "-qm", "test copy"], cwd=workdir, check=True)
    return workdir


def _ignore(folder, names):
    return [n for n in names if n in ("__pycache__", ".venv") or n.endswith(".egg-info")]


def upload_model(endpoint: str, workdir: Path, prefix: str) -> None:
    """A local base model reaches the pod through the bucket, like every other input."""
    client = s3(endpoint)
    for path in (workdir / "models/tiny-llama").rglob("*"):
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(workdir)}")


def make_profile(folder: Path, endpoint: str, prefix: str, **settings) -> Path:
    """profiles/runpod with the test's bucket, endpoint and fast polling."""
    from snakemake_executor_plugin_runpod.settings import default_pip_packages

    cfg = yaml.safe_load((ROOT / "profiles/runpod/config.yaml").read_text())
    # The fake pods have no package index (tests never reach the network) and their "image" already holds every
    # pinned package: the profile's installs run as written, with --no-deps, so pip does not try to reconcile
    # this venv's own conflicts (snakemake's packaging<26 beside axolotl's packaging==26.0) through an index.
    cfg["runpod-pip-packages"] = "--no-deps " + default_pip_packages(["snakemake-storage-plugin-s3"])
    setup = cfg["runpod-setup-command"]
    cfg["runpod-setup-command"] = setup.replace("install --quiet torch", "install --quiet --no-deps torch")
    assert "--no-deps torch==" in cfg["runpod-setup-command"]
    cfg.update(
        {
            "default-storage-prefix": f"s3://{BUCKET}/{prefix}",
            "storage-s3-endpoint-url": endpoint,
            "seconds-between-status-checks": 1,
            "local-cores": 2,
            **settings,
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    return folder


def environment(workdir: Path, api_url: str) -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {
        "PATH": f"{bindir}:/usr/bin:/bin",
        # This checkout's executor and package, not those of whatever checkout the venv was installed from.
        "PYTHONPATH": str(ROOT / "src"),
        "HOME": str(workdir),
        "HF_HUB_OFFLINE": "1",
        "RUNPOD_API_KEY": API_KEY,
        "RUNPOD_API_BASE_URL": api_url,
        "SNAKEMAKE_STORAGE_S3_ACCESS_KEY": "testing",
        "SNAKEMAKE_STORAGE_S3_SECRET_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def snakemake(workdir: Path, env: dict, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    # A bound, not an expectation: the local rules before `train` take minutes on a busy 2-core machine.
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_snakemake(workdir: Path, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")

"""`snakemake --profile profiles/runpod train` on real RunPod (REST API v2) and a real bucket. Opt-in, it costs
some cents (the pod installs torch and axolotl before training):

    MINDUPLOAD_LIVE_RUNPOD=1 RUNPOD_API_KEY=... SNAKEMAKE_STORAGE_S3_ACCESS_KEY=... \\
    SNAKEMAKE_STORAGE_S3_SECRET_KEY=... MINDUPLOAD_LIVE_S3_PREFIX=s3://bucket/folder \\
    [MINDUPLOAD_LIVE_S3_ENDPOINT=https://s3api-eu-ro-1.runpod.io MINDUPLOAD_LIVE_S3_REGION=EU-RO-1] \\
    python -m pytest tests/live -v

It trains SmolLM2-135M-Instruct (from the hub, so this machine and the pod need the internet) for a few steps
on the bundled example exports, with the profile's image, CUDA floor, cost cap and deadlines, then checks that
the adapter is in the bucket, the pod's log came back here, and no pod of the run is left (listed through v2).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from runpod_fake.harness import make_repo

HUB_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
LIVE = os.environ.get("MINDUPLOAD_LIVE_RUNPOD") == "1" and os.environ.get("RUNPOD_API_KEY")
pytestmark = pytest.mark.skipif(not LIVE, reason="set MINDUPLOAD_LIVE_RUNPOD=1 and RUNPOD_API_KEY to run on RunPod")


def test_train_on_a_real_pod_leaves_an_adapter_and_no_pod(tmp_path, tiny_llama_dir):
    from snakemake_executor_plugin_runpod.api import RunPodClient
    from snakemake_executor_plugin_runpod.pods import run_of

    prefix = os.environ["MINDUPLOAD_LIVE_S3_PREFIX"].rstrip("/") + f"/live-{os.getpid()}"
    repo = make_repo(tmp_path, tiny_llama_dir, base_model=HUB_MODEL)
    args = ["--profile", "profiles/runpod", "--default-storage-prefix", prefix, "train"]
    if os.environ.get("MINDUPLOAD_LIVE_S3_ENDPOINT"):
        args += ["--storage-s3-endpoint-url", os.environ["MINDUPLOAD_LIVE_S3_ENDPOINT"]]
    if os.environ.get("MINDUPLOAD_LIVE_S3_REGION"):
        args += ["--storage-s3-region", os.environ["MINDUPLOAD_LIVE_S3_REGION"]]
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    out = proc.stdout + proc.stderr
    run = re.search(r"RunPod run ([0-9a-f]+)", out)
    assert run, out[-3000:]
    left = [p for p in RunPodClient(os.environ["RUNPOD_API_KEY"]).pods() if run_of(p["name"]) == run[1]]
    assert left == [], f"pods left running: {left}"
    assert proc.returncode == 0, out[-5000:]
    assert re.search(r"RunPod: 1 pod\(s\) in run \w+, about \$\d+\.\d+", out)
    assert re.search(r"starting snakemake-runpod-\w+-train-\d+ on 1 x .* at most \$\d+\.\d\d", out)
    logs = list((repo / ".snakemake/runpod_logs" / run[1]).glob("*.log"))
    assert len(logs) == 1 and "snakemake-runpod: job finished with exit status 0" in logs[0].read_text()

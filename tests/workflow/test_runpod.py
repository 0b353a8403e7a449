"""`snakemake --profile <runpod profile> train` for real: the RunPod executor against a fake RunPod API whose pods
are local processes, with moto's S3 server as the bucket. Then the faults: a pod that dies, an API that fails,
a job past its runtime, a cancelled run -- and never a pod left behind."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest
from runpod_fake.harness import (
    API_KEY,
    BUCKET,
    bucket_keys,
    environment,
    make_profile,
    make_repo,
    pod_image,
    s3,
    s3_server,
    snakemake,
    start_snakemake,
    upload_model,
    wait_for,
)
from runpod_fake.server import FakeRunPod

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def endpoint():
    with s3_server() as url:
        yield url


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return pod_image(tmp_path_factory.mktemp("pod-image"))


@pytest.fixture
def fake(tmp_path, image):
    extra = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}  # the fake's pods have no hub to reach
    server = FakeRunPod(tmp_path / "pods", image, api_key=API_KEY, extra_env=extra).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def repo(tmp_path_factory, tiny_llama_dir):
    return make_repo(tmp_path_factory.mktemp("repo"), tiny_llama_dir)


def run(repo, fake, endpoint, prefix, *args, **settings):
    profile = make_profile(repo.parent / f"profile-{prefix}", endpoint, prefix, **settings)
    return snakemake(repo, environment(repo, fake.url), "--profile", str(profile), *args)


def failed(proc) -> str:
    return f"\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"


def test_train_runs_on_a_pod_and_only_dataset_and_results_reach_the_bucket(repo, fake, endpoint):
    upload_model(endpoint, repo, "e2e")
    # The API fails for a few seconds right after the pod starts: polling rides it out.
    fake.on_deploy = lambda pod: setattr(fake, "api_errors_until", time.time() + 10)
    proc = run(repo, fake, endpoint, "e2e", "train")
    assert proc.returncode == 0, failed(proc)
    assert fake.refused >= 2  # status checks did meet the outage
    log = proc.stdout + proc.stderr

    keys = bucket_keys(endpoint, "e2e/")
    adapter = [k for k in keys if k.startswith("e2e/results/adapter/")]
    assert {k.rsplit("/", 1)[1] for k in adapter} >= {
        "adapter_model.safetensors",
        "adapter_config.json",
        "training.json",
    }
    assert "e2e/results/dataset/train.jsonl" in keys and "e2e/logs/train/train.log" in keys
    # Never in the bucket: raw exports, message or turn tables (not even inside the source archive).
    assert not [k for k in keys if k.endswith(".parquet") or k.startswith("e2e/data/") or "WhatsApp" in k]
    # The sources Snakemake deployed on the pod (its archive is removed from the bucket after the run).
    job_dir = fake.root / "fake0001/workspace/snakemake-job"
    deployed = {str(p.relative_to(job_dir)) for p in job_dir.rglob("*") if p.is_file()}
    deployed = {
        p for p in deployed if not p.startswith((".snakemake/", "results/", "logs/", "build/", "src/mindupload.egg"))
    }
    assert {"Snakefile", "src/mindupload/training/train.py", "pyproject.toml", "config/config.yaml"} <= deployed
    assert not [p for p in deployed if p.startswith(("data/", "models/")) or p.endswith(".parquet")]
    # local() tables stay here (those before redaction are temporary and already gone)
    assert (repo / "results/messages_redacted.parquet").is_file() and (repo / "results/turns.parquet").is_file()

    # The pod trained on the pod's own paths, with the device it has (no GPU here: the CPU settings).
    train_log = s3(endpoint).get_object(Bucket=BUCKET, Key="e2e/logs/train/train.log")["Body"].read().decode()
    assert "axolotl config rendered for cpu on this machine" in train_log
    assert "adapter written to" in train_log

    assert fake.live() == [] and len(fake.terminated) == 1
    assert fake.requests.count("podFindAndDeployOnDemand") == 1
    assert "podStop" in fake.requests  # the job stopped its own pod before the executor terminated it
    assert "RunPod: 1 pod(s) in run" in log and "$/h" not in log and "/h = $" in log

    again = run(repo, fake, endpoint, "e2e", "train")
    assert again.returncode == 0, failed(again)
    assert "Nothing to be done" in again.stdout + again.stderr
    assert fake.requests.count("podFindAndDeployOnDemand") == 1


@pytest.fixture(scope="module")
def checked(repo, endpoint, tmp_path_factory, image):
    """Everything before `train` done once, in its own bucket folder, for the fault tests."""
    upload_model(endpoint, repo, "faults")
    fake = FakeRunPod(tmp_path_factory.mktemp("unused-pods"), image, api_key=API_KEY).start()
    proc = run(repo, fake, endpoint, "faults", "check")
    fake.close()
    assert proc.returncode == 0, failed(proc)
    assert fake.requests.count("podFindAndDeployOnDemand") == 0  # local rules never start a pod
    return repo


def test_a_pod_that_dies_fails_the_job_and_is_terminated(checked, fake, endpoint):
    fake.die_after = 3
    proc = run(checked, fake, endpoint, "faults", "train")
    assert proc.returncode != 0
    assert "ended (DEAD) without all of its outputs in storage" in proc.stdout + proc.stderr
    assert fake.live() == [] and len(fake.terminated) == 1


def test_an_api_that_keeps_failing_is_given_up_and_the_pod_terminated(checked, fake, endpoint):
    fake.hang = True
    fake.on_deploy = lambda pod: setattr(fake, "api_errors_until", time.time() + 12)
    proc = run(checked, fake, endpoint, "faults", "train", **{"runpod-api-grace-seconds": 3})
    assert proc.returncode != 0
    assert "the RunPod API failed for" in proc.stdout + proc.stderr
    assert fake.live() == [] and len(fake.terminated) == 1  # terminate retried until the API came back


def test_a_job_past_its_runtime_is_failed_and_its_pod_terminated(checked, fake, endpoint):
    fake.hang = True
    proc = run(checked, fake, endpoint, "faults", "train", **{"runpod-max-runtime": 0.1})
    assert proc.returncode != 0
    assert "ran past its maximum runtime of 0.1 min" in proc.stdout + proc.stderr
    assert fake.live() == [] and len(fake.terminated) == 1


def test_cancelling_the_run_terminates_its_pod(checked, fake, endpoint):
    fake.hang = True
    profile = make_profile(checked.parent / "profile-cancel", endpoint, "faults")
    proc = start_snakemake(checked, environment(checked, fake.url), "--profile", str(profile), "train")
    wait_for(lambda: fake.live(), 120, "a pod")
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert fake.live() == [] and len(fake.terminated) == 1, out[-3000:]


@pytest.mark.parametrize(
    ("env", "settings", "message"),
    [
        ({"RUNPOD_API_KEY": ""}, {}, "RUNPOD_API_KEY is not set"),
        ({}, {"runpod-gpu-type": "NVIDIA A4O"}, "runpod-gpu-type 'NVIDIA A4O': RunPod has no such GPU type"),
        ({}, {"runpod-image": "axolotlai/axolotl:latest"}, "the tag 'latest' moves"),
        ({}, {"runpod-image": "axolotlai/axolotl"}, "has no tag"),
        ({}, {"default-storage-prefix": None}, "default-storage-prefix"),
    ],
)
def test_bad_settings_stop_the_run_before_any_pod(checked, fake, endpoint, tmp_path, env, settings, message):
    profile = make_profile(tmp_path / "profile", endpoint, "faults", **settings)
    if settings.get("default-storage-prefix", "") is None:
        text = (profile / "config.yaml").read_text().replace("default-storage-prefix: null\n", "")
        (profile / "config.yaml").write_text(text)
    proc = snakemake(checked, {**environment(checked, fake.url), **env}, "--profile", str(profile), "train")
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr, failed(proc)
    assert "podFindAndDeployOnDemand" not in fake.requests


def test_profile_runpod_is_found_by_name_once_installed(checked, fake, endpoint, tmp_path):
    """`snakemake --profile runpod` from the repository root, after `mindupload install-profile`."""
    env = {**environment(checked, fake.url), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    install = subprocess.run(
        [sys.executable, "-m", "mindupload", "install-profile", "runpod"],
        cwd=checked,
        env=env,
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    assert not (checked / "runpod").exists()
    args = ["--default-storage-prefix", f"s3://{BUCKET}/faults", "--storage-s3-endpoint-url", endpoint]
    proc = snakemake(checked, env, "--profile", "runpod", "-n", "train", *args)
    assert proc.returncode == 0, failed(proc)
    assert "Using profiles runpod and workflow specific profile profiles/default" in proc.stdout + proc.stderr
    assert re.search(r"^train\s+1$", proc.stdout, re.M)
    assert fake.requests == []  # a dry run starts nothing

"""`snakemake --profile <runpod profile> train` for real: the RunPod executor against a fake RunPod REST API v2 (every
request and answer validated against RunPod's published schema) whose pods are local processes in a pip-less
"image", with moto's S3 server as the bucket. Then the faults: a pod that dies, an image that cannot be pulled, a
crash loop, no capacity, a failing API (5xx, 429), a self-stop that fails, a job past its runtime, the cost cap, a
cancelled run, bad settings and a bad bucket -- each ending with no pod left and nothing outside the schema."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest
from runpod_fake.harness import (
    API_KEY,
    BUCKET,
    bucket_keys,
    environment,
    free_port,
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

from snakemake_executor_plugin_runpod import payload

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def endpoint():
    with s3_server() as url:
        yield url


@pytest.fixture
def fake(tmp_path):
    # The pods have no index to install from (tests never reach the network): pinned packages must already be in
    # the "image", as the training stack is; the project itself is installed from the deployed sources.
    extra = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PIP_NO_INDEX": "1", "UV_OFFLINE": "1"}
    server = FakeRunPod(tmp_path / "pods", pod_image(tmp_path / "image"), api_key=API_KEY, extra_env=extra).start()
    yield server
    server.close()
    assert server.violations == [], server.violations  # nothing sent or answered outside RunPod's schema


@pytest.fixture(scope="module")
def repo(tmp_path_factory, tiny_llama_dir):
    return make_repo(tmp_path_factory.mktemp("repo"), tiny_llama_dir)


def run(repo, fake, endpoint, prefix, *args, **settings):
    profile = make_profile(repo.parent / f"profile-{prefix}", endpoint, prefix, **settings)
    return snakemake(repo, environment(repo, fake.url), "--profile", str(profile), *args)


def failed(proc) -> str:
    return f"\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"


def pod_logs(repo) -> dict[str, str]:
    return {p.name: p.read_text() for p in (repo / ".snakemake/runpod_logs").rglob("*.log")}


def test_train_runs_on_a_pod_and_only_dataset_and_results_reach_the_bucket(repo, fake, endpoint):
    upload_model(endpoint, repo, "e2e")
    fake.provision_seconds = fake.start_seconds = 2  # a slow start, well within the start deadline
    # The API fails for a few seconds right after the pod is created: polling rides it out.
    fake.on_create = lambda pod: setattr(fake, "api_errors_until", time.time() + 10)
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

    # What was asked of RunPod: the image's CUDA floor as the catalog's host versions, the estimate first.
    create = fake.bodies["createPod"][0]
    assert create["gpu"] == {"id": "NVIDIA A40", "count": 1, "allowedCudaVersions": ["13.0"]}
    assert create["image"] == "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404" and create["cloud"] == "SECURE"
    assert "secret" not in create["args"] and set(create["env"]) >= {payload.JOB_VAR}
    assert re.search(r"starting snakemake-runpod-\w+-train-\d+ on 1 x NVIDIA A40 in EU-RO-1 .* at most \$4\.80", log)

    # The pod's log came here, into the job's log: the job started in the pip-less image, which got an installer.
    (name, text), *_ = pod_logs(repo).items()
    assert name.startswith("snakemake-runpod-") and text.count(payload.STARTED) == 1
    assert f"{payload.FINISHED} 0" in text and "[system] pod is RUNNING" in text

    assert fake.live() == [] and len(fake.terminated) == 1
    assert fake.requests.count("createPod") == 1
    assert "podAction" in fake.requests  # the job stopped its own pod before the executor terminated it
    assert "RunPod: 1 pod(s) in run" in log and "$/h" not in log and "/h = $" in log

    again = run(repo, fake, endpoint, "e2e", "train")
    assert again.returncode == 0, failed(again)
    assert "Nothing to be done" in again.stdout + again.stderr
    assert fake.requests.count("createPod") == 1


@pytest.fixture(scope="module")
def checked(repo, endpoint, tmp_path_factory):
    """Everything before `train` done once, in its own bucket folder, for the fault tests."""
    upload_model(endpoint, repo, "faults")
    image = pod_image(tmp_path_factory.mktemp("unused-image"))
    fake = FakeRunPod(tmp_path_factory.mktemp("unused-pods"), image, api_key=API_KEY).start()
    proc = run(repo, fake, endpoint, "faults", "check")
    fake.close()
    assert proc.returncode == 0, failed(proc)
    assert fake.requests.count("createPod") == 0  # local rules never start a pod
    return repo


def test_a_pod_that_dies_fails_the_job_and_is_terminated(checked, fake, endpoint):
    fake.die_after = 3
    proc = run(checked, fake, endpoint, "faults", "train")
    assert proc.returncode != 0
    assert "the pod went into ERROR" in proc.stdout + proc.stderr
    assert fake.live() == [] and len(fake.terminated) == 1


def test_an_image_that_cannot_be_pulled_is_terminated_at_the_start_deadline_with_its_log(checked, fake, endpoint):
    fake.image_pull_fails = True
    proc = run(checked, fake, endpoint, "faults", "train", **{"runpod-start-deadline": 0.1})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "showed no sign of the job within 0.1 min of its creation (status STARTING" in out, failed(proc)
    assert "[system] error pulling image runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404: manifest unknown" in out
    assert fake.live() == [] and len(fake.terminated) == 1


def test_a_crash_loop_is_terminated(checked, fake, endpoint):
    fake.crash_after = 2  # the container dies 2 s after each start, long before the job could finish
    proc = run(checked, fake, endpoint, "faults", "train")
    assert proc.returncode != 0
    assert "a crash loop" in proc.stdout + proc.stderr, failed(proc)
    assert fake.live() == [] and len(fake.terminated) == 1


def test_no_capacity_moves_on_to_the_next_data_center_and_gpu_type(checked, fake, endpoint):
    fake.no_capacity = {"NVIDIA A40"}
    fake.hang = True
    proc = run(checked, fake, endpoint, "faults", "train", **{"runpod-max-runtime": 0.1})
    assert proc.returncode != 0
    tried = [(b["gpu"]["id"], b.get("dataCenterIds")) for b in fake.bodies["createPod"]]
    assert tried == [
        ("NVIDIA A40", ["EU-RO-1"]),
        ("NVIDIA A40", ["US-KS-2"]),
        ("NVIDIA RTX A6000", ["EU-RO-1"]),
    ]
    assert "ran past its maximum runtime" in proc.stdout + proc.stderr
    assert fake.live() == [] and len(fake.terminated) == 1


def test_no_capacity_anywhere_fails_the_job_without_a_pod(checked, fake, endpoint):
    fake.no_capacity = {"NVIDIA A40", "NVIDIA RTX A6000", "NVIDIA L40S"}
    proc = run(checked, fake, endpoint, "faults", "train")
    assert proc.returncode != 0
    assert "no place took the pod" in proc.stdout + proc.stderr, failed(proc)
    assert fake.pods == {} and fake.terminated == [] and fake.requests.count("createPod") == 4


def test_the_cost_cap_refuses_to_start_a_pod(checked, fake, endpoint):
    proc = run(checked, fake, endpoint, "faults", "train", **{"runpod-max-cost": 1})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "$4.80 is over runpod-max-cost $1.00" in out, failed(proc)
    assert "createPod" not in fake.requests and fake.pods == {}


@pytest.mark.parametrize("status", [502, 429])
def test_an_api_that_keeps_failing_is_given_up_and_the_pod_terminated(checked, fake, endpoint, status):
    fake.hang = True
    fake.api_error_status = status
    fake.on_create = lambda pod: setattr(fake, "api_errors_until", time.time() + 12)
    proc = run(checked, fake, endpoint, "faults", "train", **{"runpod-api-grace-seconds": 3})
    assert proc.returncode != 0
    assert "the RunPod API failed for" in proc.stdout + proc.stderr
    assert f"HTTP {status}" in proc.stdout + proc.stderr
    assert fake.live() == [] and len(fake.terminated) == 1  # terminate retried until the API came back


def test_a_job_past_its_runtime_is_failed_and_its_pod_terminated(checked, fake, endpoint):
    fake.hang = True
    proc = run(checked, fake, endpoint, "faults", "train", "--forcerun", "train", **{"runpod-max-runtime": 0.1})
    assert proc.returncode != 0
    assert "ran past its maximum runtime of 0.1 min" in proc.stdout + proc.stderr
    assert fake.live() == [] and len(fake.terminated) == 1


def test_cancelling_the_run_terminates_its_pod(checked, fake, endpoint):
    fake.hang = True
    profile = make_profile(checked.parent / "profile-cancel", endpoint, "faults")
    args = ("--profile", str(profile), "train", "--forcerun", "train")
    proc = start_snakemake(checked, environment(checked, fake.url), *args)
    wait_for(lambda: fake.live(), 600, "a pod")
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
        ({}, {"runpod-gpu-fallbacks": "NVIDIA L40"}, "runpod-gpu-fallbacks 'NVIDIA L40': RunPod has no such"),
        ({}, {"runpod-image": "axolotlai/axolotl:latest"}, "the tag 'latest' moves"),
        ({}, {"runpod-image": "axolotlai/axolotl"}, "has no tag"),
        ({}, {"runpod-min-cuda": "13"}, "runpod-min-cuda '13': write it as major.minor"),
    ],
)
def test_bad_settings_stop_the_run_before_any_pod(checked, fake, endpoint, tmp_path, env, settings, message):
    profile = make_profile(tmp_path / "profile", endpoint, "faults", **settings)
    proc = snakemake(checked, {**environment(checked, fake.url), **env}, "--profile", str(profile), "train")
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr, failed(proc)
    assert "createPod" not in fake.requests


@pytest.fixture(scope="module")
def refusing_s3():
    """An S3 endpoint on 127.0.0.1 that refuses every key (as a real one does for wrong keys): HTTP 403."""

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("case", "dry_run", "message"),
    [
        ("no prefix", False, "Storage: no bucket: set default-storage-prefix"),
        ("not s3", False, "Storage: default-storage-prefix 'mindupload-test/faults' is not an S3 address"),
        ("no bucket", True, "Storage: bucket 'no-such-bucket' does not exist at http://127.0.0.1:"),
        ("no network", True, "Storage: cannot reach http://127.0.0.1:"),
        ("bad keys", False, "Storage: http://127.0.0.1:"),
        ("runpod region", False, "Storage: https://s3api-eu-ro-1.runpod.io is a RunPod network volume in EU-RO-1"),
        ("no keys", False, "Storage: no keys for the bucket"),
    ],
)
def test_a_bad_bucket_is_one_line_within_seconds_before_any_pod(
    checked, fake, endpoint, refusing_s3, tmp_path, case, dry_run, message
):
    settings, env = {}, {}
    if case == "no prefix":
        settings["default-storage-prefix"] = None
    elif case == "not s3":
        settings["default-storage-prefix"] = f"{BUCKET}/faults"
    elif case == "no bucket":
        settings["default-storage-prefix"] = "s3://no-such-bucket/faults"
    elif case == "no network":
        settings["storage-s3-endpoint-url"] = f"http://127.0.0.1:{free_port()}"
    elif case == "bad keys":
        settings["storage-s3-endpoint-url"] = refusing_s3
    elif case == "runpod region":
        settings["storage-s3-endpoint-url"] = "https://s3api-eu-ro-1.runpod.io"
    else:
        env = {"SNAKEMAKE_STORAGE_S3_ACCESS_KEY": "", "SNAKEMAKE_STORAGE_S3_SECRET_KEY": ""}
    profile = make_profile(tmp_path / "profile", endpoint, "faults", **settings)
    if settings.get("default-storage-prefix", "") is None:
        text = (profile / "config.yaml").read_text().replace("default-storage-prefix: null\n", "")
        (profile / "config.yaml").write_text(text)
    started = time.time()
    args = ("--profile", str(profile), *(["-n"] if dry_run else []), "train", "--forcerun", "train")
    proc = snakemake(checked, {**environment(checked, fake.url), **env}, *args)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert time.time() - started < 30
    assert message in out, failed(proc)
    if case == "bad keys":
        assert "refused the keys for bucket 'mindupload-test' (HTTP 403)" in out
    assert "Traceback" not in out and len([line for line in out.splitlines() if "Storage:" in line]) == 1
    assert fake.requests == []  # not even the GPU catalog (read when the executor starts): storage comes first


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


# Last: this job succeeds, so `train` is done in the fault tests' bucket folder from here on.
def test_a_pod_whose_self_stop_fails_is_terminated_from_here_and_the_job_judged(checked, fake, endpoint):
    fake.stop_fails = True
    proc = run(checked, fake, endpoint, "faults", "train", **{"runpod-stop-grace-seconds": 2})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, failed(proc)
    assert "did not stop itself (RUNNING); terminating it from here" in out
    assert fake.live() == [] and len(fake.terminated) == 1

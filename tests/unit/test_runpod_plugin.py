"""The RunPod executor's pieces: the REST v2 client and its requests (checked against RunPod's schema), the pod
script and its installer bootstrap (in a venv without pip), the pod state machine (start deadline, crash loop,
self-stop verified, runtime, API outages), placement (capacity, CUDA, cost cap), termination on every path, cost,
the checks made before any pod exists -- and the fake RunPod server itself, held to the schema."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_plugin_runpod import api_key, payload
from snakemake_executor_plugin_runpod.api import (
    CapacityError,
    PodSpec,
    RunPodClient,
    RunPodError,
    TransientError,
    parse_sse,
)
from snakemake_executor_plugin_runpod.cleanup import cleanup
from snakemake_executor_plugin_runpod.pods import (
    Candidate,
    LaunchError,
    PodLog,
    PodManager,
    candidates,
    image_cuda,
    pod_name,
    run_of,
)
from snakemake_executor_plugin_runpod.settings import DEFAULT_IMAGE, check_gpu_type, check_image, min_cuda

GPUS = [
    {"id": "NVIDIA A40", "name": "A40", "memory": 48},
    {"id": "NVIDIA H100 80GB HBM3", "name": "H100 SXM"},
]
A40 = Candidate("NVIDIA A40", 0.4, "EU-RO-1", ["13.0"])


class FakeClient:
    """Answers like RunPodClient; `statuses` scripts what `pod()` returns (or raises) call by call."""

    def __init__(self, statuses=(), create_errors=()):
        self.statuses = list(statuses)
        self.create_errors = list(create_errors)
        self.created: list[PodSpec] = []
        self.terminated: list[str] = []
        self.listed = []
        self.billed: dict[str, float] = {}

    def create_pod(self, spec):
        self.created.append(spec)
        if self.create_errors:
            error = self.create_errors.pop(0)
            if error:
                raise error
        return {"id": f"pod{len(self.created)}", "cost": 0.4, "status": "PROVISIONING"}

    def pod(self, pod_id):
        status = self.statuses.pop(0) if self.statuses else "RUNNING"
        if isinstance(status, Exception):
            raise status
        return None if status is None else {"id": pod_id, "status": status, "cost": 0.4}

    def pods(self):
        return self.listed

    def terminate(self, pod_id):
        self.terminated.append(pod_id)

    def gpu_types(self, cloud=None, gpu_count=1):
        return GPUS

    def pod_billing(self, pod_id):
        return self.billed.get(pod_id)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def manager(client, clock=None, **kw) -> PodManager:
    messages = []
    m = PodManager(
        client=client,
        run_id="abc123",
        image="img:1.0",
        clock=clock or Clock(),
        sleep=lambda s: None,
        report=messages.append,
        follow_logs=False,
        **kw,
    )
    m.messages = messages
    return m


def launch(m, places=(A40,), runtime=3600, **kw):
    return m.launch("n", "script", list(places), 1, runtime, **kw)


def started(job, times=1):
    for _ in range(times):
        job.log.add("container", f"{payload.STARTED} {job.pod_id} (Python 3.12.3)")


def finished(job, status=0):
    job.log.add("container", f"{payload.FINISHED} {status}; stopping pod {job.pod_id}")


# ---------------------------------------------------------------- the schema


@pytest.fixture(scope="module")
def openapi():
    from runpod_fake.server import openapi

    return openapi()


def schema_check(openapi, method, path, body=None, params=None):
    """Validates one request as RunPod's server would (raises on a field the schema does not allow)."""
    from openapi_core.testing import MockRequest

    data = json.dumps(body).encode() if body is not None else None
    request = MockRequest(
        "https://api.runpod.io",
        method,
        path,
        args={k: str(v) for k, v in (params or {}).items()},
        data=data,
        headers={"Authorization": "Bearer k"},
    )
    openapi.validate_request(request)


def test_create_bodies_are_valid_under_runpods_schema_and_a_misspelling_is_not(openapi):
    nasty = "echo \"hi\" \\ $HOME\n'x' {}"
    spec = PodSpec(
        name="n",
        image=DEFAULT_IMAGE,
        gpu_type="NVIDIA A40",
        args=payload.DOCKER_ARGS,
        env={"K": nasty, payload.JOB_VAR: payload.encode(nasty)},
        allowed_cuda_versions=["12.8", "13.0"],
        data_center_ids=["EU-RO-1"],
    )
    schema_check(openapi, "post", "/v2/pods", spec.body())
    floor = PodSpec(name="n", image="i:1", gpu_type="NVIDIA A40", min_cuda_version="13.0").body()
    assert floor["gpu"] == {"id": "NVIDIA A40", "count": 1, "minCudaVersion": "13.0"}
    schema_check(openapi, "post", "/v2/pods", floor)
    for broken in ({"gpuTypeId": "NVIDIA A40"}, {"cloud": "ALL"}, {"gpu": {"id": "x", "alowedCudaVersions": []}}):
        with pytest.raises(Exception, match="alid"):
            schema_check(openapi, "post", "/v2/pods", {**spec.body(), **broken})


def test_every_other_request_the_client_makes_is_valid_under_the_schema(openapi):
    sent = []

    class Session:
        def request(self, method, url, params=None, data=None, headers=None, timeout=None):
            sent.append((method, urllib.parse.urlsplit(url).path, params, data and json.loads(data)))
            return Answer(200, {"gpus": [], "pods": [], "records": []})

    client = RunPodClient("k", session=Session())
    client.gpu_types(cloud="SECURE", gpu_count=2)
    client.pod("p1")
    client.pods()
    client.stop("p1")
    client.pod_billing("p1")
    sent.append(("GET", "/v2/pods/p1/logs", {"tail": 1000, "since": "2026-12-07T00:00:00Z"}, None))
    for method, path, params, body in sent:
        schema_check(openapi, method.lower(), path, body, params)
    assert [s[1] for s in sent][:3] == ["/v2/catalog/gpus", "/v2/pods/p1", "/v2/pods"]


# ---------------------------------------------------------------- the client


class Answer:
    def __init__(self, status, body=None, headers=None):
        self.status_code = status
        self._body = body
        self.content = b"" if body is None else json.dumps(body).encode()
        self.headers = headers or {}
        self.reason = "reason"

    def json(self):
        if self._body is None:
            raise ValueError
        return self._body


def test_client_sends_bearer_key_to_the_v2_paths_of_the_base_url_read_on_each_call(monkeypatch):
    sent = []

    class Session:
        def request(self, method, url, params=None, data=None, headers=None, timeout=None):
            sent.append((method, url, params, headers))
            return Answer(200, {"gpus": GPUS})

    client = RunPodClient("secret-key", session=Session())
    monkeypatch.setenv("RUNPOD_API_BASE_URL", "http://127.0.0.1:1/")
    assert client.gpu_types() == GPUS
    monkeypatch.setenv("RUNPOD_API_BASE_URL", "http://127.0.0.1:2")
    client.gpu_types(cloud="COMMUNITY")
    assert [s[1] for s in sent] == ["http://127.0.0.1:1/v2/catalog/gpus", "http://127.0.0.1:2/v2/catalog/gpus"]
    assert sent[0][2] == {"include": "AVAILABILITY", "product": "POD", "count": 1}
    assert sent[1][2]["cloud"] == "COMMUNITY"
    assert sent[0][3]["Authorization"] == "Bearer secret-key"
    monkeypatch.delenv("RUNPOD_API_BASE_URL")
    assert client.base_url == "https://api.runpod.io"


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [(503, {}, TransientError, None), (429, {"Retry-After": "7"}, TransientError, 7.0), (401, {}, RunPodError, None)],
)
def test_client_tells_transient_errors_from_refusals(status, headers, error, retry_after):
    class Session:
        def request(self, *a, **kw):
            return Answer(status, {"title": "t", "status": status, "detail": "no"}, headers)

    with pytest.raises(error) as caught:
        RunPodClient("k", session=Session()).pod("p")
    assert getattr(caught.value, "retry_after", None) == retry_after


def test_create_refusals_are_capacity_errors_but_a_contract_violation_is_not():
    answers = [Answer(400, {"title": "Bad Request", "status": 400, "detail": "no instances available"})]
    answers.append(Answer(422, {"title": "x", "status": 422, "detail": "bad", "errors": ["gpu.id missing"]}))

    class Session:
        def request(self, *a, **kw):
            return answers.pop(0)

    client = RunPodClient("k", session=Session())
    spec = PodSpec(name="n", image="i:1", gpu_type="g")
    with pytest.raises(CapacityError, match="no instances available"):
        client.create_pod(spec)
    with pytest.raises(RunPodError, match=r"gpu\.id missing") as caught:
        client.create_pod(spec)
    assert not isinstance(caught.value, CapacityError)


def test_a_gone_pod_is_none_and_terminating_it_again_is_no_error():
    class Session:
        def request(self, *a, **kw):
            return Answer(404, {"title": "Not Found", "status": 404, "detail": "pod p not found"})

    client = RunPodClient("k", session=Session())
    assert client.pod("p") is None
    client.terminate("p")


def test_an_unreachable_api_is_transient():
    class Session:
        def request(self, *a, **kw):
            raise requests.ConnectionError("down")

    with pytest.raises(TransientError, match="unreachable"):
        RunPodClient("k", session=Session()).pods()


def test_server_sent_events_are_parsed_and_a_cut_event_is_dropped():
    stream = [
        "id: 2026-06-01T12:02:03Z/000000000001",
        'data: {"ts":"2026-06-01T12:02:03Z","source":"container","line":"Model loaded."}',
        "",
        "id: 2026-06-01T12:02:04Z/000000000002",
        'data: {"ts":"2026-06-01T12:02:04Z","source":"system","line":"pulling"}',
    ]
    events = list(parse_sse(iter(stream)))
    assert [(e.id, e.source, e.line) for e in events] == [
        ("2026-06-01T12:02:03Z/000000000001", "container", "Model loaded.")
    ]


# ---------------------------------------------------------------- the pod script


def test_job_script_travels_base64_in_one_variable_and_decodes_to_the_command():
    client = FakeClient()
    command = "python -m snakemake --target-jobs 'train:' --default-storage-prefix \"s3://b/p\""
    script = payload.job_script("pod-x", command, "snakemake==9.27.1")
    m = manager(client)
    job = m.launch("pod-x", script, [A40], 1, 600, env={"SNAKEMAKE_STORAGE_S3_ENDPOINT_URL": "u"})
    spec = client.created[0]
    assert set(spec.env) == {payload.JOB_VAR, "SNAKEMAKE_STORAGE_S3_ENDPOINT_URL"}
    decoded = payload.decode(spec.env[payload.JOB_VAR])
    assert decoded == script and command in decoded and "pod_pip install --quiet snakemake==9.27.1" in decoded
    assert spec.args == payload.DOCKER_ARGS and payload.JOB_VAR in spec.args
    assert spec.allowed_cuda_versions == ["13.0"] and spec.data_center_ids == ["EU-RO-1"]
    assert job.pod_id == "pod1" and job.deadline == job.started + 600


@pytest.fixture
def stop_api():
    """A stand-in for RunPod's pod action endpoint on 127.0.0.1: records requests, answers `status`."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        status = 200

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, json.loads(body), self.headers["Authorization"]))
            self.send_response(Handler.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen, Handler
    server.shutdown()
    server.server_close()


def run_container(tmp_path, script, url, path_dirs=()):
    """The container command, as RunPod would run it, with the script (its final wait cut short)."""
    script = script.replace("sleep infinity", "exit 0")
    env = {
        "PATH": ":".join([*map(str, path_dirs), f"{os.path.dirname(sys.executable)}", "/usr/bin", "/bin"]),
        "RUNPOD_POD_ID": "pod7",
        "RUNPOD_API_KEY": "pod-key",
        "RUNPOD_API_BASE_URL": url,
        payload.JOB_VAR: payload.encode(script),
        "TMPDIR": str(tmp_path),
    }
    return subprocess.run(
        ["bash", "-c", payload.DOCKER_ARGS.split(" ", 2)[2][1:-1]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_job_script_says_it_started_runs_the_command_then_stops_its_own_pod_through_rest_v2(tmp_path, stop_api):
    url, seen, _ = stop_api
    proc = run_container(tmp_path, payload.job_script("p", "pwd > ../where && exit 3", ""), url)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{payload.STARTED} pod7 (Python ")
    assert f"{payload.FINISHED} 3; stopping pod pod7" in lines
    assert (tmp_path / "where").read_text().strip() == str(tmp_path / "snakemake-job")
    assert seen == [("/v2/pods/pod7/action", {"action": "stop"}, "Bearer pod-key")]


def test_a_refused_self_stop_is_reported_not_taken_for_a_stop(tmp_path, stop_api):
    url, seen, handler = stop_api
    handler.status = 500
    proc = run_container(tmp_path, payload.job_script("p", "true", ""), url)
    assert len(seen) == 1
    assert "could not stop pod pod7 itself; the executor terminates it" in proc.stdout


def make_wheel(folder):
    """A one-module wheel, built by hand: something to install without an index."""
    path = folder / "tinypkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr("tinypkg.py", "VALUE = 42\n")
        whl.writestr("tinypkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n")
        wheel = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        whl.writestr("tinypkg-1.0.dist-info/WHEEL", wheel)
        whl.writestr("tinypkg-1.0.dist-info/RECORD", "")
    return path


def pod_pip(venv_bin, args, tmp_path, path_dirs=()):
    env = {"PATH": ":".join([*map(str, path_dirs), str(venv_bin), "/usr/bin", "/bin"]), "HOME": str(tmp_path)}
    return subprocess.run(
        ["bash", "-c", f"{payload.POD_PIP}\npod_pip {args}"], env=env, capture_output=True, text=True, timeout=300
    )


def test_the_installer_bootstraps_pip_in_a_venv_that_has_none(tmp_path):
    """As in an axolotl image (a uv-made venv): no pip module, no uv on the PATH -> ensurepip, offline."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    assert subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode != 0
    wheel = make_wheel(tmp_path)
    proc = pod_pip(venv / "bin", f"install --quiet --no-index --no-deps {wheel}", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check = subprocess.run([python, "-c", "import tinypkg; print(tinypkg.VALUE)"], capture_output=True, text=True)
    assert check.stdout.strip() == "42"


def test_the_installer_prefers_uv_where_the_image_has_it_and_no_pip(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "uv").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/uv-args\n')
    (shims / "uv").chmod(0o755)
    proc = pod_pip(venv / "bin", "install --quiet --no-deps .", tmp_path, [shims])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "uv-args").read_text().split() == [
        "pip", "install", "--quiet", "--no-deps", ".", "--python", str(venv / "bin" / "python")
    ]  # fmt: skip


# ---------------------------------------------------------------- the state machine


def test_a_job_that_finished_and_stopped_its_pod_with_its_outputs_is_a_success_and_is_terminated():
    client = FakeClient(["RUNNING", "EXITED"])
    m = manager(client)
    job = launch(m)
    started(job)
    assert not m.poll(job, lambda: True).done
    finished(job)
    outcome = m.poll(job, lambda: True)
    assert outcome.done and outcome.ok
    assert client.terminated == ["pod1"]


def test_a_stopped_pod_without_its_outputs_is_a_failure_with_the_pods_last_lines():
    client = FakeClient(["EXITED"])
    m = manager(client)
    job = launch(m)
    started(job)
    job.log.add("container", "Traceback: CUDA error: no kernel image is available")
    outcome = m.poll(job, lambda: False)
    assert outcome.done and not outcome.ok and "without all of the job's outputs" in outcome.message
    assert "CUDA error: no kernel image" in outcome.message
    assert client.terminated == ["pod1"]


def test_a_job_that_failed_on_the_pod_fails_even_with_outputs_left_from_before():
    client = FakeClient(["EXITED"])
    m = manager(client)
    job = launch(m)
    started(job)
    finished(job, 1)
    outcome = m.poll(job, lambda: True)
    assert outcome.done and not outcome.ok and "exit status 1" in outcome.message


def test_outputs_are_only_judged_once_the_job_finished():
    """A running job may be uploading its outputs: present outputs alone do not end the job."""
    client = FakeClient(["RUNNING"])
    m = manager(client)
    job = launch(m)
    started(job)
    assert not m.poll(job, lambda: True).done and client.terminated == []


@pytest.mark.parametrize("status", ["ERROR", None])
def test_a_pod_that_failed_or_vanished_fails_its_job(status):
    client = FakeClient([status])
    m = manager(client)
    job = launch(m)
    outcome = m.poll(job, lambda: False)
    assert outcome.done and not outcome.ok
    assert client.terminated == ["pod1"]


def test_a_pod_with_no_sign_of_the_job_by_the_start_deadline_is_terminated_with_its_last_lines():
    clock = Clock()
    client = FakeClient(["STARTING"] * 3)
    m = manager(client, clock, start_deadline_seconds=600)
    job = launch(m)
    job.log.add("system", "error pulling image img:1.0: manifest unknown")
    clock.now += 599
    assert not m.poll(job, lambda: False).done
    clock.now += 2
    outcome = m.poll(job, lambda: False)
    assert outcome.done and not outcome.ok
    assert "no sign of the job within 10 min of its creation (status STARTING" in outcome.message
    assert "[system] error pulling image img:1.0: manifest unknown" in outcome.message
    assert client.terminated == ["pod1"]


def test_the_start_deadline_does_not_apply_once_the_job_started():
    clock = Clock()
    m = manager(FakeClient(), clock, start_deadline_seconds=60)
    job = launch(m)
    started(job)
    clock.now += 3000
    assert not m.poll(job, lambda: False).done


def test_a_container_that_restarts_before_the_job_finished_is_a_crash_loop_and_is_terminated():
    client = FakeClient()
    m = manager(client)
    job = launch(m)
    started(job, 2)
    outcome = m.poll(job, lambda: True)
    assert outcome.done and not outcome.ok and "crash loop" in outcome.message
    assert client.terminated == ["pod1"]


def test_a_pod_that_does_not_stop_itself_after_the_job_is_terminated_from_here():
    clock = Clock()
    client = FakeClient(["RUNNING"] * 5)
    m = manager(client, clock, stop_grace_seconds=60)
    job = launch(m)
    started(job)
    finished(job)
    assert not m.poll(job, lambda: True).done
    clock.now += 61
    outcome = m.poll(job, lambda: True)
    assert outcome.done and outcome.ok
    assert client.terminated == ["pod1"]
    assert any("did not stop itself" in line for line in m.messages)


def test_a_pod_past_its_runtime_is_terminated_and_failed():
    clock = Clock()
    client = FakeClient()
    m = manager(client, clock)
    job = launch(m, runtime=60)
    started(job)
    clock.now += 61
    outcome = m.poll(job, lambda: True)
    assert outcome.done and not outcome.ok and "maximum runtime of 1 min" in outcome.message
    assert client.terminated == ["pod1"]


def test_api_errors_are_tolerated_for_the_grace_period_with_backoff_then_the_job_is_given_up():
    clock = Clock()
    client = FakeClient([TransientError("HTTP 502")] * 100)
    m = manager(client, clock, api_grace_seconds=300)
    job = launch(m)
    assert not m.poll(job, lambda: True).done
    assert m.backoff(10) == 20
    clock.now += 120
    assert not m.poll(job, lambda: True).done
    assert m.backoff(10) == 80
    clock.now += 181
    outcome = m.poll(job, lambda: True)
    assert outcome.done and not outcome.ok and "API failed for 301 s" in outcome.message
    assert client.terminated == ["pod1"]


def test_the_api_coming_back_resets_the_error_clock():
    clock = Clock()
    client = FakeClient([TransientError("x"), "RUNNING", TransientError("y")])
    m = manager(client, clock, api_grace_seconds=100)
    job = launch(m)
    started(job)
    m.poll(job, lambda: True)
    clock.now += 90
    m.poll(job, lambda: True)
    assert job.errors_since is None and m.backoff(10) == 10
    clock.now += 90
    assert not m.poll(job, lambda: True).done


def test_terminate_all_covers_every_live_pod_once_and_prints_the_cost_and_runpods_billing():
    clock = Clock()
    client = FakeClient()
    m = manager(client, clock)
    a = m.launch("a", "s", [A40], 1, 3600)
    m.launch("b", "s", [A40], 1, 3600)
    clock.now += 1800
    m.terminate(a)
    m.terminate_all()
    m.terminate_all()  # atexit after a normal shutdown: nothing left to do
    assert client.terminated == ["pod1", "pod2"]
    assert "30.0 min at $0.400/h = $0.2000" in m.messages[-1]
    assert m.total_line() == "RunPod: 2 pod(s) in run abc123, about $0.4000 in all (price x runtime)"
    client.billed = {"pod1": 0.21, "pod2": 0.2}
    assert m.total_line().endswith("; RunPod's billing so far: $0.4100")


def test_terminate_retries_failures():
    class Flaky(FakeClient):
        fails = 2

        def terminate(self, pod_id):
            if self.fails:
                self.fails -= 1
                raise TransientError("503")
            super().terminate(pod_id)

    client = Flaky()
    m = manager(client)
    assert m.terminate(launch(m))
    assert client.terminated == ["pod1"]


# ---------------------------------------------------------------- placement, cost


CATALOG = [
    {
        "id": "NVIDIA A40",
        "price": {"secure": 0.4, "community": 0.35},
        "secure": True,
        "community": True,
        "availability": "HIGH",
        "dataCenters": [
            {"id": "US-KS-2", "availability": "LOW"},
            {"id": "EU-RO-1", "availability": "HIGH"},
            {"id": "US-TX-3", "availability": "NONE"},
        ],
        "cudaVersions": [{"version": "12.4", "available": True}, {"version": "13.0", "available": True}],
    },
    {"id": "NVIDIA L4", "price": {"secure": 0.4}, "secure": True, "availability": "NONE", "dataCenters": []},
    {"id": "NVIDIA A100", "price": {"secure": 1.6}, "secure": True, "cudaVersions": [{"version": "12.2"}]},
    {"id": "NVIDIA B200", "price": {"secure": 6.0}, "secure": True, "availability": "MEDIUM"},
]


def test_candidates_follow_the_wanted_order_stock_and_the_cuda_the_image_needs():
    wanted = ["NVIDIA A40", "NVIDIA L4", "NVIDIA A100", "NVIDIA B200", "X"]
    found, skipped = candidates(CATALOG, wanted, "SECURE", "13.0")
    assert [(c.gpu_type, c.data_center, c.allowed_cuda) for c in found] == [
        ("NVIDIA A40", "EU-RO-1", ["13.0"]),
        ("NVIDIA A40", "US-KS-2", ["13.0"]),
        ("NVIDIA B200", None, None),  # no CUDA versions listed: the create gets minCudaVersion instead
    ]
    assert skipped == [
        "NVIDIA L4: none available now",
        "NVIDIA A100: no host with CUDA >= 13.0 (has 12.2)",
        "X: not in RunPod's catalog",
    ]


def test_a_capacity_refusal_moves_on_to_the_next_place():
    client = FakeClient(create_errors=[CapacityError("no instances"), None])
    m = manager(client)
    b200 = Candidate("NVIDIA B200", 6.0)
    job = launch(m, [A40, b200], min_cuda="13.0")
    assert [s.gpu_type for s in client.created] == ["NVIDIA A40", "NVIDIA B200"]
    assert client.created[1].min_cuda_version == "13.0" and client.created[1].allowed_cuda_versions is None
    assert job.gpu_type == "NVIDIA B200"
    assert any("NVIDIA A40 in EU-RO-1 refused" in line for line in m.messages)


def test_every_place_refusing_fails_the_launch_with_the_reasons():
    client = FakeClient(create_errors=[CapacityError("no A40"), CapacityError("no B200")])
    with pytest.raises(LaunchError, match=r"no A40.*no B200"):
        launch(manager(client), [A40, Candidate("NVIDIA B200", 6.0)])


def test_the_cost_estimate_is_printed_before_creating_and_the_cap_refuses_places_above_it():
    client = FakeClient()
    m = manager(client, max_cost=5.0)
    h100 = Candidate("NVIDIA H100", 2.99)
    job = m.launch("n", "s", [h100, A40], 1, 12 * 3600)  # 35.88 $ on the H100, 4.80 $ on the A40
    assert [s.gpu_type for s in client.created] == ["NVIDIA A40"] and job.gpu_type == "NVIDIA A40"
    assert "not starting n on 1 x NVIDIA H100 at $2.990/h for at most 720 min: at most $35.88" in m.messages[0]
    assert "starting n on 1 x NVIDIA A40 in EU-RO-1 at $0.400/h for at most 720 min: at most $4.80" in m.messages[1]
    with pytest.raises(LaunchError, match=r"\$35.88 is over runpod-max-cost \$5.00"):
        m.launch("n2", "s", [h100], 1, 12 * 3600)


def test_a_create_whose_answer_was_lost_terminates_the_pod_it_may_have_made_and_tries_again():
    client = FakeClient(create_errors=[TransientError("timeout"), None])
    client.listed = [{"id": "ghost", "name": "n"}, {"id": "other", "name": "someone-else"}]
    job = launch(manager(client))
    assert client.terminated == ["ghost"] and job.pod_id == "pod2"


def test_image_tags_name_their_cuda():
    assert image_cuda("runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404") == "12.8"
    assert image_cuda("axolotlai/axolotl:0.19.0-py3.12-cu130-2.12.0") == "13.0"
    assert image_cuda("localhost:5000/a") is None and image_cuda("a/b:1.0") is None
    assert min_cuda(None, DEFAULT_IMAGE) == "12.8" and min_cuda("13.0", DEFAULT_IMAGE) == "13.0"
    with pytest.raises(WorkflowError, match=r"major\.minor"):
        min_cuda("13", DEFAULT_IMAGE)


# ---------------------------------------------------------------- the pod's log


def test_the_pod_log_is_followed_into_the_jobs_log_file_and_resumes_without_repeats(tmp_path):
    from snakemake_executor_plugin_runpod.api import LogEvent

    streams = [
        [LogEvent("t1/1", "t1", "system", "pod is RUNNING"), LogEvent("t1/2", "t1", "container", payload.STARTED)],
        [LogEvent("t1/2", "t1", "container", payload.STARTED), LogEvent("t2/3", "t2", "container", "step 1")],
    ]
    asked = []

    class Client:
        def logs(self, pod_id, tail, since):
            asked.append(since)
            if streams:
                yield from streams.pop(0)
            else:
                raise TransientError("cut")

    log = PodLog(Client(), "pod1", tmp_path / "logs" / "job.log")
    log.stopped.wait = lambda seconds: log.stopped.is_set() or (not streams and log.stop())
    log._follow()
    assert asked[:2] == [None, "t1"]
    assert (tmp_path / "logs/job.log").read_text().splitlines() == [
        "[system] pod is RUNNING",
        payload.STARTED,
        "step 1",
    ]
    assert log.starts == 1


# ---------------------------------------------------------------- names, cleanup


def test_pod_names_carry_run_and_job_and_cleanup_finds_only_ours():
    name = pod_name("abc123", "train", 4)
    assert name == "snakemake-runpod-abc123-train-4" and run_of(name) == "abc123"
    client = FakeClient()
    client.listed = [
        {"id": "1", "name": name, "status": "RUNNING", "cost": 0.4},
        {"id": "2", "name": pod_name("ffff00", "merge", 5)},
        {"id": "3", "name": "my-jupyter-pod"},
    ]
    out = io.StringIO()
    assert cleanup(client, run="abc123", out=out) == 1 and client.terminated == ["1"]
    assert "terminating 1 snakemake-runpod-abc123-train-4 (RUNNING, $0.4/h)" in out.getvalue()
    assert cleanup(client, dry_run=True, out=io.StringIO()) == 2 and client.terminated == ["1"]


# ---------------------------------------------------------------- checks before any pod


def test_missing_api_key_is_a_clear_error():
    with pytest.raises(WorkflowError, match="RUNPOD_API_KEY is not set"):
        api_key({"RUNPOD_API_KEY": " "})
    assert api_key({"RUNPOD_API_KEY": "k"}) == "k"


@pytest.mark.parametrize(
    "image",
    ["axolotlai/axolotl", "axolotlai/axolotl:latest", "axolotlai/axolotl:main-latest", "localhost:5000/axolotl"],
)
def test_unpinned_images_are_refused(image):
    with pytest.raises(WorkflowError, match="runpod-image"):
        check_image(image)


@pytest.mark.parametrize("image", [DEFAULT_IMAGE, "localhost:5000/a:1.0", "a/b@sha256:" + "0" * 64])
def test_pinned_images_pass(image):
    check_image(image)


def test_unknown_gpu_types_name_the_setting_and_suggest():
    check_gpu_type("NVIDIA A40", GPUS)
    with pytest.raises(WorkflowError, match=r"runpod-gpu-type 'NVIDIA A4O'.*Did you mean 'NVIDIA A40'"):
        check_gpu_type("NVIDIA A4O", GPUS)
    with pytest.raises(WorkflowError, match="display name: use the GPU type id 'NVIDIA H100 80GB HBM3'"):
        check_gpu_type("H100 SXM", GPUS)


# ---------------------------------------------------------------- the fake RunPod, held to the schema


class SchemaCheckedSession(requests.Session):
    """A requests session that checks every answer it gets against RunPod's schema, on this side of the wire."""

    def __init__(self, openapi, failures):
        super().__init__()
        self.openapi, self.failures = openapi, failures

    def request(self, method, url, params=None, data=None, headers=None, **kw):
        from openapi_core.testing import MockRequest, MockResponse

        response = super().request(method, url, params=params, data=data, headers=headers, **kw)
        path = urllib.parse.urlsplit(url).path
        request = MockRequest(
            "https://api.runpod.io",
            method.lower(),
            path,
            args={k: str(v) for k, v in (params or {}).items()},
            data=data.encode() if isinstance(data, str) else data,
            headers=dict(headers or {}),
        )
        content_type = response.headers.get("Content-Type", "application/json")
        body = b"" if kw.get("stream") else response.content
        if not kw.get("stream"):
            try:
                self.openapi.validate_response(request, MockResponse(body, response.status_code, None, content_type))
            except Exception as e:
                self.failures.append(f"{method} {path} -> {response.status_code}: {e}")
        return response

    def get(self, url, **kw):
        return self.request("GET", url, **kw)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    from runpod_fake.harness import pod_image
    from runpod_fake.server import FakeRunPod

    server = FakeRunPod(tmp_path / "pods", pod_image(tmp_path / "image")).start()
    monkeypatch.setenv("RUNPOD_API_BASE_URL", server.url)
    yield server
    server.close()


def wait_status(client, pod_id, wanted, timeout=20.0):
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        pod = client.pod(pod_id)
        status = pod["status"] if pod else "TERMINATED"
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == wanted:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"pod {pod_id} never became {wanted}: {seen}")


def test_the_fakes_answers_are_valid_under_runpods_schema_through_a_lifecycle_and_every_fault(fake, openapi):
    failures: list[str] = []
    client = RunPodClient("test-key", session=SchemaCheckedSession(openapi, failures))
    script = payload.job_script("n", "echo job output", "")
    spec = PodSpec(
        name="n",
        image=DEFAULT_IMAGE,
        gpu_type="NVIDIA A40",
        args=payload.DOCKER_ARGS,
        env={payload.JOB_VAR: payload.encode(script)},
        allowed_cuda_versions=["13.0"],
    )
    catalog = client.gpu_types(cloud="SECURE")
    assert {"NVIDIA A40", "NVIDIA H100 80GB HBM3"} <= {g["id"] for g in catalog}

    # the lifecycle: PROVISIONING -> STARTING -> RUNNING -> (the job stops its pod) EXITED -> gone
    pod = client.create_pod(spec)
    assert pod["status"] == "PROVISIONING" and pod["cudaVersion"] == "13.0"
    assert wait_status(client, pod["id"], "EXITED") == ["PROVISIONING", "STARTING", "RUNNING", "EXITED"]
    lines = [e.line for e in client.logs(pod["id"], tail=100)]
    assert "job output" in lines and any(line.startswith(payload.FINISHED) for line in lines)
    assert client.pod_billing(pod["id"]) > 0
    client.terminate(pod["id"])
    assert client.pod(pod["id"]) is None and client.pods() == []

    # capacity refused, for a GPU type and for a host CUDA no machine has
    fake.no_capacity = {"NVIDIA A40"}
    with pytest.raises(CapacityError, match="no longer any instances"):
        client.create_pod(spec)
    fake.no_capacity = set()
    with pytest.raises(CapacityError):
        client.create_pod(PodSpec(name="n", image="i:1", gpu_type="NVIDIA A100 80GB PCIe", min_cuda_version="13.0"))

    # an image that cannot be pulled: stays STARTING, says why in the system log
    fake.image_pull_fails = True
    pod = client.create_pod(spec)
    wait_status(client, pod["id"], "STARTING")
    time.sleep(0.5)
    client.stop(pod["id"])
    assert any("error pulling image" in e.line for e in client.logs(pod["id"], tail=100))
    client.terminate(pod["id"])
    fake.image_pull_fails = False

    # a crash loop: the container is restarted
    fake.crash_after, fake.hang = 0.3, True
    pod = client.create_pod(spec)
    wait_status(client, pod["id"], "RUNNING")
    deadline = time.time() + 10
    while fake.pods[pod["id"]].starts < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert fake.pods[pod["id"]].starts >= 2
    client.terminate(pod["id"])
    fake.crash_after, fake.hang = None, False

    # a pod that dies: ERROR
    fake.die_after, fake.hang = 0.2, True
    pod = client.create_pod(spec)
    wait_status(client, pod["id"], "ERROR")
    client.terminate(pod["id"])
    fake.die_after, fake.hang = None, False

    # a self-stop that fails: the pod keeps RUNNING after the job
    fake.stop_fails = True
    pod = client.create_pod(spec)
    deadline = time.time() + 20
    while not any(e[3].startswith(payload.FINISHED) for e in fake.pods[pod["id"]].events) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    assert client.pod(pod["id"])["status"] == "RUNNING"
    assert any("could not stop pod" in e[3] for e in fake.pods[pod["id"]].events)
    client.terminate(pod["id"])

    # 5xx and 429 (with Retry-After)
    for status in (502, 429):
        fake.api_error_status, fake.api_errors_until = status, time.time() + 60
        with pytest.raises(TransientError) as caught:
            client.pods()
        assert caught.value.status == status and (status != 429 or caught.value.retry_after == 1.0)
    fake.api_errors_until = 0

    # a wrong key, an unknown pod
    with pytest.raises(RunPodError, match="HTTP 401"):
        RunPodClient("wrong", session=SchemaCheckedSession(openapi, failures)).pods()
    assert client.pod("nope") is None

    assert failures == [] and fake.violations == [] and fake.live() == []

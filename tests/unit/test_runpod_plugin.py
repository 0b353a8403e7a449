"""The RunPod executor's pieces with a fake client: requests, payload, the pod state machine, success by
outputs, termination on every path, cost, and the checks made before any pod exists."""

from __future__ import annotations

import io
import json
import subprocess

import graphql
import pytest
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_plugin_runpod import api_key, payload
from snakemake_executor_plugin_runpod.api import Enum, PodSpec, RunPodClient, RunPodError, TransientError, literal
from snakemake_executor_plugin_runpod.cleanup import cleanup
from snakemake_executor_plugin_runpod.pods import PodManager, pod_name, run_of
from snakemake_executor_plugin_runpod.settings import check_gpu_type, check_image

GPUS = [
    {"id": "NVIDIA A40", "displayName": "A40", "memoryInGb": 48},
    {"id": "NVIDIA H100 80GB HBM3", "displayName": "H100 SXM"},
]


class FakeClient:
    """Answers like RunPodClient; `statuses` scripts what `pod()` returns (or raises) call by call."""

    def __init__(self, statuses=(), deploy_error=None):
        self.statuses = list(statuses)
        self.deploy_error = deploy_error
        self.deployed: list[PodSpec] = []
        self.terminated: list[str] = []
        self.listed = []

    def deploy(self, spec):
        self.deployed.append(spec)
        if self.deploy_error:
            raise self.deploy_error
        return {"id": f"pod{len(self.deployed)}", "costPerHr": 0.4}

    def pod(self, pod_id):
        status = self.statuses.pop(0) if self.statuses else "RUNNING"
        if isinstance(status, Exception):
            raise status
        return None if status is None else {"id": pod_id, "desiredStatus": status, "costPerHr": 0.4}

    def pods(self):
        return self.listed

    def terminate(self, pod_id):
        self.terminated.append(pod_id)

    def gpu_types(self):
        return GPUS


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
        **kw,
    )
    m.messages = messages
    return m


# ---------------------------------------------------------------- requests


def test_literals_escape_quotes_newlines_and_backslashes_into_valid_graphql():
    nasty = "echo \"hi\" \\ $HOME\n'x' {}"
    spec = PodSpec(name="n", image="i:1", gpu_type='NVIDIA "A40"', docker_args=nasty, env={"K": nasty})
    query = f"mutation {{ podFindAndDeployOnDemand(input: {literal(spec.input())}) {{ id }} }}"
    doc = graphql.parse(query)  # raises on a broken literal
    args = {a.name.value: a for a in doc.definitions[0].selection_set.selections[0].arguments}
    value = graphql.value_from_ast_untyped(args["input"].value)
    assert value["dockerArgs"] == nasty
    assert value["env"] == [{"key": "K", "value": nasty}]
    assert value["gpuTypeId"] == 'NVIDIA "A40"'
    assert value["cloudType"] == "SECURE" and "cloudType: SECURE" in query  # an enum, written bare


def test_literal_refuses_what_it_cannot_write():
    with pytest.raises(TypeError):
        literal(object())
    assert literal(Enum("ALL")) == "ALL" and literal(None) == "null" and literal([1, True]) == "[1, true]"


def test_client_sends_bearer_key_to_the_base_url_read_on_each_call(monkeypatch):
    sent = []

    class Response:
        status_code = 200

        def json(self):
            return {"data": {"gpuTypes": GPUS}}

    class Session:
        def post(self, url, data, headers, timeout):
            sent.append((url, json.loads(data), headers))
            return Response()

    client = RunPodClient("secret-key", session=Session())
    monkeypatch.setenv("RUNPOD_API_BASE_URL", "http://127.0.0.1:1/")
    assert client.gpu_types() == GPUS
    monkeypatch.setenv("RUNPOD_API_BASE_URL", "http://127.0.0.1:2")
    client.gpu_types()
    assert [s[0] for s in sent] == ["http://127.0.0.1:1/graphql", "http://127.0.0.1:2/graphql"]
    assert sent[0][2]["Authorization"] == "Bearer secret-key"
    assert "secret-key" not in json.dumps(sent[0][1])  # the key is a header, never in the query


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (503, {}, TransientError),
        (429, {}, TransientError),
        (200, {"errors": [{"message": "no"}]}, RunPodError),
        (401, {}, RunPodError),
    ],
)
def test_client_tells_transient_errors_from_refusals(status, body, error):
    class Response:
        status_code = status

        def json(self):
            return body

    class Session:
        def post(self, *a, **kw):
            return Response()

    with pytest.raises(error):
        RunPodClient("k", session=Session()).pod("p")


# ---------------------------------------------------------------- payload


def test_job_script_travels_base64_in_one_variable_and_decodes_to_the_command():
    client = FakeClient()
    command = "python -m snakemake --target-jobs 'train:' --default-storage-prefix \"s3://b/p\""
    script = payload.job_script("pod-x", command, "snakemake==9.27.1")
    job = manager(client).launch("pod-x", script, "NVIDIA A40", 1, 600, env={"SNAKEMAKE_STORAGE_S3_ENDPOINT_URL": "u"})
    spec = client.deployed[0]
    assert set(spec.env) == {payload.JOB_VAR, "SNAKEMAKE_STORAGE_S3_ENDPOINT_URL"}
    decoded = payload.decode(spec.env[payload.JOB_VAR])
    assert decoded == script and command in decoded
    assert spec.docker_args == payload.DOCKER_ARGS and payload.JOB_VAR in spec.docker_args
    assert job.pod_id == "pod1" and job.deadline == job.started + 600


def test_job_script_runs_the_command_then_stops_its_own_pod(tmp_path):
    """The script, run by bash with a `runpodctl` shim: the command runs in its folder, then the pod stops."""
    shim = tmp_path / "bin" / "runpodctl"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/stopped\nexit 0\n')
    shim.chmod(0o755)
    script = payload.job_script("p", "pwd > ../where && exit 3", "")
    script = script.replace("sleep infinity", "exit 0")  # the real script waits for the terminate
    env = {
        "PATH": f"{shim.parent}:/usr/bin:/bin",
        "RUNPOD_POD_ID": "pod7",
        payload.JOB_VAR: payload.encode(script),
        "TMPDIR": str(tmp_path),
    }
    proc = subprocess.run(
        ["bash", "-c", payload.DOCKER_ARGS.split(" ", 2)[2][1:-1]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "where").read_text().strip() == str(tmp_path / "snakemake-job")
    assert (tmp_path / "stopped").read_text().split() == ["stop", "pod", "pod7"]
    assert "exit status 3" in proc.stdout


# ---------------------------------------------------------------- the state machine


def test_a_stopped_pod_with_its_outputs_is_a_success_and_is_terminated():
    client = FakeClient(["RUNNING", "EXITED"])
    m = manager(client)
    job = m.launch("n", "s", "NVIDIA A40", 1, 3600)
    assert not m.poll(job, lambda: True).done
    outcome = m.poll(job, lambda: True)
    assert outcome.done and outcome.ok
    assert client.terminated == ["pod1"]


def test_a_stopped_pod_without_its_outputs_is_a_failure_and_is_terminated():
    client = FakeClient(["EXITED"])
    m = manager(client)
    job = m.launch("n", "s", "NVIDIA A40", 1, 3600)
    outcome = m.poll(job, lambda: False)
    assert outcome.done and not outcome.ok and "without all of its outputs" in outcome.message
    assert client.terminated == ["pod1"]


def test_outputs_are_only_judged_once_the_pod_stopped():
    """A running pod may be uploading its outputs: present outputs alone do not end the job."""
    client = FakeClient(["RUNNING"])
    m = manager(client)
    job = m.launch("n", "s", "NVIDIA A40", 1, 3600)
    assert not m.poll(job, lambda: True).done and client.terminated == []


@pytest.mark.parametrize("status", ["DEAD", None])
def test_a_pod_that_died_or_vanished_fails_its_job(status):
    client = FakeClient([status])
    m = manager(client)
    job = m.launch("n", "s", "NVIDIA A40", 1, 3600)
    outcome = m.poll(job, lambda: False)
    assert outcome.done and not outcome.ok
    assert client.terminated == ["pod1"]


def test_a_pod_past_its_runtime_is_terminated_and_failed():
    clock = Clock()
    client = FakeClient()
    m = manager(client, clock)
    job = m.launch("n", "s", "NVIDIA A40", 1, 60)
    clock.now += 61
    outcome = m.poll(job, lambda: True)
    assert outcome.done and not outcome.ok and "maximum runtime of 1 min" in outcome.message
    assert client.terminated == ["pod1"]


def test_api_errors_are_tolerated_for_the_grace_period_with_backoff_then_the_job_is_given_up():
    clock = Clock()
    client = FakeClient([TransientError("HTTP 502")] * 100)
    m = manager(client, clock, api_grace_seconds=300)
    job = m.launch("n", "s", "NVIDIA A40", 1, 3600)
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
    job = m.launch("n", "s", "NVIDIA A40", 1, 3600)
    m.poll(job, lambda: True)
    clock.now += 90
    m.poll(job, lambda: True)
    assert job.errors_since is None and m.backoff(10) == 10
    clock.now += 90
    assert not m.poll(job, lambda: True).done


def test_terminate_all_covers_every_live_pod_once_and_prints_the_cost():
    clock = Clock()
    client = FakeClient()
    m = manager(client, clock)
    a = m.launch("a", "s", "NVIDIA A40", 1, 3600)
    m.launch("b", "s", "NVIDIA A40", 1, 3600)
    clock.now += 1800
    m.terminate(a)
    m.terminate_all()
    m.terminate_all()  # atexit after a normal shutdown: nothing left to do
    assert client.terminated == ["pod1", "pod2"]
    assert "30.0 min at $0.400/h = $0.2000" in m.messages[-1]
    assert m.total_line() == "RunPod: 2 pod(s) in run abc123, about $0.4000 in all (price x runtime)"


def test_a_deployment_whose_answer_was_lost_terminates_the_pod_it_may_have_made():
    client = FakeClient(deploy_error=TransientError("timeout"))
    client.listed = [{"id": "ghost", "name": "n"}, {"id": "other", "name": "someone-else"}]
    with pytest.raises(TransientError):
        manager(client).launch("n", "s", "NVIDIA A40", 1, 3600)
    assert client.terminated == ["ghost"]


def test_terminate_retries_transient_errors():
    class Flaky(FakeClient):
        fails = 2

        def terminate(self, pod_id):
            if self.fails:
                self.fails -= 1
                raise TransientError("503")
            super().terminate(pod_id)

    client = Flaky()
    m = manager(client)
    assert m.terminate(m.launch("n", "s", "NVIDIA A40", 1, 3600))
    assert client.terminated == ["pod1"]


# ---------------------------------------------------------------- names, cleanup


def test_pod_names_carry_run_and_job_and_cleanup_finds_only_ours():
    name = pod_name("abc123", "train", 4)
    assert name == "snakemake-runpod-abc123-train-4" and run_of(name) == "abc123"
    client = FakeClient()
    client.listed = [
        {"id": "1", "name": name},
        {"id": "2", "name": pod_name("ffff00", "merge", 5)},
        {"id": "3", "name": "my-jupyter-pod"},
    ]
    assert cleanup(client, run="abc123", out=io.StringIO()) == 1 and client.terminated == ["1"]
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


@pytest.mark.parametrize(
    "image", ["axolotlai/axolotl:0.19.0-py3.11-cu128-2.13.0", "localhost:5000/a:1.0", "a/b@sha256:" + "0" * 64]
)
def test_pinned_images_pass(image):
    check_image(image)


def test_unknown_gpu_types_name_the_setting_and_suggest():
    check_gpu_type("NVIDIA A40", GPUS)
    with pytest.raises(WorkflowError, match=r"runpod-gpu-type 'NVIDIA A4O'.*Did you mean 'NVIDIA A40'"):
        check_gpu_type("NVIDIA A4O", GPUS)
    with pytest.raises(WorkflowError, match="display name: use the GPU type id 'NVIDIA H100 80GB HBM3'"):
        check_gpu_type("H100 SXM", GPUS)

"""A fake RunPod for tests: REST API v2 on 127.0.0.1, held to RunPod's published schema, with every "pod" a local
process.

Every request is validated against `openapi-v2.json` (openapi-core): one that breaks the contract (a misspelled
field, a wrong enum, a missing key) is answered 422 as RunPod does and recorded in `violations`. Every answer is
validated too before it is sent; one that the schema does not allow is recorded in `violations` as the fake's own
bug. Tests assert `violations == []`.

Pods go through RunPod's states: PROVISIONING, STARTING, RUNNING (the container is a local process running the
pod's `args`, split like a shell would, in its own folder, with its env plus what RunPod adds: RUNPOD_POD_ID and a
pod-scoped RUNPOD_API_KEY), EXITED (stopped), ERROR; a terminated pod is gone (404). As on RunPod, a container
whose command exits is restarted. The container's output, and "system" lines from the fake, are served by
`getPodLogs` as server-sent events. The image is ignored: containers run the `python` of `pod_bin`.

Faults a test can set (attributes): `provision_seconds`/`start_seconds` (a slow start), `image_pull_fails` (the pod
stays STARTING and logs pull errors), `crash_after` (the container is killed so many seconds after each start: a
crash loop), `die_after` (the container is killed and the pod goes to ERROR), `hang` (the container runs `sleep`),
`no_capacity` (GPU type ids, or "gpu@datacenter", whose creates are refused with 400), `api_errors_until` with
`api_error_status` (502, or 429 with Retry-After), `stop_fails` (a pod's own stop request gets 500).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# RunPod's schema as published, copied unchanged into the shared folder beside the repository.
SCHEMA = Path(os.environ.get("MINDUPLOAD_RUNPOD_SCHEMA", ROOT.parent / "shared/runpod/openapi-v2.json"))
SERVER = "https://api.runpod.io"  # the schema's server: requests are validated as if sent there
# What a log stream's answer is checked as (the schema types the stream as one string; its events are ours).
SSE_EXAMPLE = b'id: 2026-01-01T00:00:00Z/1\ndata: {"ts":"2026-01-01T00:00:00Z","source":"system","line":""}\n\n'

DATA_CENTERS = {"EU-RO-1": "Europe Romania 1", "US-KS-2": "US Kansas 2", "US-TX-3": "US Texas 3"}
GPU_TYPES = {
    # id: (name, pool, memory GB, secure price, community price, data centers with stock, host CUDA versions)
    "NVIDIA A40": ("A40", "AMPERE_48", 48, 0.40, 0.35, ["EU-RO-1", "US-KS-2"], ["12.8", "13.0"]),
    "NVIDIA GeForce RTX 4090": ("RTX 4090", "ADA_24", 24, 0.69, 0.34, ["US-TX-3"], ["12.4", "12.8", "13.0"]),
    "NVIDIA RTX A6000": ("RTX A6000", "AMPERE_48", 48, 0.49, 0.33, ["EU-RO-1"], ["13.0"]),
    "NVIDIA L40S": ("L40S", "ADA_48_PRO", 48, 0.86, 0.79, ["US-TX-3"], ["12.8", "13.0"]),
    "NVIDIA H100 80GB HBM3": ("H100 SXM", "HOPPER_141", 80, 2.99, 2.69, [], ["12.8", "13.0"]),
    "NVIDIA A100 80GB PCIe": ("A100 PCIe", "AMPERE_80", 80, 1.64, 1.19, ["US-KS-2"], ["12.2"]),
}


@cache
def openapi():
    from openapi_core import Config, OpenAPI

    if not SCHEMA.is_file():
        raise FileNotFoundError(f"RunPod's schema is not at {SCHEMA} (set MINDUPLOAD_RUNPOD_SCHEMA)")
    # RFC 9457 problem details are JSON and a log stream is text: read them as such, so their schema is checked.
    readers = {"application/problem+json": json.loads, "text/event-stream": lambda raw: raw.decode("utf-8")}
    config = Config(extra_media_type_deserializers=readers)
    return OpenAPI.from_dict(json.loads(SCHEMA.read_text()), config=config)


def now_iso(t: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if t is None else t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def problem(status: int, detail: str, errors: list[str] | None = None) -> dict:
    titles = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity"}
    titles |= {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway"}
    body = {"title": titles.get(status, "Error"), "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return body


@dataclass
class Pod:
    id: str
    name: str
    gpu_type: str
    gpu_count: int
    image: str
    env: dict[str, str]
    args: str
    folder: Path
    cloud: str
    data_center: str
    cuda: str
    disk: int
    status: str = "PROVISIONING"
    created: float = field(default_factory=time.time)
    changed: float = field(default_factory=time.time)
    running_since: float | None = None
    proc: subprocess.Popen | None = None
    starts: int = 0
    noted: float = 0.0  # when a repeated system line was last logged
    events: list[tuple[str, str, str, str]] = field(default_factory=list)  # (id, ts, source, line)

    def price(self) -> float:
        row = GPU_TYPES[self.gpu_type]
        return (row[3] if self.cloud == "SECURE" else row[4]) * self.gpu_count

    def actions(self) -> list[str]:
        if self.status == "RUNNING":
            return ["stop", "restart", "terminate"]
        if self.status in ("EXITED", "ERROR"):
            return ["start", "terminate"]
        return ["stop", "terminate"]

    def view(self) -> dict:
        """The pod as the schema's `Pod`."""
        running = self.status == "RUNNING" and self.running_since
        return {
            "id": self.id,
            "name": self.name,
            "image": self.image,
            "args": self.args,
            "disk": self.disk,
            "ports": [],
            "env": dict(self.env),
            "registry": None,
            "status": self.status,
            "actions": self.actions(),
            "mounts": {},
            "gpu": {"id": self.gpu_type, "count": self.gpu_count},
            "cloud": self.cloud,
            "dataCenterId": self.data_center,
            "cudaVersion": self.cuda,
            "ssh": {"proxy": None, "direct": None},
            "template": None,
            "cost": self.price(),
            "locked": False,
            "globalNetworking": {"enabled": False},
            "runtime": {"uptime": int(time.time() - self.running_since), "ports": []} if running else None,
            "createdAt": now_iso(self.created),
            "startedAt": now_iso(self.running_since) if self.running_since else None,
        }


class FakeRunPod:
    def __init__(self, root: Path, pod_bin: Path, api_key: str = "test-key", extra_env: dict | None = None):
        self.root, self.pod_bin, self.api_key = Path(root), Path(pod_bin), api_key
        self.extra_env = extra_env or {}
        self.pods: dict[str, Pod] = {}
        self.terminated: list[str] = []
        self.requests: list[str] = []  # operationIds, in order
        self.bodies: dict[str, list] = {}  # operationId -> request bodies
        self.violations: list[str] = []  # requests or answers the schema does not allow
        self.refused = 0  # requests answered with a fault
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.ids = itertools.count(1)
        self.seq = itertools.count(1)
        # faults
        self.provision_seconds = 0.3
        self.start_seconds = 0.3
        self.image_pull_fails = False
        self.crash_after: float | None = None
        self.die_after: float | None = None
        self.hang = False
        self.no_capacity: set[str] = set()
        self.api_errors_until = 0.0
        self.api_error_status = 502
        self.stop_fails = False
        self.on_create = None  # called with each new pod (tests schedule faults with it)
        # The pods' /tmp: short, as on a real pod (a socket path over 107 characters fails to bind).
        self.tmp = Path(tempfile.mkdtemp(prefix="fakepods-"))
        openapi()  # load the schema now, not inside the first request
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._stop = threading.Event()

    # ------------------------------------------------------------ lifecycle of the fake

    def start(self) -> FakeRunPod:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        threading.Thread(target=self._supervise, daemon=True).start()
        return self

    def close(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.lock:
            for pod in self.pods.values():
                self._kill(pod)
            self.changed.notify_all()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def live(self) -> list[Pod]:
        """Pods that still exist (and would bill): anything not terminated."""
        with self.lock:
            return list(self.pods.values())

    # ------------------------------------------------------------ pods

    def _event(self, pod: Pod, source: str, line: str) -> None:
        with self.lock:
            ts = now_iso()
            pod.events.append((f"{ts}/{next(self.seq):012d}", ts, source, line))
            self.changed.notify_all()

    def _set(self, pod: Pod, status: str) -> None:
        pod.status, pod.changed = status, time.time()
        self._event(pod, "system", f"pod is {status}")

    def _launch(self, pod: Pod) -> None:
        work = pod.folder / "workspace"
        work.mkdir(parents=True, exist_ok=True)
        argv = ["sleep", "600"] if self.hang else shlex.split(pod.args)
        env = {
            "PATH": f"{self.pod_bin}:/usr/bin:/bin",
            "HOME": str(pod.folder),
            "TMPDIR": str(self.tmp),
            **self.extra_env,
            **pod.env,
            "RUNPOD_POD_ID": pod.id,
            "RUNPOD_API_KEY": f"pod-key-{pod.id}",
            "RUNPOD_API_BASE_URL": self.url,
        }
        pod.proc = subprocess.Popen(
            argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        pod.starts += 1
        if pod.starts > 1:
            self._event(pod, "system", f"container exited; restarting it (start {pod.starts})")
        threading.Thread(target=self._pump, args=(pod, pod.proc), daemon=True).start()

    def _pump(self, pod: Pod, proc: subprocess.Popen) -> None:
        for raw in proc.stdout:
            self._event(pod, "container", raw.decode("utf-8", "replace").rstrip("\r\n"))

    @staticmethod
    def _kill(pod: Pod) -> None:
        if pod.proc and pod.proc.poll() is None:
            os.killpg(pod.proc.pid, signal.SIGKILL)
            pod.proc.wait()

    def _supervise(self) -> None:
        """Moves pods through their states, restarts exited containers, plays the pod faults."""
        while not self._stop.wait(0.1):
            with self.lock:
                for pod in list(self.pods.values()):
                    age = time.time() - pod.changed
                    if pod.status == "PROVISIONING" and age > self.provision_seconds:
                        self._set(pod, "STARTING")
                        self._event(pod, "system", f"pulling image {pod.image}")
                    elif pod.status == "STARTING" and self.image_pull_fails:
                        if time.time() - pod.noted > 1.0:
                            pod.noted = time.time()
                            self._event(pod, "system", f"error pulling image {pod.image}: manifest unknown")
                    elif pod.status == "STARTING" and age > self.start_seconds:
                        self._set(pod, "RUNNING")
                        pod.running_since = time.time()
                        self._launch(pod)
                    elif pod.status == "RUNNING":
                        ran = time.time() - pod.running_since
                        if self.die_after is not None and ran > self.die_after:
                            self._kill(pod)
                            self._set(pod, "ERROR")
                        elif (
                            self.crash_after is not None
                            and pod.proc.poll() is None
                            and time.time() - pod.changed > self.crash_after
                        ):
                            self._kill(pod)
                        if pod.status == "RUNNING" and pod.proc.poll() is not None:
                            pod.changed = time.time()
                            self._launch(pod)

    # ------------------------------------------------------------ the API

    def _catalog(self, query: dict) -> dict:
        include = "AVAILABILITY" in (query.get("include") or "")
        cloud = query.get("cloud")
        gpus = []
        for gpu_id, (name, pool, memory, secure, community, dcs, cudas) in GPU_TYPES.items():
            row = {
                "id": gpu_id,
                "name": name,
                "pool": pool,
                "manufacturer": "NVIDIA",
                "memory": memory,
                "secure": True,
                "community": True,
                "price": {"secure": secure, "community": community},
                "maxCount": {"secure": 8, "community": 4},
                "cudaVersions": [{"version": v, "available": True} for v in cudas],
            }
            if include:
                row["availability"] = "HIGH" if dcs else "NONE"
                row["dataCenters"] = [{"id": d, "name": DATA_CENTERS[d], "availability": "HIGH"} for d in dcs]
            if cloud and not row[cloud.lower()]:
                continue
            gpus.append(row)
        return {"gpus": gpus}

    def _create(self, body: dict) -> tuple[int, dict]:
        if "gpu" not in body or "cpu" in body:
            return 400, problem(400, "exactly one of gpu or cpu must be set")
        gpu_id, count = body["gpu"]["id"], body["gpu"].get("count", 1)
        if gpu_id not in GPU_TYPES:
            return 400, problem(400, f"unknown GPU type {gpu_id!r}")
        wanted_dcs = body.get("dataCenterIds") or GPU_TYPES[gpu_id][5] or ["US-KS-2"]
        allowed = body["gpu"].get("allowedCudaVersions") or GPU_TYPES[gpu_id][6]
        floor = body["gpu"].get("minCudaVersion")
        hosts = [v for v in GPU_TYPES[gpu_id][6] if v in allowed]
        if floor:
            hosts = [v for v in hosts if tuple(map(int, v.split("."))) >= tuple(map(int, floor.split(".")))]
        refused = self.no_capacity
        placeable = [d for d in wanted_dcs if gpu_id not in refused and f"{gpu_id}@{d}" not in refused]
        if not hosts or not placeable or not GPU_TYPES[gpu_id][5]:
            return 400, problem(400, "There are no longer any instances available with the requested specifications.")
        pod_id = f"fake{next(self.ids):04d}"
        pod = Pod(
            id=pod_id,
            name=body["name"],
            gpu_type=gpu_id,
            gpu_count=count,
            image=body["image"],
            env=dict(body.get("env") or {}),
            args=body.get("args", ""),
            folder=self.root / pod_id,
            cloud=body.get("cloud", "SECURE"),
            data_center=placeable[0],
            cuda=hosts[-1],
            disk=body.get("disk", 50),
        )
        self.pods[pod_id] = pod
        self._event(pod, "system", f"pod created on {count} x {gpu_id} in {pod.data_center}")
        if self.on_create:
            self.on_create(pod)
        return 201, pod.view()

    def _terminate(self, pod_id: str) -> tuple[int, dict | None]:
        pod = self.pods.pop(pod_id, None)
        if pod is None:
            return 404, problem(404, f"pod {pod_id} not found")
        self._kill(pod)
        self.terminated.append(pod.id)
        self.changed.notify_all()
        return 204, None

    def _billing(self, query: dict) -> dict:
        pod_id = query.get("podId")
        start, end = time.time() - 86400, time.time()
        records = []
        for pod in self.pods.values():
            if pod_id and pod.id != pod_id:
                continue
            amount = round(pod.price() * (time.time() - pod.created) / 3600, 6)
            records.append(
                {
                    "startTime": now_iso(start),
                    "endTime": now_iso(end),
                    "podId": pod.id,
                    "totalAmount": amount,
                    "gpuAmount": amount,
                    "cpuAmount": 0.0,
                    "diskAmount": 0.0,
                }
            )
        total = sum(r["totalAmount"] for r in records)
        return {
            "records": records,
            "metadata": {
                "query": {"startTime": now_iso(start), "endTime": now_iso(end), "bucketSize": "day", "podId": pod_id},
                "recordCount": len(records),
                "uniquePodCount": len(records),
                "totals": {"totalAmount": total, "gpuAmount": total, "cpuAmount": 0.0, "diskAmount": 0.0},
            },
        }

    def answer(self, method: str, path: str, query: dict, body, key: str) -> tuple[int, dict | None, str]:
        """(status, JSON body, operationId) for a request that passed the schema."""
        parts = path.strip("/").split("/")  # v2, pods, <id>, action
        with self.lock:
            pod_id = parts[2] if len(parts) > 2 and parts[1] == "pods" else None
            own_stop = (
                pod_id
                and key == f"pod-key-{pod_id}"
                and parts[3:] == ["action"]
                and body == {"action": "stop"}
                and method == "POST"
            )
            if key != self.api_key and not own_stop:
                return 401, problem(401, "invalid API key"), "unauthorized"
            if parts[1:] == ["catalog", "gpus"]:
                return 200, self._catalog(query), "listGpuTypes"
            if parts[1:] == ["billing", "pods"]:
                return 200, self._billing(query), "listPodBilling"
            if parts[1:] == ["pods"] and method == "GET":
                return 200, {"pods": [p.view() for p in self.pods.values()]}, "listPods"
            if parts[1:] == ["pods"] and method == "POST":
                status, answer = self._create(body)
                return status, answer, "createPod"
            pod = self.pods.get(pod_id) if pod_id else None
            op = {"GET": "getPod", "DELETE": "deletePod", "PATCH": "updatePod"}.get(method, "podAction")
            if pod is None:
                return 404, problem(404, f"pod {pod_id} not found"), op
            if method == "GET" and len(parts) == 3:
                return 200, pod.view(), op
            if method == "DELETE":
                return *self._terminate(pod.id), op
            if parts[3:] == ["action"]:
                action = body["action"]
                if own_stop and self.stop_fails:
                    return 500, problem(500, "upstream error while stopping the pod"), op
                if action not in pod.actions():
                    return 409, problem(409, f"cannot {action} a pod that is {pod.status}"), op
                if action == "terminate":
                    return *self._terminate(pod.id), op
                if action == "stop":
                    self._kill(pod)
                    self._set(pod, "EXITED")
                    return 200, pod.view(), op
                return 409, problem(409, f"the fake does not play {action}"), op
        return 404, problem(404, "not found"), "unknown"

    def validate_response(self, request, status: int, body, content_type: str, op: str) -> None:
        from openapi_core.testing import MockResponse

        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            openapi().validate_response(request, MockResponse(data, status_code=status, content_type=content_type))
        except Exception as e:
            self.violations.append(f"answer to {op} (HTTP {status}): {type(e).__name__}: {e}")

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _request(self):
                from openapi_core.testing import MockRequest

                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()}
                content_type = self.headers.get("Content-Type")
                request = MockRequest(
                    SERVER,
                    self.command.lower(),
                    url.path,
                    args=query,
                    data=raw or None,
                    headers=headers,
                    content_type=content_type.split(";")[0] if content_type else "application/json",
                )
                return request, url.path, query, raw

            def _serve(self):
                request, path, query, raw = self._request()
                try:
                    openapi().validate_request(request)
                except Exception as e:
                    security = "Security" in type(e).__name__
                    if not security:
                        fake.violations.append(f"{self.command} {path}: {type(e).__name__}: {e}")
                    status = 401 if security else 422
                    detail = "missing or malformed Authorization header" if security else "request does not match"
                    errors = None if security else [str(e)[:500]]
                    return self._send(request, status, problem(status, detail, errors), "invalid")
                if time.time() < fake.api_errors_until:
                    fake.refused += 1
                    status = fake.api_error_status
                    return self._send(request, status, problem(status, "try again later"), "fault")
                key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                body = json.loads(raw) if raw else None
                if path.endswith("/logs"):
                    return self._logs(request, path.split("/")[3], query, key)
                status, answer, op = fake.answer(self.command, path, query, body, key)
                fake.requests.append(op)
                fake.bodies.setdefault(op, []).append(body)
                self._send(request, status, answer, op)

            do_GET = do_POST = do_DELETE = do_PATCH = _serve

            def _send(self, request, status, payload, op):
                content_type = "application/json" if status < 400 else "application/problem+json"
                if payload is not None:
                    fake.validate_response(request, status, payload, content_type, op)
                raw = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                if payload is not None:
                    self.send_header("Content-Type", content_type)
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # e.g. a pod killed by its stop
                    self.wfile.write(raw)

            def _logs(self, request, pod_id, query, key):
                fake.requests.append("getPodLogs")
                with fake.lock:
                    pod = fake.pods.get(pod_id)
                    if key != fake.api_key or pod is None:
                        status = 401 if key != fake.api_key else 404
                        return self._send(request, status, problem(status, "no such pod"), "getPodLogs")
                    since = query.get("since") or ""
                    events = [e for e in pod.events if e[1] >= since]
                    tail = int(query.get("tail", 100))
                    cursor = len(pod.events) - min(len(events), tail)
                fake.validate_response(request, 200, SSE_EXAMPLE, "text/event-stream", "getPodLogs")
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                opened = time.time()
                try:
                    while True:
                        with fake.lock:
                            fresh = pod.events[cursor:]
                            cursor = len(pod.events)
                            gone = pod.id not in fake.pods or pod.status in ("EXITED", "ERROR")
                            if not fresh and not gone:
                                fake.changed.wait(0.5)
                        for event_id, ts, source, line in fresh:
                            data = json.dumps({"ts": ts, "source": source, "line": line})
                            self.wfile.write(f"id: {event_id}\ndata: {data}\n\n".encode())
                        self.wfile.flush()
                        # a stopped or gone pod ends its stream; a live one is cut now and then (clients reconnect)
                        if (gone and not fresh) or fake._stop.is_set() or time.time() - opened > 20:
                            return
                except (BrokenPipeError, ConnectionResetError):
                    return

            def log_message(self, *args):
                pass

        return Handler

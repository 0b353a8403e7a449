"""A fake RunPod for tests: the GraphQL API on 127.0.0.1, answering the queries and mutations the executor sends,
with every "pod" a local process.

A pod runs its container command (`dockerArgs`, split like a shell would) in its own folder, with the env vars it
was deployed with plus what RunPod adds (RUNPOD_POD_ID, a pod-scoped RUNPOD_API_KEY) and a `runpodctl` on its
PATH that calls this API. The image is ignored: pods run the `python` of `pod_bin`. As on RunPod, a container
whose command exits is restarted, `podStop` leaves an EXITED pod and `podTerminate` removes it.

Faults for tests: `api_errors_until` (HTTP 502 until then), `hang` (pods run `sleep` instead of their command),
`die_after` (a pod's process is killed and the pod marked DEAD after so many seconds).
"""

from __future__ import annotations

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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import graphql

GPU_TYPES = [
    {"id": "NVIDIA A40", "displayName": "A40", "memoryInGb": 48},
    {"id": "NVIDIA GeForce RTX 4090", "displayName": "RTX 4090", "memoryInGb": 24},
    {"id": "NVIDIA H100 80GB HBM3", "displayName": "H100 SXM", "memoryInGb": 80},
]
PRICE = {"NVIDIA A40": 0.39, "NVIDIA GeForce RTX 4090": 0.69, "NVIDIA H100 80GB HBM3": 2.99}

RUNPODCTL = """#!{python}
# runpodctl as a pod sees it: `runpodctl stop pod <id>`, against the (fake) RunPod API.
import json, os, sys, urllib.request
if sys.argv[1:3] != ["stop", "pod"]:
    sys.exit("fake runpodctl: only `stop pod <id>`")
query = "mutation {{ podStop(input: {{podId: %s}}) {{ id desiredStatus }} }}" % json.dumps(sys.argv[3])
request = urllib.request.Request(os.environ["RUNPOD_API_BASE_URL"] + "/graphql",
    data=json.dumps({{"query": query}}).encode(),
    headers={{"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["RUNPOD_API_KEY"]}})
print(urllib.request.urlopen(request, timeout=30).read().decode())
"""


@dataclass
class Pod:
    id: str
    name: str
    gpu_type: str
    image: str
    env: dict[str, str]
    docker_args: str
    folder: Path
    status: str = "RUNNING"
    started: float = field(default_factory=time.time)
    proc: subprocess.Popen | None = None
    starts: int = 0

    def view(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "desiredStatus": self.status,
            "costPerHr": PRICE[self.gpu_type],
            "uptimeSeconds": int(time.time() - self.started),
            "lastStatusChange": self.status,
            "imageName": self.image,
            "gpuCount": 1,
        }


class FakeRunPod:
    def __init__(self, root: Path, pod_bin: Path, api_key: str = "test-key", extra_env: dict | None = None):
        self.root, self.pod_bin, self.api_key = Path(root), Path(pod_bin), api_key
        self.extra_env = extra_env or {}
        self.pods: dict[str, Pod] = {}
        self.terminated: list[str] = []
        self.requests: list[str] = []  # operation names, in order
        self.refused = 0  # requests answered with a fault
        self.lock = threading.RLock()
        self.ids = itertools.count(1)
        self.api_errors_until = 0.0
        self.hang = False
        self.die_after: float | None = None
        self.on_deploy = None  # called with each new pod (tests schedule faults with it)
        self.shim = self.root / "shim"
        # The pods' /tmp: short, as on a real pod (datasets' worker sockets live there, and a socket path over
        # 107 characters fails to bind).
        self.tmp = Path(tempfile.mkdtemp(prefix="fakepods-"))
        self.shim.mkdir(parents=True, exist_ok=True)
        (self.shim / "runpodctl").write_text(RUNPODCTL.format(python=self.pod_bin / "python"))
        (self.shim / "runpodctl").chmod(0o755)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
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
        shutil.rmtree(self.tmp, ignore_errors=True)

    def live(self) -> list[Pod]:
        """Pods that still exist (and would bill): anything not terminated."""
        with self.lock:
            return list(self.pods.values())

    # ------------------------------------------------------------ pods

    def _launch(self, pod: Pod) -> None:
        work = pod.folder / "workspace"
        work.mkdir(parents=True, exist_ok=True)
        argv = ["sleep", "600"] if self.hang else shlex.split(pod.docker_args)
        env = {
            "PATH": f"{self.shim}:{self.pod_bin}:/usr/bin:/bin",
            "HOME": str(pod.folder),
            "TMPDIR": str(self.tmp),
            **self.extra_env,
            **pod.env,
            "RUNPOD_POD_ID": pod.id,
            "RUNPOD_API_KEY": f"pod-key-{pod.id}",
            "RUNPOD_API_BASE_URL": self.url,
        }
        log = (pod.folder / "container.log").open("ab")
        pod.proc = subprocess.Popen(
            argv, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        pod.starts += 1

    @staticmethod
    def _kill(pod: Pod) -> None:
        if pod.proc and pod.proc.poll() is None:
            os.killpg(pod.proc.pid, signal.SIGKILL)
            pod.proc.wait()

    def _supervise(self) -> None:
        """RunPod restarts a running pod's container when its command exits; `die_after` kills pods."""
        while not self._stop.wait(0.2):
            with self.lock:
                for pod in self.pods.values():
                    if pod.status != "RUNNING":
                        continue
                    if self.die_after is not None and time.time() - pod.started > self.die_after:
                        self._kill(pod)
                        pod.status = "DEAD"
                    elif pod.proc and pod.proc.poll() is not None:
                        self._launch(pod)

    # ------------------------------------------------------------ the API

    def _answer(self, query: str, key: str) -> dict:
        doc = graphql.parse(query)  # a query the real server could not parse fails here too
        op = doc.definitions[0]
        top = op.selection_set.selections[0]
        name = top.name.value
        args = {a.name.value: graphql.value_from_ast_untyped(a.value) for a in top.arguments}
        inp = args.get("input", {})
        self.requests.append(name)
        pod_key = name == "podStop" and key == f"pod-key-{inp.get('podId')}"  # may only stop its own pod
        if key != self.api_key and not pod_key:
            raise PermissionError
        with self.lock:
            if name == "gpuTypes":
                return {"gpuTypes": GPU_TYPES}
            if name == "myself":
                return {"myself": {"id": "user", "pods": [p.view() for p in self.pods.values()]}}
            if name == "pod":
                pod = self.pods.get(inp["podId"])
                return {"pod": pod.view() if pod else None}
            if name == "podFindAndDeployOnDemand":
                return {name: self._deploy(inp).view()}
            if name == "podStop":
                pod = self.pods[inp["podId"]]
                self._kill(pod)
                pod.status = "EXITED"
                return {name: {"id": pod.id, "desiredStatus": pod.status}}
            if name == "podTerminate":
                pod = self.pods.pop(inp["podId"], None)
                if pod is None:
                    raise KeyError("pod not found")
                self._kill(pod)
                self.terminated.append(pod.id)
                return {name: None}
        raise ValueError(f"fake RunPod does not know {name}")

    def _deploy(self, inp: dict) -> Pod:
        if inp["gpuTypeId"] not in PRICE:
            raise ValueError("There are no longer any instances available with the requested specifications.")
        if inp["cloudType"] not in ("SECURE", "COMMUNITY", "ALL"):
            raise ValueError(f"bad cloudType {inp['cloudType']}")
        pod_id = f"fake{next(self.ids):04d}"
        pod = Pod(
            id=pod_id,
            name=inp["name"],
            gpu_type=inp["gpuTypeId"],
            image=inp["imageName"],
            env={e["key"]: e["value"] for e in inp.get("env", [])},
            docker_args=inp.get("dockerArgs", ""),
            folder=self.root / pod_id,
        )
        self.pods[pod_id] = pod
        self._launch(pod)
        if self.on_deploy:
            self.on_deploy(pod)
        return pod

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/graphql":
                    return self._send(404, {"errors": [{"message": "not found"}]})
                if time.time() < fake.api_errors_until:
                    fake.refused += 1
                    return self._send(502, {"errors": [{"message": "bad gateway"}]})
                key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                try:
                    data = fake._answer(json.loads(body)["query"], key)
                except PermissionError:
                    return self._send(401, {"errors": [{"message": "unauthorized"}]})
                except (KeyError, ValueError, graphql.GraphQLError) as e:
                    return self._send(200, {"errors": [{"message": str(e)}], "data": None})
                self._send(200, {"data": data})

            def _send(self, status, payload):
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        return Handler

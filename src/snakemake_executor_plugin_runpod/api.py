"""A small client for RunPod's REST API v2: the calls the executor makes, and nothing else.

The contract is RunPod's published OpenAPI schema (a copy is in ../shared/runpod/openapi-v2.json; the test fake
validates every request and response against it). Its server is ``https://api.runpod.io`` with every path under
``/v2``; the key goes in ``Authorization: Bearer <key>``. ``RUNPOD_API_BASE_URL`` (read on every call) replaces the
server, so tests point the client at a fake on 127.0.0.1.

Which failures mean what follows the schema's table for ``createPod``: 5xx and 429 are transient (retry the same
request later, after ``Retry-After`` for a 429); 400 and 403 on a create mean "this GPU type / data center cannot
be placed now" (try the next candidate); 402 (no balance) and 422 (a request that breaks the contract) stop.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import requests

DEFAULT_BASE_URL = "https://api.runpod.io"
# A pod whose container no longer runs. RunPod restarts a container whose command exits, so a finished job stops
# its own pod (EXITED); ERROR is a pod that failed; a pod the API no longer knows is gone (TERMINATED).
STOPPED = frozenset({"EXITED", "ERROR", "TERMINATED"})
STARTING = frozenset({"PROVISIONING", "STARTING"})
CLOUD_TYPES = ("SECURE", "COMMUNITY")  # the schema's `Cloud`
AVAILABILITY_RANK = {"HIGH": 0, "MEDIUM": 1, "LOW": 2}  # NONE: not deployable now


class RunPodError(Exception):
    """The API refused a request: a bad request, a wrong key, no balance."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class TransientError(RunPodError):
    """The API could not be reached or answered 5xx/429: worth trying again later."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message, status)
        self.retry_after = retry_after


class CapacityError(RunPodError):
    """A create refused for this GPU type or data center (HTTP 400/403): try the next candidate."""


class NotFound(RunPodError):
    """HTTP 404: the pod does not exist (any more)."""


@dataclass
class PodSpec:
    """A `createPod` body: one GPU pod running `args` in `image`."""

    name: str
    image: str
    gpu_type: str
    gpu_count: int = 1
    cloud_type: str = "SECURE"
    container_disk_gb: int = 50
    args: str = ""
    env: dict[str, str] = field(default_factory=dict)
    allowed_cuda_versions: list[str] | None = None
    min_cuda_version: str | None = None
    data_center_ids: list[str] | None = None

    def body(self) -> dict:
        gpu: dict = {"id": self.gpu_type, "count": self.gpu_count}
        if self.allowed_cuda_versions:
            gpu["allowedCudaVersions"] = list(self.allowed_cuda_versions)
        elif self.min_cuda_version:
            gpu["minCudaVersion"] = self.min_cuda_version
        body = {
            "name": self.name,
            "image": self.image,
            "gpu": gpu,
            "cloud": self.cloud_type,
            "disk": self.container_disk_gb,
            "args": self.args,
            "env": dict(self.env),
            "ports": [],
        }
        if self.data_center_ids:
            body["dataCenterIds"] = list(self.data_center_ids)
        return body


@dataclass
class LogEvent:
    id: str
    ts: str
    source: str
    line: str


def parse_sse(lines: Iterator[str]) -> Iterator[LogEvent]:
    """Server-sent events as `getPodLogs` sends them: `id:` and a JSON `data:` line, a blank line after each."""
    event_id, data = "", []
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                try:
                    payload = json.loads("\n".join(data))
                except ValueError:
                    payload = {"line": "\n".join(data)}
                yield LogEvent(
                    id=event_id or str(payload.get("ts", "")),
                    ts=str(payload.get("ts", "")),
                    source=str(payload.get("source", "")),
                    line=str(payload.get("line", "")),
                )
            event_id, data = "", []
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    # an event without its blank line (the stream was cut) is dropped: it is sent again on reconnect


class RunPodClient:
    def __init__(self, api_key: str, timeout: float = 30.0, session: requests.Session | None = None):
        self._key = api_key
        self.timeout = timeout
        self.session = session or requests.Session()

    @property
    def base_url(self) -> str:
        # Read on every call: tests point it at a fake server.
        return os.environ.get("RUNPOD_API_BASE_URL", DEFAULT_BASE_URL).rstrip("/")

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}

    def request(self, method: str, path: str, *, params=None, body=None, ok=(200,)):
        """One call; the decoded JSON answer (None for an empty one) or a RunPodError."""
        headers = self._headers()
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                params=params,
                data=None if body is None else json.dumps(body),
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as e:
            raise TransientError(f"RunPod API unreachable ({type(e).__name__})") from None
        status = response.status_code
        if status in ok:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise TransientError(f"RunPod API answered HTTP {status} without JSON", status) from None
        raise self.error(method, path, response)

    @staticmethod
    def error(method: str, path: str, response) -> RunPodError:
        status = response.status_code
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        detail = problem.get("detail") or problem.get("title") or response.reason or ""
        if problem.get("errors"):
            detail += " (" + "; ".join(str(e) for e in problem["errors"][:5]) + ")"
        message = f"RunPod API {method} {path}: HTTP {status}{': ' + detail if detail else ''}"
        if status == 429 or status >= 500:
            retry_after = response.headers.get("Retry-After")
            try:
                seconds = float(retry_after) if retry_after else None
            except ValueError:
                seconds = None
            return TransientError(message, status, seconds)
        if status == 401:
            return RunPodError("RunPod refused the API key (HTTP 401): check RUNPOD_API_KEY.", status)
        if status == 404:
            return NotFound(message, status)
        return RunPodError(message, status)

    # ------------------------------------------------------------ catalog

    def gpu_types(self, cloud: str | None = None, gpu_count: int = 1) -> list[dict]:
        """GPU types with prices, CUDA versions and current pod stock (`include=AVAILABILITY&product=POD`)."""
        params = {"include": "AVAILABILITY", "product": "POD", "count": gpu_count}
        if cloud:
            params["cloud"] = cloud
        return self.request("GET", "/v2/catalog/gpus", params=params)["gpus"]

    # ------------------------------------------------------------ pods

    def create_pod(self, spec: PodSpec) -> dict:
        """The created pod. 400/403 raise CapacityError (this candidate cannot be placed); 5xx/429 TransientError."""
        try:
            return self.request("POST", "/v2/pods", body=spec.body(), ok=(200, 201))
        except TransientError:
            raise
        except RunPodError as e:
            if e.status in (400, 403):
                raise CapacityError(str(e), e.status) from None
            raise

    def pod(self, pod_id: str) -> dict | None:
        """The pod, or None once it is gone (RunPod answers 404 for a terminated pod)."""
        try:
            return self.request("GET", f"/v2/pods/{pod_id}")
        except NotFound:
            return None

    def pods(self) -> list[dict]:
        return self.request("GET", "/v2/pods")["pods"]

    def terminate(self, pod_id: str) -> None:
        """Terminate (delete) the pod; a pod that is already gone is not an error."""
        try:
            self.request("DELETE", f"/v2/pods/{pod_id}", ok=(200, 204))
        except NotFound:
            return

    def stop(self, pod_id: str) -> dict | None:
        return self.request("POST", f"/v2/pods/{pod_id}/action", body={"action": "stop"}, ok=(200, 204))

    def logs(self, pod_id: str, tail: int = 100, since: str | None = None, read_timeout: float = 60.0):
        """Follow the pod's log (container and system lines) as server-sent events; the generator ends when the
        server closes the stream. Errors raise as for `request`."""
        params: dict = {"tail": tail}
        if since:
            params["since"] = since
        headers = {**self._headers(), "Accept": "text/event-stream"}
        try:
            response = self.session.get(
                self.base_url + f"/v2/pods/{pod_id}/logs",
                params=params,
                headers=headers,
                stream=True,
                timeout=(self.timeout, read_timeout),
            )
        except requests.RequestException as e:
            raise TransientError(f"RunPod log stream unreachable ({type(e).__name__})") from None
        if response.status_code != 200:
            raise self.error("GET", f"/v2/pods/{pod_id}/logs", response)
        with response:
            try:
                yield from parse_sse(response.iter_lines(decode_unicode=True))
            except requests.RequestException as e:
                raise TransientError(f"RunPod log stream cut ({type(e).__name__})") from None

    # ------------------------------------------------------------ billing

    def pod_billing(self, pod_id: str) -> float | None:
        """What RunPod has billed for the pod so far (its records lag behind), or None if it has no record."""
        answer = self.request("GET", "/v2/billing/pods", params={"podId": pod_id, "bucketSize": "day", "lastN": 30})
        if not answer.get("records"):
            return None
        return float(answer["metadata"]["totals"]["totalAmount"])

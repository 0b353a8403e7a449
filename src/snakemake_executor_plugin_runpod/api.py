"""A small client for RunPod's GraphQL API: the few queries and mutations the executor needs.

It speaks to the same endpoint as the `runpod` SDK (``$RUNPOD_API_BASE_URL/graphql``, read on every call, a
Bearer key) and sends the SDK's queries, but writes every value as a proper GraphQL literal: the SDK formats
strings into the query unescaped, so a quote in a command or an environment value would break the request.
We call the API directly instead of through the SDK because the SDK pulls in a web server stack (fastapi[all],
paramiko, sentry-sdk, ...) and wants newer typer/python-dotenv than axolotl's environment has.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import requests

DEFAULT_BASE_URL = "https://api.runpod.io"
# Statuses of a pod whose container no longer runs (RunPod restarts a container whose command exits, so a
# finished job stops its own pod; EXITED is what that looks like).
STOPPED = frozenset({"EXITED", "DEAD", "TERMINATED"})
CLOUD_TYPES = ("SECURE", "COMMUNITY", "ALL")

POD_FIELDS = "id name desiredStatus costPerHr uptimeSeconds lastStatusChange imageName gpuCount"


class RunPodError(Exception):
    """The API answered with an error: a bad request, a refused deployment, a wrong key."""


class TransientError(RunPodError):
    """The API could not be reached or answered 5xx/429: worth trying again later."""


class Enum(str):
    """A GraphQL enum value: written bare, not quoted."""


def literal(value) -> str:
    """`value` as a GraphQL input literal. JSON's string escapes are GraphQL's, so json.dumps quotes safely."""
    if isinstance(value, Enum):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {literal(v)}" for key, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"no GraphQL literal for {type(value).__name__}")


@dataclass
class PodSpec:
    """What `podFindAndDeployOnDemand` gets: one GPU pod running `docker_args` in `image`."""

    name: str
    image: str
    gpu_type: str
    gpu_count: int = 1
    cloud_type: str = "SECURE"
    container_disk_gb: int = 50
    volume_gb: int = 0
    docker_args: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def input(self) -> dict:
        return {
            "name": self.name,
            "imageName": self.image,
            "gpuTypeId": self.gpu_type,
            "gpuCount": self.gpu_count,
            "cloudType": Enum(self.cloud_type),
            "containerDiskInGb": self.container_disk_gb,
            "volumeInGb": self.volume_gb,
            "dockerArgs": self.docker_args,
            "startSsh": False,
            "supportPublicIp": False,
            "env": [{"key": key, "value": value} for key, value in self.env.items()],
        }


class RunPodClient:
    def __init__(self, api_key: str, timeout: float = 30.0, session: requests.Session | None = None):
        self._key = api_key
        self.timeout = timeout
        self.session = session or requests.Session()

    @property
    def url(self) -> str:
        # Read on every call, as the SDK does: tests point it at a fake server.
        return os.environ.get("RUNPOD_API_BASE_URL", DEFAULT_BASE_URL).rstrip("/") + "/graphql"

    def call(self, query: str) -> dict:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self._key}"}
        try:
            response = self.session.post(
                self.url, data=json.dumps({"query": query}), headers=headers, timeout=self.timeout
            )
        except requests.RequestException as e:
            raise TransientError(f"RunPod API unreachable: {type(e).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"RunPod API answered HTTP {response.status_code}")
        if response.status_code == 401:
            raise RunPodError("RunPod refused the API key (HTTP 401): check RUNPOD_API_KEY.")
        try:
            body = response.json()
        except ValueError:
            raise TransientError(f"RunPod API answered HTTP {response.status_code} without JSON") from None
        if body.get("errors"):
            raise RunPodError(f"RunPod API: {body['errors'][0].get('message', body['errors'][0])}")
        if response.status_code >= 400:
            raise RunPodError(f"RunPod API answered HTTP {response.status_code}")
        return body.get("data") or {}

    # ------------------------------------------------------------ queries

    def gpu_types(self) -> list[dict]:
        return self.call("query GpuTypes { gpuTypes { id displayName memoryInGb } }")["gpuTypes"]

    def pod(self, pod_id: str) -> dict | None:
        """The pod, or None once it is terminated (RunPod then no longer knows it)."""
        return self.call(f"query Pod {{ pod(input: {literal({'podId': pod_id})}) {{ {POD_FIELDS} }} }}").get("pod")

    def pods(self) -> list[dict]:
        return self.call(f"query Pods {{ myself {{ pods {{ {POD_FIELDS} }} }} }}")["myself"]["pods"]

    # ------------------------------------------------------------ mutations

    def deploy(self, spec: PodSpec) -> dict:
        fields = "id name costPerHr desiredStatus"
        data = self.call(f"mutation {{ podFindAndDeployOnDemand(input: {literal(spec.input())}) {{ {fields} }} }}")
        pod = data.get("podFindAndDeployOnDemand")
        if not pod or not pod.get("id"):
            raise RunPodError(f"no {spec.gpu_type} available in the {spec.cloud_type} cloud right now")
        return pod

    def stop(self, pod_id: str) -> None:
        self.call(f"mutation {{ podStop(input: {literal({'podId': pod_id})}) {{ id desiredStatus }} }}")

    def terminate(self, pod_id: str) -> None:
        self.call(f"mutation {{ podTerminate(input: {literal({'podId': pod_id})}) }}")

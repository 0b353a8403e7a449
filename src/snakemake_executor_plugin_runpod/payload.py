"""What a pod runs: a bash script, carried base64-encoded in one environment variable, that installs the pinned
packages, runs the Snakemake job command and then stops its own pod (a container whose command exits is
restarted by RunPod, so the script never exits on its own; the executor terminates the stopped pod)."""

from __future__ import annotations

import base64

JOB_VAR = "SNAKEMAKE_RUNPOD_JOB"
# The container command: decode the script and run it. Only a variable name inside: nothing to escape.
DOCKER_ARGS = (
    f'bash -c \'echo "${JOB_VAR}" | base64 -d > "${{TMPDIR:-/tmp}}/snakemake-runpod-job.sh" '
    '&& exec bash "${TMPDIR:-/tmp}/snakemake-runpod-job.sh"\''
)

# Stop this pod: RunPod gives every pod RUNPOD_POD_ID and a key scoped to it, and usually runpodctl.
STOP_OWN_POD = r"""stop_own_pod() {
  if command -v runpodctl >/dev/null 2>&1 && runpodctl stop pod "$RUNPOD_POD_ID"; then return; fi
  python - <<'PY'
import json, os, urllib.request
url = os.environ.get("RUNPOD_API_BASE_URL", "https://api.runpod.io").rstrip("/") + "/graphql"
query = "mutation { podStop(input: {podId: %s}) { id desiredStatus } }" % json.dumps(os.environ["RUNPOD_POD_ID"])
request = urllib.request.Request(url, data=json.dumps({"query": query}).encode(), headers={
    "Content-Type": "application/json", "Authorization": "Bearer " + os.environ["RUNPOD_API_KEY"]})
urllib.request.urlopen(request, timeout=30).read()
PY
}"""


def job_script(name: str, command: str, pip_packages: str) -> str:
    install = f"python -m pip install --quiet --disable-pip-version-check {pip_packages}" if pip_packages else ":"
    return f"""#!/bin/bash
# {name}: one Snakemake job, written by snakemake-executor-plugin-runpod.
{STOP_OWN_POD}
mkdir -p snakemake-job && cd snakemake-job || exit 1
(
  set -e
  {install}
  {command}
)
status=$?
echo "snakemake-runpod: job finished with exit status $status; stopping pod $RUNPOD_POD_ID"
stop_own_pod
sleep infinity
"""


def encode(script: str) -> str:
    return base64.b64encode(script.encode("utf-8")).decode("ascii")


def decode(value: str) -> str:
    return base64.b64decode(value).decode("utf-8")

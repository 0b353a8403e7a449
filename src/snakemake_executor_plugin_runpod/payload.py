"""What a pod runs: a bash script, carried base64-encoded in one environment variable, that says it started,
installs the pinned packages, runs the Snakemake job command, says how it ended and then stops its own pod (a
container whose command exits is restarted by RunPod, so the script never exits on its own; the executor
terminates the pod whatever happens).

The markers it prints are how the executor, which follows the pod's log, knows the job started (the start
deadline), finished (and with which exit status) and whether the container was restarted (a crash loop).

Installing works with or without pip in the image's Python: official axolotl images are venvs made by
`uv venv` (no pip, `uv` on the PATH); RunPod's own images have pip. `pod_pip` is `python -m pip` where that works,
else `uv pip --python <that python>`, else pip from the interpreter's own `ensurepip` (offline).
"""

from __future__ import annotations

import base64

JOB_VAR = "SNAKEMAKE_RUNPOD_JOB"
MARKER = "snakemake-runpod:"
STARTED = f"{MARKER} job started on pod"
FINISHED = f"{MARKER} job finished with exit status"

# The container command: decode the script and run it. Only a variable name inside: nothing to escape.
DOCKER_ARGS = (
    f'bash -c \'echo "${JOB_VAR}" | base64 -d > "${{TMPDIR:-/tmp}}/snakemake-runpod-job.sh" '
    '&& exec bash "${TMPDIR:-/tmp}/snakemake-runpod-job.sh"\''
)

# Installing into the image's Python, whatever it has. Used by the script and by `runpod-setup-command`.
POD_PIP = r"""export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
export PIP_BREAK_SYSTEM_PACKAGES=1 UV_BREAK_SYSTEM_PACKAGES=1
pod_pip() {
  if python -m pip --version >/dev/null 2>&1; then
    python -m pip "$@"
  elif command -v uv >/dev/null 2>&1; then
    uv pip "$@" --python "$(command -v python)"
  elif python -m ensurepip --default-pip >/dev/null 2>&1; then
    python -m pip "$@"
  else
    echo "snakemake-runpod: $(command -v python) has no pip, no uv and no ensurepip: cannot install" >&2
    return 1
  fi
}"""

# Stop this pod through REST API v2 with the pod's own key (RunPod gives every pod RUNPOD_POD_ID and a key scoped
# to it). urllib raises on any HTTP error, so a refused stop is reported, not mistaken for a stop.
STOP_OWN_POD = r"""stop_own_pod() {
  python - <<'PY' && return 0
import json, os, urllib.request
base = os.environ.get("RUNPOD_API_BASE_URL", "https://api.runpod.io").rstrip("/")
request = urllib.request.Request(
    base + "/v2/pods/" + os.environ["RUNPOD_POD_ID"] + "/action", method="POST",
    data=json.dumps({"action": "stop"}).encode(),
    headers={"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["RUNPOD_API_KEY"]})
urllib.request.urlopen(request, timeout=30).read()
PY
  echo "snakemake-runpod: could not stop pod $RUNPOD_POD_ID itself; the executor terminates it"
  return 1
}"""


def job_script(name: str, command: str, pip_packages: str) -> str:
    install = f"pod_pip install --quiet {pip_packages}" if pip_packages else ":"
    return f"""#!/bin/bash
# {name}: one Snakemake job, written by snakemake-executor-plugin-runpod.
echo "{STARTED} $RUNPOD_POD_ID ($(python --version 2>&1))"
{POD_PIP}
{STOP_OWN_POD}
mkdir -p snakemake-job && cd snakemake-job || exit 1
(
  set -e
  {install}
  {command}
)
status=$?
echo "{FINISHED} $status; stopping pod $RUNPOD_POD_ID"
stop_own_pod
sleep infinity
"""


def encode(script: str) -> str:
    return base64.b64encode(script.encode("utf-8")).decode("ascii")


def decode(value: str) -> str:
    return base64.b64decode(value).decode("utf-8")

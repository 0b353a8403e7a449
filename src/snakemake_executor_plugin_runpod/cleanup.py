"""Find and terminate pods left by runs of this executor (a killed process, a lost network):
`python -m snakemake_executor_plugin_runpod.cleanup [--run RUN_ID] [--dry-run]`.

Only pods named by `pods.pod_name` are touched; other pods on the account are never listed as strays.
"""

from __future__ import annotations

import argparse
import sys

from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_plugin_runpod import api_key
from snakemake_executor_plugin_runpod.api import RunPodClient, RunPodError
from snakemake_executor_plugin_runpod.pods import run_of


def strays(client: RunPodClient, run: str | None = None) -> list[dict]:
    return [p for p in client.pods() if run_of(p.get("name", "")) and (run is None or run_of(p["name"]) == run)]


def cleanup(client: RunPodClient, run: str | None = None, dry_run: bool = False, out=sys.stdout) -> int:
    """Terminate our pods (of one run, or all); returns how many were found."""
    found = strays(client, run)
    for pod in found:
        verb = "would terminate" if dry_run else "terminating"
        print(f"{verb} {pod['id']} {pod['name']} ({pod.get('status')}, ${pod.get('cost') or 0}/h)", file=out)
        if not dry_run:
            client.terminate(pod["id"])
    if not found:
        print("no pods of snakemake-runpod runs found", file=out)
    return len(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="snakemake-runpod-cleanup", description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="only pods of this run id (printed at the start of a run)")
    parser.add_argument("--dry-run", action="store_true", help="list the pods, terminate nothing")
    args = parser.parse_args(argv)
    try:
        cleanup(RunPodClient(api_key()), args.run, args.dry_run)
    except (WorkflowError, RunPodError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

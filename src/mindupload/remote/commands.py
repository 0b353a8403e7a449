"""`mindupload install-profile` and `runpod-cleanup`: running the GPU rules elsewhere (profiles/, the RunPod
executor in `snakemake_executor_plugin_runpod`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mindupload.errors import UserError

log = logging.getLogger("mindupload")


def cmd_install_profile(args: argparse.Namespace) -> None:
    from mindupload.remote import profiles

    target = profiles.install(args.name, Path(args.source or f"profiles/{args.name}"), force=args.force)
    log.info("profile installed at %s: `snakemake --profile %s ...` now finds it from any folder", target, args.name)


def cmd_runpod_cleanup(args: argparse.Namespace) -> None:
    from snakemake_interface_common.exceptions import WorkflowError

    from snakemake_executor_plugin_runpod import api_key
    from snakemake_executor_plugin_runpod.api import RunPodClient, RunPodError
    from snakemake_executor_plugin_runpod.cleanup import cleanup

    try:
        cleanup(RunPodClient(api_key()), run=args.run, dry_run=args.dry_run)
    except (WorkflowError, RunPodError) as e:
        raise UserError(str(e)) from None


def register(sub) -> None:
    p = sub.add_parser("install-profile", help="copy profiles/<name> where `snakemake --profile <name>` finds it")
    p.add_argument("name", nargs="?", default="runpod", help="default: runpod")
    p.add_argument("--source", help="the profile folder (default: profiles/<name>)")
    p.add_argument("--force", action="store_true", help="replace an installed profile of that name")
    p.set_defaults(func=cmd_install_profile)

    p = sub.add_parser("runpod-cleanup", help="terminate RunPod pods left by runs of the RunPod executor")
    p.add_argument("--run", help="only pods of this run id (printed at the start of each run)")
    p.add_argument("--dry-run", action="store_true", help="list them, terminate nothing")
    p.set_defaults(func=cmd_runpod_cleanup)

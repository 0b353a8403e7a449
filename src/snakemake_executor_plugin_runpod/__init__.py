"""Snakemake executor plugin for RunPod: each remote job runs on its own GPU pod (`--executor runpod`).

Files move through the default storage provider (an S3 bucket); the workflow sources reach the pod the way
Snakemake deploys them for remote jobs. The pieces: `api` (RunPod's REST API v2), `payload` (what the pod
runs), `pods` (placement, lifecycle, the pod's log, cost), `settings` (and the checks made before any pod exists),
`storage` (the bucket checked before anything else), `cleanup` (strays).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface
from snakemake_interface_executor_plugins.settings import CommonSettings

from snakemake_executor_plugin_runpod import payload
from snakemake_executor_plugin_runpod.api import RunPodClient, RunPodError
from snakemake_executor_plugin_runpod.pods import LaunchError, PodManager, candidates, pod_name
from snakemake_executor_plugin_runpod.settings import (
    ExecutorSettings,
    check_gpu_type,
    check_image,
    default_pip_packages,
    gpu_list,
    min_cuda,
)

__all__ = ["Executor", "ExecutorSettings", "common_settings"]

common_settings = CommonSettings(
    non_local_exec=True,
    implies_no_shared_fs=True,
    job_deploy_sources=True,
    pass_default_storage_provider_args=True,
    pass_default_resources_args=True,
    # Secrets (storage keys) go into the pod's environment, not into the command we ship and log.
    pass_envvar_declarations_to_cmd=False,
    # Snakemake would pip-install the storage plugins unpinned; the pod script installs pinned ones.
    auto_deploy_default_storage_provider=False,
    # A pod takes a while to be scheduled and to pull its image.
    init_seconds_before_status_checks=5,
)

# Credentials the storage provider may take from the environment instead of its settings.
FORWARDED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION")


def forget_listing(storage_object) -> None:
    """The S3 plugin remembers that a path was not a folder when Snakemake checked it before the job ran;
    Snakemake then checks the same object after the job and would miss a folder output that the pod made."""
    if getattr(storage_object, "_is_dir", None) is False:
        storage_object._is_dir = None


def api_key(environ=os.environ) -> str:
    key = environ.get("RUNPOD_API_KEY", "").strip()
    if not key:
        raise WorkflowError(
            "RUNPOD_API_KEY is not set: create an API key at https://www.runpod.io/console/user/settings and "
            "export it in this shell (it is read from the environment only, never from a file)."
        )
    return key


class Executor(RemoteExecutor):
    def __post_init__(self):
        self.settings: ExecutorSettings = self.workflow.executor_settings
        key = api_key()
        storage = self.workflow.storage_settings
        if storage.default_storage_provider is None or not storage.default_storage_prefix:
            raise WorkflowError(
                "RunPod jobs exchange files through storage: set `default-storage-provider: s3` and "
                "`default-storage-prefix: s3://<bucket>/<folder>` (see profiles/runpod/config.yaml)."
            )
        check_image(self.settings.image)
        self.min_cuda = min_cuda(self.settings.min_cuda, self.settings.image)
        if self.settings.max_cost is not None and self.settings.max_cost <= 0:
            raise WorkflowError("runpod-max-cost must be a positive number of US dollars (or unset: no cap).")
        self.client = self.make_client(key)
        self.check_gpu_types()
        self.run_id = uuid.uuid4().hex[:8]
        self.manager = PodManager(
            client=self.client,
            run_id=self.run_id,
            image=self.settings.image,
            cloud_type=self.settings.cloud_type,
            container_disk_gb=self.settings.container_disk_gb,
            api_grace_seconds=self.settings.api_grace_seconds,
            start_deadline_seconds=self.settings.start_deadline * 60,
            stop_grace_seconds=self.settings.stop_grace_seconds,
            max_cost=self.settings.max_cost,
            log_dir=Path(".snakemake", "runpod_logs", self.run_id),
            report=self.logger.info,
        )
        self.pip_packages = self.settings.pip_packages or default_pip_packages(self.storage_packages())
        atexit.register(self.manager.terminate_all)
        self.install_signal_cleanup()
        self.logger.info(f"RunPod run {self.run_id}: pods named {pod_name(self.run_id, '<rule>', 0)[:-9]}...")

    def make_client(self, key: str) -> RunPodClient:
        return RunPodClient(key)

    def check_gpu_types(self) -> None:
        """The default GPU type and every rule's `gpu_model` must be RunPod GPU type ids: checked now,
        before a pod exists, not when the first job is deployed."""
        try:
            known = self.client.gpu_types(cloud=self.settings.cloud_type)
        except RunPodError as e:
            raise WorkflowError(f"RunPod: cannot read the GPU catalog: {e}") from None
        if not self.settings.gpu_type:
            raise WorkflowError("set runpod-gpu-type (a RunPod GPU type id such as 'NVIDIA A40') in the profile.")
        for gpu in gpu_list(self.settings.gpu_type, self.settings.gpu_fallbacks):
            where = "runpod-gpu-type" if gpu == self.settings.gpu_type else "runpod-gpu-fallbacks"
            check_gpu_type(gpu, known, where=where)
        for job in self.workflow.dag.jobs:
            model = job.resources.get("gpu_model")
            if model and not job.is_local:
                check_gpu_type(str(model), known, where=f"rule {job.name}: resource gpu_model")

    def storage_packages(self) -> list[str]:
        from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

        registry = StoragePluginRegistry()
        return sorted(
            {registry.get_plugin_package_name(name) for name in self.workflow.storage_provider_settings or {}}
        )

    # ------------------------------------------------------------ the job command

    def format_job_exec(self, job: JobExecutorInterface) -> str:
        """Snakemake's own command, with the setup command run after the sources are deployed."""
        command = super().format_job_exec(job)
        setup = self.settings.setup_command
        if not setup:
            return command
        precommand = self.workflow.spawned_job_args_factory.precommand(executor_common_settings=self.common_settings)
        if not precommand or f"{precommand} &&" not in command:
            raise WorkflowError("runpod-setup-command needs Snakemake to deploy the sources (no shared filesystem).")
        return command.replace(f"{precommand} &&", f"{precommand} && {setup} &&", 1)

    def pod_env(self) -> dict[str, str]:
        env = {var: os.environ[var] for var in FORWARDED_ENV if os.environ.get(var)}
        env.update({k: str(v) for k, v in self.envvars().items()})
        return env

    def places(self, gpu_type: str, gpu_count: int):
        """Where a job may run now: its GPU type then the fallbacks, each in the data centers that have it."""
        catalog = self.client.gpu_types(cloud=self.settings.cloud_type, gpu_count=gpu_count)
        wanted = gpu_list(gpu_type, self.settings.gpu_fallbacks)
        found, skipped = candidates(catalog, wanted, self.settings.cloud_type, self.min_cuda)
        for reason in skipped:
            self.logger.info(f"RunPod: skipping {reason}")
        return found

    def run_job(self, job: JobExecutorInterface):
        name = pod_name(self.run_id, job.name, job.jobid)
        script = payload.job_script(name, self.format_job_exec(job), self.pip_packages)
        gpu_type = str(job.resources.get("gpu_model") or self.settings.gpu_type)
        gpu_count = max(1, int(job.resources.get("gpu", 1) or 1))
        runtime = float(job.resources.get("runtime", 0) or 0)
        minutes = min(self.settings.max_runtime, runtime) if runtime else self.settings.max_runtime
        info = SubmittedJobInfo(job=job, external_jobid=None, aux={})
        try:
            places = self.places(gpu_type, gpu_count)
            pod = self.manager.launch(
                name, script, places, gpu_count, minutes * 60, env=self.pod_env(), min_cuda=self.min_cuda
            )
        except (RunPodError, LaunchError) as e:
            self.report_job_error(info, msg=f"RunPod could not start a pod for {job.name}: {e}. ")
            return
        info.external_jobid = pod.pod_id
        info.aux["pod"] = pod
        self.report_job_submission(info)

    # ------------------------------------------------------------ following jobs

    async def check_active_jobs(self, active_jobs: list[SubmittedJobInfo]) -> AsyncGenerator[SubmittedJobInfo, None]:
        for info in active_jobs:
            async with self.status_rate_limiter:
                outcome = self.manager.poll(info.aux["pod"], lambda job=info.job: self.outputs_present(job))
            if not outcome.done:
                yield info
            elif outcome.ok:
                self.report_job_success(info)
            else:
                pod_log = info.aux["pod"].log
                logs = [str(pod_log.path)] if pod_log and pod_log.path and Path(pod_log.path).exists() else []
                self.report_job_error(info, msg=f"RunPod: {outcome.message}\n", aux_logs=logs)
        self.next_seconds_between_status_checks = self.manager.backoff(
            self.workflow.remote_execution_settings.seconds_between_status_checks
        )

    def outputs_present(self, job: JobExecutorInterface) -> bool:
        outputs = list(job.output)
        if not outputs or not all(getattr(f, "is_storage", False) for f in outputs):
            return False  # without storage outputs there is nothing to judge success by
        try:
            # A fresh object per output: the job's own ones cache what they saw before the job (e.g. "no dir").
            present = all(f.storage_object.provider.object(f.storage_object.query).exists() for f in outputs)
        except Exception as e:  # storage unreachable: not a success we can confirm
            self.logger.warning(f"RunPod: could not check the outputs of {job.name} in storage: {e}")
            return False
        if present:
            for f in outputs:
                forget_listing(f.storage_object)
        return present

    # ------------------------------------------------------------ ending

    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]):
        for info in active_jobs:
            self.logger.info(f"RunPod: cancelling {info.job.name}, terminating pod {info.external_jobid}")
            self.manager.terminate(info.aux["pod"])

    def shutdown(self):
        super().shutdown()
        self.manager.terminate_all()
        if self.manager.pods:
            self.logger.info(self.manager.total_line())

    def install_signal_cleanup(self):
        """SIGTERM/SIGHUP skip atexit: terminate our pods first, then let the previous handler act."""

        def chain(previous):
            def handler(signum, frame):
                self.manager.terminate_all()
                if callable(previous):
                    previous(signum, frame)
                elif previous is not signal.SIG_IGN:
                    signal.signal(signum, signal.SIG_DFL)
                    signal.raise_signal(signum)

            return handler

        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(ValueError, OSError):  # not the main thread: atexit still covers an exit
                signal.signal(sig, chain(signal.getsignal(sig)))

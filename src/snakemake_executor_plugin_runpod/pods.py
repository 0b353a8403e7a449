"""Pod lifecycle, independent of Snakemake: deploy a pod for a job, follow it, decide how it ended, terminate it
on every path, and keep count of what it cost.

A pod reports no exit status: a job that finished stops its own pod, and it succeeded exactly when all its
outputs are in storage. Every pod this process created is terminated -- on success, failure, timeout, cancel
and at interpreter exit -- because a stopped pod still bills its disk.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from snakemake_executor_plugin_runpod import payload
from snakemake_executor_plugin_runpod.api import STOPPED, PodSpec, RunPodClient, RunPodError, TransientError

log = logging.getLogger(__name__)

NAME_PREFIX = "snakemake-runpod"
MAX_POLL_INTERVAL = 300.0


def pod_name(run_id: str, job_name: str, job_id: int) -> str:
    """`snakemake-runpod-<run>-<rule>-<job>`: how `cleanup` recognises our pods, and a run's pods."""
    rule = re.sub(r"[^A-Za-z0-9_-]", "-", job_name)[:40]
    return f"{NAME_PREFIX}-{run_id}-{rule}-{job_id}"


def run_of(name: str) -> str | None:
    """The run id in a pod name made by `pod_name`, or None for a pod that is not ours."""
    m = re.match(rf"^{NAME_PREFIX}-([0-9a-f]+)-", name or "")
    return m[1] if m else None


@dataclass
class PodJob:
    name: str
    pod_id: str
    started: float
    deadline: float
    cost_per_hr: float = 0.0
    errors_since: float | None = None  # when the API started failing for this pod, while it does
    terminated: bool = False
    ended: float | None = None


@dataclass
class Outcome:
    done: bool
    ok: bool = False
    message: str = ""


WAIT = Outcome(done=False)


@dataclass
class PodManager:
    client: RunPodClient
    run_id: str
    image: str
    cloud_type: str = "SECURE"
    container_disk_gb: int = 60
    api_grace_seconds: float = 600.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    report: Callable[[str], None] = log.info
    pods: dict[str, PodJob] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------ start

    def launch(
        self,
        name: str,
        script: str,
        gpu_type: str,
        gpu_count: int,
        max_runtime_s: float,
        env: dict[str, str] | None = None,
    ) -> PodJob:
        """Deploy a pod running `script`. A deployment whose answer got lost may still have made a pod:
        look for it by name and terminate it before giving up."""
        spec = PodSpec(
            name=name,
            image=self.image,
            gpu_type=gpu_type,
            gpu_count=gpu_count,
            cloud_type=self.cloud_type,
            container_disk_gb=self.container_disk_gb,
            docker_args=payload.DOCKER_ARGS,
            env={**(env or {}), payload.JOB_VAR: payload.encode(script)},
        )
        try:
            pod = self.client.deploy(spec)
        except TransientError:
            self.terminate_named(name)
            raise
        now = self.clock()
        job = PodJob(
            name=name,
            pod_id=pod["id"],
            started=now,
            deadline=now + max_runtime_s,
            cost_per_hr=float(pod.get("costPerHr") or 0.0),
        )
        with self.lock:
            self.pods[job.pod_id] = job
        self.report(f"RunPod pod {job.pod_id} ({name}) started on {gpu_count} x {gpu_type}, ${job.cost_per_hr:.3f}/h")
        return job

    # ------------------------------------------------------------ follow

    def poll(self, job: PodJob, outputs_present: Callable[[], bool]) -> Outcome:
        """Where `job` stands now. A finished pod (stopped, dead or gone) is terminated and judged by its
        outputs; a pod past its deadline, or one the API has failed to report on for too long, is terminated
        and failed."""
        now = self.clock()
        if now > job.deadline:
            self.terminate(job)
            minutes = (job.deadline - job.started) / 60
            return Outcome(True, False, f"pod {job.pod_id} ran past its maximum runtime of {minutes:g} min")
        try:
            pod = self.client.pod(job.pod_id)
        except (TransientError, RunPodError) as e:
            job.errors_since = job.errors_since or now
            if now - job.errors_since > self.api_grace_seconds:
                self.terminate(job)
                return Outcome(
                    True,
                    False,
                    f"the RunPod API failed for {now - job.errors_since:.0f} s while following pod "
                    f"{job.pod_id} (last: {e}); the pod was terminated",
                )
            return WAIT
        job.errors_since = None
        if pod is not None and pod.get("costPerHr"):
            job.cost_per_hr = float(pod["costPerHr"])
        status = "TERMINATED" if pod is None else pod.get("desiredStatus")
        if status not in STOPPED:
            return WAIT
        present = outputs_present()
        self.terminate(job)
        if present:
            return Outcome(True, True, f"pod {job.pod_id} finished and its outputs are in storage")
        return Outcome(
            True,
            False,
            f"pod {job.pod_id} ended ({status}) without all of its outputs in storage: the job "
            "failed or the pod died; see the job's log in storage or the pod's logs on RunPod",
        )

    def backoff(self, base: float) -> float:
        """Seconds until the next status check: doubled per minute of API errors, at most MAX_POLL_INTERVAL."""
        with self.lock:
            since = [j.errors_since for j in self.pods.values() if j.errors_since is not None and not j.terminated]
        if not since:
            return base
        failing_for = self.clock() - min(since)
        return min(MAX_POLL_INTERVAL, base * 2 ** min(8, 1 + int(failing_for // 60)))

    # ------------------------------------------------------------ end

    def terminate(self, job: PodJob) -> bool:
        """Terminate the pod (idempotent), retrying transient errors briefly; records its cost once."""
        if job.terminated:
            return True
        for attempt in range(5):
            try:
                self.client.terminate(job.pod_id)
                break
            except TransientError as e:
                log.warning("terminating pod %s: %s (attempt %d)", job.pod_id, e, attempt + 1)
                self.sleep(min(2**attempt, 10))
            except RunPodError as e:
                if "not found" in str(e).lower():
                    break  # already gone
                log.warning("terminating pod %s: %s", job.pod_id, e)
                self.sleep(min(2**attempt, 10))
        else:
            self.report(
                f"RunPod pod {job.pod_id} ({job.name}) could NOT be terminated: it may still bill. Run "
                f"`python -m snakemake_executor_plugin_runpod.cleanup --run {self.run_id}` or remove it on runpod.io."
            )
            return False
        job.terminated, job.ended = True, self.clock()
        self.report(f"RunPod pod {job.pod_id} ({job.name}) terminated: {self.cost_line(job)}")
        return True

    def terminate_named(self, name: str) -> None:
        try:
            strays = [p for p in self.client.pods() if p.get("name") == name]
        except RunPodError as e:
            self.report(f"could not list pods to find {name} after a failed deployment ({e}); run the cleanup")
            return
        for pod in strays:
            self.terminate(PodJob(name=name, pod_id=pod["id"], started=self.clock(), deadline=0.0))

    def terminate_all(self) -> None:
        with self.lock:
            live = [job for job in self.pods.values() if not job.terminated]
        for job in live:
            self.terminate(job)

    # ------------------------------------------------------------ cost

    @staticmethod
    def cost(job: PodJob, now: float) -> float:
        return job.cost_per_hr * ((job.ended or now) - job.started) / 3600

    def cost_line(self, job: PodJob) -> str:
        hours = ((job.ended or self.clock()) - job.started) / 3600
        return f"{hours * 60:.1f} min at ${job.cost_per_hr:.3f}/h = ${self.cost(job, self.clock()):.4f}"

    def total_line(self) -> str:
        now = self.clock()
        with self.lock:
            jobs = list(self.pods.values())
        total = sum(self.cost(job, now) for job in jobs)
        return f"RunPod: {len(jobs)} pod(s) in run {self.run_id}, about ${total:.4f} in all (price x runtime)"

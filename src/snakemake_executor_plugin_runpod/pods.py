"""Pod lifecycle, independent of Snakemake: pick where a job can run, deploy its pod, follow the pod and its log,
decide how the job ended, terminate the pod on every path, and keep count of what it cost.

A pod reports no exit status. The job script prints markers into the pod's log (payload.STARTED, FINISHED) that
the executor follows; a job succeeded exactly when it finished with status 0 and all its outputs are in storage.
Money is only spent on a pod that does something:

- no sign of the job within `start_deadline` of creation (an image that cannot be pulled, a host that cannot run
  it, a command that never starts): the pod is terminated and the job failed with the pod's last log lines;
- the job's container started twice (RunPod restarts a container whose command died: a crash loop): terminated;
- the job finished but the pod did not stop itself within `stop_grace`: terminated from here all the same;
- past `max_runtime`, or the API failing for longer than `api_grace`: terminated;
- and every pod this process created is terminated on success, failure, cancel and interpreter exit, because a
  stopped pod still bills its disk.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from snakemake_executor_plugin_runpod import payload
from snakemake_executor_plugin_runpod.api import (
    AVAILABILITY_RANK,
    STOPPED,
    CapacityError,
    PodSpec,
    RunPodClient,
    RunPodError,
    TransientError,
)

log = logging.getLogger(__name__)

NAME_PREFIX = "snakemake-runpod"
MAX_POLL_INTERVAL = 300.0
TAIL_LINES = 15
MAX_CANDIDATES = 8


def pod_name(run_id: str, job_name: str, job_id: int) -> str:
    """`snakemake-runpod-<run>-<rule>-<job>`: how `cleanup` recognises our pods, and a run's pods."""
    rule = re.sub(r"[^A-Za-z0-9_-]", "-", job_name)[:40]
    return f"{NAME_PREFIX}-{run_id}-{rule}-{job_id}"


def run_of(name: str) -> str | None:
    """The run id in a pod name made by `pod_name`, or None for a pod that is not ours."""
    m = re.match(rf"^{NAME_PREFIX}-([0-9a-f]+)-", name or "")
    return m[1] if m else None


def cuda_key(version: str) -> tuple[int, ...]:
    """'12.8' -> (12, 8): CUDA versions compare numerically (12.10 > 12.9)."""
    return tuple(int(p) for p in version.split("."))


def image_cuda(image: str) -> str | None:
    """The CUDA version an image tag names, for the published schemes we know: RunPod's `...-cu1281-torch...`
    (12.8.1) and axolotl's `...-cu128-...` / `...-cu130-...`; None when the tag names none."""
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    m = re.search(r"(?:^|-)cu(\d{2})(\d)(\d?)(?:-|$)", tag)
    return f"{int(m[1])}.{int(m[2])}" if m else None


@dataclass
class Candidate:
    """One place to try: a GPU type (and data center), its price, and the CUDA versions its hosts may have."""

    gpu_type: str
    price_per_gpu_hr: float
    data_center: str | None = None
    allowed_cuda: list[str] | None = None

    def label(self) -> str:
        return self.gpu_type + (f" in {self.data_center}" if self.data_center else "")


def candidates(
    catalog: list[dict],
    wanted: list[str],
    cloud: str,
    min_cuda: str | None,
    max_data_centers: int = 3,
) -> tuple[list[Candidate], list[str]]:
    """Where to try, in order: each wanted GPU type that the catalog shows in stock, in its data centers with
    stock (most first), with the host CUDA versions (from the catalog) that can run the image. Also returns why
    each skipped GPU type was skipped."""
    by_id = {g["id"]: g for g in catalog}
    found: list[Candidate] = []
    skipped: list[str] = []
    for gpu_id in dict.fromkeys(wanted):
        gpu = by_id.get(gpu_id)
        if gpu is None:
            skipped.append(f"{gpu_id}: not in RunPod's catalog")
            continue
        if not gpu.get(cloud.lower(), True):
            skipped.append(f"{gpu_id}: not offered in the {cloud} cloud")
            continue
        if gpu.get("availability") == "NONE":
            skipped.append(f"{gpu_id}: none available now")
            continue
        allowed = None
        versions = [v["version"] for v in gpu.get("cudaVersions") or [] if v.get("available", True)]
        if min_cuda and versions:
            allowed = sorted((v for v in versions if cuda_key(v) >= cuda_key(min_cuda)), key=cuda_key)
            if not allowed:
                skipped.append(f"{gpu_id}: no host with CUDA >= {min_cuda} (has {', '.join(versions)})")
                continue
        price = float((gpu.get("price") or {}).get(cloud.lower()) or 0.0)
        dcs = [d for d in gpu.get("dataCenters") or [] if d.get("availability") in AVAILABILITY_RANK]
        dcs.sort(key=lambda d: AVAILABILITY_RANK[d["availability"]])
        if dcs:
            found += [Candidate(gpu_id, price, d["id"], allowed) for d in dcs[:max_data_centers]]
        else:
            found.append(Candidate(gpu_id, price, None, allowed))
    return found[:MAX_CANDIDATES], skipped


class PodLog:
    """The pod's log, followed in a thread through `getPodLogs` (reconnecting where it left off), written to a
    file (the job's log here) and kept in memory for the markers and the last lines."""

    def __init__(self, client: RunPodClient, pod_id: str, path: Path | None, keep: int = 200):
        self.client, self.pod_id, self.path = client, pod_id, path
        self.tail: collections.deque[str] = collections.deque(maxlen=keep)
        self.starts = 0
        self.exit_status: int | None = None
        self.last_id = ""
        self.last_ts: str | None = None
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def start(self) -> PodLog:
        self.thread = threading.Thread(target=self._follow, name=f"runpod-log-{self.pod_id}", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def add(self, source: str, line: str) -> None:
        with self.lock:
            text = f"[{source}] {line}" if source and source != "container" else line
            self.tail.append(text)
            if source in ("container", ""):
                if line.startswith(payload.STARTED):
                    self.starts += 1
                    self.exit_status = None
                elif line.startswith(payload.FINISHED):
                    m = re.match(rf"{re.escape(payload.FINISHED)} (\d+)", line)
                    self.exit_status = int(m[1]) if m else -1
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(text + "\n")

    def last_lines(self, n: int = TAIL_LINES) -> list[str]:
        with self.lock:
            return list(self.tail)[-n:]

    def _follow(self) -> None:
        while not self.stopped.is_set():
            try:
                for event in self.client.logs(self.pod_id, tail=1000, since=self.last_ts):
                    if self.stopped.is_set():
                        return
                    if event.id and event.id <= self.last_id:
                        continue  # sent again after a reconnect
                    self.last_id, self.last_ts = event.id or self.last_id, event.ts or self.last_ts
                    self.add(event.source, event.line)
            except RunPodError as e:
                log.debug("log stream of pod %s: %s", self.pod_id, e)
            except Exception as e:  # a log we cannot follow must not end the run
                log.debug("log stream of pod %s: %s: %s", self.pod_id, type(e).__name__, e)
            self.stopped.wait(2.0)


@dataclass
class PodJob:
    name: str
    pod_id: str
    started: float
    deadline: float
    cost_per_hr: float = 0.0
    gpu_type: str = ""
    log: PodLog | None = None
    errors_since: float | None = None  # when the API started failing for this pod, while it does
    finished_seen: float | None = None  # when the job's "finished" marker was first seen
    last_status: str = "PROVISIONING"
    terminated: bool = False
    ended: float | None = None


@dataclass
class Outcome:
    done: bool
    ok: bool = False
    message: str = ""


WAIT = Outcome(done=False)


class LaunchError(RunPodError):
    """No candidate could be placed, or the cost cap refused them all."""


@dataclass
class PodManager:
    client: RunPodClient
    run_id: str
    image: str
    cloud_type: str = "SECURE"
    container_disk_gb: int = 60
    api_grace_seconds: float = 600.0
    start_deadline_seconds: float = 1200.0
    stop_grace_seconds: float = 120.0
    max_cost: float | None = None
    log_dir: Path | None = None
    follow_logs: bool = True
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    report: Callable[[str], None] = log.info
    pods: dict[str, PodJob] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------ start

    def estimate(self, candidate: Candidate, gpu_count: int, max_runtime_s: float) -> float:
        return candidate.price_per_gpu_hr * gpu_count * max_runtime_s / 3600

    def launch(
        self,
        name: str,
        script: str,
        places: list[Candidate],
        gpu_count: int,
        max_runtime_s: float,
        env: dict[str, str] | None = None,
        min_cuda: str | None = None,
    ) -> PodJob:
        """Create a pod running `script` at the first place that takes it: a capacity refusal moves on to the next
        place, a transient error retries the same one (after making sure its lost answer made no pod). The cost
        estimate (price x max runtime) is printed before each create; a place above `max_cost` is not tried."""
        if not places:
            raise LaunchError("no GPU type and data center to try (see the reasons above)")
        refusals = []
        for place in places:
            estimate = self.estimate(place, gpu_count, max_runtime_s)
            line = (
                f"{gpu_count} x {place.label()} at ${place.price_per_gpu_hr * gpu_count:.3f}/h for at most "
                f"{max_runtime_s / 60:g} min: at most ${estimate:.2f}"
            )
            if self.max_cost is not None and estimate > self.max_cost:
                refusals.append(f"{place.label()}: ${estimate:.2f} is over runpod-max-cost ${self.max_cost:.2f}")
                self.report(f"RunPod: not starting {name} on {line} (over runpod-max-cost ${self.max_cost:.2f})")
                continue
            spec = PodSpec(
                name=name,
                image=self.image,
                gpu_type=place.gpu_type,
                gpu_count=gpu_count,
                cloud_type=self.cloud_type,
                container_disk_gb=self.container_disk_gb,
                args=payload.DOCKER_ARGS,
                env={**(env or {}), payload.JOB_VAR: payload.encode(script)},
                allowed_cuda_versions=place.allowed_cuda,
                min_cuda_version=None if place.allowed_cuda else min_cuda,
                data_center_ids=[place.data_center] if place.data_center else None,
            )
            self.report(f"RunPod: starting {name} on {line}")
            try:
                pod = self._create(spec)
            except CapacityError as e:
                refusals.append(f"{place.label()}: {e}")
                self.report(f"RunPod: {place.label()} refused ({e}); trying the next place")
                continue
            return self._track(name, pod, place, gpu_count, max_runtime_s)
        raise LaunchError("no place took the pod: " + "; ".join(refusals))

    def _create(self, spec: PodSpec, attempts: int = 4) -> dict:
        for attempt in range(attempts):
            try:
                return self.client.create_pod(spec)
            except TransientError as e:
                # The answer may be lost with the pod made: never leave one behind before trying again.
                self.terminate_named(spec.name)
                if attempt == attempts - 1:
                    raise
                wait = e.retry_after if e.retry_after is not None else min(2**attempt, 30)
                log.warning("creating %s: %s; again in %.0f s", spec.name, e, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")

    def _track(self, name: str, pod: dict, place: Candidate, gpu_count: int, max_runtime_s: float) -> PodJob:
        now = self.clock()
        job = PodJob(
            name=name,
            pod_id=pod["id"],
            started=now,
            deadline=now + max_runtime_s,
            cost_per_hr=float(pod.get("cost") or place.price_per_gpu_hr * gpu_count),
            gpu_type=place.gpu_type,
            last_status=pod.get("status") or "PROVISIONING",
        )
        path = self.log_dir / f"{name}.log" if self.log_dir else None
        job.log = PodLog(self.client, job.pod_id, path)
        if self.follow_logs:
            job.log.start()
        with self.lock:
            self.pods[job.pod_id] = job
        where = pod.get("dataCenterId") or place.data_center or "a data center RunPod chose"
        self.report(
            f"RunPod pod {job.pod_id} ({name}) created on {gpu_count} x {place.gpu_type} in {where}, "
            f"${job.cost_per_hr:.3f}/h" + (f"; its log: {path}" if path else "")
        )
        return job

    # ------------------------------------------------------------ follow

    def tail_text(self, job: PodJob) -> str:
        lines = job.log.last_lines() if job.log else []
        if not lines:
            return " The pod logged nothing."
        return " Its last log lines:\n    " + "\n    ".join(lines)

    def fail(self, job: PodJob, reason: str) -> Outcome:
        self.terminate(job)
        return Outcome(True, False, f"pod {job.pod_id} {reason}; the pod was terminated.{self.tail_text(job)}")

    def poll(self, job: PodJob, outputs_present: Callable[[], bool]) -> Outcome:
        """Where `job` stands now, terminating its pod whenever the job is over or the pod is doing nothing."""
        now = self.clock()
        if now > job.deadline:
            return self.fail(job, f"ran past its maximum runtime of {(job.deadline - job.started) / 60:g} min")
        try:
            pod = self.client.pod(job.pod_id)
        except RunPodError as e:
            job.errors_since = job.errors_since or now
            if now - job.errors_since > self.api_grace_seconds:
                return self.fail(
                    job, f"could not be followed: the RunPod API failed for {now - job.errors_since:.0f} s (last: {e})"
                )
            return WAIT
        job.errors_since = None
        if pod is not None and pod.get("cost"):
            job.cost_per_hr = float(pod["cost"])
        status = "TERMINATED" if pod is None else pod.get("status", "")
        job.last_status = status
        starts = job.log.starts if job.log else 0
        exit_status = job.log.exit_status if job.log else None

        if status in STOPPED:
            return self.judge(job, status, exit_status, outputs_present)
        if exit_status is not None:
            job.finished_seen = job.finished_seen or now
            if now - job.finished_seen > self.stop_grace_seconds:
                self.report(
                    f"RunPod pod {job.pod_id} ({job.name}): the job finished {now - job.finished_seen:.0f} s ago but "
                    f"the pod did not stop itself ({status}); terminating it from here"
                )
                return self.judge(job, status, exit_status, outputs_present)
            return WAIT
        if starts > 1:
            return self.fail(
                job,
                f"restarted its container {starts - 1} time(s) before the job finished (a crash loop: the job's "
                "command died, e.g. out of memory)",
            )
        if starts == 0 and now - job.started > self.start_deadline_seconds:
            return self.fail(
                job,
                f"showed no sign of the job within {self.start_deadline_seconds / 60:g} min of its creation "
                f"(status {status}: an image that cannot be pulled, a host that cannot run it, or a container "
                "that does not start)",
            )
        return WAIT

    def judge(self, job: PodJob, status: str, exit_status: int | None, outputs_present: Callable[[], bool]) -> Outcome:
        present = outputs_present()
        self.terminate(job)
        if present and exit_status in (0, None):
            return Outcome(True, True, f"pod {job.pod_id} finished and its outputs are in storage")
        if exit_status not in (0, None):
            why = f"the job failed on the pod (exit status {exit_status})"
        elif status == "ERROR":
            why = "the pod went into ERROR"
        else:
            why = f"the pod ended ({status}) without all of the job's outputs in storage"
        return Outcome(
            True,
            False,
            f"pod {job.pod_id}: {why}; the pod was terminated. The job's log is in storage (logs/), the pod's "
            f"in {job.log.path if job.log and job.log.path else 'its RunPod console'}.{self.tail_text(job)}",
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

    def terminate(self, job: PodJob, attempts: int = 6) -> bool:
        """Terminate the pod (idempotent), retrying failures with backoff; records its cost once."""
        if job.terminated:
            return True
        for attempt in range(attempts):
            try:
                self.client.terminate(job.pod_id)
                break
            except RunPodError as e:
                log.warning("terminating pod %s: %s (attempt %d)", job.pod_id, e, attempt + 1)
                self.sleep(max(getattr(e, "retry_after", None) or 0, min(2**attempt, 10)))
        else:
            self.report(
                f"RunPod pod {job.pod_id} ({job.name}) could NOT be terminated: it may still bill. Run "
                f"`mindupload runpod-cleanup --run {self.run_id}` or remove it on runpod.io."
            )
            return False
        job.terminated, job.ended = True, self.clock()
        if job.log:
            job.log.stop()
        self.report(f"RunPod pod {job.pod_id} ({job.name}) terminated: {self.cost_line(job)}")
        return True

    def terminate_named(self, name: str) -> None:
        try:
            strays = [p for p in self.client.pods() if p.get("name") == name]
        except RunPodError as e:
            self.report(f"could not list pods to find {name} after a failed create ({e}); run the cleanup")
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
        line = f"RunPod: {len(jobs)} pod(s) in run {self.run_id}, about ${total:.4f} in all (price x runtime)"
        billed = []
        for job in jobs:
            try:
                amount = self.client.pod_billing(job.pod_id)
            except RunPodError:
                return line
            if amount is None:
                return line  # RunPod's records lag behind: no partial sum
            billed.append(amount)
        return line + f"; RunPod's billing so far: ${sum(billed):.4f}"

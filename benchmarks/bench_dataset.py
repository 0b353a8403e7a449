"""The whole `dataset` target on a synthetic WhatsApp export, and its length check old and new side by side:
`python benchmarks/bench_dataset.py [--messages N] [--base-model DIR]`.

1. The length check of `segment` (fitting every segment to `sequence_len` with the base model's tokenizer) on
   the export's turns, in one process, each way in turn (median of --runs): the way it was (every piece
   tokenized with `tokenizer(...)`) and the way it is (`mindupload.model.tokenizer.counter`: a proved upper
   bound first, only the segments it cannot clear tokenized). Both must give the same dataset.
2. The whole target, `snakemake --cores 2 dataset`, in a fresh copy of the workflow (parse, combine, redact,
   turns, segment, stats): wall seconds, and the peak memory of the largest process it ran.

The tokenizer is the demo's (SmolLM2-135M-Instruct, built by `snakemake embedded_model`) unless --base-model
names another model folder.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

import whatsapp_export  # noqa: E402

OUT = HERE / "out"
ME = whatsapp_export.PEOPLE[0]
COPIED = ("Snakefile", "workflow", "config", "profiles", "envs")


def export(messages: int) -> Path:
    path = OUT / f"whatsapp_android_{messages}.txt"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        print(f"writing {path.name} ...", flush=True)
        whatsapp_export.generate(path, messages, seed=1, style="android")
    return path


def counter_before(tok):
    """The length check's counter as it was: every text through `tokenizer(...)`, no bound."""

    def count(texts: list[str]) -> list[int]:
        out: list[int] = []
        for start in range(0, len(texts), 4096):
            out.extend(len(x) for x in tok(texts[start : start + 4096], add_special_tokens=False)["input_ids"])
        return out

    return count


def length_check(path: Path, base_model: str, runs: int) -> None:
    from mindupload.dataset.segment import Renderer, SegmentOptions, SegmentStats, cut, fit_to_length
    from mindupload.dataset.turns import TurnOptions, build_turns
    from mindupload.ingest.sources import SourceSpec
    from mindupload.ingest.sources.whatsapp import parse
    from mindupload.model import tokenizer
    from mindupload.render import Identity

    tok = tokenizer.load(base_model)
    turns, _ = build_turns(parse(SourceSpec("bench", path, me=(ME,))).table, TurnOptions())
    options = SegmentOptions()
    renderer = Renderer(turns, Identity(name=ME), tokenizer.markers(tok))
    segments = cut(turns, options, SegmentStats())
    ways = {"before: count every piece": counter_before(tok), "now: bound, count the rest": tokenizer.counter(tok)}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    results = {}
    for _ in range(runs):
        for name, count in ways.items():
            stats = SegmentStats()
            started, started_cpu = time.perf_counter(), time.process_time()
            fitted = fit_to_length(segments, renderer, count, options.sequence_len, stats)
            seconds[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
            results[name] = ([(seg.exchanges, pcs) for seg, pcs in fitted], stats.max_tokens, stats.segments_counted)
    (before, now) = results.values()
    same = before[:2] == now[:2]
    print(f"\nlength check of `segment`: {turns.num_rows:,} turns, {len(segments):,} segments, median of {runs} runs")
    print(f"{'way':30} {'wall s':>8} {'x before':>9} {'CPU s':>8} {'x before':>9} {'segments tokenized':>19}")
    first = next(iter(ways))
    base, base_cpu = statistics.median(seconds[first]), statistics.median(cpu[first])
    for name, (_, _, counted) in zip(ways, results.values(), strict=True):
        wall, used = statistics.median(seconds[name]), statistics.median(cpu[name])
        print(f"{name:30} {wall:8.2f} {wall / base:9.3f} {used:8.2f} {used / base_cpu:9.3f} {counted:19,}")
    print(f"same segments and longest segment ({now[1]} tokens) both ways: {'yes' if same else 'NO'}")


def whole_target(path: Path, base_model: str) -> None:
    import yaml

    work = Path(tempfile.mkdtemp(prefix="bench-dataset-"))
    try:
        for name in COPIED:
            src = ROOT / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
        cfg = {
            "me": [ME],
            "sources": {"chat": {"path": str(path), "format": "whatsapp"}},
            "base_model": str(Path(base_model).resolve()),
        }
        (work / "config/config.yaml").write_text(yaml.safe_dump(cfg))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "--cores", "2", "dataset"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if proc.returncode:
            sys.exit(f"snakemake failed:\n{proc.stderr[-3000:]}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak = after.ru_maxrss / 1024
        used = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        lines = (work / "results/dataset/train.jsonl").read_bytes().count(b"\n")
        print(
            f"\nwhole `dataset` target (snakemake --cores 2): {wall:.1f} s wall, {used:.1f} s CPU (all processes), "
            f"largest process {peak:.0f} MB"
        )
        print(f"  {lines:,} training examples")
        print(
            "  (load average during the run: "
            + ", ".join(f"{x:.1f}" for x in os.getloadavg())
            + f" on {os.cpu_count()} cores)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--base-model", default=str(ROOT / "results/models/SmolLM2-135M-Instruct"))
    parser.add_argument("--skip-target", action="store_true", help="only the length check, side by side")
    args = parser.parse_args()
    if not Path(args.base_model).is_dir():
        sys.exit(f"{args.base_model}: no model folder; run `snakemake embedded_model` or pass --base-model")
    path = export(args.messages)
    print(f"{args.messages:,} messages; load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if not args.skip_target:
        whole_target(path, args.base_model)
    length_check(path, args.base_model, args.runs)


if __name__ == "__main__":
    main()

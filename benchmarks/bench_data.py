"""Data-stage benchmarks on a synthetic WhatsApp export: `python benchmarks/bench_data.py [--messages N]`.

For each export style (Android, iOS) it writes the export into benchmarks/out/ once, then runs every
stage in STAGES in a fresh subprocess (median of --runs) and prints wall seconds, messages per second,
the ratio to the floor stage and the peak memory of the process.

Timing starts after the stage's imports and `prepare` hook, so interpreter start-up, imports and
Arrow's one-time compute initialisation (about 0.25 s in any process that uses pyarrow.compute) are
left out of every stage alike; the table reports them on a line of their own. Add a stage by appending
a `Stage` to STAGES.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import whatsapp_export  # noqa: E402

OUT = HERE / "out"
STYLES = ("android", "ios")


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[object], object]  # processes what `prepare` returned; its result goes to `check`
    prepare: Callable[[Path], object] = lambda path: path  # imports, set-up and inputs, not timed
    check: Callable[[Path, object], bool | None] = lambda path, result: None  # exactness, not timed


def _floor(path: Path) -> list[str]:
    """The least any parser does: read the file and split it on "\\n" in Python."""
    return path.read_text(encoding="utf-8").split("\n")


def _prepare_parse(path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.compute as pc

    pc.sum(pa.array([0]))  # Arrow registers its compute kernels on first use
    return path


def _parse(path: Path):
    from mindupload.ingest.sources import SourceSpec
    from mindupload.ingest.sources.whatsapp import parse

    return parse(SourceSpec(name="bench", path=path, me=(whatsapp_export.PEOPLE[0],)))


def _check_parse(path: Path, result) -> bool:
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    table = result.table
    rows = zip(*(table.column(c).to_pylist() for c in ("sender", "kind", "text")), strict=True)
    return table.num_rows == expected["messages"] and whatsapp_export.message_digest(rows) == expected["digest"]


def _prepare_segment(path: Path):
    return _parse(_prepare_parse(path)).table


def _segment(messages):
    """Turns (merge, split by time) and segments, rendered to JSONL lines; no tokenizer length check."""
    from mindupload.dataset.segment import SegmentOptions, build_segments
    from mindupload.dataset.turns import TurnOptions, build_turns
    from mindupload.render import Identity, Markers

    turns, _ = build_turns(messages, TurnOptions())
    lines, _ = build_segments(
        turns, Identity(name=whatsapp_export.PEOPLE[0]), Markers("<s>", "</s>"), SegmentOptions(), count_tokens=None
    )
    return lines


def _data_half(path: Path):
    """Raw export to segment files on disk: parse, turns, segments, JSONL written."""
    from mindupload.dataset.segment import SegmentOptions, write_segments
    from mindupload.dataset.turns import TurnOptions, build_turns
    from mindupload.render import Identity, Markers

    turns, _ = build_turns(_parse(path).table, TurnOptions())
    paths = {split: OUT / f"{split}.jsonl" for split in ("train", "validation")}
    return write_segments(
        turns, Identity(name=whatsapp_export.PEOPLE[0]), Markers("<s>", "</s>"), SegmentOptions(), None, paths
    )


STAGES = [
    Stage("floor: read + split", _floor),
    Stage("whatsapp.parse", _parse, prepare=_prepare_parse, check=_check_parse),
    Stage("turns + segment", _segment, prepare=_prepare_segment),
    Stage("data half, end to end", _data_half, prepare=_prepare_parse),
]


# ------------------------------------------------------------------------------------------- child


def _child(stage_name: str, path: Path) -> None:
    """Run one stage once in this (fresh) process and print its measurements as JSON."""
    stage = next(s for s in STAGES if s.name == stage_name)
    started = time.perf_counter()
    inputs = stage.prepare(path)
    setup = time.perf_counter() - started
    base_mb = _peak_mb()
    started = time.perf_counter()
    result = stage.run(inputs)
    seconds = time.perf_counter() - started
    peak_mb = _peak_mb()
    exact = stage.check(path, result)
    print(json.dumps({"seconds": seconds, "setup": setup, "base_mb": base_mb, "peak_mb": peak_mb, "exact": exact}))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ------------------------------------------------------------------------------------------ parent


@dataclass
class Measured:
    style: str
    stage: str
    seconds: float
    setup: float
    base_mb: float  # the process after imports and set-up
    peak_mb: float  # the process at its peak, stage included
    exact: bool | None


def _export(style: str, messages: int) -> Path:
    path = OUT / f"whatsapp_{style}_{messages}.txt"
    sidecar = path.with_suffix(".expected.json")
    if not (path.exists() and sidecar.exists()):
        OUT.mkdir(parents=True, exist_ok=True)
        print(f"writing {path.name} ...", flush=True)
        expected = whatsapp_export.generate(path, messages, seed=1, style=style)
        sidecar.write_text(json.dumps(asdict(expected)))
    return path


def _run_child(stage: Stage, path: Path) -> dict:
    child = subprocess.run([sys.executable, __file__, "--child", stage.name, str(path)], capture_output=True, text=True)
    if child.returncode:
        sys.exit(f"stage {stage.name!r} failed:\n{child.stderr}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def _measure(style: str, path: Path, runs: int) -> list[Measured]:
    """Every stage `runs` times, taking turns, so that a busy moment of the machine hits all stages alike."""
    results: dict[str, list[dict]] = {stage.name: [] for stage in STAGES}
    for _ in range(runs):
        for stage in STAGES:
            results[stage.name].append(_run_child(stage, path))
    measured = []
    for name, runs_of_stage in results.items():
        checks = {r["exact"] for r in runs_of_stage}
        measured.append(
            Measured(
                style=style,
                stage=name,
                seconds=statistics.median(r["seconds"] for r in runs_of_stage),
                setup=statistics.median(r["setup"] for r in runs_of_stage),
                base_mb=statistics.median(r["base_mb"] for r in runs_of_stage),
                peak_mb=max(r["peak_mb"] for r in runs_of_stage),
                exact=None if checks == {None} else checks == {True},
            )
        )
    return measured


def _report(rows: list[Measured], messages: int) -> None:
    print(f"\n{messages:,} messages, median of runs, each in a fresh process\n")
    head = (
        f"{'style':8} {'stage':22} {'seconds':>8} {'msgs/s':>12} {'x floor':>8} {'peak MB':>8} {'base MB':>8} "
        f"{'exact':>6}"
    )
    print(head)
    print("-" * len(head))
    floors = {r.style: r.seconds for r in rows if r.stage == STAGES[0].name}
    for r in rows:
        exact = "" if r.exact is None else ("yes" if r.exact else "NO")
        ratio = r.seconds / floors[r.style]
        print(
            f"{r.style:8} {r.stage:22} {r.seconds:8.3f} {messages / r.seconds:12,.0f} {ratio:8.2f} "
            f"{r.peak_mb:8.0f} {r.base_mb:8.0f} {exact:>6}"
        )
    setups = ", ".join(f"{r.stage} {r.setup:.2f} s" for r in rows if r.style == rows[0].style)
    print("\npeak MB: the whole process; base MB: after imports and set-up, before the stage runs")
    print(f"untimed set-up per process (imports, Arrow compute initialisation): {setups}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]))
        return
    rows = []
    for style in STYLES:
        rows += _measure(style, _export(style, args.messages), args.runs)
    _report(rows, args.messages)


if __name__ == "__main__":
    main()

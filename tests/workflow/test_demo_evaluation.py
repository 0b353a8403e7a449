"""The main job's evaluation on the demo: a really trained clone (the shared `demo_run`), every metric there."""

from __future__ import annotations

import csv
import json
import math

import pytest

pytestmark = pytest.mark.workflow


def not_finite(tree, path="") -> list[str]:
    if isinstance(tree, dict):
        return [bad for key, value in tree.items() for bad in not_finite(value, f"{path}.{key}")]
    if isinstance(tree, list):
        return [bad for i, value in enumerate(tree) for bad in not_finite(value, f"{path}[{i}]")]
    if tree is None or (isinstance(tree, float) and not math.isfinite(tree)):
        return [path]
    return []


def intervals(tree, path=""):
    if isinstance(tree, dict):
        if {"value", "low", "high"} <= tree.keys():
            yield path, tree
        for key, value in tree.items():
            yield from intervals(value, f"{path}.{key}")


@pytest.fixture(scope="module")
def metrics(demo_run):
    return json.loads((demo_run / "results/eval/metrics.json").read_text())


def test_every_metric_is_finite_and_every_interval_computed(metrics):
    missing = [path for path in not_finite(metrics) if path != ".training.resumed_from"]  # None: not resumed
    assert not missing, missing
    found = dict(intervals(metrics))
    assert len(found) >= 40
    for path, stat in found.items():
        assert stat["low"] <= stat["value"] <= stat["high"], path
    for name in ("base", "prompted", "tuned"):
        for part in ("content", "tag", "end"):
            assert metrics["loss"][name][part]["n"] > 0
    assert metrics["counts"]["generation_contexts"] >= 8 and metrics["counts"]["ranking_contexts"] >= 8


def test_the_tuned_clone_beats_the_base_model_on_content_and_ranks_above_chance(metrics):
    assert metrics["loss"]["tuned"]["content"]["value"] <= metrics["loss"]["base"]["content"]["value"]
    assert metrics["ranking"]["tuned"]["accuracy_at_1"]["value"] >= metrics["ranking"]["tuned"]["chance_accuracy"]


def test_the_report_has_plots_and_no_message_text(demo_run, metrics):
    page = (demo_run / "results/eval/report.html").read_text()
    assert page.count("<svg") >= 5 and "<script" not in page
    inputs = json.loads((demo_run / "results/eval/inputs.json").read_text())
    said = [c["actual"] for c in inputs["contexts"]] + inputs["own_train"] + inputs["other_train"]
    leaked = [text for text in said if len(text) >= 12 and text in page]
    assert not leaked, f"{len(leaked)} messages appear in the report"


def test_training_records_its_start_and_mean_losses(demo_run):
    summary = json.loads((demo_run / "results/adapter/training.json").read_text())
    assert summary["eval_loss_at_start"] is not None and summary["train_loss"] is not None


def test_the_evaluation_benchmark_is_recorded(demo_run):
    with open(demo_run / "results/benchmarks/evaluate.tsv") as f:
        row = next(csv.DictReader(f, delimiter="\t"))
    assert float(row["s"]) > 0

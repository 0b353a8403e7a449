"""`mindupload forget` deletes derived data and keeps the public base model and the exports."""

from __future__ import annotations

from mindupload.privacy.forget import forget


def test_forget_removes_derived_data_and_keeps_models_and_exports(tmp_path):
    for path in (
        "results/messages.parquet",
        "results/dataset/train.jsonl",
        "results/train/prepared/x.arrow",
        "results/adapter/adapter_model.safetensors",
        "results/models/SmolLM2-135M-Instruct/config.json",
        "logs/parse_source/a.log",
        ".snakemake/metadata/abc",
        ".snakemake/log/run.log",
        ".snakemake/storage/s3/bucket/results/dataset/train.jsonl",
        ".snakemake/conda/env.yaml",
        "data/export.txt",
        "report.html",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    removed = forget(tmp_path)
    assert removed == [
        ".snakemake/log",
        ".snakemake/metadata",
        ".snakemake/storage",
        "logs",
        "report.html",
        "results/adapter",
        "results/dataset",
        "results/messages.parquet",
        "results/train",
    ]
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == [".snakemake/conda/env.yaml", "data/export.txt", "results/models/SmolLM2-135M-Instruct/config.json"]
    assert forget(tmp_path) == []

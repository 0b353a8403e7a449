from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tinymodel import build_tokenizer


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    return build_tokenizer(tmp_path_factory.mktemp("tiny-tokenizer"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir):
    from mindupload.model import tokenizer

    return tokenizer.load(str(tiny_tokenizer_dir))


@pytest.fixture(scope="session")
def mistral_tokenizer(tmp_path_factory):
    """The seed's base model's tokenizer (Mistral-7B-v0.1, SentencePiece), loaded as the workflow loads one."""
    from tinymodel import build_mistral_tokenizer

    from mindupload.model import tokenizer

    return tokenizer.load(str(build_mistral_tokenizer(tmp_path_factory.mktemp("mistral-tokenizer"))))


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    from tinymodel import build_llama

    return build_llama(tmp_path_factory.mktemp("tiny-llama"), tiny_tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_adapter_dir(tmp_path_factory, tiny_llama_dir) -> Path:
    """A LoRA adapter for the tiny Llama, saved by PEFT as training saves one (random, non-zero weights)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama_dir))
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    out = tmp_path_factory.mktemp("tiny-adapter")
    get_peft_model(model, lora).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The README's main job with the default config (the demo: SmolLM2-135M, 12 CPU steps), run once per test
    session in a copy of the repository: dataset, check, training, sample replies, evaluation. Tests that need a
    really trained clone share this one instead of training again."""
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[1]
    workdir = tmp_path_factory.mktemp("demo")
    for name in ("Snakefile", "workflow", "config", "profiles", "envs", "examples"):
        (shutil.copytree if (root / name).is_dir() else shutil.copy)(root / name, workdir / name)
    bindir = str(Path(sys.executable).parent)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2"],
        cwd=workdir,
        env={
            "PATH": f"{bindir}:/usr/bin:/bin",
            "HOME": str(workdir),
            "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(root / "src"),  # this checkout's package, whatever the venv installed
        },
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        pytest.fail(f"the demo's main job failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return workdir

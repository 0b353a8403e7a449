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

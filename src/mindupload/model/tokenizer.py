"""The base model's tokenizer: BOS/EOS text for the renderer, and token counts as axolotl will see them."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from mindupload.errors import UserError
from mindupload.render import Markers

log = logging.getLogger(__name__)

BATCH = 4096  # texts per tokenizer call: the Rust tokenizer parallelizes a batch; memory stays bounded


def load(base_model: str):
    """AutoTokenizer for a local folder or a hub id, with errors a user can act on."""
    from transformers import AutoTokenizer

    local = looks_local(base_model)
    path = Path(base_model).expanduser()
    if local and not path.is_dir():
        raise UserError(
            f"base_model {base_model!r}: no such folder. Point `base_model` at a model folder or a hub id "
            "(the default is built by `snakemake embedded_model`)."
        )
    try:
        return AutoTokenizer.from_pretrained(str(path.resolve()) if local else base_model)
    except (OSError, ValueError) as e:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise UserError(
            f"base_model {base_model!r}: cannot load its tokenizer"
            + (" (HF_HUB_OFFLINE=1 is set, so hub ids cannot be fetched)" if offline else "")
            + f": {str(e).splitlines()[0]} Check the name, your network and Hugging Face login, or use a local folder."
        ) from None


def looks_local(name: str) -> bool:
    """A folder rather than a hub id (`org/name`): it exists, or it is written like a path."""
    path = Path(name).expanduser()
    return path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1 or path.parts[0] == "results"


def markers(tokenizer) -> Markers:
    eos = tokenizer.eos_token
    if not eos:
        raise UserError(
            f"base_model tokenizer {tokenizer.name_or_path!r} has no EOS token: the model could not learn to stop."
        )
    bos = tokenizer.bos_token or ""
    if not bos:
        log.warning("tokenizer %s has no BOS token; examples start without one", tokenizer.name_or_path)
    return Markers(bos=bos, eos=eos)


def encode_pieces(tokenizer, texts) -> list[int]:
    """Token ids of texts tokenized one by one and concatenated, as axolotl's input_output tokenizes an
    example's segments. Not the ids of the joined text: a SentencePiece tokenizer (Llama, Mistral) starts each
    encoding with a word-start marker, so the two differ at every piece boundary."""
    if not texts:
        return []
    return [i for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"] for i in ids]


def counter(tokenizer):
    """Token count per text, tokenized as axolotl's input_output does (no special tokens added)."""

    def count(texts: list[str]) -> list[int]:
        out: list[int] = []
        for start in range(0, len(texts), BATCH):
            ids = tokenizer(texts[start : start + BATCH], add_special_tokens=False)["input_ids"]
            out.extend(len(x) for x in ids)
        return out

    return count


def save_with_chat_template(source: str | Path, identity, folder: str | Path) -> str | None:
    """Save the tokenizer of `source` (a model folder or hub id) into `folder` with the chat template of
    `identity`'s training layout (`mindupload.chat_template`), so other runtimes prompt the model as it was
    trained. Returns the joiner used, or None (with a warning) when no template can give this tokenizer's
    training ids."""
    from mindupload import chat_template

    tok = load(str(source))
    try:
        tok.chat_template = chat_template.for_tokenizer(identity, tok)
    except chat_template.TemplateError as e:
        log.warning("no chat template written: %s", e)
        return None
    tok.save_pretrained(str(folder))
    return chat_template.piece_joiner(tok)

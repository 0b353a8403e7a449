"""The base model's tokenizer: BOS/EOS text for the renderer, and token counts as axolotl will see them."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from mindupload.errors import UserError
from mindupload.progress import Progress
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


# tokenizer_config classes that use tokenizer.json as it is (transformers 5 calls the generic one
# TokenizersBackend): for them the `tokenizers` library alone gives the same tokens as transformers.
_AS_IS_CLASSES = frozenset({"TokenizersBackend", "PreTrainedTokenizerFast"})


class FileTokenizer:
    """A model folder's tokenizer.json through the `tokenizers` library alone, for counting: importing
    transformers costs the segment stage 13 s of CPU and 600 MB on 2 cores, more than all its work.

    It has what the segmenter uses of a transformers tokenizer: `backend_tokenizer`, `bos_token`,
    `eos_token`, `name_or_path` and `__call__(texts, add_special_tokens=False)`.
    """

    def __init__(self, folder: Path, backend, bos: str | None, eos: str | None) -> None:
        self.backend_tokenizer = backend
        self.bos_token, self.eos_token = bos, eos
        self.name_or_path = str(folder)
        self.spec: dict | None = None  # tokenizer.json as parsed, when the loader has it

    def __call__(self, texts, add_special_tokens: bool = False) -> dict:
        batch = [texts] if isinstance(texts, str) else list(texts)
        ids = [e.ids for e in self.backend_tokenizer.encode_batch(batch, add_special_tokens=add_special_tokens)]
        return {"input_ids": ids[0] if isinstance(texts, str) else ids}


def load_for_counting(base_model: str):
    """The tokenizer as `load` gives it, from tokenizer.json without transformers where that is exactly the
    same (a local folder whose tokenizer_config names a class that uses the file as it is, and nothing that
    would change it); else `load`."""
    import json

    folder = Path(base_model).expanduser()
    if not (looks_local(base_model) and (folder / "tokenizer.json").is_file()):
        return load(base_model)
    try:
        settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return load(base_model)
    if not _used_as_is(settings, spec):
        return load(base_model)
    from tokenizers import Tokenizer

    try:
        backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception:  # whatever it is, transformers will say it better
        return load(base_model)
    tok = FileTokenizer(folder, backend, _token(settings.get("bos_token")), _token(settings.get("eos_token")))
    tok.spec = spec  # what length_bound reads (serializing the backend again costs a second on big vocabularies)
    return tok


def _used_as_is(settings: dict, spec: dict) -> bool:
    if settings.get("tokenizer_class") not in _AS_IS_CLASSES or settings.get("add_prefix_space"):
        return False
    added = {t.get("content") for t in spec.get("added_tokens", ())}
    declared = [_token(t) for t in settings.get("added_tokens_decoder", {}).values()]
    specials = [_token(settings.get(k)) for k in ("bos_token", "eos_token", "unk_token", "pad_token")]
    return all(t in added for t in [*declared, *specials] if t)


def _token(value) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


def looks_local(name: str) -> bool:
    """A folder rather than a hub id (`org/name`): it exists, or it is written like a path."""
    path = Path(name).expanduser()
    return path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1 or path.parts[0] == "results"


def identity(base_model: str) -> dict:
    """The base model by the name a card may show (a hub id, or a local folder's name, never its path) and, for
    a local folder, a digest of its tokenizer and config files (`mindupload.fingerprint.folder_digest`)."""
    from mindupload.fingerprint import folder_digest

    if not looks_local(base_model):
        return {"name": base_model, "on_hub": True}
    folder = Path(base_model).expanduser()
    return {"name": folder.name, "on_hub": False, "files": folder_digest(folder) if folder.is_dir() else None}


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
    """Token count per text, tokenized as axolotl's input_output does (no special tokens added).

    The counter carries `bound`: a cheap upper bound on the counts (see `length_bound`), or None where the
    tokenizer's pipeline gives none, so that callers count exactly only the texts whose bound is too large.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    fast = getattr(backend, "encode_batch_fast", None)  # no offsets: about twice as fast as __call__

    def count(texts: list[str]) -> list[int]:
        out: list[int] = []
        with Progress("counting tokens", len(texts), "texts") as progress:
            for start in range(0, len(texts), BATCH):
                batch = texts[start : start + BATCH]
                if fast is not None:
                    out.extend(len(encoding) for encoding in fast(batch, add_special_tokens=False))
                else:
                    out.extend(len(x) for x in tokenizer(batch, add_special_tokens=False)["input_ids"])
                progress.update(len(batch))
        return out

    count.bound = length_bound(tokenizer)
    return count


def length_bound(tokenizer):
    """A function texts -> upper bounds of their token counts (a NumPy array), or None.

    Every token of a BPE, Unigram, WordPiece or WordLevel model covers at least one character of the
    normalized, pre-tokenized text, or is one of the byte-fallback tokens of a character, of which there are
    as many as the character has UTF-8 bytes: a text has at most as many tokens as it has bytes once
    normalized and pre-tokenized. The bound is those bytes, worked out from the original text: plus what
    each `Replace` (" " -> "▁") adds per occurrence, plus each word-start marker (`Prepend`, Metaspace, a
    ByteLevel prefix space) once per run of text between added tokens ("<s>" typed in a message splits a
    text in two). Normalizers that can lengthen text otherwise (NFKC, NFD, lowercasing), regex replacements
    and unknown parts give None: then every text is counted.
    """
    import json

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    spec = getattr(tokenizer, "spec", None) or json.loads(backend.to_str())
    model = spec.get("model") or {}
    if model.get("type") not in ("BPE", "Unigram", "WordPiece", "WordLevel") or model.get("dropout"):
        return None
    per_chunk = 0  # bytes added once per run of text between added tokens
    per_match: list[tuple[str, int]] = []  # (substring, bytes added per occurrence)
    for part in _parts(spec.get("normalizer"), "normalizers"):
        kind = part.get("type")
        if kind == "Prepend":
            per_chunk += len(part.get("prepend", "").encode())
        elif kind == "Replace" and "String" in (part.get("pattern") or {}):
            old, new = part["pattern"]["String"], part.get("content", "")
            if not old:
                return None
            per_match.append((old, max(0, len(new.encode()) - len(old.encode()))))
        elif kind not in ("Strip",):
            return None
    for part in _parts(spec.get("pre_tokenizer"), "pretokenizers"):
        kind = part.get("type")
        if kind == "Metaspace":
            marker = len(part.get("replacement", "\u2581").encode())
            per_chunk += marker
            per_match.append((" ", marker - 1))
        elif kind == "ByteLevel":
            per_chunk += 1 if part.get("add_prefix_space") else 0
        elif kind not in ("Split", "Whitespace", "WhitespaceSplit", "Digits", "Punctuation"):
            return None  # these only cut text; anything else may change it
    starts = sorted({t["content"][0] for t in spec.get("added_tokens", ()) if t.get("content")})

    def bound(texts: list[str]) -> np.ndarray:
        array = pa.array(texts, pa.large_string())
        out = pc.binary_length(array).to_numpy(zero_copy_only=False).astype(np.int64)
        for old, extra in per_match:
            if extra:
                out += extra * pc.count_substring(array, old).to_numpy(zero_copy_only=False)
        if per_chunk:
            chunks = np.ones(len(texts), np.int64)
            for ch in starts:
                chunks += pc.count_substring(array, ch).to_numpy(zero_copy_only=False)
            out += per_chunk * chunks
        return out

    return bound


def _parts(node, key: str) -> list[dict]:
    if not node:
        return []
    if node.get("type") == "Sequence":
        return [p for sub in node.get(key, ()) for p in _parts(sub, key)]
    return [node]


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

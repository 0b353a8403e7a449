"""A tiny tokenizer (and later model) built locally in seconds: tests never reach for a model hub."""

from __future__ import annotations

from pathlib import Path

SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}

CORPUS = [
    "hi how are you",
    "good thanks, and you?",
    "CONTEXT: Elijah is talking to a friend.",
    "friend: want to go climbing on saturday",
    "Elijah: ok ok, carrément. bref, see you at 9",
    "the derailleur is broken again haha",
    "émoji 🙃 🚲 and accents: café, naïve, Zürich",
] * 20


def build_tokenizer(out: Path, vocab_size: int = 400) -> Path:
    """A byte-level BPE tokenizer with <s>/</s> as single special tokens, saved as a transformers folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIALS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return out


def build_sentencepiece_style_tokenizer(out: Path, vocab_size: int = 300) -> Path:
    """A tokenizer that, like Llama's and Mistral's SentencePiece ones, puts a word-start marker before every
    text it encodes: tokenizing pieces one by one then differs from tokenizing their joined text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    alphabet = sorted({ch for text in CORPUS for ch in text} | {"▁", "\n"})
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIALS.values()), initial_alphabet=alphabet
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return out


def build_llama(out: Path, tokenizer_dir: Path) -> Path:
    """A tiny random LlamaForCausalLM (hidden 32, 2 layers) over the tiny tokenizer, saved with the tokenizer
    as one model folder: enough for axolotl to preprocess, train a LoRA adapter and generate, in seconds."""
    import shutil

    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(config).save_pretrained(out)
    for item in tokenizer_dir.iterdir():
        shutil.copy2(item, out / item.name)
    return out


FRIEND_LINES = ["hi how are you", "want to go climbing on saturday", "the derailleur is broken again haha"]
OWN_LINES = ["good thanks, and you?", "ok ok, carrément. bref, see you at 9", "émoji 🙃 🚲 and accents: café"]


def write_dataset(path: Path, count: int, *, bos: str = "<s>", eos: str = "</s>", exchanges: int = 2) -> Path:
    """`count` examples in the segments format, rendered by the package's one renderer."""
    import json

    from mindupload.render import Identity, Markers, Turn, pieces

    identity = Identity(name="Elijah")
    lines = []
    for n in range(count):
        turns = []
        for k in range(exchanges):
            turns.append(Turn("friend", False, FRIEND_LINES[(n + k) % 3]))
            turns.append(Turn("Elijah", True, OWN_LINES[(n + 2 * k) % 3]))
        example = [p.as_json() for p in pieces(turns, identity, Markers(bos, eos))]
        lines.append(json.dumps({"segments": example}, ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def with_split_special_tokens(model_dir: Path, out: Path) -> Path:
    """A copy of a model folder whose tokenizer splits its special tokens' text into characters, as SmolLM2's
    tokenizer does with `<s>`."""
    import json
    import shutil

    shutil.copytree(model_dir, out)
    config = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["split_special_tokens"] = True
    (out / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return out


def build_mistral_tokenizer(out: Path) -> Path:
    """Mistral-7B-v0.1's SentencePiece tokenizer (the seed's base model's), from the copy `mistral-common` ships,
    as a transformers folder: 32,000 pieces, `<s>`/`</s>`, byte fallback, the legacy `▁` prefix on every text.

    Built from the `sentencepiece` model's pieces and scores with `tokenizers`, as transformers' LlamaConverter
    would: its own readers need a newer protobuf runtime than this environment has (/work/shared/TOKENIZERS.md).
    """
    import mistral_common
    import sentencepiece
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.tokenization_utils_base import generate_merges

    model = Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"
    sp = sentencepiece.SentencePieceProcessor(model_file=str(model))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    scores = {sp.id_to_piece(i): sp.get_score(i) for i in range(sp.get_piece_size())}
    bpe = models.BPE(
        vocab=vocab, merges=generate_merges(vocab, scores), unk_token="<unk>", fuse_unk=True, byte_fallback=True
    )
    tok = Tokenizer(bpe)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ("<unk>", "<s>", "</s>")])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    if len(fast) != 32000 or sp.encode("friend: cool") != fast("friend: cool", add_special_tokens=False)["input_ids"]:
        raise AssertionError("the rebuilt Mistral tokenizer does not match its SentencePiece model")
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    return out

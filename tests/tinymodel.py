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

"""Mistral-7B-v0.1's SentencePiece tokenizer (shipped in `mistral-common`) as a transformers fast tokenizer.

transformers' own conversion needs a protobuf runtime newer than the one this venv holds (TOKENIZERS.md), so the
BPE vocabulary and merges are read with the `sentencepiece` package alone, the way transformers'
`SentencePieceExtractor` derives them: a merge for every split of a piece into two pieces, ranked by the
merged piece's id (SentencePiece BPE ranks pieces by score, which falls with the id).
"""

from __future__ import annotations

from pathlib import Path


def model_file() -> Path:
    import mistral_common

    return Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"


def build_mistral_tokenizer():
    import sentencepiece
    from transformers import LlamaTokenizerFast

    sp = sentencepiece.SentencePieceProcessor(model_file=str(model_file()))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    merges = []
    for piece, merged_id in vocab.items():
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                merges.append((merged_id, vocab[left], vocab[right], left, right))
    merges.sort()
    tok = LlamaTokenizerFast(
        vocab=vocab, merges=[(m[3], m[4]) for m in merges], bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    assert len(tok) == 32000, len(tok)
    return tok, sp

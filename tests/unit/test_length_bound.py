"""The token-count bound that lets the segmenter tokenize only the segments that may be too long: never below
the real count, and a dataset cut with it identical to one cut by counting every piece."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from messages import make_messages
from tinymodel import build_sentencepiece_style_tokenizer

from mindupload.dataset.segment import SegmentOptions, build_segments
from mindupload.dataset.turns import TurnOptions, build_turns
from mindupload.model import tokenizer
from mindupload.render import Identity

# Any text, with the characters that stress a bound: spaces (SentencePiece's "▁"), emoji (byte fallback),
# the added tokens' text typed in a message, newlines.
pieces = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
        st.sampled_from([" ", "  ", "<s>", "</s>", "<unk>", "\n", "🙃", "日本", "é", "\u2581", "<"]),
    ),
    max_size=12,
).map("".join)


@pytest.fixture(scope="module")
def sentencepiece_style_dir(tmp_path_factory):
    return build_sentencepiece_style_tokenizer(tmp_path_factory.mktemp("sp"))


@pytest.fixture(scope="module")
def sentencepiece_style(sentencepiece_style_dir):
    return tokenizer.load(str(sentencepiece_style_dir))


@pytest.mark.parametrize("which", ["byte_level", "sentencepiece_style"])
def test_the_tokenizer_file_alone_counts_as_transformers_does(which, tiny_tokenizer_dir, sentencepiece_style_dir):
    folder = str(tiny_tokenizer_dir if which == "byte_level" else sentencepiece_style_dir)
    full, light = tokenizer.load(folder), tokenizer.load_for_counting(folder)
    assert isinstance(light, tokenizer.FileTokenizer)
    assert tokenizer.markers(light) == tokenizer.markers(full)
    count_full, count_light = tokenizer.counter(full), tokenizer.counter(light)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(pieces, min_size=1, max_size=20))
    def check(texts):
        assert count_light(texts) == count_full(texts)
        assert light(texts)["input_ids"] == full(texts, add_special_tokens=False)["input_ids"]

    check()


def test_a_tokenizer_that_transformers_would_change_is_loaded_by_transformers(tmp_path, tiny_tokenizer_dir):
    import json
    import shutil

    folder = shutil.copytree(tiny_tokenizer_dir, tmp_path / "tok")
    settings_file = folder / "tokenizer_config.json"
    settings_file.write_text(json.dumps({**json.loads(settings_file.read_text()), "add_prefix_space": True}))
    assert not isinstance(tokenizer.load_for_counting(str(folder)), tokenizer.FileTokenizer)


@pytest.mark.parametrize("which", ["byte_level", "sentencepiece_style"])
def test_the_bound_is_never_below_the_real_count(which, tiny_tokenizer, sentencepiece_style):
    tok = tiny_tokenizer if which == "byte_level" else sentencepiece_style
    count = tokenizer.counter(tok)
    assert count.bound is not None

    @settings(max_examples=300, deadline=None)
    @given(st.lists(pieces, min_size=1, max_size=20))
    def check(texts):
        exact = count(texts)
        assert exact == [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
        assert all(n <= b for n, b in zip(exact, count.bound(texts), strict=True))

    check()


def test_a_normalizer_that_can_lengthen_text_gets_no_bound(tiny_tokenizer):
    from tokenizers import normalizers

    class Wrapped:  # the tokenizer with NFKC in front: "ﷺ" is 3 bytes and becomes 33
        backend_tokenizer = tiny_tokenizer.backend_tokenizer.__class__.from_str(
            tiny_tokenizer.backend_tokenizer.to_str()
        )

    Wrapped.backend_tokenizer.normalizer = normalizers.NFKC()
    assert tokenizer.length_bound(Wrapped) is None


@pytest.mark.parametrize("sequence_len", [24, 40, 64, 4096])
def test_segments_cut_with_the_bound_equal_segments_cut_by_counting_everything(tiny_tokenizer, sequence_len):
    rng = random.Random(sequence_len)
    words = ["hi", "ok", "climbing", "saturday", "café", "🙃", "derailleur", "see you at 9", "<s>"]
    rows = []
    for conv in range(3):
        for _ in range(120):
            who = rng.choice(["Elijah", "Anna", "Bob"])
            text = " ".join(rng.choices(words, k=rng.choice([1, 2, 3, 8, 30])))
            rows.append((f"c{conv}", who, who == "Elijah", text))
    turns, _ = build_turns(make_messages(rows), TurnOptions(validation_fraction=0.2))
    options = SegmentOptions(seed=7, sequence_len=sequence_len)
    count = tokenizer.counter(tiny_tokenizer)

    def count_everything(texts):
        return count(texts)  # the same counts, without a bound

    markers = tokenizer.markers(tiny_tokenizer)
    bounded, bounded_report = build_segments(turns, Identity(name="Elijah"), markers, options, count)
    exact, exact_report = build_segments(turns, Identity(name="Elijah"), markers, options, count_everything)
    assert bounded == exact
    counted = bounded_report.pop("segments_counted")
    assert exact_report.pop("segments_counted") >= counted
    assert bounded_report == exact_report  # the longest segment included
    if sequence_len == 4096:
        assert counted <= 256  # only the longest, for the report

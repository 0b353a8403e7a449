"""The evaluation suite's statistics (pure), token kinds with real tokenizers, and the whole suite on the tiny model."""

from __future__ import annotations

import json
import math

import pytest

from mindupload.evaluation import authorship, metrics, suite
from mindupload.evaluation.metrics import CONTENT, END, TAG, Generated
from mindupload.render import Identity

ME = Identity(name="Elijah")


def finite_numbers(tree, path="") -> list[str]:
    """Paths of values that are not finite numbers (None counts as missing)."""
    bad = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            bad += finite_numbers(value, f"{path}.{key}")
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            bad += finite_numbers(value, f"{path}[{i}]")
    elif tree is None or (isinstance(tree, float) and not math.isfinite(tree)):
        bad.append(path)
    return bad


# ---------------------------------------------------------------- statistics


def test_a_bootstrap_interval_is_a_ratio_of_sums_with_the_value_inside():
    stat = metrics.bootstrap_ratio([2.0, 4.0, 6.0, 1.0], [1, 2, 3, 1])
    assert stat["value"] == pytest.approx(13 / 7)
    assert stat["low"] <= stat["value"] <= stat["high"] and stat["n"] == 4
    assert metrics.bootstrap_ratio([], [])["value"] is None


def test_wilson_interval_of_a_share():
    stat = metrics.binomial_interval(5, 10)
    assert stat["value"] == 0.5 and 0.23 < stat["low"] < 0.24 and 0.76 < stat["high"] < 0.77


def test_ranking_counts_ties_against_the_real_reply_and_knows_chance():
    assert metrics.ranks([[-1.0, -2.0, -3.0], [-2.0, -1.0, -3.0], [-1.0, -1.0, -5.0]]) == [1, 2, 2]
    summary = metrics.ranking_summary([1, 2, 2], 3)
    assert summary["accuracy_at_1"]["value"] == pytest.approx(1 / 3)
    assert summary["mrr"]["value"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert summary["chance_accuracy"] == pytest.approx(1 / 3)


def test_distractors_are_nearest_in_length_and_from_other_contexts():
    lengths, groups = [10, 11, 30, 9, 12], [0, 0, 1, 2, 3]
    assert metrics.length_matched(lengths, 0, groups, 2) == [3, 4]  # index 1 shares the context


def test_reply_health_flags():
    replies = [
        Generated("", "", 1, False),
        Generated("ok see you", "ok see you", 48, True),
        Generated("sure friend: cool", "", 5, False),
        Generated("call me at <PHONE>", "", 5, False),
        Generated("haha\nhaha", "", 5, False),
    ]
    h = metrics.health(replies, ["friend", "Elijah"])
    assert [h[k]["value"] for k in ("empty", "hit_length_limit", "speaker_label", "placeholder", "repetitive")] == [
        0.2
    ] * 5


def test_style_distance_is_zero_for_the_same_replies_and_grows_with_difference():
    mine = ["haha ok", "sure thing 🙃", "omw", "lol no\nmaybe later"]
    assert metrics.style_distance(mine, mine)["distance"] == 0
    formal = ["Certainly. I will be there at nine o'clock.", "Thank you for your message. Regards."] * 2
    assert metrics.style_distance(formal, mine)["distance"] > 1


def test_memorization_finds_copies_and_long_overlaps():
    training = ["see you at the gym at nine tomorrow morning ok", "haha"]
    m = metrics.memorization(["haha", "see you at the gym at nine tomorrow morning then", "new words"], training)
    assert m["exact"]["value"] == pytest.approx(1 / 3)
    assert m["overlap_8gram"]["value"] == pytest.approx(1 / 3)


def test_authorship_puts_a_good_imitation_near_the_real_replies():
    own = [f"haha ok {w} lol" for w in ("sure", "omw", "maybe", "nah", "yep", "later", "cool", "fine")]
    other = [f"Dear friend, {w}. Kind regards." for w in ("Hello", "Thanks", "Indeed", "Certainly", "Of course")]
    real = ["haha yep lol", "ok nah lol", "haha sure", "lol ok"]
    base = ["Certainly. Regards.", "Thank you, dear friend.", "Of course, indeed.", "Hello. Kind regards."]
    tuned = ["haha ok lol", "lol sure", "ok haha", "yep lol"]
    result = authorship.verify(own, other, real, {"base": base, "tuned": tuned})
    assert result["position"]["tuned"] > 0.5
    assert result["auc_real_vs"]["base"] > 0.9
    assert not finite_numbers(result)


# ---------------------------------------------------------------- token kinds


@pytest.mark.parametrize("tokenizer_fixture", ["tiny_tokenizer", "mistral_tokenizer"])
def test_an_own_piece_splits_into_tag_content_and_turn_end(tokenizer_fixture, request):
    tok = request.getfixturevalue(tokenizer_fixture)
    ids, kinds = suite.token_kinds(tok, "\nElijah: good thanks\n", ME, "</s>")
    assert kinds[0] == TAG and kinds[-1] == END and CONTENT in kinds
    assert kinds == sorted(kinds, key=[TAG, CONTENT, END].index)  # tag, then content, then the end
    assert tok.decode([i for i, k in zip(ids, kinds, strict=True) if k == CONTENT]).strip() == "good thanks"
    _, kinds = suite.token_kinds(tok, "\nElijah: good</s>", ME, "</s>")
    assert kinds[-1] == END and kinds.count(END) == 1


# ---------------------------------------------------------------- the suite on the tiny model


def test_ranking_on_a_shared_context_cache_scores_as_whole_sequences_do(tiny_llama_dir, tiny_adapter_dir):
    import torch

    from mindupload.model.tokenizer import encode_pieces
    from mindupload.serving import generation

    engine = generation.load(str(tiny_llama_dir), tiny_adapter_dir, 256)
    scorer = suite.Scorer(engine, ME)
    context = encode_pieces(engine.tokenizer, ["<s>CONTEXT: Elijah is talking to a friend.\nfriend: hi how are you"])
    candidates = ["good thanks, and you?", "ok", "the derailleur is broken again haha"]
    expected = []
    for text in candidates:
        ids, kinds = suite.token_kinds(engine.tokenizer, f"\nElijah: {text}\n", ME, "</s>")
        with torch.no_grad():
            logits = engine.model(input_ids=torch.tensor([context + ids])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        picked = [
            float(logp[len(context) + j - 1, t]) for j, (t, k) in enumerate(zip(ids, kinds, strict=True)) if k != TAG
        ]
        expected.append(sum(picked) / len(picked))
    assert scorer.rank(context, candidates) == pytest.approx(expected, abs=1e-4)


def test_the_suite_on_the_tiny_model_gives_every_metric(tmp_path, tiny_llama_dir, tiny_adapter_dir):
    """The whole suite, three conditions, on the tiny random model: every number is there and finite."""
    from tinymodel import write_dataset

    from mindupload.serving import generation

    validation = write_dataset(tmp_path / "validation.jsonl", 6)
    examples = suite.read_examples(validation)
    engine = generation.load(str(tiny_llama_dir), tiny_adapter_dir, 256)
    pairs = [("hi how are you", "good thanks, and you?"), ("want to go climbing", "ok ok, carrément")] * 3
    history = [("friend", False, "the derailleur is broken again haha")]
    inputs = {
        "contexts": [suite.Context(tuple(suite.Turn(*t) for t in history), reply) for _, reply in pairs],
        "shots": "friend: hi\nElijah: hey",
        "own_train": [r for _, r in pairs] * 2,
        "other_train": [o for o, _ in pairs] * 2,
    }
    options = suite.Options(ranking_contexts=4, ranking_candidates=3, generations=6, max_new_tokens=8, batch_size=4)
    result, replies = suite.evaluate(engine, ME, examples, inputs, options)
    assert not finite_numbers(result), finite_numbers(result)
    for name in suite.CONDITIONS:
        assert result["loss"][name]["content"]["low"] <= result["loss"][name]["content"]["high"]
        assert len(replies["replies"][name]) == 6
    from mindupload.evaluation import report

    page = report.html_page(result, replies, ME, options)
    assert "<svg" in page and "carrément" not in page and "derailleur" not in page  # no message text
    assert "carrément" not in json.dumps(result)

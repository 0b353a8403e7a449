"""The seed's own tokenizer (Mistral-7B-v0.1, SentencePiece): what the model is trained to write after an own turn,
and that the renderer, the stop rules and the chat cut the reply where the other person's turn starts.

axolotl tokenizes every piece of an example alone, and SentencePiece opens every text with `▁`: the piece after an
own turn starts with `▁friend`, so the model learns `"\\n friend:"` (with a space), not `"\\nfriend:"`.
"""

from __future__ import annotations

import threading

import pytest

from mindupload.model.tokenizer import encode_pieces, markers
from mindupload.render import Identity, Turn, pieces, prompt_pieces, stop_strings
from mindupload.serving import chat_ui, generation

ME = Identity(name="Elijah")


def friend(text):
    return Turn("friend", False, text)


def me(text):
    return Turn("Elijah", True, text)


def trained_continuation(tok, history, reply, after):
    """The token ids a model trained on [*history, reply, *after] writes after the chat prompt for `history`:
    the training example's ids past the prompt's ids (which must be their prefix)."""
    example = [p.text for p in pieces([*history, me(reply), *after], ME, markers(tok))]
    ids = encode_pieces(tok, example)
    prompt = encode_pieces(tok, prompt_pieces(history, ME, markers(tok)))
    assert ids[: len(prompt)] == prompt, "the chat prompt is not tokenized as the training example starts"
    return ids[len(prompt) :]


HISTORY = [friend("hi"), me("hey"), friend("climbing on saturday?")]
AFTER = [friend("cool, 9 at the gym"), me("deal")]


def test_the_mistral_tokenizer_is_the_real_one(mistral_tokenizer):
    assert len(mistral_tokenizer) == 32000
    assert markers(mistral_tokenizer).bos == "<s>" and markers(mistral_tokenizer).eos == "</s>"
    assert mistral_tokenizer.convert_ids_to_tokens(
        mistral_tokenizer("friend: cool", add_special_tokens=False)["input_ids"]
    ) == ["▁friend", ":", "▁cool"]


def test_after_an_own_turn_the_model_is_trained_to_write_the_label_with_a_space(mistral_tokenizer):
    ids = trained_continuation(mistral_tokenizer, HISTORY, "sure\nsee you there", AFTER)
    text = mistral_tokenizer.decode(ids, skip_special_tokens=True)
    assert "\n friend: cool" in text  # the bug's cause: a plain "\nfriend:" stop never matches this
    assert "\nfriend:" not in text


def test_the_stop_rules_cut_the_trained_continuation_at_the_other_persons_turn(mistral_tokenizer):
    ids = trained_continuation(mistral_tokenizer, HISTORY, "sure\nsee you there", AFTER)
    text = mistral_tokenizer.decode(ids, skip_special_tokens=True)
    assert generation.split_reply(text, stop_strings(ME), final=True) == ("sure\nsee you there", True)


def test_streaming_token_by_token_never_shows_the_label(mistral_tokenizer):
    ids = trained_continuation(mistral_tokenizer, HISTORY, "sure\nsee you there", AFTER)
    shown = []
    for n in range(1, len(ids) + 1):
        visible, ended = generation.split_reply(
            mistral_tokenizer.decode(ids[:n], skip_special_tokens=True), stop_strings(ME), final=False
        )
        shown.append(visible)
        if ended:
            break
    assert ended and shown[-1] == "sure\nsee you there"
    assert not any("friend" in s for s in shown)


@pytest.mark.parametrize("label", ["Elijah", "Anna Lise"])
def test_an_own_or_invented_label_with_the_space_also_ends_the_reply(label):
    stops = stop_strings(ME)
    assert generation.split_reply(f" ok\n {label}: and more", stops, final=True) == ("ok", True)
    assert generation.split_reply(" ok\n fri", stops, final=False) == ("ok", False)  # held back while streaming
    assert generation.split_reply(" ok\n frites", stops, final=False) == ("ok\n frites", False)


class TrainedModel:
    """Stands in for a model that learnt its training data by heart: `generate` writes the given ids, one token
    at a time, through the streamer, and stops when asked (as transformers' generate does)."""

    device = "cpu"

    def __init__(self, continuation):
        self.continuation = continuation
        self.calls = 0

    def generate(self, input_ids, streamer, stopping_criteria, max_new_tokens, **kwargs):
        import torch

        self.calls += 1
        streamer.put(input_ids)
        written = input_ids
        for token in self.continuation[:max_new_tokens]:
            written = torch.cat([written, torch.tensor([[token]])], dim=1)
            streamer.put(torch.tensor([token]))
            if all(criterion(written, None) for criterion in stopping_criteria):
                break
        streamer.end()


def test_the_chat_shows_only_the_clones_turn(mistral_tokenizer):
    """The chat function end to end (prompt, generation stream, stop rules, bubbles) with the seed's tokenizer."""
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey"}]
    ids = trained_continuation(mistral_tokenizer, HISTORY, "sure\nsee you there", AFTER)
    model = TrainedModel(ids)
    engine = generation.Engine(
        model, mistral_tokenizer, markers(mistral_tokenizer), context=1024, lock=threading.Lock()
    )
    respond = chat_ui.respond_fn(engine, ME)
    shown = list(respond("climbing on saturday?", history, ME.system_prompt, "friend", 0.0, 1.0, 64))
    assert shown[-1] == [{"role": "assistant", "content": "sure"}, {"role": "assistant", "content": "see you there"}]
    assert not any("friend" in bubble["content"] for bubbles in shown for bubble in bubbles)
    assert model.calls == 1

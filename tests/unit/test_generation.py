"""Where a reply ends, how a conversation fits the window, bubbles, and the chat's turns: pure functions."""

from __future__ import annotations

import json

import pytest

from mindupload.errors import UserError
from mindupload.render import Identity, Markers, Turn, pieces, prompt, prompt_pieces, stop_strings
from mindupload.serving import chat_ui, generation
from mindupload.serving.generation import bubbles, clean, fit_history, split_reply

ME = Identity(name="Elijah")
MARKERS = Markers(bos="<s>", eos="</s>")
STOPS = stop_strings(ME)


def words(text, **kwargs):
    """A whitespace tokenizer, called as a transformers tokenizer is (one text or a batch)."""
    return {"input_ids": [t.split() for t in text] if isinstance(text, list) else text.split()}


def word_engine(context: int = 512, markers: Markers = MARKERS) -> generation.Engine:
    return generation.Engine(model=None, tokenizer=words, markers=markers, context=context)


def friend(text):
    return Turn("friend", False, text)


def me(text):
    return Turn("Elijah", True, text)


# ---------------------------------------------------------------- stopping


def test_a_reply_ends_where_the_other_persons_turn_starts_and_the_label_is_not_shown():
    assert split_reply(" sure, at 9\nfriend: great", STOPS, final=False) == ("sure, at 9", True)


def test_a_reply_ends_where_the_model_starts_a_new_turn_of_its_own():
    assert split_reply(" ok\nElijah: and another thing", STOPS, final=False) == ("ok", True)


def test_an_invented_third_speaker_ends_the_reply():
    assert split_reply(" see you\nBryan: me too", STOPS, final=False) == ("see you", True)
    assert split_reply(" see you\nAnna Lise: me too", STOPS, final=False) == ("see you", True)


def test_lines_that_are_not_labels_stay_in_the_reply():
    text = " ok\nnote: bring chalk\nTime 9:30 works\nhaha"
    assert split_reply(text, STOPS, final=True) == (text.strip(), False)


def test_a_line_that_may_still_become_a_label_is_held_back_while_streaming():
    assert split_reply(" ok\nfri", STOPS, final=False) == ("ok", False)
    assert split_reply(" ok\nBry", STOPS, final=False) == ("ok", False)
    assert split_reply(" ok\nBryan:", STOPS, final=False) == ("ok", False)
    assert split_reply(" ok\n", STOPS, final=False) == ("ok", False)
    # ... and shown once it cannot
    assert split_reply(" ok\nfrites", STOPS, final=False) == ("ok\nfrites", False)
    assert split_reply(" ok\nBry!", STOPS, final=False) == ("ok\nBry!", False)
    assert split_reply(" ok\nBryan is late today", STOPS, final=False) == ("ok\nBryan is late today", False)


def test_at_the_end_a_held_back_line_is_shown_unless_it_is_a_label():
    assert split_reply(" ok\nBry", STOPS, final=True) == ("ok\nBry", False)
    assert split_reply(" ok\nBryan:", STOPS, final=True) == ("ok", True)


def test_streaming_never_shows_a_label_whatever_the_chunking():
    text = " sure\nsee you at 9\nfriend: great, see you"
    shown = [split_reply(text[:n], STOPS, final=False)[0] for n in range(1, len(text) + 1)]
    assert all("friend" not in s for s in shown)
    assert shown[-1] == "sure\nsee you at 9"


# ---------------------------------------------------------------- bubbles and input


def test_each_line_of_an_own_turn_is_a_bubble():
    assert bubbles("sure\n\nsee you at 9 \n") == ["sure", "see you at 9"]
    assert bubbles("") == []


def test_control_characters_are_removed_and_newlines_unified():
    assert clean("a\x00b\x1b[31mc\r\nd\re\tf\x7f\u200dg") == "ab[31mc\nd\ne\tf\u200dg"


def test_lone_surrogates_cannot_reach_the_tokenizer():
    assert "\ud800" not in clean("a\ud800b")


# ---------------------------------------------------------------- the chat's turns


def test_chat_messages_become_turns_merged_like_training_runs():
    history = [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": [{"type": "text", "text": "you there?"}]},
        {"role": "assistant", "content": "hey"},
        {"role": "assistant", "content": "what's up"},
        {"role": "user", "content": {"path": "/tmp/x.png"}},  # a file: no text
        {"role": "user", "content": ""},
        {"role": "user", "content": "climbing?"},
    ]
    assert chat_ui.history_turns(history, ME) == [friend("hi\nyou there?"), me("hey\nwhat's up"), friend("climbing?")]


def test_the_served_prompt_for_a_chat_is_the_training_text_of_the_same_messages():
    """A training example and the chat's prompt for the same messages render identical text."""
    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hey"},
        {"role": "assistant", "content": "what's up"},
        {"role": "user", "content": "climbing tomorrow?"},
    ]
    turns = chat_ui.history_turns(history, ME)
    training = "".join(p.text for p in pieces([*turns, me("ok ok")], ME, MARKERS))
    assert training == prompt(turns, ME, MARKERS) + " ok ok</s>"
    assert training == "<s>CONTEXT: Elijah is talking to a friend.\nfriend: hi\nElijah: hey\nwhat's up\n" + (
        "friend: climbing tomorrow?\nElijah: ok ok</s>"
    )


def test_a_training_example_built_from_messages_and_the_chat_prompt_render_identical_text():
    """The real paths on both sides: messages -> build_turns -> segmenter on one side, the chat's messages ->
    history_turns -> prepare on the other."""
    from messages import make_messages

    from mindupload.dataset.segment import SegmentOptions, build_segments
    from mindupload.dataset.turns import TurnOptions, build_turns

    said = [("Anna", False, "hi"), ("Elijah M", True, "hey"), ("Elijah M", True, "what's up")]
    said += [("Anna", False, "climbing"), ("Anna", False, "tomorrow?"), ("Elijah M", True, "ok ok, carrément")]
    turns, _ = build_turns(make_messages([("c", *row) for row in said]), TurnOptions(validation_fraction=0))
    lines, _ = build_segments(turns, ME, MARKERS, SegmentOptions(min_turns=4, max_turns=4), None)
    (example,) = lines["train"]
    training = "".join(p["text"] for p in json.loads(example)["segments"])

    chat = [{"role": "assistant" if is_self else "user", "content": text} for _, is_self, text in said[:-1]]
    ready = generation.prepare(word_engine(), chat_ui.history_turns(chat, ME), ME, generation.Options())
    assert training == ready.prompt + " ok ok, carrément" + MARKERS.eos


def test_the_served_prompt_is_tokenized_as_axolotl_tokenizes_the_training_example(tmp_path):
    """With a SentencePiece-style tokenizer (Llama, Mistral) tokenizing the joined prompt would differ from
    training at every piece boundary: the served ids are the start of axolotl's own ids for the example."""
    from axolotl.prompt_strategies.input_output import load as input_output
    from axolotl.utils.dict import DictDefault
    from tinymodel import build_sentencepiece_style_tokenizer

    from mindupload.model import tokenizer as tokenizers

    tok = tokenizers.load(str(build_sentencepiece_style_tokenizer(tmp_path / "sp")))
    engine = generation.Engine(model=None, tokenizer=tok, markers=tokenizers.markers(tok), context=512)
    turns = [friend("hi how are you"), me("good thanks"), friend("want to go climbing on saturday")]
    ready = generation.prepare(engine, turns, ME, generation.Options())
    example = {"segments": [p.as_json() for p in pieces([*turns, me("ok ok")], ME, engine.markers)]}
    strategy = input_output(tok, DictDefault({"train_on_inputs": False, "sequence_len": 512}))
    trained = strategy.tokenize_prompt(example)["input_ids"]

    served = engine.encode(ready.pieces)
    assert served == trained[: len(served)]
    assert tok(ready.prompt, add_special_tokens=False)["input_ids"] != served  # why it must go piece by piece


def test_a_persona_too_long_for_the_window_is_cut_and_the_prompt_still_fits():
    engine = word_engine(context=64)
    persona = chat_ui.session_identity(ME, "CONTEXT: " + "a very long persona " * 500, "friend")
    ready = generation.prepare(engine, [friend("hi"), me("hey"), friend("climbing?")], persona, generation.Options(16))
    prompt_budget, _ = engine.budget(16)
    assert ready.trimmed_persona and engine.count(ready.pieces) <= prompt_budget
    assert ready.prompt.startswith("<s>CONTEXT: a very long persona") and ready.prompt.endswith("climbing?\nElijah:")
    short = generation.prepare(engine, [friend("hi")], ME, generation.Options(16))
    assert not short.trimmed_persona


def test_a_long_label_is_cut_to_a_name():
    who = chat_ui.session_identity(ME, None, "Anna " * 1000)
    assert len(who.other_label) <= chat_ui.MAX_LABEL_CHARS and who.other_label.startswith("Anna Anna")


def test_the_page_can_change_the_label_and_persona_but_not_break_the_layout():
    who = chat_ui.session_identity(ME, "{me} and {other} {oops", " Anna:\nK ")
    assert who.other_label == "Anna K"
    assert who.system() == "{me} and {other} {oops"  # stray braces: taken literally
    assert chat_ui.session_identity(ME, "{me} talks to {other}.", "").system() == "Elijah talks to friend."


# ---------------------------------------------------------------- fitting the window


def _counter(tokenizer):
    from mindupload.model.tokenizer import encode_pieces

    def count(turns):
        return len(encode_pieces(tokenizer, prompt_pieces(turns, ME, MARKERS)))

    return count


def test_a_history_that_fits_is_kept_whole(tiny_tokenizer):
    history = [friend("hi"), me("hey"), friend("climbing?")]
    assert fit_history(history, _counter(tiny_tokenizer), 1000) == history


def test_the_oldest_turns_go_first_and_the_rest_starts_with_the_other_person(tiny_tokenizer):
    count = _counter(tiny_tokenizer)
    history = [t for n in range(40) for t in (friend(f"hi how are you {n}"), me(f"good thanks {n}"))]
    history.append(friend("want to go climbing on saturday"))
    kept = fit_history(history, count, 120)
    assert count(kept) <= 120
    assert kept == history[-len(kept) :] and not kept[0].is_self
    assert count(history[-len(kept) - 2 :]) > 120  # the next older exchange would not have fit


def test_a_single_message_longer_than_the_window_keeps_its_end(tiny_tokenizer):
    count = _counter(tiny_tokenizer)
    paste = "".join(f"line {n} of a long paste\n" for n in range(4000))  # ~100 kB
    assert len(paste.encode()) > 100_000
    kept = fit_history([friend("hi"), me("hey"), friend(paste)], count, 100)
    assert len(kept) == 1 and count(kept) <= 100
    assert paste.endswith(kept[0].text) and len(kept[0].text) > 20


def test_the_reply_always_leaves_room_for_a_prompt():
    engine = generation.Engine(model=None, tokenizer=None, markers=MARKERS, context=256)
    assert engine.budget(64) == (192, 64)
    assert engine.budget(10_000) == (generation.MIN_PROMPT_TOKENS, 256 - generation.MIN_PROMPT_TOKENS)


# ---------------------------------------------------------------- load errors, before any weights load


def _adapter(folder, base):
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    (folder / "adapter_model.safetensors").write_bytes(b"")
    return folder


def test_a_missing_adapter_is_a_clear_error(tmp_path, tiny_llama_dir):
    with pytest.raises(UserError, match=r"no such folder.*snakemake train"):
        generation.check_model_folder(str(tiny_llama_dir), tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="neither a LoRA adapter"):
        generation.check_model_folder(str(tiny_llama_dir), tmp_path / "empty")


def test_an_adapter_for_another_base_model_is_a_clear_error(tmp_path, tiny_llama_dir):
    adapter = _adapter(tmp_path / "adapter", "mistralai/Mistral-7B-v0.1")
    with pytest.raises(UserError, match=r"trained on 'mistralai/Mistral-7B-v0.1', not on the configured base_model"):
        generation.check_model_folder(str(tiny_llama_dir), adapter)


def test_an_adapter_trained_elsewhere_on_the_same_base_model_passes(tmp_path, tiny_llama_dir):
    name = tiny_llama_dir.name
    # a RunPod pod's folder, a Hub model card's bare name, the hub id of a model that is a folder here
    for n, recorded in enumerate([f"/workspace/snakemake-job/results/models/{name}", name, f"someorg/{name}"]):
        adapter = _adapter(tmp_path / f"adapter{n}", recorded)
        assert generation.check_model_folder(str(tiny_llama_dir), adapter) == "adapter"


def test_an_adapter_for_this_base_model_or_a_merged_folder_passes(tmp_path, tiny_llama_dir):
    assert generation.check_model_folder(str(tiny_llama_dir), _adapter(tmp_path / "a", tiny_llama_dir)) == "adapter"
    assert generation.check_model_folder(str(tiny_llama_dir), tiny_llama_dir) == "merged"


class FakeCuda:
    def __init__(self, available, bf16):
        self.available, self.bf16 = available, bf16

    def is_available(self):
        return self.available

    def is_bf16_supported(self):
        return self.bf16


def test_the_device_is_cuda_when_there_is_one_in_the_precision_it_has():
    import types

    import torch

    def fake(available, bf16=True):
        dtypes = {k: getattr(torch, k) for k in ("float32", "float16", "bfloat16")}
        return types.SimpleNamespace(cuda=FakeCuda(available, bf16), **dtypes)

    assert generation.pick_device(fake(False)) == ("cpu", torch.float32)
    assert generation.pick_device(fake(True)) == ("cuda", torch.bfloat16)
    assert generation.pick_device(fake(True, bf16=False)) == ("cuda", torch.float16)  # a T4 or a V100


def test_weights_that_do_not_fit_the_base_model_are_a_clear_error(tmp_path, tiny_llama_dir, tiny_adapter_dir):
    """An adapter of another model with the same folder name passes the name check, then fails to load:
    one line naming the folder, no traceback."""
    import shutil

    other = tmp_path / tiny_llama_dir.name
    shutil.copytree(tiny_llama_dir, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "hidden_size": 64, "intermediate_size": 128}))
    with pytest.raises(UserError, match=rf"{tiny_adapter_dir}: cannot load it onto cpu"):
        generation.load(str(other), tiny_adapter_dir)


def test_a_login_needs_both_the_username_and_the_password_from_the_environment():
    settings = chat_ui.ServeSettings("127.0.0.1", 7860, False, 0.7, 0.9, 64, "eli")
    with pytest.raises(UserError, match=chat_ui.PASSWORD_ENV):
        chat_ui.credentials(settings, {})
    assert chat_ui.credentials(settings, {chat_ui.PASSWORD_ENV: "s3cret"}) == ("eli", "s3cret")
    no_user = chat_ui.ServeSettings("127.0.0.1", 7860, False, 0.7, 0.9, 64, "")
    assert chat_ui.credentials(no_user, {}) is None
    with pytest.raises(UserError, match="auth_username is empty"):
        chat_ui.credentials(no_user, {chat_ui.PASSWORD_ENV: "s3cret"})


def test_serve_defaults_come_from_the_schema():
    from mindupload import config

    section = config.schema()["properties"]["serve"]["properties"]
    settings = chat_ui.ServeSettings.from_config({k: v["default"] for k, v in section.items()})
    assert settings.host == "127.0.0.1" and settings.share is False and settings.auth_username == ""


# ---------------------------------------------------------------- the page's chat function


def test_the_chat_function_streams_one_bubble_per_message_and_sends_the_whole_conversation(monkeypatch):
    engine = word_engine()
    sent = {}

    def fake_stream(engine, prompt, stops, options, seed=None):
        sent.update(prompt="".join(prompt), stops=stops, options=options)
        yield from ("sure", "sure\n", "sure\nsee you", "sure\nsee you at 9\x07")

    monkeypatch.setattr(generation, "stream", fake_stream)
    respond = chat_ui.respond_fn(engine, ME)
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey"}]
    out = list(respond("climbing\r\nsaturday?", history, "{me} talks to {other}.", "Anna", 0.5, 0.8, 40.0))
    assert out[-1] == [{"role": "assistant", "content": "sure"}, {"role": "assistant", "content": "see you at 9"}]
    assert [len(o) for o in out] == [0, 1, 1, 2, 2]
    assert sent["prompt"] == "<s>Elijah talks to Anna.\nAnna: hi\nElijah: hey\nAnna: climbing\nsaturday?\nElijah:"
    assert "\nAnna:" in sent["stops"] and sent["options"] == generation.Options(40, 0.5, 0.8)


def test_an_empty_message_or_a_silent_model_gives_no_bubble(monkeypatch):
    engine = word_engine()

    def silent(*args, **kwargs):
        yield from ("", " \n")

    monkeypatch.setattr(generation, "stream", silent)
    respond = chat_ui.respond_fn(engine, ME)
    assert list(respond("hi", [], None, None, 0.7, 0.9, 16)) == [[], [], []]
    assert list(respond(" \x00\n ", [], None, None, 0.7, 0.9, 16)) == [[]]

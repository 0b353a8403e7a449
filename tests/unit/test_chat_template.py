"""The chat template generated from the renderer gives the renderer's prompt, token for token.

"Identical" here means: `tokenizer.apply_chat_template(messages, tokenize=True)` (the runtime's path: the template's
text tokenized whole) returns the same ids as the renderer's pieces tokenized one by one and concatenated
(`tokenizer.encode_pieces`, axolotl's input_output path, which is also what our chat page and API send). On
SmolLM2's byte-level BPE the template's text is also `render.prompt` character for character; on Mistral's
SentencePiece tokenizer the text has a space where pieces meet (the `joiner`, chat_template's module doc).
Message texts are drawn as the chat page and the API pass them on: cleaned (`generation.clean`) and stripped.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mindupload import chat_template, render
from mindupload.model.tokenizer import encode_pieces, markers
from mindupload.render import Identity

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WORDS = ["hi", "ok", "sure", "what?", "Saturday", "12:30", "ça va", "Zoë", "😀", "lol!!", "friend:", "a.b", "x\ty"]


@st.composite
def texts(draw) -> str:
    words = draw(st.lists(st.sampled_from(WORDS) | st.text(min_size=1, max_size=6), min_size=1, max_size=6))
    seps = draw(st.lists(st.sampled_from([" ", "\n", "  ", ", "]), min_size=len(words), max_size=len(words)))
    text = "".join(w + s for w, s in zip(words, seps, strict=True))
    from mindupload.serving.generation import clean

    text = clean(text).strip()
    return text or "hi"


@st.composite
def conversations(draw) -> list[dict]:
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(texts())})
    for _ in range(draw(st.integers(1, 7))):
        role = draw(st.sampled_from(["user", "assistant"]))
        message = {"role": role, "content": draw(texts())}
        if role == "user" and draw(st.booleans()):
            message["name"] = draw(st.sampled_from(["Ann", "Bob Lee", "Zoë", "  Ann  ", "x:y"]))
        messages.append(message)
    return messages


identities = st.builds(
    Identity,
    name=st.sampled_from(["Elijah", "Zoë", "Mary Ann", 'O"Neil\\']),
    other_label=st.sampled_from(["friend", "Ann", "mate"]),
    system_prompt=st.sampled_from(["CONTEXT: {me} is talking to a {other}.", "{me} and {other}, on ✉️"]),
)


def smollm2_tokenizer():
    from transformers import AutoTokenizer

    from mindupload.model import embedded

    tok = AutoTokenizer.from_pretrained(embedded.gguf_folder(), gguf_file=embedded.GGUF_FILE)
    tok.add_special_tokens(embedded.SPECIAL_TOKENS)
    return tok


def mistral_tokenizer(tmp_path_factory):
    """A fresh copy of the seed's tokenizer (the tests set its chat template), built as tests/tinymodel.py does."""
    from tinymodel import build_mistral_tokenizer

    from mindupload.model import tokenizer as tokenizers

    return tokenizers.load(str(build_mistral_tokenizer(tmp_path_factory.mktemp("mistral"))))


@pytest.fixture(scope="module", params=["smollm2", "mistral"])
def tokenizer(request, tmp_path_factory):
    if request.param == "smollm2":
        return smollm2_tokenizer()
    return mistral_tokenizer(tmp_path_factory)


def template_ids(tokenizer, messages, add_generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(identity=identities, messages=conversations(), generation_prompt=st.booleans())
def test_template_gives_the_renderers_token_ids(tokenizer, identity, messages, generation_prompt):
    joiner = chat_template.piece_joiner(tokenizer)
    tokenizer.chat_template = chat_template.template(identity, joiner)
    marks = markers(tokenizer)
    pieces = chat_template.render_messages(messages, identity, marks, add_generation_prompt=generation_prompt)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    assert text == joiner.join(pieces)
    assert template_ids(tokenizer, messages, generation_prompt) == encode_pieces(tokenizer, pieces)


def test_joiner_is_nothing_for_byte_level_bpe_and_a_space_for_sentencepiece(tmp_path_factory):
    assert chat_template.piece_joiner(smollm2_tokenizer()) == ""
    assert chat_template.piece_joiner(mistral_tokenizer(tmp_path_factory)) == " "


def test_smollm2_template_text_is_render_prompt():
    tok = smollm2_tokenizer()
    identity = Identity("Elijah")
    tok.chat_template = chat_template.for_tokenizer(identity, tok)
    messages = [
        {"role": "user", "content": "are you free on saturday?"},
        {"role": "assistant", "content": "yes"},
        {"role": "assistant", "content": "why"},
        {"role": "user", "name": "Ann", "content": "party!"},
        {"role": "user", "content": "come"},
    ]
    turns = [
        render.Turn("friend", False, "are you free on saturday?"),
        render.Turn("Elijah", True, "yes\nwhy"),
        render.Turn("Ann", False, "party!"),
        render.Turn("friend", False, "come"),
    ]
    want = render.prompt(turns, identity, markers(tok))
    assert tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == want
    assert want.endswith("\nElijah: yes\nwhy\nAnn: party!\nfriend: come\nElijah:")


def test_an_unknown_role_is_an_error():
    identity = Identity("Elijah")
    with pytest.raises(chat_template.TemplateError, match="message 1: role 'tool'"):
        chat_template.messages_to_turns([{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}], identity)


def test_non_ascii_and_quotes_survive_the_template_literal():
    identity = Identity('Zoë "Z" \\o/', system_prompt="{me}\n✉️")
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    out = env.from_string(chat_template.template(identity)).render(
        messages=[{"role": "user", "content": "hi"}], bos_token="<s>", eos_token="</s>", add_generation_prompt=True
    )
    assert out == '<s>Zoë "Z" \\o/\n✉️\nfriend: hi\nZoë "Z" \\o/:'


def conversation() -> list[dict]:
    return [{"role": "user", "content": "are you free?"}, {"role": "assistant", "content": "yes"}]


def test_published_adapter_carries_the_template(tmp_path, tiny_tokenizer_dir):
    """train.publish writes the tokenizer with our template beside the adapter (axolotl's copy of the base's)."""
    import shutil

    from transformers import AutoTokenizer

    from mindupload.training import train

    work = tmp_path / "work"
    shutil.copytree(tiny_tokenizer_dir, work)
    (work / "chat_template.jinja").write_text("{{ 'ChatML, as a base model may ship' }}")
    for name in train.ADAPTER_FILES:
        (work / name).write_text("{}")
    identity = Identity("Elijah")
    train.publish(work, tmp_path / "adapter", {"base_model": str(tiny_tokenizer_dir)}, None, identity)

    tok = AutoTokenizer.from_pretrained(tmp_path / "adapter")
    _, turns = chat_template.messages_to_turns(conversation(), identity)
    want = render.prompt([*turns], identity, markers(tok))
    assert tok.apply_chat_template(conversation(), tokenize=False, add_generation_prompt=True) == want


def test_chat_template_command_rewrites_a_merged_models_tokenizer(tmp_path, tiny_llama_dir):
    import shutil
    import subprocess
    import sys

    from transformers import AutoTokenizer

    merged = tmp_path / "merged"
    shutil.copytree(tiny_llama_dir, merged)
    identity = '{"name": "Elijah", "other_label": "mate", "system_prompt": "{me} & {other}"}'
    subprocess.run(
        [sys.executable, "-m", "mindupload", "chat-template", "--model-dir", str(merged), "--identity", identity],
        check=True,
    )
    tok = AutoTokenizer.from_pretrained(merged)
    text = tok.apply_chat_template(conversation(), tokenize=False, add_generation_prompt=False)
    assert text == "<s>Elijah & mate\nmate: are you free?\nElijah: yes</s>"

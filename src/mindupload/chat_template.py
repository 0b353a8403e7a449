"""The training layout as a Jinja chat template, generated from the renderer (`render`), for other runtimes.

`template(identity, joiner)` writes a template that `tokenizer.apply_chat_template` (and other Jinja chat
runtimes) render into the text `render.prompt` gives for the same conversation, so a model served elsewhere is
prompted as it was trained: BOS once, the system message as the persona line, `user` messages as the other
person's lines (a `name` on a user message is its own label, for group chats), `assistant` messages as your own
turns, and the generation prompt ending with your label.

`messages_to_turns` is the one definition of how chat messages become the renderer's turns; the API server uses
it and the template is tested against it (tests/unit/test_chat_template.py).

Token ids. axolotl tokenizes each piece of an example on its own; a template can only give one text, which
the runtime tokenizes whole. For byte-level BPE tokenizers (SmolLM2, GPT-2 style) the two give the same ids, and
the template's text is `render.prompt` exactly. SentencePiece tokenizers that put a word-start marker at the
start of every encoded text (Llama 2, Mistral) give each piece after the first a leading "▁" that the joined
text lacks; for them the template writes a space where one piece ends and the next begins (`joiner=" "`), which
the tokenizer turns into that same marker, so the ids are the training ids while the text has those spaces.
`piece_joiner(tokenizer)` finds out which of the two a tokenizer needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from mindupload import render
from mindupload.render import Identity, Markers, Turn

JOINERS = ("", " ")  # what a template writes between pieces: nothing (byte-level BPE) or a space (SentencePiece)


class TemplateError(ValueError):
    """A conversation the layout cannot express (an unknown role, a message without text)."""


# ---------------------------------------------------------------- chat messages -> the renderer's turns


def message_text(content) -> str:
    """A message's text: a string, or OpenAI's list of content parts (text parts joined by newlines)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return ""


def label(name: str) -> str:
    """A speaker label as written before a line: one line, no colon (it is written as `label: text`)."""
    return " ".join(name.replace(":", " ").split())


def messages_to_turns(messages: Sequence[Mapping], identity: Identity) -> tuple[Identity, list[Turn]]:
    """(identity with the conversation's system message as its persona, the turns), as the renderer takes them.

    A leading `system` message replaces the persona line (taken literally: it is already filled in). `user`
    messages are the other person's, labelled with their `name` when they have one; `assistant` messages are
    yours. Consecutive messages of one speaker merge with a newline, as training merges a run of messages.
    """
    rest = list(messages)
    if rest and rest[0].get("role") == "system":
        persona = message_text(rest.pop(0).get("content"))
        identity = dataclasses.replace(identity, system_prompt=persona.replace("{", "{{").replace("}", "}}"))
    turns: list[Turn] = []
    for index, message in enumerate(rest):
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise TemplateError(f"message {index}: role {role!r}; only a first 'system', then 'user' and 'assistant'")
        is_self = role == "assistant"
        speaker = identity.name if is_self else (label(message.get("name") or "") or identity.other_label)
        text = message_text(message.get("content"))
        if turns and turns[-1].is_self == is_self and turns[-1].speaker == speaker:
            turns[-1] = turns[-1]._replace(text=f"{turns[-1].text}\n{text}")
        else:
            turns.append(Turn(speaker, is_self, text))
    return identity, turns


def render_messages(
    messages: Sequence[Mapping], identity: Identity, markers: Markers, *, add_generation_prompt: bool = True
) -> list[str]:
    """The pieces of a conversation, as the renderer makes them (what the template must reproduce):
    `render.prompt_pieces` with a generation prompt, else the training example's pieces (EOS after a last
    own turn)."""
    identity, turns = messages_to_turns(messages, identity)
    if add_generation_prompt:
        return render.prompt_pieces(turns, identity, markers)
    return [p.text for p in render.pieces(turns, identity, markers)]


# ---------------------------------------------------------------- the Jinja template


def _literal(text: str) -> str:
    """A Jinja string literal for `text` (Jinja decodes Python's backslash escapes; ASCII stays readable)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def template(identity: Identity, joiner: str = "") -> str:
    """The Jinja chat template of `identity`'s layout; `joiner` is written between pieces (see the module doc).

    Variables it reads, as transformers passes them: `messages`, `bos_token`, `eos_token`,
    `add_generation_prompt`. Without a system message the configured persona is used.
    """
    if joiner not in JOINERS:
        raise ValueError(f"joiner must be one of {JOINERS!r}")
    me, other, system = _literal(identity.name), _literal(identity.other_label), _literal(identity.system())
    sep = _literal(joiner)
    # Kept on few lines, every tag trimming its whitespace: the output is exactly what the expressions print.
    return (
        "{#- mind-upload's training layout (generated by mindupload.chat_template; edit the config, not this) -#}\n"
        f"{{%- set me = {me} -%}}{{%- set other = {other} -%}}{{%- set sep = {sep} -%}}\n"
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set system = messages[0]['content'] -%}{%- set rest = messages[1:] -%}"
        f"{{%- else -%}}{{%- set system = {system} -%}}{{%- set rest = messages -%}}{{%- endif -%}}\n"
        # merge consecutive messages of one speaker into turns: [is_self, speaker, text]
        "{%- set ns = namespace(turns=[]) -%}"
        "{%- for m in rest -%}"
        "{%- if m['role'] not in ['user', 'assistant'] -%}"
        "{{- raise_exception('only a first system message, then user and assistant messages') -}}{%- endif -%}"
        "{%- set mine = m['role'] == 'assistant' -%}"
        "{%- set name = (m['name'] if m['name'] is defined and m['name'] else '') | replace(':', ' ') -%}"
        "{%- set name = name.split() | join(' ') -%}"
        "{%- set who = me if mine else (name if name else other) -%}"
        "{%- if ns.turns and ns.turns[-1][0] == mine and ns.turns[-1][1] == who -%}"
        "{%- set ns.turns = ns.turns[:-1] + [[mine, who, ns.turns[-1][2] + '\\n' + m['content']]] -%}"
        "{%- else -%}{%- set ns.turns = ns.turns + [[mine, who, m['content']]] -%}{%- endif -%}"
        "{%- endfor -%}\n"
        # the pieces: BOS + persona opens the first; each own turn is a piece sandwiched between newlines
        "{{- bos_token + system + '\\n' -}}"
        "{%- set st = namespace(first=true, context=false) -%}"
        "{%- for t in ns.turns -%}"
        "{%- if t[0] -%}"
        "{%- set last = loop.last and not add_generation_prompt -%}"
        "{{- sep + '\\n' + me + ': ' + t[2] + (eos_token if last else '\\n') -}}"
        "{%- set st.first = false -%}{%- set st.context = false -%}"
        "{%- else -%}"
        "{{- '\\n' if st.context else ('' if st.first else sep) -}}"
        "{{- t[1] + ': ' + t[2] -}}{%- set st.context = true -%}"
        "{%- endif -%}"
        "{%- endfor -%}\n"
        "{%- if add_generation_prompt -%}{{- sep + '\\n' + me + ':' -}}{%- endif -%}"
    )


# ---------------------------------------------------------------- which joiner a tokenizer needs

PROBE = ("CONTEXT: Ann is talking to a friend.\nfriend: hi there", "\nAnn: hey\n", "friend: ok", "\nAnn:")


def piece_joiner(tokenizer) -> str:
    """The joiner (`JOINERS`) whose joined text a tokenizer turns into the ids of the pieces tokenized one by one,
    as axolotl tokenizes them; TemplateError when neither does."""

    def ids(texts: Sequence[str]) -> list[int]:
        return [i for t in texts for i in tokenizer(t, add_special_tokens=False)["input_ids"]]

    want = ids(PROBE)
    for joiner in JOINERS:
        if ids([joiner.join(PROBE)]) == want:
            return joiner
    name = getattr(tokenizer, "name_or_path", "the tokenizer")
    raise TemplateError(f"{name}: no chat template gives the training token ids with this tokenizer")


def for_tokenizer(identity: Identity, tokenizer) -> str:
    """The chat template of `identity`'s layout for this tokenizer."""
    return template(identity, piece_joiner(tokenizer))

"""The one renderer: the text the model is trained on and the prompt the chat UI sends come from here.

The layout is the seed's axolotl `input_output` format. For turns other, me, other, me:

    [label false] "<bos>CONTEXT: Elijah is talking to a friend.\\nfriend: hi"
    [label true ] "\\nElijah: hey\\n"
    [label false] "friend: how are you"
    [label true ] "\\nElijah: good<eos>"

Every own turn is trained (`label: true`) and sandwiched between newlines; the last one ends with EOS
instead, so the model learns to stop. Other people's turns are context, one line-block each.
axolotl tokenizes each piece on its own (no special tokens added) and concatenates the ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring as _json_string
from typing import NamedTuple


@dataclass(frozen=True)
class Identity:
    """Who speaks, as the model sees it."""

    name: str  # the user's name before their own turns
    other_label: str = "friend"
    use_real_names: bool = False
    system_prompt: str = "CONTEXT: {me} is talking to a friend."

    @classmethod
    def from_config(cls, config: dict) -> Identity:
        ident = config["identity"]
        return cls(
            name=ident["name"] or config["me"][0],
            other_label=ident["other_label"],
            use_real_names=ident["use_real_names"],
            system_prompt=ident["system_prompt"],
        )

    def speaker(self, sender: str, is_self: bool) -> str:
        if is_self:
            return self.name
        return sender if self.use_real_names else self.other_label

    def system(self) -> str:
        return self.system_prompt.format(me=self.name, other=self.other_label)

    def labels(self, conversations: Sequence[str], senders: Sequence[str], is_self: Sequence[bool]) -> list[str]:
        """The label before each turn. In a conversation, each other sender keeps one label, distinct from the
        others': `friend`, `friend 2`, ... in the order they first speak (or their names with
        `use_real_names`), so a group chat never reads as one person talking to themselves."""
        seen: dict[str, dict[str, str]] = {}
        out = []
        for conversation, sender, own in zip(conversations, senders, is_self, strict=True):
            if own or self.use_real_names:
                out.append(self.speaker(sender, own))
                continue
            labels = seen.setdefault(conversation, {})
            if sender not in labels:
                labels[sender] = self.other_label if not labels else f"{self.other_label} {len(labels) + 1}"
            out.append(labels[sender])
        return out

    def is_other_label(self, label: str) -> bool:
        """A label `labels` gives someone else (any name, with `use_real_names`)."""
        if label == self.name:
            return False
        number = label.removeprefix(f"{self.other_label} ")
        return self.use_real_names or label == self.other_label or (number != label and number.isdigit())


@dataclass(frozen=True)
class Markers:
    """BOS/EOS text of the base model's tokenizer (never hard-coded: `<s>` is not every model's BOS)."""

    bos: str
    eos: str


class Turn(NamedTuple):  # a tuple: the segmenter makes one per turn, a million of them on big exports
    speaker: str  # the label written before the turn (already mapped through Identity)
    is_self: bool
    text: str


class Piece(NamedTuple):
    label: bool
    text: str

    def as_json(self) -> dict:
        return {"label": self.label, "text": self.text}


def example_json(example: Sequence[Piece]) -> str:
    """One JSONL line, as json.dumps(..., ensure_ascii=False) writes it, several times faster."""
    parts = (f'{{"label": {"true" if p.label else "false"}, "text": {_json_string(p.text)}}}' for p in example)
    return '{"segments": [' + ", ".join(parts) + "]}"


def pieces(turns: Sequence[Turn], identity: Identity, markers: Markers, *, final_eos: bool = True) -> list[Piece]:
    """The labelled pieces of one example, in the seed's layout.

    Consecutive turns of other people form one context piece (one line-block each). Own turns must each
    follow some context; a trailing context block (the chat UI's case) becomes the last piece.
    """
    exchanges: list[tuple[list[str], str]] = []
    context: list[str] = []
    for turn in turns:
        if turn.is_self:
            exchanges.append((context, line(turn.speaker, turn.text)))
            context = []
        else:
            context.append(line(turn.speaker, turn.text))
    out = layout(exchanges, head(identity, markers), markers.eos if final_eos and not context else None)
    if context:
        out.append(Piece(False, "\n".join(context) if out else head(identity, markers) + "\n".join(context)))
    return out


def line(speaker: str, text: str) -> str:
    return f"{speaker}: {text}"


def head(identity: Identity, markers: Markers) -> str:
    """What opens every example: BOS, the system prompt, a newline."""
    return f"{markers.bos}{identity.system()}\n"


def layout(exchanges: Sequence[tuple[Sequence[str], str]], opening: str, eos: str | None) -> list[Piece]:
    """The seed's layout from rendered lines: (context lines, own line) per exchange, `eos` on the last."""
    out: list[Piece] = []
    for context, own in exchanges:
        block = "\n".join(context)
        out.append(Piece(False, block if out else opening + block))
        out.append(Piece(True, f"\n{own}\n"))
    if eos is not None and out:
        out[-1] = Piece(True, out[-1].text[:-1] + eos)
    return out


def own_turn_prefix(identity: Identity) -> str:
    """What the prompt ends with so that the model goes on speaking as the user."""
    return f"\n{identity.name}:"


def prompt_pieces(history: Sequence[Turn], identity: Identity, markers: Markers) -> list[str]:
    """The chat UI's prompt as the texts axolotl would tokenize one by one: the history's pieces exactly as in
    training, then the start of an own turn (the beginning of the `label: true` piece the model writes)."""
    rendered = pieces(history, identity, markers, final_eos=False)
    return [*(p.text for p in rendered), own_turn_prefix(identity)]


def prompt(history: Sequence[Turn], identity: Identity, markers: Markers) -> str:
    """The chat UI's prompt as one text: `prompt_pieces` joined."""
    return "".join(prompt_pieces(history, identity, markers))


def stop_strings(identity: Identity, others: Sequence[str] = ()) -> list[str]:
    """Where a reply ends: at EOS (handled by generate) or where the model starts a new turn, anyone's.

    An own turn already holds all of the user's consecutive messages, so a second own label means the
    model is writing the next exchange by itself.
    """
    labels = {identity.other_label, identity.name, *others}
    return [f"\n{label}:" for label in sorted(labels)]

"""A few sample replies from the trained adapter, written to a Markdown file a person can read.

Prompts come from `render.prompt_pieces`, the same function the chat UI uses, on the context of a few validation
examples (conversations the model did not train on) or, without any, on fixed openers. Loading the model and where
a reply ends (EOS, or a new speaker line) are `mindupload.serving.generation`'s, as in the chat. Sampling is seeded.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from mindupload.render import Identity, Markers, Turn

log = logging.getLogger(__name__)

OPENERS = ("hey, how was your weekend?", "are you free on saturday?", "what are you up to?")


@dataclass(frozen=True)
class Prompt:
    history: tuple[Turn, ...]
    actual: str | None  # what the user really answered, when the prompt comes from the validation split


@dataclass(frozen=True)
class Options:
    count: int = 3
    max_new_tokens: int = 60
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 42


# ---------------------------------------------------------------- prompts


def prompts(validation: str | Path | None, identity: Identity, markers: Markers, count: int) -> list[Prompt]:
    """The opening context of the first `count` validation examples, as turns; fixed openers otherwise."""
    found: list[Prompt] = []
    if validation and Path(validation).is_file():
        with open(validation, encoding="utf-8") as f:
            for line in f:
                prompt = _from_example(json.loads(line)["segments"], identity, markers) if line.strip() else None
                if prompt:
                    found.append(prompt)
                if len(found) == count:
                    break
    if not found:
        found = [Prompt((Turn(identity.other_label, False, text),), None) for text in OPENERS[:count]]
    return found


def _from_example(segments: list[dict], identity: Identity, markers: Markers) -> Prompt | None:
    """Turns of the first context piece: BOS and the system prompt stripped, one turn per `speaker: ` line
    (other lines continue the turn before)."""
    if len(segments) < 2 or segments[0]["label"] or not segments[1]["label"]:
        return None
    head = f"{markers.bos}{identity.system()}\n"
    text = segments[0]["text"]
    if not text.startswith(head):
        return None
    turns: list[Turn] = []
    for line in text[len(head) :].split("\n"):
        speaker, sep, said = line.partition(": ")
        if sep and identity.is_other_label(speaker):
            turns.append(Turn(speaker, False, said))
        elif turns:
            turns[-1] = Turn(turns[-1].speaker, False, f"{turns[-1].text}\n{line}")
    own = segments[1]["text"].removesuffix(markers.eos).strip("\n")
    actual = own.removeprefix(f"{identity.name}: ")
    return Prompt(tuple(turns), actual) if turns else None


# ---------------------------------------------------------------- the stage


def run(
    base_model: str,
    adapter: str | Path,
    identity: Identity,
    validation: str | Path | None,
    out: str | Path,
    options: Options | None = None,
) -> list[dict]:
    from mindupload import files
    from mindupload.serving import generation

    options = options or Options()
    engine = generation.load(base_model, adapter)
    wanted = generation.Options(options.max_new_tokens, options.temperature, options.top_p)
    samples = []
    for i, p in enumerate(prompts(validation, identity, engine.markers, options.count)):
        ready = generation.prepare(engine, p.history, identity, wanted)
        reply = generation.generate(engine, ready.pieces, ready.stops, ready.options, options.seed + i)
        samples.append({"history": p.history, "reply": reply, "actual": p.actual})
    files.write_text_atomic(to_markdown(samples, identity, base_model, adapter, options), out)
    log.info("%d sample replies written to %s", len(samples), out)
    return samples


def to_markdown(samples: list[dict], identity: Identity, base_model: str, adapter, options: Options) -> str:
    lines = [
        "# Sample replies",
        "",
        f"Base model `{base_model}` with the adapter in `{adapter}`; temperature {options.temperature}, "
        f"top-p {options.top_p}, seed {options.seed}, at most {options.max_new_tokens} new tokens.",
        "",
    ]
    for n, sample in enumerate(samples, 1):
        lines += [f"## Sample {n}", ""]
        lines += [f"> **{t.speaker}:** {_quote(t.text, '> ')}  " for t in sample["history"]]
        lines += ["", f"**{identity.name} (model):** {_quote(sample['reply']) or '*(nothing)*'}", ""]
        if sample["actual"] is not None:
            lines += [f"**{identity.name} (what you said):** {_quote(sample['actual'])}", ""]
    return "\n".join(lines)


def _quote(text: str, prefix: str = "") -> str:
    """Markdown keeps a line break only with two trailing spaces; quoted lines repeat the `>`."""
    return text.replace("\n", "  \n" + prefix)

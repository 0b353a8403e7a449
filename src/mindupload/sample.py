"""A few sample replies from the trained adapter, written to a Markdown file a person can read.

Prompts come from `render.prompt`, the same function the chat UI uses, on the context of a few validation
examples (conversations the model did not train on) or, without any, on fixed openers. A reply ends at EOS
or where the model starts someone else's turn. Sampling is seeded, at a low temperature.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from mindupload import render
from mindupload.errors import UserError
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
        if sep and _is_other(speaker, identity):
            turns.append(Turn(speaker, False, said))
        elif turns:
            turns[-1] = Turn(turns[-1].speaker, False, f"{turns[-1].text}\n{line}")
    own = segments[1]["text"].removesuffix(markers.eos).strip("\n")
    actual = own.removeprefix(f"{identity.name}: ")
    return Prompt(tuple(turns), actual) if turns else None


def _is_other(speaker: str, identity: Identity) -> bool:
    if speaker == identity.name:
        return False
    return identity.use_real_names or speaker == identity.other_label


# ---------------------------------------------------------------- generation


def load_model(base_model: str, adapter: str | Path):
    """The base model with the LoRA adapter on top, on GPU when there is one."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from mindupload import tokenizer as tokenizers
    from mindupload import train_config

    if not all((Path(adapter) / name).is_file() for name in ("adapter_config.json", "adapter_model.safetensors")):
        raise UserError(f"{adapter}: no trained adapter there. Train one with `snakemake train`.")
    name = train_config.resolve_base_model(base_model)
    tok = tokenizers.load(name)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype).to(device)
    model = PeftModel.from_pretrained(model, str(adapter)).eval()
    return model, tok


def generate(model, tok, prompt_text: str, stops: list[str], options: Options, seed: int) -> str:
    import torch

    ids = tok(prompt_text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(model.device)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=options.max_new_tokens,
            do_sample=True,
            temperature=options.temperature,
            top_p=options.top_p,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            stop_strings=stops,
            tokenizer=tok,
        )
    return cut(tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True), stops)


def cut(text: str, stops: list[str]) -> str:
    """The reply up to the first stop string (generate stops after it, so it is still in the text)."""
    end = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:end].strip()


# ---------------------------------------------------------------- the stage


def run(
    base_model: str,
    adapter: str | Path,
    identity: Identity,
    validation: str | Path | None,
    out: str | Path,
    options: Options | None = None,
) -> list[dict]:
    from mindupload import table
    from mindupload import tokenizer as tokenizers

    options = options or Options()
    model, tok = load_model(base_model, adapter)
    markers = tokenizers.markers(tok)
    stops = render.stop_strings(identity)
    samples = []
    for i, p in enumerate(prompts(validation, identity, markers, options.count)):
        text = render.prompt(p.history, identity, markers)
        reply = generate(model, tok, text, stops, options, options.seed + i)
        samples.append({"history": p.history, "reply": reply, "actual": p.actual})
    table.write_text_atomic(to_markdown(samples, identity, base_model, adapter, options), out)
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

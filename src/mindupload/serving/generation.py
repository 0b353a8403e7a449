"""Replies from the trained clone: loading, streaming, where a reply ends, and fitting a prompt in the context.

Both `sample` (the sample replies of the main job) and the chat UI use this module, so a reply is cut the
same way everywhere: at EOS, or where the model starts a new speaker line (the other person's label, the
user's own name, or any `Name: ` line: small models invent third speakers). The label is never shown.

A speaker line may start with a space: axolotl tokenizes each piece of an example alone, and a SentencePiece
tokenizer (Llama-2, Mistral) opens every piece with a word-start marker, so after an own turn the model learns
`\n▁friend:`, which decodes as `"\n friend:"`. Stops match the label after the newline with or without it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mindupload import render
from mindupload.errors import UserError
from mindupload.render import Identity, Markers, Turn

log = logging.getLogger(__name__)

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# A line that opens a turn of someone the renderer does not know: a capitalised name of up to three words,
# then ": ". A lower-case line such as "note: ..." stays part of the reply.
# The space after the newline: see the module's docstring.
NEW_SPEAKER = re.compile(r"\n[ \t]?(?P<name>[^\W\d_][\w.'-]*(?: [\w.'-]+){0,2}):(?=[ \t]|$)")
_PARTIAL_SPEAKER = re.compile(r"[^\W\d_][\w.'-]*(?: [\w.'-]*){0,2}:?")
_LINE_START = " \t"  # what a tokenizer may put between a newline and a label (a word-start marker's space)
MIN_PROMPT_TOKENS = 16  # what is left for the prompt when max_new_tokens asks for nearly the whole window


@dataclass(frozen=True)
class Options:
    max_new_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 0.9


# ---------------------------------------------------------------- where a reply ends (pure)


def split_reply(text: str, stops: Sequence[str], *, final: bool) -> tuple[str, bool]:
    """What of the generated `text` to show, and whether the model has started a new turn (stop now).

    While streaming (`final=False`) a last line that may still grow into a speaker label is held back, so a
    label never flashes on screen; at the end it is shown unless it became one.
    """
    ends = [m.start() for m in (_stop_pattern(tuple(stops)).search(text),) if m] if stops else []
    match = _new_speaker(text)
    if match and (final or match.end() < len(text)):
        ends.append(match.start())
    if ends:
        return text[: min(ends)].strip(), True
    if not final:
        newline = text.rfind("\n")
        if newline >= 0 and _may_become_label(text[newline:], stops):
            text = text[:newline]
    return text.strip(), False


@functools.lru_cache(maxsize=64)
def _stop_pattern(stops: tuple[str, ...]) -> re.Pattern:
    """The stop strings as one pattern; a stop that opens a line (`"\\nfriend:"`) also matches with a space
    after the newline (`"\\n friend:"`, what a SentencePiece tokenizer's piece decodes to)."""
    return re.compile("|".join(_stop_regex(stop) for stop in stops))


def _stop_regex(stop: str) -> str:
    if stop.startswith("\n"):
        return r"\n[ \t]?" + re.escape(stop[1:])
    return re.escape(stop)


def _new_speaker(text: str) -> re.Match | None:
    return next((m for m in NEW_SPEAKER.finditer(text) if m.group("name")[0].isupper()), None)


def _may_become_label(tail: str, stops: Sequence[str]) -> bool:
    """`tail` ("\\n...") is the start of a stop string or of a capitalised `Name:` line, with or without a
    space after the newline."""
    rest = tail[1:]
    if rest[:1] in _LINE_START and rest:
        rest = rest[1:]
    if any(stop.startswith("\n" + rest) for stop in stops):
        return True
    return not rest or (rest[0].isupper() and _PARTIAL_SPEAKER.fullmatch(rest) is not None)


def bubbles(reply: str) -> list[str]:
    """The lines of one own turn, one chat bubble each (a turn is a run of the user's messages joined by \\n)."""
    return [line.strip() for line in reply.split("\n") if line.strip()]


def clean(text: str) -> str:
    """Typed or pasted text made safe to tokenize: one newline style, no control characters (tab and newline
    stay), no lone surrogates (which the tokenizer cannot encode)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.encode("utf-8", "replace").decode("utf-8")
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


# ---------------------------------------------------------------- fitting the context window (pure)


def fit_history(history: Sequence[Turn], count: Callable[[Sequence[Turn]], int], budget: int) -> list[Turn]:
    """The most recent turns whose prompt takes at most `budget` tokens (`count` renders and counts).

    The oldest turns go first, and the kept part starts with someone else's turn, as training examples do.
    When even the last turn alone is too long, only its end is kept. Never raises for length.
    """
    history = list(history)
    if not history or count(history) <= budget:
        return history
    lo, hi = 1, len(history) - 1  # the smallest start that fits lies in [lo, hi], or none does
    if count(history[hi:]) <= budget:
        while lo < hi:
            mid = (lo + hi) // 2
            if count(history[mid:]) <= budget:
                hi = mid
            else:
                lo = mid + 1
        kept = history[hi:]
        while len(kept) > 1 and kept[0].is_self:
            kept = kept[1:]
        return kept
    return [_tail_that_fits(history[-1], count, budget)]


def _tail_that_fits(turn: Turn, count: Callable[[Sequence[Turn]], int], budget: int) -> Turn:
    """The turn with only as much of the end of its text as fits (binary search on characters)."""
    text = turn.text[-budget * 16 :]  # no token covers more than a few characters: a cheap first cut
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count([turn._replace(text=text[-mid:])]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return turn._replace(text=text[len(text) - lo :])


# ---------------------------------------------------------------- loading


def check_model_folder(base_model: str, model_dir: str | Path) -> str:
    """`adapter` (a LoRA adapter for `base_model`) or `merged` (a full model folder); UserError otherwise.

    Reads only small JSON files, so a wrong path fails in a second, before any weights load.
    """
    from mindupload.training import axolotl_config as train_config

    folder = Path(model_dir)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder. Train an adapter first with `snakemake train`.")
    if (folder / "adapter_config.json").is_file():
        if not (folder / "adapter_model.safetensors").is_file():
            raise UserError(f"{folder}: adapter_config.json but no adapter_model.safetensors; train again.")
        trained_on = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get(
            "base_model_name_or_path"
        )
        base = train_config.resolve_base_model(base_model)
        if trained_on and not same_model(trained_on, base):
            raise UserError(
                f"{folder}: this adapter was trained on {trained_on!r}, not on the configured base_model "
                f"{base_model!r}. Set `base_model` (or --base-model) to the model it was trained on."
            )
        return "adapter"
    if (folder / "config.json").is_file():
        return "merged"
    raise UserError(f"{folder}: neither a LoRA adapter ({', '.join(ADAPTER_FILES)}) nor a model folder (config.json).")


def same_model(trained_on: str, base: str) -> bool:
    """Whether an adapter's recorded base model names `base`. The recorded name is where the base was at
    training time: another machine's folder (a RunPod pod's), a bare folder name (a Hub model card), or the hub
    id of a model that is a local folder here; so a folder and a hub id that end in the same name match too.
    A real mismatch of the same name still fails, with a clear message, when the weights load."""
    if _model_id(trained_on) == _model_id(base):
        return True
    return _model_name(trained_on) == _model_name(base)


def _model_id(name: str) -> str:
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_absolute() or path.exists() else name


def _model_name(name: str) -> str:
    return Path(name.rstrip("/")).name


@dataclass
class Engine:
    """A loaded model and tokenizer, and how many tokens its prompts may take."""

    model: object
    tokenizer: object
    markers: Markers
    context: int  # tokens of prompt + reply
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def device(self) -> str:
        return str(self.model.device)

    def encode(self, pieces: Sequence[str]) -> list[int]:
        """A prompt's ids, tokenized piece by piece as in training (`tokenizer.encode_pieces`)."""
        from mindupload.model.tokenizer import encode_pieces

        return encode_pieces(self.tokenizer, pieces)

    def count(self, pieces: Sequence[str]) -> int:
        return len(self.encode(pieces))

    def budget(self, max_new_tokens: int) -> tuple[int, int]:
        """(prompt tokens, new tokens): the reply may take at most all but MIN_PROMPT_TOKENS of the window."""
        new = max(1, min(max_new_tokens, self.context - MIN_PROMPT_TOKENS))
        return self.context - new, new


def load(base_model: str, model_dir: str | Path, sequence_len: int | None = None) -> Engine:
    """The base model with the LoRA adapter on top (or a merged model folder), on CUDA when there is one."""
    import torch
    from transformers import AutoModelForCausalLM

    from mindupload.model import tokenizer as tokenizers
    from mindupload.training import axolotl_config as train_config

    kind = check_model_folder(base_model, model_dir)
    device, dtype = pick_device(torch)
    # Straight onto the GPU: a 7B model through host memory first would need its 15 GB there too.
    placement = {"device_map": {"": 0}} if device == "cuda" else {}
    name = train_config.resolve_base_model(base_model) if kind == "adapter" else str(Path(model_dir).resolve())
    try:
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **placement)
        if kind == "adapter":
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(model_dir))
    except (OSError, RuntimeError, ValueError) as e:  # OOM, a size mismatch, a damaged file: weights, not text
        raise UserError(f"{model_dir}: cannot load it onto {device} with {name!r}: {_first_line(e)}") from None
    has_tokenizer = kind == "merged" and (Path(model_dir) / "tokenizer_config.json").is_file()
    tok = tokenizers.load(name if has_tokenizer else train_config.resolve_base_model(base_model))
    context = getattr(model.config, "max_position_embeddings", None) or sequence_len or 2048
    if sequence_len:
        context = min(context, sequence_len)
    log.info("loaded %s (%s) on %s; context %d tokens", model_dir, kind, device, context)
    return Engine(model.eval(), tok, tokenizers.markers(tok), context)


def pick_device(torch) -> tuple[str, object]:
    """CUDA when there is one, in bfloat16 where the GPU has it (float16 on older ones), else the CPU in float32."""
    if not torch.cuda.is_available():
        return "cpu", torch.float32
    return "cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


# ---------------------------------------------------------------- generating


def stream(
    engine: Engine,
    prompt: Sequence[str],
    stops: Sequence[str],
    options: Options,
    seed: int | None = None,
    info: dict | None = None,
):
    """Cumulative visible reply text, as the model writes it after `prompt` (its pieces, `render.prompt_pieces`);
    ends at EOS, a new speaker line or the token limit. Closing the iterator (a browser's stop button) stops
    the model too. `info`, when given, gets `ids`: the generated token ids, filled in as they come."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    tok = engine.tokenizer
    stop = threading.Event()

    class _Stopped(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return stop.is_set()

    ids = torch.tensor([engine.encode(prompt)], device=engine.model.device)
    streamer = _TextSoFar(tok)
    if info is not None:
        info["ids"] = streamer.ids
    sampling = {"do_sample": True, "temperature": options.temperature, "top_p": options.top_p}
    kwargs = dict(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=options.max_new_tokens,
        **(sampling if options.temperature > 0 else {"do_sample": False}),
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        stopping_criteria=StoppingCriteriaList([_Stopped()]),
        streamer=streamer,
    )
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with engine.lock, torch.no_grad():
                if seed is not None:
                    torch.manual_seed(seed)
                engine.model.generate(**kwargs)
        except BaseException as e:  # handed to the reading side, which raises it
            failure.append(e)
            streamer.end()

    thread = threading.Thread(target=run, name="mindupload-generate", daemon=True)
    thread.start()
    return _read(streamer, stops, stop, thread, failure)


class _TextSoFar:
    """A transformers streamer that hands on the whole reply decoded so far after every token.

    transformers' TextIteratorStreamer hands on words, so a reply without spaces (or in a script without
    them) would appear only at the end; decoding everything again also lets a tokenizer revise earlier text.
    A token that ends inside a UTF-8 character waits for the next one.
    """

    def __init__(self, tokenizer, timeout: float = 600):
        import queue

        self.tokenizer, self.timeout = tokenizer, timeout
        self.ids: list[int] = []
        self.prompt_seen = False
        self.queue: queue.Queue = queue.Queue()

    def put(self, value) -> None:
        if not self.prompt_seen:  # generate() hands the prompt over first
            self.prompt_seen = True
            return
        self.ids.extend(value.reshape(-1).tolist())
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if not text.endswith("\ufffd"):
            self.queue.put(text)

    def end(self) -> None:
        self.queue.put(self.tokenizer.decode(self.ids, skip_special_tokens=True))
        self.queue.put(None)

    def __iter__(self) -> Iterator[str]:
        while (text := self.queue.get(timeout=self.timeout)) is not None:
            yield text


def _read(streamer, stops, stop: threading.Event, thread: threading.Thread, failure: list) -> Iterator[str]:
    text, shown = "", ""
    try:
        for text in streamer:
            visible, ended = split_reply(text, stops, final=False)
            if visible != shown:
                shown = visible
                yield shown
            if ended:
                return
        if failure:
            raise failure[0]
        visible, _ = split_reply(text, stops, final=True)
        if visible != shown:
            yield visible
    finally:
        stop.set()
        thread.join()


def generate(engine: Engine, prompt: Sequence[str], stops: Sequence[str], options: Options, seed: int) -> str:
    """The whole reply at once (sample replies)."""
    return next(reversed(list(stream(engine, prompt, stops, options, seed))), "")


@dataclass(frozen=True)
class Prepared:
    pieces: list[str]  # the prompt, as the texts tokenized one by one (`render.prompt_pieces`)
    stops: list[str]
    options: Options  # max_new_tokens fitted to the window
    turns_dropped: int
    trimmed_text: bool  # the last message itself was cut to fit
    trimmed_persona: bool = False  # the system prompt was cut to half the prompt's share of the window

    @property
    def prompt(self) -> str:
        return "".join(self.pieces)


def prepare(engine: Engine, history: Sequence[Turn], identity: Identity, options: Options) -> Prepared:
    """The prompt for `history` (rendered by the one renderer), trimmed to fit the context window: a persona
    may take half of the prompt's share, the conversation the rest, its oldest turns left out first."""
    prompt_budget, new_tokens = engine.budget(options.max_new_tokens)

    def bare(who: Identity) -> int:  # what opens every prompt: BOS, the system prompt
        return engine.count([render.head(who, engine.markers)])

    fitted = fit_persona(identity, bare, prompt_budget // 2)

    def count(turns: Sequence[Turn]) -> int:
        return engine.count(render.prompt_pieces(turns, fitted, engine.markers))

    kept = fit_history(history, count, prompt_budget)
    trimmed = bool(kept) and bool(history) and kept[-1].text != history[-1].text
    others = sorted({t.speaker for t in history if not t.is_self})
    return Prepared(
        pieces=render.prompt_pieces(kept, fitted, engine.markers),
        stops=render.stop_strings(fitted, others),
        options=Options(new_tokens, options.temperature, options.top_p),
        turns_dropped=len(history) - len(kept),
        trimmed_text=trimmed,
        trimmed_persona=fitted != identity,
    )


def fit_persona(identity: Identity, count: Callable[[Identity], int], budget: int) -> Identity:
    """`identity` with only as much of the start of its system prompt as keeps `count(identity)` within
    `budget` tokens (binary search on characters)."""
    if count(identity) <= budget:
        return identity
    text = identity.system_prompt
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(dataclasses.replace(identity, system_prompt=text[:mid])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return dataclasses.replace(identity, system_prompt=text[:lo])

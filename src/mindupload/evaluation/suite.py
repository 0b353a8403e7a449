"""Does it talk like you? The evaluation suite of rule `evaluate`: three conditions on held-out conversations.

- `base`: the base model as it is (the LoRA adapter switched off);
- `prompted`: the base model with a few of your training exchanges written after the system prompt (the "just
  prompt it" baseline);
- `tuned`: the base model with the trained adapter.

Scored on the validation split (conversations' latest turns, never trained on): the loss of your own replies by
token kind, reply ranking, turn-end accuracy (mindupload.evaluation.metrics), and replies generated from full
conversation histories (as the chat page builds them) for health, style, authorship and memorization. The same
code runs on a CPU with the demo model and on a GPU with a 7B one; the settings bound how much it does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mindupload import render
from mindupload.errors import UserError
from mindupload.evaluation import metrics
from mindupload.evaluation.metrics import CATEGORIES, CONTENT, END, TAG, Generated
from mindupload.render import Identity, Markers, Turn

log = logging.getLogger(__name__)

CONDITIONS = ("base", "prompted", "tuned")


@dataclass(frozen=True)
class Options:
    """config `evaluation` (workflow/schemas/config.schema.yaml has the meaning of each)."""

    examples: int = 200  # validation examples scored for loss and turn ends
    ranking_contexts: int = 32
    ranking_candidates: int = 5
    generations: int = 24
    max_new_tokens: int = 48
    prompt_tokens: int = 384  # most tokens of conversation history in a generation prompt (0: the whole window)
    temperature: float = 0.7
    top_p: float = 0.9
    prompt_turns: int = 8
    batch_size: int = 8
    show_examples: int = 0  # replies shown in the report (message text: off unless asked for)
    seed: int = 42

    @classmethod
    def from_json(cls, text: str) -> Options:
        values = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


# ---------------------------------------------------------------- reading the data


def read_examples(path: str | Path, limit: int | None = None) -> list[list[dict]]:
    from mindupload.training.check import read_examples as read

    examples = [[{"label": label, "text": text} for label, text in ex.pieces] for ex in read(path, "validation")]
    return examples[:limit] if limit else examples


def read_turns(path: str | Path):
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def conversations(rows: list[dict]) -> list[list[dict]]:
    """Turns grouped by conversation and session, in order."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["conversation_id"], row["session"]), []).append(row)
    return [sorted(g, key=lambda r: r["turn_index"]) for _, g in sorted(groups.items())]


def shots(rows: list[dict], identity: Identity, count: int) -> str:
    """`count` training exchanges (the other person's turn, then yours), evenly spread, as transcript lines."""
    pairs = []
    for conv in conversations([r for r in rows if r["split"] == "train"]):
        for prev, cur in itertools.pairwise(conv):
            if cur["is_self"] and not prev["is_self"]:
                pairs.append((prev, cur))
    if not pairs or count <= 0:
        return ""
    picks = np.unique(np.linspace(0, len(pairs) - 1, num=min(count, len(pairs))).round().astype(int))
    lines = []
    for i in picks:
        prev, cur = pairs[i]
        lines.append(render.line(identity.speaker(prev["sender"], False), prev["text"]))
        lines.append(render.line(identity.name, cur["text"]))
    return "\n".join(lines)


def _exchange_count(rows: list[dict]) -> int:
    return sum(
        1
        for conv in conversations([r for r in rows if r["split"] == "train"])
        for prev, cur in itertools.pairwise(conv)
        if cur["is_self"] and not prev["is_self"]
    )


def prompted_identity(identity: Identity, transcript: str) -> Identity:
    """The identity whose system prompt is followed by example exchanges (braces kept literal)."""
    if not transcript:
        return identity
    escaped = transcript.replace("{", "{{").replace("}", "}}")
    return dataclasses.replace(identity, system_prompt=f"{identity.system_prompt}\n{escaped}")


def with_head(segments: list[dict], old: str, new: str) -> list[dict]:
    first = segments[0]["text"]
    text = new + first[len(old) :] if first.startswith(old) else new + first
    return [{**segments[0], "text": text}, *segments[1:]]


@dataclass(frozen=True)
class Context:
    """A held-out own turn to answer: the conversation before it (as the chat would send it) and the reply."""

    history: tuple[Turn, ...]
    actual: str


def prepare_inputs(turns_path: str | Path, identity: Identity, options: Options) -> dict:
    """What the evaluation needs from the turns table, with speakers already mapped through `identity` (no
    sender names unless `use_real_names`, no timestamps): the generation contexts, the prompted baseline's
    exchanges, and your and the others' training turns. Written by a local rule, so the turns table itself never
    leaves this machine while the evaluation may run on a GPU elsewhere."""
    rows = read_turns(turns_path)
    contexts = generation_contexts(rows, identity, options.generations)
    return {
        "contexts": [{"history": [list(t) for t in c.history], "actual": c.actual} for c in contexts],
        "shots": (transcript := shots(rows, identity, options.prompt_turns)),
        "shot_exchanges": min(options.prompt_turns, _exchange_count(rows)) if transcript else 0,
        "own_train": [r["text"] for r in rows if r["split"] == "train" and r["is_self"]],
        "other_train": [r["text"] for r in rows if r["split"] == "train" and not r["is_self"]],
    }


def write_inputs(turns_path: str | Path, identity: Identity, options: Options, out: str | Path) -> None:
    from mindupload import files

    inputs = prepare_inputs(turns_path, identity, options)
    files.write_text_atomic(json.dumps(inputs, ensure_ascii=False) + "\n", out)


def read_inputs(path: str | Path) -> dict:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    data["contexts"] = [Context(tuple(Turn(*t) for t in c["history"]), c["actual"]) for c in data["contexts"]]
    return data


def generation_contexts(rows: list[dict], identity: Identity, limit: int) -> list[Context]:
    """Validation own turns that answer someone, with everything said before them in their conversation,
    evenly spread over the split when there are more than `limit`."""
    found = []
    for conv in conversations(rows):
        for i, row in enumerate(conv):
            if row["split"] == "validation" and row["is_self"] and i and not conv[i - 1]["is_self"]:
                history = tuple(
                    Turn(identity.speaker(r["sender"], r["is_self"]), r["is_self"], r["text"]) for r in conv[:i]
                )
                found.append(Context(history, row["text"]))
    if len(found) > limit:
        found = [found[i] for i in np.unique(np.linspace(0, len(found) - 1, num=limit).round().astype(int))]
    return found


# ---------------------------------------------------------------- token kinds


def token_kinds(tokenizer, text: str, identity: Identity, eos: str) -> tuple[list[int], list[str]]:
    """An own piece's token ids (tokenized alone, as axolotl does) and each token's kind: the speaker tag
    ("\\nElijah:"), the content, or the turn end (the newline or EOS that closes it)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    tag = len(render.own_turn_prefix(identity))
    end = len(text) - (len(eos) if text.endswith(eos) else 1 if text.endswith("\n") else 0)
    kinds = []
    for start, stop in enc["offset_mapping"]:
        if stop > end or start >= end:
            kinds.append(END)
        elif start < tag:
            kinds.append(TAG)
        else:
            kinds.append(CONTENT)
    return enc["input_ids"], kinds


# ---------------------------------------------------------------- scoring with the model


class Scorer:
    def __init__(self, engine, identity: Identity):
        self.engine, self.identity = engine, identity
        self.tok = engine.tokenizer
        self.markers: Markers = engine.markers

    @contextlib.contextmanager
    def condition(self, name: str):
        """The adapter off for `base` and `prompted`, on for `tuned`."""
        model = self.engine.model
        if name != "tuned" and hasattr(model, "disable_adapter"):
            with model.disable_adapter():
                yield
        else:
            yield

    def logprobs(self, batch: Sequence[Sequence[int]]):
        """Log-probability of each next token for each sequence (right-padded batch), as float32 numpy rows."""
        import torch

        width = max(len(ids) for ids in batch)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        ids = torch.tensor([list(s) + [pad] * (width - len(s)) for s in batch], device=self.engine.model.device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in batch], device=ids.device)
        with torch.no_grad():
            logits = self.engine.model(input_ids=ids, attention_mask=mask).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        target = ids[:, 1:]
        picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        best = logp.argmax(-1)
        return picked.cpu().numpy(), best.cpu().numpy()

    def example_turns(self, segments: list[dict]) -> list[dict]:
        """Per own turn of one example: summed negative log-likelihood and token count by kind, and whether
        the likeliest token where the turn ends is the one that ends it."""
        from mindupload.model.tokenizer import encode_pieces

        ids: list[int] = []
        spans = []
        for seg in segments:
            if seg["label"]:
                piece, kinds = token_kinds(self.tok, seg["text"], self.identity, self.markers.eos)
                spans.append((len(ids), kinds))
            else:
                piece = encode_pieces(self.tok, [seg["text"]])
            ids.extend(piece)
        context = self.engine.context
        if len(ids) > context:
            ids = ids[:context]
        picked, best = self.logprobs([ids])
        out = []
        for start, kinds in spans:
            record = {f"nll_{k}": 0.0 for k in CATEGORIES} | {f"n_{k}": 0 for k in CATEGORIES}
            record["end_correct"] = None
            for j, kind in enumerate(kinds):
                pos = start + j - 1  # logits at pos predict token pos + 1
                if pos < 0 or pos >= picked.shape[1]:
                    continue
                record[f"nll_{kind}"] -= float(picked[0, pos])
                record[f"n_{kind}"] += 1
                if kind == END and record["end_correct"] is None:
                    record["end_correct"] = bool(best[0, pos] == ids[pos + 1])
            if sum(record[f"n_{k}"] for k in CATEGORIES):
                out.append(record)
        return out

    def rank(self, context_ids: list[int], candidates: list[str]) -> list[float]:
        """Mean log-likelihood per token of each candidate reply (content and turn end) after the context. The
        context runs once; the candidates run as one batch on a copy of its key/value cache."""
        import torch

        pieces = [
            token_kinds(self.tok, f"\n{self.identity.name}: {t}\n", self.identity, self.markers.eos) for t in candidates
        ]
        width = max(len(ids) for ids, _ in pieces)
        context = context_ids[-max(1, self.engine.context - width) :]
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        device = self.engine.model.device
        with torch.no_grad():
            first = self.engine.model(input_ids=torch.tensor([context], device=device), use_cache=True)
            start = torch.log_softmax(first.logits[0, -1].float(), dim=-1)
            cache = first.past_key_values
            cache.batch_repeat_interleave(len(candidates))
            ids = torch.tensor([p + [pad] * (width - len(p)) for p, _ in pieces], device=device)
            mask = torch.tensor(
                [[1] * len(context) + [1] * len(p) + [0] * (width - len(p)) for p, _ in pieces], device=device
            )
            rest = torch.log_softmax(
                self.engine.model(input_ids=ids, attention_mask=mask, past_key_values=cache).logits.float(), dim=-1
            )
        scores = []
        for row, (ids_, kinds) in enumerate(pieces):
            values = [
                float(start[token]) if j == 0 else float(rest[row, j - 1, token])
                for j, (token, kind) in enumerate(zip(ids_, kinds, strict=True))
                if kind != TAG
            ]
            scores.append(float(np.mean(values)) if values else -math.inf)
        return scores

    def generate(self, contexts: Sequence[Context], identity: Identity, options: Options) -> list[Generated]:
        """Replies to each context's full history (fitted to the window as the chat page fits it), in batches."""
        import torch
        from transformers import StoppingCriteriaList

        from mindupload.serving import generation

        tok, out = self.tok, []
        engine = self.engine
        if options.prompt_tokens:
            window = min(engine.context, options.prompt_tokens + options.max_new_tokens)
            engine = dataclasses.replace(engine, context=window)
        wanted = generation.Options(options.max_new_tokens, options.temperature, options.top_p)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        for b in range(0, len(contexts), options.batch_size):
            chunk = contexts[b : b + options.batch_size]
            ready = [generation.prepare(engine, c.history, identity, wanted) for c in chunk]
            prompts = [self.engine.encode(r.pieces) for r in ready]
            width = max(len(p) for p in prompts)
            new = ready[0].options.max_new_tokens
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.engine.model.device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=ids.device)
            stops = [r.stops for r in ready]

            stopper = _NewTurn(tok, width, stops)
            torch.manual_seed(options.seed + b)
            with torch.no_grad():
                result = self.engine.model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=new,
                    do_sample=options.temperature > 0,
                    **({"temperature": options.temperature, "top_p": options.top_p} if options.temperature > 0 else {}),
                    eos_token_id=tok.eos_token_id,
                    pad_token_id=pad,
                    stopping_criteria=StoppingCriteriaList([stopper]),
                )
            for row, s in zip(result[:, width:].tolist(), stops, strict=True):
                ended_eos = tok.eos_token_id in row
                written = row[: row.index(tok.eos_token_id)] if ended_eos else row
                raw = tok.decode(written, skip_special_tokens=True)
                reply, new_turn = generation.split_reply(raw, s, final=True)
                limit = not ended_eos and not new_turn and len(written) >= new
                out.append(Generated(reply, raw, len(written), limit))
        return out


def _NewTurn(tok, width: int, stops: list[list[str]]):
    """A stopping criterion, per row of a batch: the model has started someone's turn (generation.split_reply)."""
    import torch
    from transformers import StoppingCriteria

    from mindupload.serving import generation

    class NewTurn(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            done = [
                generation.split_reply(tok.decode(row[width:], skip_special_tokens=True), s, final=True)[1]
                for row, s in zip(input_ids.tolist(), stops, strict=True)
            ]
            return torch.tensor(done, device=input_ids.device)

    return NewTurn()


# ---------------------------------------------------------------- the suite


def evaluate(
    engine,
    identity: Identity,
    validation: list[list[dict]],
    inputs: dict,
    options: Options,
) -> tuple[dict, dict]:
    """(metrics, replies): every number of metrics.json, and the generated replies per condition (for the
    report's opt-in examples; never written elsewhere)."""
    scorer = Scorer(engine, identity)
    transcript = inputs["shots"]
    prompted = prompted_identity(identity, transcript)
    old_head, new_head = render.head(identity, engine.markers), render.head(prompted, engine.markers)
    identities = {"base": identity, "prompted": prompted, "tuned": identity}
    examples = validation[: options.examples]
    contexts = inputs["contexts"][: options.generations]
    own_train, other_train = inputs["own_train"], inputs["other_train"]
    ranking_items = _ranking_items(examples, identity, engine, options)

    result: dict = {"loss": {}, "turn_end_accuracy": {}, "ranking": {}, "health": {}, "style": {}}
    result["memorization"], replies, timings = {}, {}, {}
    for name in CONDITIONS:
        started = time.monotonic()
        with scorer.condition(name):
            records = []
            for segments in examples:
                segs = with_head(segments, old_head, new_head) if name == "prompted" else segments
                records.extend(scorer.example_turns(segs))
            result["loss"][name] = _loss(records)
            ends = [1.0 if r["end_correct"] else 0.0 for r in records if r["end_correct"] is not None]
            result["turn_end_accuracy"][name] = metrics.bootstrap_mean(ends)
            rank_list = []
            for ctx_ids, candidates in ranking_items:
                if name == "prompted":
                    ctx_ids = _swap_head(ctx_ids, scorer, old_head, new_head)
                rank_list.extend(metrics.ranks([scorer.rank(ctx_ids, candidates)]))
            result["ranking"][name] = metrics.ranking_summary(rank_list, options.ranking_candidates)
            replies[name] = scorer.generate(contexts, identities[name], options)
        timings[name] = round(time.monotonic() - started, 1)
        log.info("%s: scored and generated in %.1f s", name, timings[name])

    real = [c.actual for c in contexts]
    labels = sorted({identity.name, identity.other_label, *(t.speaker for c in contexts for t in c.history)})
    result["style"]["real_profile"] = metrics.style_profile(real)
    for name in CONDITIONS:
        texts = [g.reply for g in replies[name]]
        result["health"][name] = metrics.health(replies[name], labels)
        result["style"][name] = metrics.style_distance(texts, real) | {"profile": metrics.style_profile(texts)}
        result["memorization"][name] = metrics.memorization(texts, own_train)
    result["memorization"]["real"] = metrics.memorization(real, own_train)
    from mindupload.evaluation import authorship

    result["authorship"] = authorship.verify(
        own_train, other_train, real, {n: [g.reply for g in replies[n]] for n in CONDITIONS}, seed=options.seed
    )
    result["counts"] = {
        "validation_examples": len(examples),
        "own_turns_scored": result["loss"]["tuned"][CONTENT]["n"],
        "ranking_contexts": len(ranking_items),
        "generation_contexts": len(contexts),
        "prompt_exchanges": inputs.get("shot_exchanges", 0),
    }
    result["seconds"] = timings
    return result, {"contexts": contexts, "replies": replies}


def _loss(records: list[dict]) -> dict:
    out = {}
    for kind in CATEGORIES:
        out[kind] = metrics.bootstrap_ratio([r[f"nll_{kind}"] for r in records], [r[f"n_{kind}"] for r in records])
    out["all"] = metrics.bootstrap_ratio(
        [sum(r[f"nll_{k}"] for k in CATEGORIES) for r in records],
        [sum(r[f"n_{k}"] for k in CATEGORIES) for r in records],
    )
    return out


def _swap_head(ids: list[int], scorer: Scorer, old: str, new: str) -> list[int]:
    from mindupload.model.tokenizer import encode_pieces

    old_ids, new_ids = encode_pieces(scorer.tok, [old]), encode_pieces(scorer.tok, [new])
    return new_ids + ids[len(old_ids) :] if ids[: len(old_ids)] == old_ids else new_ids + ids


def _ranking_items(examples: list[list[dict]], identity: Identity, engine, options: Options) -> list:
    """(context ids, [real reply, distractors...]) for up to `ranking_contexts` own turns: each context is the
    example up to the turn (its pieces tokenized as in training); distractors are your held-out replies from
    other examples nearest in length."""
    from mindupload.model.tokenizer import encode_pieces

    owns = []  # (example index, piece index, reply text)
    for e, segments in enumerate(examples):
        for p, seg in enumerate(segments):
            if seg["label"]:
                text = seg["text"].removesuffix(engine.markers.eos).strip("\n")
                owns.append((e, p, text.removeprefix(f"{identity.name}: ")))
    if len(owns) < options.ranking_candidates or len({e for e, _, _ in owns}) < 2:
        return []
    chosen = np.unique(np.linspace(0, len(owns) - 1, num=min(options.ranking_contexts, len(owns))).round().astype(int))
    lengths, groups = [len(t) for _, _, t in owns], [e for e, _, _ in owns]
    items = []
    for i in chosen:
        e, p, text = owns[i]
        others = metrics.length_matched(lengths, int(i), groups, options.ranking_candidates - 1)
        if len(others) < options.ranking_candidates - 1:
            continue
        context = encode_pieces(engine.tokenizer, [s["text"] for s in examples[e][:p]])
        items.append((context, [text, *(owns[j][2] for j in others)]))
    return items


def run(
    base_model: str,
    adapter: str | Path,
    identity: Identity,
    validation: str | Path,
    inputs: str | Path,
    out_json: str | Path,
    out_html: str | Path,
    options: Options,
    sequence_len: int | None = None,
) -> dict:
    from mindupload import files
    from mindupload.evaluation import report
    from mindupload.serving import generation

    started = time.monotonic()
    examples = read_examples(validation)
    if not examples:
        raise UserError(f"{validation}: no validation examples to evaluate on; raise split.validation_fraction.")
    engine = generation.load(base_model, adapter, sequence_len)
    result, replies = evaluate(engine, identity, examples, read_inputs(inputs), options)
    result["settings"] = dataclasses.asdict(options)
    result["training"] = _training_summary(adapter)
    result["curve"] = _curve(adapter)
    result["seconds"]["total"] = round(time.monotonic() - started, 1)
    files.write_text_atomic(json.dumps(result, indent=2, sort_keys=True, allow_nan=False) + "\n", out_json)
    files.write_text_atomic(report.html_page(result, replies, identity, options), out_html)
    log.info("evaluation written to %s and %s in %.0f s", out_json, out_html, result["seconds"]["total"])
    return result


def _training_summary(adapter: str | Path) -> dict:
    path = Path(adapter) / "training.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _curve(adapter: str | Path) -> list[dict]:
    """Validation loss at every evaluation step of training (trainer_state.json beside the adapter)."""
    path = Path(adapter) / "trainer_state.json"
    if not path.is_file():
        return []
    history = json.loads(path.read_text(encoding="utf-8")).get("log_history", [])
    return [{"step": h["step"], "eval_loss": h["eval_loss"]} for h in history if "eval_loss" in h and "step" in h]

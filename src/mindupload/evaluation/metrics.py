"""The evaluation's statistics, on plain numbers and strings (no model): bootstrap intervals, ranking scores,
reply health, style features and their distance, memorization. docs/evaluation.md says what each one means."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Token categories of an own turn ("\nElijah: good\n"): the speaker tag, what was said, where the turn ends.
TAG, CONTENT, END = "tag", "content", "end"
CATEGORIES = (CONTENT, TAG, END)

PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*>|<media>")  # the redaction step's typed placeholders, the media one
LAUGHTER = re.compile(r"\b(?:a?ha(?:ha)+h?|he(?:he)+|hi(?:hi)+|lol+|lmao+|mdr+|xd+|ja(?:ja)+|jk)\b|😂|🤣", re.I)
EMOJI = re.compile("[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f000-\U0001f2ff\U0001f900-\U0001f9ff\u2764\u263a]")
WORD = re.compile(r"\w+(?:['’]\w+)?", re.UNICODE)


# ---------------------------------------------------------------- intervals


def bootstrap_ratio(
    numerators: Sequence[float], denominators: Sequence[float], *, resamples: int = 1000, seed: int = 0
) -> dict:
    """sum(num) / sum(den) (a mean per token over turns), with a percentile bootstrap 95% interval that
    resamples turns (a turn's tokens move together)."""
    num = np.asarray(numerators, dtype=np.float64)
    den = np.asarray(denominators, dtype=np.float64)
    if den.sum() <= 0:
        return {"value": None, "low": None, "high": None, "n": len(den)}
    value = float(num.sum() / den.sum())
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(num), size=(resamples, len(num)))
    nums, dens = num[picks].sum(axis=1), den[picks].sum(axis=1)
    ratios = nums[dens > 0] / dens[dens > 0]
    low, high = np.percentile(ratios, [2.5, 97.5])
    return {"value": value, "low": float(low), "high": float(high), "n": len(den)}


def bootstrap_mean(values: Sequence[float], *, resamples: int = 1000, seed: int = 0) -> dict:
    return bootstrap_ratio(values, [1.0] * len(values), resamples=resamples, seed=seed)


def binomial_interval(successes: int, trials: int) -> dict:
    """Wilson score 95% interval of a share."""
    if trials == 0:
        return {"value": None, "low": None, "high": None, "n": 0}
    z, p = 1.959964, successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return {"value": p, "low": max(0.0, centre - half), "high": min(1.0, centre + half), "n": trials}


# ---------------------------------------------------------------- ranking


def ranks(scores: Sequence[Sequence[float]]) -> list[int]:
    """1-based rank of candidate 0 (the real reply) among each row's candidates; ties count against it."""
    out = []
    for row in scores:
        real = row[0]
        out.append(1 + sum(1 for other in row[1:] if other >= real))
    return out


def ranking_summary(rank_list: Sequence[int], candidates: int) -> dict:
    hits = [1.0 if r == 1 else 0.0 for r in rank_list]
    return {
        "accuracy_at_1": bootstrap_mean(hits),
        "mrr": bootstrap_mean([1.0 / r for r in rank_list]),
        "chance_accuracy": 1.0 / candidates,
        "chance_mrr": sum(1.0 / k for k in range(1, candidates + 1)) / candidates,
        "candidates": candidates,
    }


def length_matched(lengths: Sequence[int], index: int, groups: Sequence[int], count: int) -> list[int]:
    """`count` indices of other items (another group: another conversation context) whose length is nearest to
    item `index`'s, nearest first; ties by index, so the choice is deterministic."""
    target = lengths[index]
    pool = [j for j in range(len(lengths)) if groups[j] != groups[index]]
    pool.sort(key=lambda j: (abs(lengths[j] - target), j))
    return pool[:count]


# ---------------------------------------------------------------- generated replies


@dataclass(frozen=True)
class Generated:
    reply: str  # what the user would see (cut where a new turn starts)
    raw: str  # all the model wrote
    new_tokens: int
    hit_limit: bool  # stopped by max_new_tokens, not by EOS or a new turn


def health(replies: Sequence[Generated], labels: Sequence[str]) -> dict:
    """Shares of replies that are empty, hit the length limit, contain a speaker label, a redaction
    placeholder, or repeat themselves."""
    label = re.compile("|".join(rf"(?:^|\W){re.escape(name)}\s*:" for name in labels)) if labels else None
    checks = {
        "empty": [not r.reply.strip() for r in replies],
        "hit_length_limit": [r.hit_limit for r in replies],
        "speaker_label": [bool(label and label.search(r.reply)) for r in replies],
        "placeholder": [bool(PLACEHOLDER.search(r.reply)) for r in replies],
        "repetitive": [repeats(r.reply) for r in replies],
    }
    return {name: binomial_interval(sum(flags), len(flags)) for name, flags in checks.items()}


def repeats(text: str, n: int = 4) -> bool:
    """A line said twice, or a run of `n` words said twice."""
    lines = [line.strip().lower() for line in text.split("\n") if line.strip()]
    if len(lines) != len(set(lines)):
        return True
    grams = ngrams(words(text), n)
    return len(grams) != len(set(grams))


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


# ---------------------------------------------------------------- style


STYLE_FEATURES = ("chars", "words", "lines", "lowercase_start", "emoji", "punctuation", "laughter", "question")


def style(text: str) -> dict[str, float]:
    """Surface style of one reply."""
    stripped = text.strip()
    letters = [ch for ch in stripped if ch.isalpha()]
    return {
        "chars": float(len(stripped)),
        "words": float(len(words(stripped))),
        "lines": float(len([line for line in stripped.split("\n") if line.strip()])),
        "lowercase_start": float(bool(letters) and letters[0].islower()),
        "emoji": float(bool(EMOJI.search(stripped))),
        "punctuation": float(bool(re.search(r"[.!?…]\s*$", stripped))),  # ends with sentence punctuation
        "laughter": float(bool(LAUGHTER.search(stripped))),
        "question": float("?" in stripped),
    }


def style_profile(texts: Sequence[str]) -> dict[str, float]:
    rows = [style(t) for t in texts]
    return {f: float(np.mean([r[f] for r in rows])) if rows else math.nan for f in STYLE_FEATURES}


def style_distance(generated: Sequence[str], real: Sequence[str]) -> dict:
    """Mean over features of |mean(generated) - mean(real)| / spread, where the spread is the real replies'
    standard deviation (for the counts, of their logarithm; for the yes/no features, at least 0.1)."""
    gen = [style(t) for t in generated]
    ref = [style(t) for t in real]
    per_feature = {}
    for f in STYLE_FEATURES:
        a = np.array([r[f] for r in gen])
        b = np.array([r[f] for r in ref])
        if f in ("chars", "words", "lines"):
            a, b = np.log1p(a), np.log1p(b)
        spread = max(float(b.std()), 0.1) if len(b) else 1.0
        per_feature[f] = float(abs(a.mean() - b.mean()) / spread) if len(a) and len(b) else math.nan
    return {"distance": float(np.mean(list(per_feature.values()))), "per_feature": per_feature}


# ---------------------------------------------------------------- memorization


def memorization(replies: Sequence[str], training: Sequence[str], n: int = 8) -> dict:
    """Share of (non-empty) replies equal to a training turn, and sharing a run of `n` words with one."""
    exact = {" ".join(words(t)) for t in training if words(t)}
    grams = {g for t in training for g in ngrams(words(t), n)}
    said = [r for r in replies if words(r)]
    copied = [" ".join(words(r)) in exact for r in said]
    overlap = [any(g in grams for g in ngrams(words(r), n)) for r in said]
    return {
        "exact": binomial_interval(sum(copied), len(said)),
        f"overlap_{n}gram": binomial_interval(sum(overlap), len(said)),
    }

"""Authorship verification: does a character n-gram classifier, trained to tell your messages from others', take
the clone's replies for yours?

The classifier (scikit-learn: tf-idf of character 2-4-grams within word bounds, logistic regression) learns your
training turns against the other people's training turns and the base model's replies. The base model's replies
it scores are never the ones it learnt from: contexts are split in two folds, and each fold is scored by the
classifier trained with the other fold's base replies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_TEXTS = 4  # per class: fewer and the classifier says nothing


def verify(
    own_train: Sequence[str],
    other_train: Sequence[str],
    real_heldout: Sequence[str],
    generated: dict[str, Sequence[str]],
    *,
    base: str = "base",
    seed: int = 0,
) -> dict | None:
    """P(yours) for the real held-out replies and for each condition's replies (one per context, same order as
    `real_heldout`); `position` of each condition between the base model (0) and your real replies (1); and the
    AUC of real-vs-condition (0.5: the classifier cannot tell them apart). None when there is too little text."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline

    own = [t for t in own_train if t.strip()]
    other = [t for t in other_train if t.strip()]
    n = len(real_heldout)
    if len(own) < MIN_TEXTS or len(other) < MIN_TEXTS or n < 2:
        return None
    fold = np.arange(n) % 2
    scores = {name: np.full(n, np.nan) for name in ("real", *generated)}
    for k in (0, 1):
        negatives = other + [t for t, f in zip(generated[base], fold, strict=True) if f != k and t.strip()]
        model = make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=False, sublinear_tf=True, min_df=1),
            LogisticRegression(max_iter=1000, class_weight="balanced", random_state=seed),
        )
        model.fit(own + negatives, [1] * len(own) + [0] * len(negatives))
        rows = np.flatnonzero(fold == k)
        for name, texts in (("real", real_heldout), *generated.items()):
            scores[name][rows] = model.predict_proba([texts[i] for i in rows])[:, 1]
    mean = {name: float(np.mean(values)) for name, values in scores.items()}
    span = mean["real"] - mean[base]
    out = {"p_yours": mean, "position": {}, "auc_real_vs": {}, "texts": {"own": len(own), "other": len(other)}}
    for name in generated:
        out["position"][name] = (mean[name] - mean[base]) / span if abs(span) > 1e-9 else None
        labels = [1] * n + [0] * n
        out["auc_real_vs"][name] = float(roc_auc_score(labels, np.concatenate([scores["real"], scores[name]])))
    return out

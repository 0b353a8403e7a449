"""Recall and precision of redaction on the labelled test set (tests/pii_corpus.py)."""

from __future__ import annotations

import pytest
from pii_corpus import TYPES, corpus, held_out_corpus, score

from mindupload import config
from mindupload.privacy.redact import RedactOptions, Redactor

TARGET_RECALL = {"PHONE": 0.98, "EMAIL": 0.98, "URL": 0.98, "CARD": 0.98, "IBAN": 0.95, "ADDRESS": 0.9}


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    cfg = config.validate({"me": ["Me"], "sources": {"a": {"path": "x"}}})
    return Redactor(RedactOptions.from_config(cfg))


@pytest.fixture(scope="module")
def result(redactor):
    return score(corpus(), redactor.spans)


def test_the_set_plants_at_least_200_items_of_every_type(result):
    assert all(result.planted[t] >= 200 for t in TYPES), result.planted


@pytest.mark.parametrize("type_", TYPES)
def test_recall_and_precision(result, type_):
    assert result.recall(type_) >= TARGET_RECALL[type_], (type_, result.missed[type_][:10])
    assert result.precision(type_) >= 0.95, type_


# Measured on the held-out set (docs/privacy.md): floors so that a change cannot quietly make them worse.
# Addresses are low on purpose: the held-out set holds forms the recognizer does not know.
HELD_OUT_RECALL = {"PHONE": 0.98, "EMAIL": 0.98, "URL": 0.98, "CARD": 0.98, "IBAN": 0.98, "ADDRESS": 0.3}


@pytest.fixture(scope="module")
def held_out(redactor):
    return score(held_out_corpus(), redactor.spans)


@pytest.mark.parametrize("type_", TYPES)
def test_held_out_recall(held_out, type_):
    assert held_out.planted[type_] >= 200
    assert held_out.recall(type_) >= HELD_OUT_RECALL[type_], (type_, held_out.missed[type_][:10])


def test_held_out_precision(held_out):
    assert held_out.precision("PHONE") >= 0.8  # 0.82: IMEIs, barcodes, amounts; see docs/privacy.md
    assert all(held_out.precision(t) >= 0.95 for t in TYPES if t != "PHONE" and held_out.predicted[t])

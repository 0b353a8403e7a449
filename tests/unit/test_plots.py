"""The report's pictures: counts from the tables, drawn as SVG, never a message's text or a sender's name."""

from datetime import UTC, datetime
from xml.etree import ElementTree

import pyarrow as pa

from mindupload.dataset import plots

TEXT, NAME = "meet me at the canary bakery", "Canary McSender"


def messages() -> pa.Table:
    stamps = [datetime(2024, 1, 5, tzinfo=UTC)] * 3 + [datetime(2024, 3, 9, tzinfo=UTC)]
    return pa.table(
        {
            "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "source": ["anna", "anna", "marco", "anna"],
            "sender": [NAME] * 4,
            "text": [TEXT] * 4,
        }
    )


def turns() -> pa.Table:
    return pa.table(
        {
            "timestamp": pa.array([datetime(2024, 1, 5, tzinfo=UTC)] * 4, pa.timestamp("us", tz="UTC")),
            "split": ["train", "train", "train", "validation"],
            "is_self": [True, False, True, True],
            "sender": [NAME] * 4,
            "text": [TEXT] * 4,
        }
    )


def bars(svg: str) -> dict[str, float]:
    """Each bar's tooltip ("group, series: value") -> value, from the SVG itself."""
    root = ElementTree.fromstring(svg)
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    return {t.rsplit(": ", 1)[0]: float(t.rsplit(": ", 1)[1]) for t in titles}


def test_tally_counts_rows_per_group_and_series():
    assert plots.tally(messages(), "month", "source") == {"2024-01": {"anna": 2, "marco": 1}, "2024-03": {"anna": 1}}


def test_messages_per_month_draws_one_bar_per_month_and_source():
    assert bars(plots.messages_per_month(messages())) == {
        "2024-01, anna": 2,
        "2024-01, marco": 1,
        "2024-03, anna": 1,
        "2024-03, marco": 0,
    }


def test_turn_plots_count_splits_and_sides():
    assert bars(plots.turns_by_split(turns())) == {"2024-01, train": 3, "2024-01, validation": 1}
    assert bars(plots.own_vs_other(turns())) == {
        "train, yours": 2,
        "train, others'": 1,
        "validation, yours": 1,
        "validation, others'": 0,
    }


def test_the_length_histogram_labels_buckets_and_the_overflow():
    histogram = [{"from": 0, "to": 511, "count": 4}, {"from": 512, "to": 1023, "count": 1}]
    drawn = bars(plots.segment_lengths([*histogram, {"from": 1025, "to": 1400, "count": 2}], 1024))
    assert drawn == {"0–511, examples": 4, "512–1023, examples": 1, ">1024, examples": 2}


def test_no_plot_shows_text_or_names():
    for svg in (plots.messages_per_month(messages()), plots.turns_by_split(turns()), plots.own_vs_other(turns())):
        assert TEXT not in svg and NAME not in svg and "Canary" not in svg

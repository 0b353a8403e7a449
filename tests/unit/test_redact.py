"""Redaction of personal data and names in the message table."""

from __future__ import annotations

import pytest
from messages import make_messages

from mindupload import config
from mindupload.privacy.recognizers import card_ok, find_cards, find_ibans, iban_ok, luhn_ok, phone_finder
from mindupload.privacy.redact import RedactOptions, Redactor, name_terms, redact_table, render_report


def options(**privacy) -> RedactOptions:
    cfg = config.validate({"me": ["Elijah Moreau"], "sources": {"a": {"path": "x"}}, "privacy": privacy})
    return RedactOptions.from_config(cfg)


def test_typed_placeholders_replace_items_and_keep_the_message():
    red = Redactor(options())
    text, counts = red.redact(
        "call +33 6 12 34 56 78 or mail anna.k@example.com, pics on https://example.com/a. IBAN "
        "DE89 3704 0044 0532 0130 00, card 4111-1111-1111-1111, I'm at 12 rue de la Paix, 75002 Paris",
        scan_pii=True,
    )
    assert text == ("call <PHONE> or mail <EMAIL>, pics on <URL>. IBAN <IBAN>, card <CARD>, I'm at <ADDRESS>")
    assert counts == {"PHONE": 1, "EMAIL": 1, "URL": 1, "IBAN": 1, "CARD": 1, "ADDRESS": 1}


def test_checksums_decide_for_cards_and_ibans():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert card_ok("378282246310005") and not card_ok("1234567812345670")  # Luhn-valid but no issuer range
    assert find_cards("4111 1111 1111 1112") == []
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82 WEST 1234 5698 7654 33")
    assert find_ibans("DE89370400440532013000") == [(0, 22)]
    assert find_ibans("DE89 3704 0044 0532 0130 00 IBAN") == [(0, 27)]  # stops at the country's length


def test_phone_numbers_need_a_valid_number_for_one_of_the_regions():
    fr_only = phone_finder(["FR"])
    assert fr_only("06 12 34 56 78") == [(0, 14)]
    assert fr_only("(201) 555-0123") == []  # a US number in national notation: not a French one
    assert fr_only("+1 201-555-0123") == [(0, 15)]  # any country with its code
    assert fr_only("order 0612345678 shipped") == []
    assert fr_only("on 12/03/2024 at 10:45") == []


def test_only_the_configured_sides_and_types_are_scanned():
    table = make_messages(
        [
            ("c", "Anna Keller", False, "mail me at anna@example.com"),
            ("c", "Elijah Moreau", True, "mine: eli@example.com"),
        ]
    )
    redacted, report = redact_table(table, options())
    assert redacted.column("text").to_pylist() == ["mail me at <EMAIL>", "mine: eli@example.com"]
    assert report["replaced"] == {"other": {"EMAIL": 1}, "own": {}}
    both, _ = redact_table(table, options(redact_own=True))
    assert both.column("text").to_pylist()[1] == "mine: <EMAIL>"
    no_email, _ = redact_table(table, options(redact_types=["PHONE"]))
    assert no_email.column("text").to_pylist()[0] == "mail me at anna@example.com"


def test_blocklist_always_and_allowlist_never():
    red = Redactor(
        options(blocklist=["Croix-Rousse", "secret project"], allowlist=["example.org", "+33 1 00 00 00 00"])
    )
    text, counts = red.redact(
        "the Secret Project near croix-rousse: see example.org or https://example.com, shop +33 1 00 00 00 00",
        scan_pii=True,
    )
    assert text == "the <REDACTED> near <REDACTED>: see example.org or <URL>, shop +33 1 00 00 00 00"
    assert counts == {"REDACTED": 2, "URL": 1}
    # The blocklist applies to own messages too, where personal data is not scanned by default.
    assert red.redact("croix-rousse at 9", scan_pii=False)[0] == "<REDACTED> at 9"


def test_other_names_become_the_label_but_never_the_users_own():
    table = make_messages(
        [
            ("c", "Anna Keller", False, "tell Elijah that anna keller says hi"),
            ("c", "Elijah Moreau", True, "Anna! and Annabelle, and ANNA's bike"),
            ("g", "Elijah Smith", False, "Elijah here"),
        ]
    )
    redacted, report = redact_table(table, options())
    assert redacted.column("text").to_pylist() == [
        "tell Elijah that friend says hi",
        "friend! and Annabelle, and friend's bike",
        "Elijah here",  # another Elijah: the user's first name is never replaced
    ]
    assert report["replaced"]["own"] == {"NAME": 2}
    assert name_terms(["Jean-Luc Picard"], []) == ["Jean-Luc", "Jean-Luc Picard"]
    assert name_terms(["Anna Keller", "Al B", "Elijah Smith"], ["Elijah Moreau"]) == [
        "Al B",
        "Anna",
        "Anna Keller",
        "Elijah Smith",
    ]


def test_a_sender_named_with_an_emoji_leaves_that_emoji_alone():
    """Contacts saved as 🤓 or ❤️ are common: only word-like names are replaced."""
    table = make_messages(
        [
            ("c", "🤓", False, "see you 🤓 ❤️"),
            ("c", "❤️", False, "❤️❤️"),
            ("c", "Elijah Moreau", True, "love you ❤️ 🤓"),
            ("c", "Mum ❤️", False, "Mum ❤️ here"),
        ]
    )
    redacted, _ = redact_table(table, options())
    assert redacted.column("text").to_pylist() == ["see you 🤓 ❤️", "❤️❤️", "love you ❤️ 🤓", "friend here"]
    assert name_terms(["🤓", "❤️", "12345", "Mum ❤️"], []) == ["Mum", "Mum ❤️"]


def test_names_are_left_alone_with_real_names_or_when_turned_off():
    cfg = config.validate({"me": ["Eli"], "sources": {"a": {"path": "x"}}, "identity": {"use_real_names": True}})
    assert RedactOptions.from_config(cfg).name_label == ""
    assert options(replace_names=False).name_label == ""


def test_report_counts_without_quoting():
    table = make_messages([("c", "Anna Keller", False, "my number is +44 7400 123456 and card 4111111111111111")])
    _, report = redact_table(table, options())
    markdown = render_report(report)
    assert "| `<PHONE>` | 1 | 0 |" in markdown and "| `<CARD>` | 1 | 0 |" in markdown
    for secret in ("7400", "4111", "Anna"):
        assert secret not in markdown and secret not in str(report)


@pytest.mark.parametrize(
    "text",
    ["see you on 12/03/2024 at 10:45", "it cost €1,299.00", "updated to v2.14.3", "open main.py", "e.g. this one"],
)
def test_ordinary_text_is_left_alone(text):
    assert Redactor(options()).redact(text, scan_pii=True) == (text, {})


def test_excluded_contacts_mentioned_by_others_become_the_label_too():
    table = make_messages([("g", "Zoe Park", False, "Victor is coming, victor ecks himself")])
    redacted, _ = redact_table(table, options(exclude_contacts=["Victor Ecks"]))
    assert redacted.column("text").to_pylist() == ["friend is coming, friend himself"]

"""Recognizers of personal data in chat text: each finds (start, end) spans of one type in a string.

Phone numbers come from Google's libphonenumber (`phonenumbers`), which knows every country's numbering
plan; IBANs are checked with ISO 13616's mod-97 and each country's length, card numbers with Luhn and the
card networks' number ranges; emails, URLs and street addresses are regular expressions. Each recognizer
also has a cheap RE2 `prefilter` that pyarrow runs over a whole column at once, so the Python code only
sees the few messages that might hold something (see `mindupload.privacy.redact`).

Why not Presidio: its analyzer engine needs a spaCy model (a download: none can be had offline), its email
and URL validation fetches the public suffix list over the network on first use, and importing it takes
about 13 s; its pattern recognizers alone are the same ideas as these. docs/privacy.md has the numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import phonenumbers

Span = tuple[int, int]


@dataclass(frozen=True)
class Recognizer:
    type: str  # the placeholder's name: <TYPE>
    prefilter: str  # RE2 pattern: a message that does not match it holds nothing of this type
    find: Callable[[str], list[Span]]


# --- email -------------------------------------------------------------------------------------------

EMAIL = re.compile(
    r"(?<![\w.+'-])[\w.%+'-]*\w@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,24}(?![\w-])",
)


def find_emails(text: str) -> list[Span]:
    return [m.span() for m in EMAIL.finditer(text)]


# --- URL -----------------------------------------------------------------------------------------------

# Top-level domains recognised on addresses written without a scheme ("amazon.de/x"). Left out on purpose:
# TLDs that are also common file extensions (py, sh, md, rs, js is none), so that "main.py" stays.
BARE_TLDS = (  # noqa: SIM905 -- a list literal of 90 strings reads worse
    "com net org edu gov mil int info biz name pro io co ai app dev me tv fm ly gl gg to cc xyz online site shop "
    "store blog news tech club live page link art cloud uk de fr it es nl be ch at pt pl se no dk fi ie is cz sk "
    "hu ro bg gr hr si lt lv ee ru ua tr il br ar cl mx pe ve uy ca us au nz jp cn kr in sg hk tw za ng ke eu"
).split()
_HOST = r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+"
_PATH = r"(?:[/?#][^\s<>\"']*)?"
_SCHEME_URL = r"(?:https?|ftp)://[^\s<>\"']+"  # anything up to white space
_WWW_URL = rf"www\.{_HOST}[^\W\d_]{{2,24}}{_PATH}"
_BARE_URL = rf"{_HOST}(?:{'|'.join(BARE_TLDS)})(?![\w@-]){_PATH}"  # a bare domain with a known TLD
URL = re.compile(rf"(?i)(?<![\w@.-])(?:{_SCHEME_URL}|{_WWW_URL}|{_BARE_URL})")
TRAILING = ".,;:!?'\"*"


def find_urls(text: str) -> list[Span]:
    spans = []
    for m in URL.finditer(text):
        start, end = m.span()
        end = start + len(_trim_url(text[start:end]))
        spans.append((start, end))
    return spans


def _trim_url(url: str) -> str:
    """Drop the sentence's punctuation after a URL, and a closing bracket the URL did not open."""
    while url:
        closing = url[-1] in ")]}" and url.count(url[-1]) > url.count({")": "(", "]": "[", "}": "{"}[url[-1]])
        if url[-1] in TRAILING or closing:
            url = url[:-1]
        else:
            break
    return url


# --- phone numbers ---------------------------------------------------------------------------------

# Words just before a number that say it is a reference, not a phone number ("order 4155550123").
NOT_A_PHONE_BEFORE = re.compile(
    r"(?i)(?:#|\bno\.|\bnr\.?|\bn\.|\bn[º°]|\b(?:order|invoice|tracking|ref|reference|id|code|ticket|account|"
    r"booking|version|build|release|serial|isbn|timestamp|commande|facture|ordine|fattura|pedido|factura|"
    r"\w*(?:bestell|auftrags|kunden|rechnungs)nummer|bestellung|rechnung))(?:\s+(?:is|number|no\.|nr\.?))?"
    r"\s*[:#]?\s*$"
)
# A run of digits, spaces, dots, dashes, slashes and brackets that may be a phone number: what libphonenumber
# is asked about. Its start may be + or 00 (a country code follows).
PHONE_CANDIDATE = re.compile(r"(?<![\w+])(?:\+|(?<!\d)\()?\d(?:[ \t.\-/]{0,2}\(?\d\)?){5,16}(?![\w])")
DATE_OR_TIME = re.compile(r"\d{1,4}([./-])\d{1,2}\1\d{1,4}|\d{1,2}:\d{2}")
MAX_TRIMMED_GROUPS = 2  # "06 12 34 56 78 2 times": also try the candidate without its last groups


def phone_finder(regions: Iterable[str]) -> Callable[[str], list[Span]]:
    """Numbers valid in one of `regions` in national notation, or possible ones (the right length for their
    country: reserved and unassigned ranges too) written with a + or 00 country code.

    Candidates come from one regular expression; libphonenumber's parser and its per-country validity
    metadata decide. (Its PhoneNumberMatcher does the same but costs about 7 ms a message for 17 regions.)
    """
    regions = tuple(regions)

    def find_phones(text: str) -> list[Span]:
        spans = []
        for m in PHONE_CANDIDATE.finditer(text):
            span = _valid_prefix(text, m.start(), m.group(), regions)
            if span is not None and not _is_reference(text, *span):
                spans.append(span)
        return spans

    return find_phones


def _valid_prefix(text: str, start: int, candidate: str, regions: tuple[str, ...]) -> Span | None:
    """The span of the longest valid phone number at the candidate's start (whole, or less its last groups)."""
    for _ in range(MAX_TRIMMED_GROUPS + 1):
        if DATE_OR_TIME.fullmatch(candidate) is None and _is_valid_phone(candidate, regions):
            return start, start + len(candidate)
        cut = max(candidate.rfind(" "), candidate.rfind("-"), candidate.rfind("."), candidate.rfind("/"))
        if cut <= 0:
            return None
        candidate = candidate[:cut].rstrip(" .-/")
    return None


def _is_valid_phone(candidate: str, regions: tuple[str, ...]) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    if digits < 6:
        return False
    if candidate.startswith("+") or candidate.startswith("00"):
        number = "+" + candidate[2:] if candidate.startswith("00") else candidate
        return _parses_valid(number, None)
    if _single_digit_groups(candidate) >= 2:  # "4 8 15 16 23 42"
        return False
    return any(_parses_valid(candidate, region) for region in regions)


def _parses_valid(candidate: str, region: str | None) -> bool:
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return False
    if region is None:  # written with its country code: the + is signal enough for any possible number
        return phonenumbers.is_possible_number(number)
    return phonenumbers.is_valid_number_for_region(number, region)


def _single_digit_groups(candidate: str) -> int:
    return sum(len(g) == 1 for g in re.split(r"[ \t.\-/()]+", candidate) if g)


def _is_reference(text: str, start: int, end: int) -> bool:
    """A number right after 'order', '#', 'invoice', ..., or one that starts with a year and a dash, is a
    reference rather than a phone number."""
    raw = text[start:end]
    if raw.startswith(("+", "00")):
        return False
    if re.match(r"(?:19|20)\d\d(?:[-/]|(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b)", raw):  # 2024-..., 20240312
        return True
    return bool(NOT_A_PHONE_BEFORE.search(text[max(0, start - 30) : start]))


# --- IBAN ----------------------------------------------------------------------------------------------

# ISO 13616 lengths by country (the SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
IBAN_CANDIDATE = re.compile(r"(?i)(?<![\w])([a-z]{2})(\d{2})((?:[ -]?[a-z0-9]){8,32})")


def find_ibans(text: str) -> list[Span]:
    spans = []
    for m in IBAN_CANDIDATE.finditer(text):
        country = m.group(1).upper()
        length = IBAN_LENGTHS.get(country)
        if length is None:
            continue
        end = _end_after_chars(text, m.start(), length)
        if end is None or (end < len(text) and text[end].isalnum()):
            continue
        if iban_ok(text[m.start() : end]):
            spans.append((m.start(), end))
    return spans


def _end_after_chars(text: str, start: int, count: int) -> int | None:
    """The index just past the `count`-th letter or digit from `start`, skipping single spaces and dashes."""
    seen = 0
    for i in range(start, len(text)):
        c = text[i]
        if c.isascii() and c.isalnum():
            seen += 1
            if seen == count:
                return i + 1
        elif c not in " -" or text[i - 1] in " -":
            return None
    return None


def iban_ok(iban: str) -> bool:
    """The ISO 7064 mod-97 check of an IBAN, with its country's length."""
    iban = re.sub(r"[ -]", "", iban).upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


# --- card numbers ----------------------------------------------------------------------------------

CARD_CANDIDATE = re.compile(r"(?<![\d.-])\d(?:(?:[ .-]| {2})?\d){11,18}(?![\d])")
# Issuer number ranges of the big networks (prefix, lengths): Visa, Mastercard, Amex, Discover, JCB,
# Diners, UnionPay, Maestro.
CARD_RANGES: tuple[tuple[tuple[int, int], tuple[int, ...]], ...] = (
    ((4, 4), (13, 16, 19)),
    ((51, 55), (16,)),
    ((2221, 2720), (16,)),
    ((34, 34), (15,)),
    ((37, 37), (15,)),
    ((6011, 6011), (16, 19)),
    ((644, 649), (16, 19)),
    ((65, 65), (16, 19)),
    ((3528, 3589), (16, 17, 18, 19)),
    ((300, 305), (14, 16, 19)),
    ((36, 36), (14, 16, 19)),
    ((38, 39), (16, 19)),
    ((62, 62), (16, 17, 18, 19)),
    ((50, 50), (12, 13, 14, 15, 16, 17, 18, 19)),
    ((56, 58), (12, 13, 14, 15, 16, 17, 18, 19)),
    ((67, 67), (12, 13, 14, 15, 16, 17, 18, 19)),
    ((6304, 6304), (12, 13, 14, 15, 16, 17, 18, 19)),
    ((6759, 6759), (12, 13, 14, 15, 16, 17, 18, 19)),
    ((6761, 6763), (12, 13, 14, 15, 16, 17, 18, 19)),
)


def find_cards(text: str) -> list[Span]:
    spans = []
    for m in CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"[ .-]", "", m.group())
        if card_ok(digits):
            spans.append(m.span())
    return spans


def card_ok(digits: str) -> bool:
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_ok(digits):
        return False
    for (low, high), lengths in CARD_RANGES:
        width = len(str(low))
        if low <= int(digits[:width]) <= high and len(digits) in lengths:
            return True
    return False


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# --- street addresses ------------------------------------------------------------------------------

_CAP = r"[A-ZÀ-ÖØ-Þ][\w'’.-]*"  # a capitalized word
_WORDS = rf"{_CAP}(?:\s+(?:{_CAP}|de|del|della|di|da|do|dos|das|la|le|les|du|des|von|van|der|den)){{0,4}}"
_NUM = r"\d{1,5}(?:\s?[A-Za-z](?![\w]))?"
_US_UK = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Court|Ct|Place|Pl|Terrace|Close|"
    r"Crescent|Square|Sq|Parkway|Pkwy|Highway|Hwy|Row|Gardens|Mews|Grove|Walk|Circle|Cir"
)
_DE_SUFFIX = (
    r"straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|chaussee|steig|markt|straat|laan|plein|gracht|kade"
)
_FR = r"rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|quai|cours|route|square|passage"
_IT = r"via|viale|piazza|piazzale|corso|largo|vicolo|strada"
_ES_PT = (
    r"calle|c/|avenida|avda\.?|av\.|plaza|paseo|camino|carrera|ronda|rua|r\.|travessa|praça|alameda|estrada|rodovia"
)
_POSTCODE = r"(?:\d{5}(?:-\d{3,4})?|\d{4}|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2})"  # FR/DE/IT/ES/US, CH/AT/NL, UK
_POSTCODE_CITY = rf"(?:,?\s+(?:[A-ZÀ-Ö][\w'’-]+\s+)?{_POSTCODE}(?:\s+[A-ZÀ-Ö][\w'’-]+){{0,2}})"
_US_STATE_ZIP = r"(?:,\s*[A-Z][A-Za-z .'-]{1,30},\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?)"

ADDRESS = re.compile(
    "|".join(
        [
            # 221B Baker Street[, London NW1 6XE] / 1600 Pennsylvania Ave NW[, Washington, DC 20500]
            rf"\b{_NUM},?\s+{_WORDS}\s+(?:{_US_UK})\b\.?(?:\s+(?:NW|NE|SW|SE|N|S|E|W)\b)?"
            rf"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Flat)\.?\s*#?\w+)?(?:{_US_STATE_ZIP}|{_POSTCODE_CITY})?",
            # Hauptstraße 12[, 10115 Berlin] / Berliner Straße 5a / Keizersgracht 123
            rf"\b(?:{_CAP}\s+)?(?:[A-ZÄÖÜ][\wäöüß.-]*?(?:{_DE_SUFFIX})|Straße|Strasse|Str\.|Weg|Platz|Allee|Gasse|Ring)"
            rf"\s+{_NUM}(?:\s?[-/]\s?\d{{1,4}})?{_POSTCODE_CITY}?",
            # 12 rue de la Paix[, 75002 Paris] / 5 bis, avenue Foch
            rf"(?i:\b\d{{1,4}}(?:\s?(?:bis|ter))?,?\s+(?:{_FR}))\s+(?:(?i:de la|de l'|du|des|de|d'|la|le|les)\s*)?"
            rf"{_WORDS}{_POSTCODE_CITY}?",
            # Via Roma 12[, 00184 Roma] / Corso Vittorio Emanuele II, 45
            rf"(?i:\b(?:{_IT}))\s+(?:{_WORDS}|\d+\s+{_WORDS})\s*,?\s*(?i:n\.?\s*)?{_NUM}{_POSTCODE_CITY}?",
            # Calle de Alcalá, 45[, 28014 Madrid] / Rua Augusta, 123 / Av. Paulista, 1578 - Bela Vista
            rf"(?i:\b(?:{_ES_PT}))\s+(?:(?i:de la|de los|de las|del|de|da|do|dos|das)\s+)?{_WORDS}\s*,?\s*"
            rf"(?i:n[º°o]?\.?\s*)?{_NUM}(?:,?\s*\d{{1,2}}[º°ª]\s?[A-Za-z]?)?(?:\s+-\s+{_WORDS})?{_POSTCODE_CITY}?",
        ]
    )
)


def find_addresses(text: str) -> list[Span]:
    return [(m.start(), m.end() - len(m.group()) + len(m.group().rstrip(" ,."))) for m in ADDRESS.finditer(text)]


# --- the set -------------------------------------------------------------------------------------------

# Street words of every address pattern: a message without one holds no address.
_STREET_WORDS = [
    rf"\b{re.escape(w)}" if w[-1] in "./" else rf"\b{w}\b" for w in f"{_US_UK}|{_FR}|{_IT}|{_ES_PT}".split("|")
]
ADDRESS_PREFILTER = "(?i)(?:" + "|".join([*_STREET_WORDS, rf"(?:{_DE_SUFFIX})\s*\d"]) + ")"


def recognizers(types: Iterable[str], phone_regions: Iterable[str]) -> list[Recognizer]:
    """The recognizers for `types`, in priority order: where two find overlapping spans, the first wins."""
    table = {
        "EMAIL": Recognizer("EMAIL", r"@", find_emails),
        "URL": Recognizer("URL", r"(?i)://|www\.|\w\.[a-z]{2,24}\b", find_urls),
        "IBAN": Recognizer("IBAN", r"(?i)\b[a-z]{2}\d{2}[ -]?[a-z0-9]{4}", find_ibans),
        "CARD": Recognizer("CARD", r"\d(?:(?:[ .-]| {2})?\d){11,18}", find_cards),
        "PHONE": Recognizer("PHONE", r"\d(?:[\s().\-/]{0,3}\d){5}", phone_finder(phone_regions)),
        "ADDRESS": Recognizer("ADDRESS", ADDRESS_PREFILTER, find_addresses),
    }
    wanted = set(types)
    return [r for name, r in table.items() if name in wanted]

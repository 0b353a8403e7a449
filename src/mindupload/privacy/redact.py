"""Personal data in message text -> typed placeholders; other people's names -> their label.

The message stays; only the item is replaced: "call me on +33 6 12 34 56 78" becomes "call me on <PHONE>".
Which sides are scanned, which types, the block- and allowlist and the name replacement come from the
`privacy` section of the config. Whole columns are screened at once with Arrow's RE2 (each recognizer's
`prefilter`); only messages that might hold something go through the Python recognizers.

The report counts replacements per type and side; it never holds the replaced text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mindupload.ingest.sources import normalize_name
from mindupload.privacy.recognizers import Span, recognizers
from mindupload.progress import Progress

BLOCKED = "REDACTED"  # the placeholder of blocklist terms: <REDACTED>
NAME = "NAME"  # how name replacements are counted in the report (they become the label, not <NAME>)
SIDES = ("other", "own")


@dataclass(frozen=True)
class RedactOptions:
    redact_other: bool
    redact_own: bool
    types: tuple[str, ...]
    phone_regions: tuple[str, ...]
    blocklist: tuple[str, ...]
    allowlist: tuple[str, ...]
    name_label: str  # what other people's names become; empty: names are left alone
    own_names: tuple[str, ...]  # the user's names: never replaced, even where another sender shares them
    excluded_names: tuple[str, ...]  # excluded contacts: not in the table, but others may still name them

    @classmethod
    def from_config(cls, config: dict) -> RedactOptions:
        privacy, identity = config["privacy"], config["identity"]
        replace_names = privacy["replace_names"] and not identity["use_real_names"]
        return cls(
            redact_other=privacy["redact_other"],
            redact_own=privacy["redact_own"],
            types=tuple(privacy["redact_types"]),
            phone_regions=tuple(privacy["phone_regions"]),
            blocklist=tuple(privacy["blocklist"]),
            allowlist=tuple(privacy["allowlist"]),
            name_label=identity["other_label"] if replace_names else "",
            own_names=tuple(dict.fromkeys([*config["me"], *([identity["name"]] if identity["name"] else [])])),
            excluded_names=tuple(privacy["exclude_contacts"]),
        )

    @classmethod
    def from_json(cls, data: dict) -> RedactOptions:
        lists = ("types", "phone_regions", "blocklist", "allowlist", "own_names", "excluded_names")
        return cls(**{k: tuple(v) if k in lists else v for k, v in data.items()})


@dataclass(frozen=True)
class Rule:
    """What a span found by one recognizer becomes."""

    type: str
    replacement: str


class Redactor:
    """Finds and replaces the configured items in one text; built once per table."""

    def __init__(self, options: RedactOptions, other_names: Iterable[str] = ()) -> None:
        self.options = options
        self.recognizers = recognizers(options.types, options.phone_regions)
        self.blocklist = _Terms(options.blocklist)
        self.allowlist = _Terms(options.allowlist)
        self.allowed = {t.casefold() for t in options.allowlist}
        others = [*other_names, *options.excluded_names]
        names = name_terms(others, options.own_names) if options.name_label else []
        self.names = _Terms(names)

    def redact(self, text: str, *, scan_pii: bool) -> tuple[str, Counter]:
        """`text` with its items replaced, and how many of each type."""
        return self._apply(text, self.find(text, scan_pii=scan_pii))

    def spans(self, text: str, *, scan_pii: bool = True) -> list[tuple[str, int, int]]:
        """(type, start, end) of what `redact` would replace, in text order."""
        return sorted((rule.type, start, end) for (start, end), rule in self.find(text, scan_pii=scan_pii))

    def find(self, text: str, *, scan_pii: bool) -> list[tuple[Span, Rule]]:
        """The spans to replace: non-overlapping, not allowlisted."""
        found: list[tuple[Span, Rule]] = []  # in priority order: blocklist, the recognizers' order, names
        if self.blocklist:
            found += [(m.span(), Rule(BLOCKED, f"<{BLOCKED}>")) for m in self.blocklist.finditer(text)]
        if scan_pii:
            for recognizer in self.recognizers:
                found += [(span, Rule(recognizer.type, f"<{recognizer.type}>")) for span in recognizer.find(text)]
        if self.names:
            found += [(m.span(), Rule(NAME, self.options.name_label)) for m in self.names.finditer(text)]
        return self._keep(text, found)

    def _keep(self, text: str, found: list[tuple[Span, Rule]]) -> list[tuple[Span, Rule]]:
        """Non-overlapping spans, the higher-priority rule and then the longer span first, without the
        allowlisted ones."""
        allowed = [m.span() for m in self.allowlist.finditer(text)] if self.allowlist else []
        priority = {rule.type: i for i, (_, rule) in reversed(list(enumerate(found)))}
        found = sorted(found, key=lambda f: (priority[f[1].type], f[0][0] - f[0][1], f[0][0]))
        kept: list[tuple[Span, Rule]] = []
        for (start, end), rule in found:
            if rule.type != BLOCKED and (
                text[start:end].casefold() in self.allowed or any(a <= start and end <= b for a, b in allowed)
            ):
                continue
            if all(end <= s or start >= e for (s, e), _ in kept):
                kept.append(((start, end), rule))
        return kept

    @staticmethod
    def _apply(text: str, spans: list[tuple[Span, Rule]]) -> tuple[str, Counter]:
        counts: Counter = Counter()
        for (start, end), rule in sorted(spans, key=lambda s: s[0][0], reverse=True):
            text = text[:start] + rule.replacement + text[end:]
            counts[rule.type] += 1
        return text, counts

    def screen(self, texts: pa.ChunkedArray, scan_pii: np.ndarray) -> np.ndarray:
        """Rows that might hold something to replace (a superset of those that do), via Arrow's RE2."""
        hit = np.zeros(len(texts), dtype=bool)
        for pattern, rows in self._prefilters(scan_pii):
            if rows.any():
                matched = pc.match_substring_regex(texts, pattern).to_numpy(zero_copy_only=False)
                hit |= rows & matched
        return hit

    def _prefilters(self, scan_pii: np.ndarray) -> list[tuple[str, np.ndarray]]:
        everyone = np.ones(len(scan_pii), dtype=bool)
        out = [(r.prefilter, scan_pii) for r in self.recognizers]
        for terms in (self.blocklist, self.names):
            if terms:
                # RE2 has no look-behind: any occurrence of a term is a candidate; Python checks the word edges.
                out.append(("(?i)" + "|".join(re.escape(t) for t in terms.terms), everyone))
        return out


class _Terms:
    """Whole-word, case-insensitive occurrences of a list of terms (longest first, so 'Anna K' beats 'Anna')."""

    def __init__(self, terms: Sequence[str]) -> None:
        self.terms = sorted({t.strip() for t in terms if t.strip()}, key=lambda t: (-len(t), t))
        alternation = "|".join(re.escape(t) for t in self.terms)
        # Whole words, and not a piece of an address or handle: "anna@x.com", "anna.k@...", "x.com/anna".
        self.pattern = re.compile(rf"(?<![\w@./])(?:{alternation})(?![\w@]|\.\w)", re.IGNORECASE)

    def __bool__(self) -> bool:
        return bool(self.terms)

    def finditer(self, text: str):
        return self.pattern.finditer(text)


def name_terms(other_names: Iterable[str], own_names: Iterable[str]) -> list[str]:
    """Other people's sender names and their first names (3+ letters), minus anything that is the user's.

    Only word-like names: a contact saved as an emoji (🤓, ❤️) or as digits would otherwise turn every such
    emoji or number in anyone's messages into the label.
    """
    own = {n.casefold() for name in own_names for n in (name, *name.split()[:1])}
    terms: set[str] = set()
    for name in other_names:
        name = " ".join(name.split())
        first = name.split()[0] if name.split() else ""
        word_like = any(c.isalpha() for c in name)
        candidates = [name] if word_like and name.casefold() not in own else []
        plain = first.replace("-", "").replace("'", "")  # Jean-Luc, O'Neil
        if len(first) >= 3 and plain.isalpha() and first != name and first.casefold() not in own:
            candidates.append(first)
        terms.update(candidates)
    return sorted(terms)


def redact_table(messages: pa.Table, options: RedactOptions) -> tuple[pa.Table, dict]:
    """The message table with the text column redacted, and the report (counts only)."""
    is_self = messages.column("is_self").to_numpy(zero_copy_only=False).astype(bool)
    scan_pii = (is_self & options.redact_own) | (~is_self & options.redact_other)
    others = pc.unique(pc.filter(messages.column("sender"), pc.invert(messages.column("is_self")))).to_pylist()
    redactor = Redactor(options, _not_own(others, options.own_names))
    texts = messages.column("text")
    rows = np.flatnonzero(redactor.screen(texts, scan_pii))
    counts = {side: Counter() for side in SIDES}
    changed = Counter()
    new_texts = []
    with Progress("redacting", len(rows), "messages") as progress:
        for row, text in zip(rows, texts.take(pa.array(rows, pa.int64())).to_pylist(), strict=True):
            new, found = redactor.redact(text, scan_pii=bool(scan_pii[row]))
            side = "own" if is_self[row] else "other"
            counts[side].update(found)
            changed[side] += new != text
            new_texts.append(new)
            progress.update()
    if len(rows):
        mask = np.zeros(messages.num_rows, dtype=bool)
        mask[rows] = True
        texts = pc.replace_with_mask(texts.combine_chunks(), pa.array(mask), pa.array(new_texts, pa.string()))
        messages = messages.set_column(messages.schema.get_field_index("text"), messages.schema.field("text"), texts)
    return messages, report(messages, options, scan_pii, is_self, counts, changed, len(rows))


def _not_own(names: list[str], own_names: Sequence[str]) -> list[str]:
    own = set(normalize_name(pa.array(list(own_names), pa.string())).to_pylist())
    normalized = normalize_name(pa.array(names, pa.string())).to_pylist()
    return [name for name, norm in zip(names, normalized, strict=True) if norm not in own]


def report(messages, options, scan_pii, is_self, counts, changed, screened) -> dict:
    return {
        "messages": messages.num_rows,
        "scanned_for_personal_data": {
            "other": int((scan_pii & ~is_self).sum()),
            "own": int((scan_pii & is_self).sum()),
        },
        "screened_in": screened,  # messages the Arrow prefilters passed on to the recognizers
        "messages_changed": {side: changed[side] for side in SIDES},
        "replaced": {side: dict(sorted(counts[side].items())) for side in SIDES},
        "settings": {
            "redact_other": options.redact_other,
            "redact_own": options.redact_own,
            "types": list(options.types),
            "phone_regions": list(options.phone_regions),
            "blocklist_terms": len(options.blocklist),
            "allowlist_terms": len(options.allowlist),
            "names_replaced_by": options.name_label or None,
        },
    }


def render_report(report: dict) -> str:
    """The redaction report as Markdown: counts per type and side, never the replaced text."""
    settings = report["settings"]
    types = sorted({t for side in SIDES for t in report["replaced"][side]})
    lines = [
        "# Redaction report",
        "",
        f"- messages: {report['messages']}; scanned for personal data: "
        f"{report['scanned_for_personal_data']['other']} of other people's, "
        f"{report['scanned_for_personal_data']['own']} of yours",
        f"- messages changed: {report['messages_changed']['other']} of other people's, "
        f"{report['messages_changed']['own']} of yours",
        f"- types: {', '.join(settings['types']) or 'none'}; blocklist terms: {settings['blocklist_terms']}; "
        f"allowlist terms: {settings['allowlist_terms']}",
        "- other people's names in text: "
        + (f"replaced by `{settings['names_replaced_by']}`" if settings["names_replaced_by"] else "left as written"),
        "",
        "| replaced | in other people's messages | in yours |",
        "|---|---|---|",
    ]
    for t in types:
        label = "name -> label" if t == NAME else f"`<{t}>`"
        lines.append(f"| {label} | {report['replaced']['other'].get(t, 0)} | {report['replaced']['own'].get(t, 0)} |")
    if not types:
        lines.append("| nothing | 0 | 0 |")
    return "\n".join(lines) + "\n"

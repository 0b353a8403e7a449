"""The dataset's stats file: what was read, kept and produced, in a few lines a person can check."""

from __future__ import annotations

from mindupload import provenance

EMPTY_VALIDATION = (
    "- **validation.jsonl is empty**: no held-out own turn answers someone (too little data, or "
    "`split.validation_fraction` is 0), so nothing measures the model on conversations it has not seen"
)


def render_stats(sources: list[dict], turns: dict, segments: dict, redaction: dict | None = None) -> str:
    """Markdown from the stage reports: one per export, then the redaction, turns and segments stages."""
    lines = ["# Dataset stats", "", "## Messages read", ""]
    lines += [
        "| source | lines/records read | skipped | messages | own | conversations | excluded msgs / convs |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(sources, key=lambda r: r["source"]):
        unit = "lines" if "lines_read" in r else "records"
        lines.append(
            f"| {r['source']} | {r[f'{unit}_read']} {unit} | {r[f'{unit}_skipped']} | {r['messages']} | "
            f"{r['own_messages']} | {r['conversations']} | "
            f"{r.get('excluded_messages', 0)} / {r.get('excluded_conversations', 0)} |"
        )
    lines += [""] + [
        f"- {r['source']}: {r['group_conversations']} of {r['conversations']} conversation(s) are group chats"
        if r["group_chats"] == "included"
        else f"- {r['source']}: {r['group_conversations']} group conversation(s) left out "
        f"({r['excluded_group_messages']} messages; group_chats: false); {r['conversations']} kept"
        for r in sorted(sources, key=lambda r: r["source"])
        if "group_conversations" in r
    ]
    notes = [
        f"- {r['source']}: {note}" for r in sorted(sources, key=lambda r: r["source"]) for note in r.get("notes", ())
    ]
    if notes:
        lines += ["", "## Noted while reading", "", *notes]
    warnings = [line for r in sorted(sources, key=lambda r: r["source"]) for line in warning_lines(r)]
    if warnings:
        lines += ["", "Warnings (counts only; see docs/privacy.md for why nothing is quoted):", "", *warnings]
    if redaction is not None:
        lines += ["", "## Redaction", "", *redaction_lines(redaction)]
    dropped = ", ".join(f"{k} {v}" for k, v in turns["messages_dropped"].items()) or "none"
    per_split = segments["segments"]
    lines += [
        "",
        "## Turns",
        "",
        f"- messages kept: {turns['messages_kept']} of {turns['messages_in']} (dropped: {dropped})",
        f"- turns: {turns['turns']} ({turns['own_turns']} own) in {turns['sessions']} session(s)",
        f"- turns held out for validation: {turns['validation_turns']}",
        "",
        "## Segments",
        "",
        f"- train: {per_split.get('train', 0)}, validation: {per_split.get('validation', 0)}",
        *([EMPTY_VALIDATION] if not per_split.get("validation", 0) else []),
        f"- own-turn coverage: {100 * segments['own_turn_coverage']:.1f}% "
        f"({segments['own_turns_in_segments']} of {segments['own_turns']} own turns are trained)",
        f"- own turns opening a session (no context, not trained): {segments['own_turns_without_context']}",
        f"- segments split for length: {segments['segments_split_for_length']}; "
        f"dropped for length: {segments['segments_dropped_for_length']}; "
        f"context turns trimmed: {segments['context_turns_trimmed_for_length']}",
        f"- longest segment: {segments['max_tokens']} tokens",
        "- turns per segment: " + ", ".join(f"{k}: {v}" for k, v in segments["turns_per_segment"].items()),
        "",
    ]
    if "provenance" in segments:
        lines += ["## Made by", "", *provenance.lines(segments["provenance"]), ""]
    return "\n".join(lines)


WARNINGS = {
    "messages_too_long": "messages over limits.max_message_chars, dropped",
    "messages_without_sender": "messages without a sender, dropped",
    "messages_with_nul_removed": "messages with NUL characters (removed): a damaged file?",
    "messages_in_future": "messages dated in the future (kept): a wrong clock or misread dates?",
}


def warning_lines(report: dict) -> list[str]:
    return [f"- {report['source']}: {report[key]} {what}" for key, what in WARNINGS.items() if report.get(key)]


def redaction_lines(redaction: dict) -> list[str]:
    """A summary of the redaction report (counts only); the full table is in results/reports/redaction.md."""
    replaced = redaction["replaced"]
    total = {side: sum(replaced[side].values()) for side in ("other", "own")}
    by_type = ", ".join(
        f"{t} {replaced['other'].get(t, 0) + replaced['own'].get(t, 0)}"
        for t in sorted({*replaced["other"], *replaced["own"]})
    )
    return [
        f"- items replaced: {total['other']} in other people's messages, {total['own']} in yours"
        + (f" ({by_type})" if by_type else ""),
        f"- messages changed: {redaction['messages_changed']['other']} of other people's, "
        f"{redaction['messages_changed']['own']} of yours",
        "- per type and side: [../reports/redaction.md](../reports/redaction.md)",
    ]

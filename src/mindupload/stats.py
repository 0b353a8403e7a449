"""The dataset's stats file: what was read, kept and produced, in a few lines a person can check."""

from __future__ import annotations


def render_stats(sources: list[dict], turns: dict, segments: dict) -> str:
    """Markdown from the stage reports: one per export, then the turns and segments stages."""
    lines = ["# Dataset stats", "", "## Messages read", ""]
    lines += [
        "| source | lines/records read | skipped | messages | own | conversations |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(sources, key=lambda r: r["source"]):
        unit = "lines" if "lines_read" in r else "records"
        lines.append(
            f"| {r['source']} | {r[f'{unit}_read']} {unit} | {r[f'{unit}_skipped']} | {r['messages']} | "
            f"{r['own_messages']} | {r['conversations']} |"
        )
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
    return "\n".join(lines)

"""Bar charts as inline SVG: no JavaScript, no plotting library, nothing fetched, and never a message's text
(callers pass counts and labels they made). Used by the dataset plots, the format check and the evaluation."""

from __future__ import annotations

import html

PALETTE = ("#3b7dd8", "#e0a84f", "#2f9e6b", "#9aa5b1", "#c05fa0", "#7a62d3", "#d2544f", "#5fb3c0")


def bars(
    title: str,
    groups: dict[str, dict[str, dict]],
    *,
    colors: dict[str, str] | None = None,
    reference: tuple[float, str] | None = None,
    unit: str = "",
    digits: int = 2,
) -> str:
    """Grouped bar chart: group -> series -> {value, and optionally low and high for a 95% interval whisker}.

    A legend names the series when there is more than one; `reference` draws a dashed line (e.g. chance)."""
    series = list(dict.fromkeys(name for g in groups.values() for name in g))
    colors = {name: (colors or {}).get(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(series)}
    width = max(640, 56 + 26 * len(groups) * max(1, len(series)))
    height, left, bottom, top = 250, 52, 46, 28 + (14 if len(series) > 1 else 0)
    values = [s.get("high") or s.get("value") or 0 for g in groups.values() for s in g.values() if s]
    top_value = max([*values, reference[0] if reference else 0, 1e-9]) * 1.1
    plot_w, plot_h = width - left - 10, height - bottom - top
    group_w = plot_w / max(1, len(groups))
    bar_w = group_w * 0.8 / max(1, max((len(g) for g in groups.values()), default=1))

    def y(v: float) -> float:
        return top + plot_h * (1 - v / top_value)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#333"/>',
    ]
    if len(series) > 1:
        x = left
        for name in series:
            out.append(f'<rect x="{x}" y="22" width="10" height="10" fill="{colors[name]}"/>')
            out.append(f'<text x="{x + 14}" y="31" font-size="11">{html.escape(name)}</text>')
            x += 24 + 7 * len(name)
    for tick in range(5):
        v = top_value * tick / 4
        out.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{v:.{digits}f}</text>')
        out.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - 10}" y2="{y(v):.1f}" stroke="#eee"/>')
    label_every = max(1, len(groups) // 24)  # at most ~24 group labels under the axis
    for g, (group, members) in enumerate(groups.items()):
        x0 = left + g * group_w + group_w * 0.1
        for c, (name, stat) in enumerate(members.items()):
            if not stat or stat.get("value") is None:
                continue
            x, v = x0 + c * bar_w, stat["value"]
            out.append(
                f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w * 0.9:.1f}" height="{top + plot_h - y(v):.1f}" '
                f'fill="{colors[name]}"><title>{html.escape(group)}, {html.escape(name)}: '
                f"{v:.{digits}f}{unit}</title></rect>"
            )
            if stat.get("low") is not None:
                cx = x + bar_w * 0.45
                out.append(
                    f'<line x1="{cx:.1f}" y1="{y(stat["low"]):.1f}" x2="{cx:.1f}" y2="{y(stat["high"]):.1f}" '
                    'stroke="#222" stroke-width="1.5"/>'
                )
        if g % label_every == 0:
            out.append(
                f'<text x="{left + g * group_w + group_w / 2:.1f}" y="{top + plot_h + 16}" font-size="11" '
                f'text-anchor="middle">{html.escape(group)}</text>'
            )
    if reference is not None:
        value, label = reference
        out.append(
            f'<line x1="{left}" y1="{y(value):.1f}" x2="{width - 10}" y2="{y(value):.1f}" stroke="#c33" '
            'stroke-dasharray="4 3"/>'
        )
        out.append(
            f'<text x="{width - 12}" y="{y(value) - 4:.1f}" font-size="10" text-anchor="end" fill="#c33">'
            f"{html.escape(label)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def counts(values: dict[str, dict[str, int]]) -> dict[str, dict[str, dict]]:
    """{group: {series: n}} -> the `bars` shape."""
    return {group: {name: {"value": n} for name, n in members.items()} for group, members in values.items()}

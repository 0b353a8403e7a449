"""results/eval/report.html: the evaluation's numbers as a page a person reads, plots as inline SVG (no
JavaScript, nothing fetched). No message text appears unless `evaluation.show_examples` asks for examples."""

from __future__ import annotations

import html
import math

from mindupload import charts
from mindupload.evaluation.metrics import CATEGORIES
from mindupload.render import Identity

COLORS = {"base": "#9aa5b1", "prompted": "#e0a84f", "tuned": "#3b7dd8", "real": "#2f9e6b"}
CONDITIONS = ("base", "prompted", "tuned")
NAMES = {"base": "base model", "prompted": "base, prompted with your turns", "tuned": "tuned (your clone)"}


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def interval(stat: dict, digits: int = 3) -> str:
    if not stat or stat.get("value") is None:
        return "–"
    return f"{fmt(stat['value'], digits)} [{fmt(stat['low'], digits)}, {fmt(stat['high'], digits)}]"


def bars(title: str, groups: dict[str, dict[str, dict]], *, chance: float | None = None, unit: str = "") -> str:
    """Grouped bar chart with 95% interval whiskers: groups -> condition -> {value, low, high}."""
    reference = (chance, "chance") if chance is not None else None
    return charts.bars(title, groups, colors=COLORS, reference=reference, unit=unit, digits=2)


def line_chart(title: str, points: list[tuple[float, float]], *, best: float | None = None) -> str:
    width, height, left, bottom, top = 640, 220, 48, 32, 28
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_lo, x_hi = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y_lo, y_hi = min(ys) * 0.98, max(ys) * 1.02 if max(ys) > min(ys) else min(ys) + 1
    plot_w, plot_h = width - left - 10, height - bottom - top

    def px(x: float) -> float:
        return left + plot_w * (x - x_lo) / (x_hi - x_lo)

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - y_lo) / (y_hi - y_lo))

    path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(v):.1f}" for i, (x, v) in enumerate(points))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
        f'<path d="{path}" fill="none" stroke="{COLORS["tuned"]}" stroke-width="2"/>',
        *(f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="3" fill="{COLORS["tuned"]}"/>' for x, v in points),
        f'<text x="{left}" y="{height - 8}" font-size="10">step {x_lo:g}</text>',
        f'<text x="{width - 10}" y="{height - 8}" font-size="10" text-anchor="end">step {x_hi:g}</text>',
        f'<text x="{left - 4}" y="{py(y_hi) + 10:.1f}" font-size="10" text-anchor="end">{y_hi:.2f}</text>',
        f'<text x="{left - 4}" y="{py(y_lo):.1f}" font-size="10" text-anchor="end">{y_lo:.2f}</text>',
    ]
    if best is not None:
        out.append(
            f'<line x1="{px(best):.1f}" y1="{top}" x2="{px(best):.1f}" y2="{top + plot_h}" stroke="#2f9e6b" '
            'stroke-dasharray="4 3"/>'
        )
    out.append("</svg>")
    return "".join(out)


def metrics_table(m: dict) -> str:
    """The headline numbers, one row per metric, one column per condition (also pasted in docs and notes)."""
    rows = []

    def row(name: str, cells: dict[str, str]) -> None:
        rows.append(
            f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{cells.get(c, '–')}</td>" for c in CONDITIONS) + "</tr>"
        )

    for kind in (*CATEGORIES, "all"):
        row(f"own-reply loss, {kind} (nats/token)", {c: interval(m["loss"][c][kind]) for c in CONDITIONS})
    row("turn-end accuracy", {c: interval(m["turn_end_accuracy"][c]) for c in CONDITIONS})
    chance = m["ranking"]["tuned"]["chance_accuracy"]
    row(
        f"ranking accuracy@1 (chance {chance:.2f})", {c: interval(m["ranking"][c]["accuracy_at_1"]) for c in CONDITIONS}
    )
    row("ranking MRR", {c: interval(m["ranking"][c]["mrr"]) for c in CONDITIONS})
    for check in ("empty", "hit_length_limit", "speaker_label", "placeholder", "repetitive"):
        row(f"replies: {check.replace('_', ' ')}", {c: interval(m["health"][c][check], 2) for c in CONDITIONS})
    row("style distance to your replies", {c: fmt(m["style"][c]["distance"]) for c in CONDITIONS})
    auth = m.get("authorship")
    if auth:
        row("authorship: P(yours)", {c: fmt(auth["p_yours"][c]) for c in CONDITIONS})
        row("authorship: position base→you", {c: fmt(auth["position"][c]) for c in CONDITIONS})
        row("authorship: AUC real vs this", {c: fmt(auth["auc_real_vs"][c]) for c in CONDITIONS})
    row("memorized: exact copy", {c: interval(m["memorization"][c]["exact"], 2) for c in CONDITIONS})
    row("memorized: 8-word overlap", {c: interval(m["memorization"][c]["overlap_8gram"], 2) for c in CONDITIONS})
    head = "<tr><th>metric</th>" + "".join(f"<th>{NAMES[c]}</th>" for c in CONDITIONS) + "</tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def markdown_table(m: dict) -> str:
    """The same table as Markdown (for notes and the log)."""
    import re

    table = metrics_table(m)
    lines = []
    for tr in re.findall(r"<tr>(.*?)</tr>", table):
        cells = [html.unescape(c) for c in re.findall(r"<t[hd]>(.*?)</t[hd]>", tr)]
        lines.append("| " + " | ".join(cells) + " |")
        if len(lines) == 1:
            lines.append("|" + "---|" * len(cells))
    return "\n".join(lines)


def html_page(m: dict, replies: dict, identity: Identity, options) -> str:
    counts = m["counts"]
    loss_groups = {k: {c: m["loss"][c][k] for c in CONDITIONS} for k in CATEGORIES}
    rank_groups = {
        "accuracy@1": {c: m["ranking"][c]["accuracy_at_1"] for c in CONDITIONS},
        "MRR": {c: m["ranking"][c]["mrr"] for c in CONDITIONS},
    }
    health_groups = {
        k.replace("_", " "): {c: m["health"][c][k] for c in CONDITIONS}
        for k in ("empty", "hit_length_limit", "speaker_label", "placeholder", "repetitive")
    }
    style_groups = {"style distance": {c: {"value": m["style"][c]["distance"]} for c in CONDITIONS}}
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Does it talk like {html.escape(identity.name)}? Evaluation</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;"
        "font-size:13px}th{background:#f4f4f4}.legend span{display:inline-block;margin-right:1.2em}"
        ".sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}"
        "figure{margin:1.5em 0}figcaption{font-size:13px;color:#555;max-width:640px}</style></head><body>",
        f"<h1>Does it talk like {html.escape(identity.name)}?</h1>",
        f"<p>Held-out conversations (the validation split: {counts['validation_examples']} examples, "
        f"{counts['own_turns_scored']} of your replies scored; {counts['ranking_contexts']} ranking contexts; "
        f"{counts['generation_contexts']} generated replies per model, from the whole conversation before each "
        f"reply). The prompted baseline sees {counts['prompt_exchanges']} of your training exchanges. Brackets "
        "are 95% intervals (bootstrap over replies; Wilson for shares). docs/evaluation.md explains each number.</p>",
        "<p class='legend'>"
        + "".join(f"<span><i class='sw' style='background:{COLORS[c]}'></i>{NAMES[c]}</span>" for c in CONDITIONS)
        + "</p>",
        metrics_table(m),
        _figure(
            bars("Loss of your held-out replies by token kind (nats per token, lower is better)", loss_groups),
            "Content is what you said; the speaker tag and the turn end are format. Training lowers format "
            "losses fast, so only the content bars say how much of your way of writing the clone learnt.",
        ),
        _figure(
            bars(
                "Reply ranking: your real reply among length-matched replies of yours",
                rank_groups,
                chance=m["ranking"]["tuned"]["chance_accuracy"],
            ),
            f"Each context's real reply against {m['ranking']['tuned']['candidates'] - 1} of your replies "
            "from other conversations, by mean log-likelihood. The dashed line is chance accuracy.",
        ),
        _figure(bars("Generated replies: shares with a problem (lower is better)", health_groups), ""),
        _figure(
            bars("Style distance to your real replies (lower is closer)", style_groups),
            "Lengths, lowercase starts, emoji, final punctuation, laughter and questions, in standard deviations "
            "of your own replies, averaged.",
        ),
    ]
    auth = m.get("authorship")
    if auth:
        groups = {"P(yours)": {c: {"value": auth["p_yours"][c]} for c in CONDITIONS}}
        groups["P(yours)"]["real"] = {"value": auth["p_yours"]["real"]}
        parts.append(
            _figure(
                bars("Authorship: a character n-gram classifier's P(written by you)", groups),
                "Green is your real held-out replies (the ceiling), grey the base model (the floor).",
            )
        )
    curve = m.get("curve") or []
    if len(curve) >= 2:
        best = min(curve, key=lambda p: p["eval_loss"])
        parts.append(
            _figure(
                line_chart(
                    "Validation loss at each evaluation during training",
                    [(p["step"], p["eval_loss"]) for p in curve],
                    best=best["step"],
                ),
                f"Lowest at step {best['step']} (dashed). A curve that rises after its lowest point means training "
                "longer than that made the clone worse on held-out conversations.",
            )
        )
    training = m.get("training") or {}
    if training:
        parts.append("<h2>Training</h2><table>")
        parts += [f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in training.items()]
        parts.append("</table>")
    if options.show_examples:
        parts.append(_examples(replies, identity, options.show_examples))
    parts.append("</body></html>")
    return "\n".join(parts)


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _examples(replies: dict, identity: Identity, count: int) -> str:
    """Opt-in: the last turns of a few contexts and each model's reply (message text)."""
    out = ["<h2>Examples (message text: shown because evaluation.show_examples is set)</h2>"]
    for i, ctx in enumerate(replies["contexts"][:count]):
        out.append("<table>")
        for turn in ctx.history[-3:]:
            out.append(f"<tr><th>{html.escape(turn.speaker)}</th><td>{html.escape(turn.text)}</td></tr>")
        for c in CONDITIONS:
            out.append(f"<tr><th>{NAMES[c]}</th><td>{html.escape(replies['replies'][c][i].reply)}</td></tr>")
        out.append(f"<tr><th>{html.escape(identity.name)} (real)</th><td>{html.escape(ctx.actual)}</td></tr></table>")
    return "\n".join(out)

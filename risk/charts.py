"""Charts drawn on the server with matplotlib, each with a text alternative, and the times in words.

trend_svg / trend_png draw the live model's F1 on each run's new rows (with its bootstrap interval and
the F1 it was expected to keep) and mark the deployments and rollbacks; trend_text says the same in
words. Their input is overview.quality_over_time(conn). Matplotlib is imported inside the functions and
used through its Figure API (no pyplot, no global figure), so importing this module costs nothing.
"""

from __future__ import annotations

import functools
import io
import json
import re
from datetime import UTC, datetime

FIGURE_SIZE = (5.6, 3.4)  # inches: an SVG viewBox of 403 x 245 points: text still ~10 px on a phone
WIDE_SIZE = (10.0, 3.4)  # a laptop's content width (and the report's page width), text as large as on a phone
LABEL_LEVELS = (1.17, 1.065)  # the heights (in F1 units, above the 1.0 line) where deployments are named
CHAR_WIDTH = 0.62  # a label's width per character, in font sizes (DejaVu Sans, lower case)
PNG_DPI = 150
CROWDED = 8  # events closer than 1/8 of an even spacing are drawn in order, not to scale
TEXT_CHECKS = 10  # the text alternative lists at most this many checks
RC = {
    "svg.fonttype": "none",  # text as text: no embedded glyphs, small and selectable
    "svg.hashsalt": "risk-trend",  # the same chart, the same bytes
    "font.size": 12,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
}
OUTCOME_STYLE = {  # marker shape and colour: an outcome is never told by colour alone
    "no drift": {"marker": "o", "color": "#1f6fb2", "label": "F1 held (no drift)"},
    "drift": {"marker": "v", "color": "#c0392b", "label": "F1 dropped (drift)"},
    "insufficient data": {"marker": "s", "color": "#8a8f98", "label": "too few rows"},
}
UNKNOWN = "insufficient data"  # how an outcome without a style of its own is drawn
REASON_STYLE = {
    "bootstrap": ("#6b7280", ":"),
    "drift": ("#d97706", "-"),
    "rollback": ("#b91c1c", "--"),
    "manual": ("#7c3aed", "-."),
    "adopted": ("#6b7280", ":"),
}


def parse_time(at: str) -> datetime:
    """A history time (UTC ISO 8601, e.g. 2026-11-27T18:30:01.123Z) as an aware datetime."""
    return datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(UTC)


def time_words(at: str | None, seconds: bool = False) -> str:
    """2026-11-27 18:30 (UTC), or with seconds; '-' for no time."""
    if not at:
        return "-"
    return parse_time(at).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def ago(at: str | None, now: datetime | None = None) -> str | None:
    """How long ago `at` was, in words: 'just now', '5 min ago', '3 h ago', '2 days ago'."""
    if not at:
        return None
    seconds = ((now or datetime.now(UTC)) - parse_time(at)).total_seconds()
    if seconds < -60:
        return "in the future (is a clock wrong?)"
    if seconds < 60:
        return "just now"
    size, unit = next((size, unit) for size, unit in ((86400, "day"), (3600, "h"), (60, "min")) if seconds >= size)
    count = int(seconds // size)
    return f"{count} {unit}{'s' if unit == 'day' and count > 1 else ''} ago"


def usable(trend: dict) -> tuple[list[dict], list[dict]]:
    """The checks with a value and the deployments, each with its time parsed (`t`), in time order."""
    checks = [{**c, "t": parse_time(c["at"])} for c in trend.get("checks") or [] if c.get("value") is not None]
    moves = [{**d, "t": parse_time(d["at"])} for d in trend.get("deployments") or [] if d.get("at")]
    return sorted(checks, key=lambda c: c["t"]), sorted(moves, key=lambda d: d["t"])


def to_scale(checks: list[dict], moves: list[dict]) -> bool:
    """Draw on a time axis, unless checks (or deployments) crowd together: a few runs seconds apart
    after months of weekly ones would be one blob; then the events are drawn in order, evenly spaced."""
    times = sorted(item["t"] for item in checks + moves)
    span = (times[-1] - times[0]).total_seconds() if times else 0
    if span == 0:
        return True
    for group in (checks, moves):
        gaps = [(b["t"] - a["t"]).total_seconds() for a, b in zip(group, group[1:], strict=False)]
        if gaps and min(gaps) < span / (CROWDED * len(times)):
            return False
    return True


def place(checks: list[dict], moves: list[dict], scaled: bool) -> None:
    """Give every check and deployment its x: a date number on a time axis, else its place in order."""
    if scaled:
        from matplotlib import dates

        for item in checks + moves:
            item["x"] = dates.date2num(item["t"])
        return
    for index, item in enumerate(sorted(checks + moves, key=lambda item: item["t"])):
        item["x"] = float(index)


def draw_checks(axes, checks: list[dict]) -> None:
    """Each check's F1 with its interval, shaped and coloured by outcome, beside the F1 expected of it."""
    expected = [c for c in checks if c.get("reference") is not None]
    axes.plot(
        [c["x"] for c in expected],
        [c["reference"] for c in expected],
        ls="none",
        marker="_",
        ms=16,
        mew=2.2,
        color="#374151",
        label="expected F1",
    )
    for outcome, style in OUTCOME_STYLE.items():
        group = [c for c in checks if (c.get("outcome") if c.get("outcome") in OUTCOME_STYLE else UNKNOWN) == outcome]
        if not group:
            continue
        values = [c["value"] for c in group]
        lows = [c["value"] - (c["low"] if c.get("low") is not None else c["value"]) for c in group]
        highs = [(c["high"] if c.get("high") is not None else c["value"]) - c["value"] for c in group]
        axes.errorbar(
            [c["x"] for c in group],
            values,
            yerr=[lows, highs],
            ls="none",
            marker=style["marker"],
            ms=7,
            color=style["color"],
            ecolor=style["color"],
            elinewidth=1.2,
            capsize=3,
            label=style["label"],
        )


def label_levels(spans: list[tuple[float, float]], levels: int = len(LABEL_LEVELS), gap: float = 0.01) -> list:
    """The level (0 the top one) of each label, given its span across the axes (from, to, in fractions of
    the width), so that no two labels on a level overlap; None for a label that finds no free level (it is
    thinned: its line stays, the text alternative names it)."""
    taken: list[list[tuple[float, float]]] = [[] for _ in range(levels)]
    placed = []
    for start, end in spans:
        free = [level for level in range(levels) if all(end + gap <= a or start >= b + gap for a, b in taken[level])]
        if free:
            taken[free[0]].append((start, end))
        placed.append(free[0] if free else None)
    return placed


def label_spans(moves: list[dict], xs: list[float], figure_width: float, fontsize: float) -> list[tuple]:
    """Where each deployment's name would lie across the axes (fractions of their width), and whether it
    goes to the left of its line (near the right end)."""
    low, high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    axes_points = figure_width * 72 * 0.84  # the axes take about 84 % of the figure's width
    spans = []
    for move in moves:
        at = (move["x"] - low) / (high - low) if high > low else 0.5
        at = (0.07 + at) / 1.14  # the axes' 7 % margins either side
        width = (len(move["reason"]) * CHAR_WIDTH * fontsize + 3) / axes_points
        left = at > 0.8
        spans.append((at - width, at, left) if left else (at, at + width, left))
    return spans


def draw_moves(axes, moves: list[dict], xs: list[float], figure_width: float) -> None:
    """A vertical line per deployment, named by its reason on one of two levels so that no names overlap
    (names near the right end go to the left; a name with no room left is thinned)."""
    spans = label_spans(moves, xs, figure_width, fontsize=11)
    levels = label_levels([(start, end) for start, end, _ in spans])
    for move, (_, _, left), level in zip(moves, spans, levels, strict=True):
        color, style = REASON_STYLE.get(move["reason"], ("#6b7280", ":"))
        axes.axvline(move["x"], color=color, ls=style, lw=1.4, zorder=0)
        if level is None:
            continue
        axes.annotate(
            move["reason"],
            xy=(move["x"], LABEL_LEVELS[level]),
            xytext=(-3 if left else 3, 0),
            textcoords="offset points",
            ha="right" if left else "left",
            va="center",
            fontsize=11,
            color=color,
            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85},
        )


def format_axis(axes, checks: list[dict], moves: list[dict], scaled: bool) -> None:
    from matplotlib import dates, ticker

    if scaled:
        locator = dates.AutoDateLocator(minticks=3, maxticks=5)
        axes.xaxis.set_major_locator(locator)
        formats = ["%Y", "%b", "%d", "%H:%M", "%H:%M", "%H:%M:%S"]  # seconds apart (a demo): whole times
        zero_formats = ["", "%Y", "%b", "%b-%d", "%H:%M", "%H:%M"]
        axes.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator, formats=formats, zero_formats=zero_formats))
        xs = [item["x"] for item in checks + moves]
        if xs and max(xs) - min(xs) < 1 / 86400:  # one moment: show a minute either side
            axes.set_xlim(min(xs) - 1 / 1440, max(xs) + 1 / 1440)
        axes.set_xlabel("time (UTC)")
        return
    shown = checks[:: max(1, -(-len(checks) // 4))]
    seconds = len({c["t"].strftime("%Y%m%d%H%M") for c in checks}) < len(checks)
    axes.set_xticks(
        [c["x"] for c in shown],
        [c["t"].strftime("%Y-%m-%d\n%H:%M:%S" if seconds else "%Y-%m-%d\n%H:%M") for c in shown],
    )
    axes.xaxis.set_minor_locator(ticker.NullLocator())
    axes.set_xlim(-0.6, len(checks) + len(moves) - 0.4)
    axes.set_xlabel("runs in time order (UTC; spacing not to scale)")


def trend_figure(trend: dict, size: tuple[float, float] = FIGURE_SIZE):
    """The F1-over-time chart as a matplotlib Figure (no pyplot: safe in a server's threads), `size` inches."""
    from matplotlib.figure import Figure

    checks, moves = usable(trend)
    scaled = to_scale(checks, moves)
    place(checks, moves, scaled)
    figure = Figure(figsize=size, layout="constrained")
    axes = figure.add_subplot()
    draw_moves(axes, moves, [item["x"] for item in checks + moves], size[0])
    if checks:
        draw_checks(axes, checks)
        figure.legend(
            loc="outside lower center", ncol=3, frameon=False, fontsize=11, handletextpad=0.3, columnspacing=1.0
        )
    else:
        axes.text(
            0.5,
            0.5,
            "No F1 check yet: the first run with new data adds a point",
            transform=axes.transAxes,
            ha="center",
            va="center",
            color="#4b5563",
        )
    if checks or moves:
        format_axis(axes, checks, moves, scaled)
    else:
        axes.set_xticks([])
    axes.margins(x=0.07)
    axes.set_ylim(-0.04, 1.22)
    axes.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    axes.set_ylabel("F1")
    axes.grid(axis="y", color="#e5e7eb", lw=0.8)
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title("The live model's F1 on each run's new rows", loc="left", fontsize=12)
    return figure


def render(trend: dict, kind: str, size: tuple[float, float] = FIGURE_SIZE, **options) -> bytes:
    import matplotlib

    buffer = io.BytesIO()
    with matplotlib.rc_context(RC):
        trend_figure(trend, size).savefig(buffer, format=kind, **options)
    return buffer.getvalue()


def trend_png(trend: dict) -> bytes:
    """The chart as PNG bytes (150 dpi), wide, for the PDF report (the page's width) and trend.png."""
    return render(trend, "png", WIDE_SIZE, dpi=PNG_DPI, metadata={"Software": None})


def trend_svg(trend: dict, inline: bool = False, wide: bool = False) -> str:
    """The chart as SVG text that scales to its container (viewBox, width 100%); `wide` for a laptop's
    width (WIDE_SIZE), else for a phone's (FIGURE_SIZE).

    Standalone (the default, for /charts/trend.svg) it keeps the SVG namespace; `inline` is for
    pasting into an HTML page, where the namespace is implied: no URL at all is left in it.
    The same trend is drawn once (the dashboard asks on every view; drawing takes ~0.1 s).
    """
    return svg_of(json.dumps(trend, sort_keys=True, default=str), inline, wide)


@functools.lru_cache(maxsize=8)
def svg_of(trend_json: str, inline: bool, wide: bool = False) -> str:
    size = WIDE_SIZE if wide else FIGURE_SIZE
    svg = render(json.loads(trend_json), "svg", size, metadata={"Date": None, "Creator": None}).decode("utf-8")
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    shape = "wide" if wide else "narrow"
    svg = re.sub(
        r'<svg([^>]*?) width="[^"]*" height="[^"]*"', rf'<svg\1 width="100%" class="chart-svg {shape}" role="img"', svg
    )
    svg = svg.replace("*{stroke-linejoin", ".chart-svg *{stroke-linejoin", 1)  # matplotlib's rule, kept to its SVG
    title = "<title>The live model's F1 on new data over time, with deployments and rollbacks</title>"
    svg = re.sub(r"(<svg[^>]*>)", r"\1" + title, svg, count=1)
    if inline:
        svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg).replace("xlink:href=", "href=")
    return svg


def check_words(check: dict, seconds: bool) -> str:
    interval = f" [{check['low']:.2f}, {check['high']:.2f}]" if check.get("low") is not None else ""
    expected = f"expected {check['reference']:.2f}" if check.get("reference") is not None else "nothing expected"
    return f"{check['value']:.2f}{interval} on {time_words(check['at'], seconds)} ({expected}: {check.get('outcome')})"


def trend_text(trend: dict) -> str:
    """The chart in words: each F1 check (the last TEXT_CHECKS, with the range of the others), then
    each deployment; times in minutes, or in seconds when two events share a minute."""
    checks, moves = usable(trend)
    minutes = [item["t"].strftime("%Y%m%d%H%M") for item in checks + moves]
    seconds = len(set(minutes)) < len(minutes)
    if not checks:
        parts = ["F1 on new data: no check yet"]
    else:
        shown = checks[-TEXT_CHECKS:]
        head = "F1 on new data: "
        if len(checks) > len(shown):
            low = min(checks, key=lambda c: c["value"])
            high = max(checks, key=lambda c: c["value"])
            head = (
                f"F1 on new data over {len(checks)} checks, lowest {low['value']:.2f} on "
                f"{time_words(low['at'], seconds)}, highest {high['value']:.2f} on {time_words(high['at'], seconds)}; "
                f"the last {len(shown)}: "
            )
        parts = [head + ", then ".join(check_words(check, seconds) for check in shown)]
    if moves:
        parts.append(
            "deployments: "
            + ", ".join(
                f"{time_words(move['at'], seconds)} {move['reason']} to model {move.get('model_id') or 'unknown'}"
                + (f" by {move['actor']}" if move.get("actor") else "")
                for move in moves
            )
        )
    else:
        parts.append("no deployment yet")
    return "; ".join(parts) + "."

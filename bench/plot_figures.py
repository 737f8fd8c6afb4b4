"""Draw the figures of docs/performance.md as SVG bar charts into docs/_static.

    python bench/plot_figures.py [--doc docs/performance.md] [--out docs/_static]

The numbers are read from the result blocks of docs/performance.md (the lines the bench
scripts print, pasted there after each run), so a new run pasted into the page and this
script re-run keep text and pictures in step. Plain SVG written here: no plotting library.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
OUT = ROOT / "docs" / "_static"

# bench_poll_efficiency.py's lines, "before"/"after" on the first of each pair.
_POLL_LINE = re.compile(
    r"^(?P<when>before|after)?\s*(?P<client>cometrunway|runwayml)\s+"
    r"requests/task=(?P<requests>[\d.]+) \(polls [\d.]+\) median latency=(?P<median>[\d.]+)s "
    r"p90=(?P<p90>[\d.]+)s p95=(?P<p95>[\d.]+)s max=(?P<max>[\d.]+)s$"
)
# bench_overhead.py --instructions lines.
_OVERHEAD_LINE = re.compile(
    r"^(?P<when>before|after)?\s*(?P<side>bare aiohttp|cometrunway)\s+(?P<n>\d+) "
    r"instructions/request$"
)

COLORS = {"runwayml": "#9ca3af", "before": "#93b4e8", "after": "#2f5fb3", "bare": "#9ca3af"}
FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"
BAR_WIDTH = 26
GROUP_GAP = 30
PLOT_HEIGHT = 200
TOP = 60
LEFT = 60


@dataclass
class Series:
    name: str
    color: str
    values: list[float]


def read_blocks(
    doc: str,
) -> tuple[dict[tuple[str, str], dict[str, float]], dict[tuple[str, str], float]]:
    """(poll efficiency by (when, client), instructions per request by (when, side))."""
    polls: dict[tuple[str, str], dict[str, float]] = {}
    overhead: dict[tuple[str, str], float] = {}
    poll_when = overhead_when = ""
    for line in doc.splitlines():
        line = line.strip()
        if match := _POLL_LINE.match(line):
            poll_when = match["when"] or poll_when
            polls[(poll_when, match["client"])] = {
                k: float(match[k]) for k in ("requests", "median", "p90", "p95", "max")
            }
        elif match := _OVERHEAD_LINE.match(line):
            overhead_when = match["when"] or overhead_when
            overhead[(overhead_when, match["side"])] = float(match["n"])
    if len(polls) != 4 or len(overhead) != 4:
        raise SystemExit(
            "docs/performance.md must hold the before/after result blocks of "
            "bench_poll_efficiency.py and bench_overhead.py --instructions; found "
            f"{len(polls)} and {len(overhead)} of 4 lines"
        )
    return polls, overhead


def bar_panel(
    x0: float, title: str, unit: str, groups: list[str], series: list[Series], top: float
) -> tuple[list[str], float]:
    """One bar chart at ``x0``; its SVG elements and its width."""
    # Groups wide enough for their labels (about 7 px a character at 12.5 px).
    group_width = max(len(series) * BAR_WIDTH, max(7 * len(g) for g in groups) - GROUP_GAP)
    width = len(groups) * group_width + (len(groups) + 1) * GROUP_GAP
    peak = max(v for s in series for v in s.values)
    scale = PLOT_HEIGHT / (peak * 1.15)
    base = TOP + PLOT_HEIGHT
    parts = [
        f'<text x="{x0 + width / 2}" y="{TOP - 32}" text-anchor="middle" '
        f'font-weight="600" font-size="15">{escape(title)}</text>',
        f'<text x="{x0 + width / 2}" y="{TOP - 14}" text-anchor="middle" fill="#555" '
        f'font-size="12">{escape(unit)}</text>',
        f'<line x1="{x0}" y1="{base}" x2="{x0 + width}" y2="{base}" stroke="#333"/>',
    ]
    for g, group in enumerate(groups):
        gx = x0 + GROUP_GAP + g * (group_width + GROUP_GAP)
        bars_x = gx + (group_width - len(series) * BAR_WIDTH) / 2
        for s_index, s in enumerate(series):
            value = s.values[g]
            h = value * scale
            bx = bars_x + s_index * BAR_WIDTH
            parts.append(
                f'<rect x="{bx}" y="{base - h:.1f}" width="{BAR_WIDTH - 3}" height="{h:.1f}" '
                f'fill="{s.color}"><title>{escape(s.name)}: {value:g}</title></rect>'
            )
            parts.append(
                f'<text x="{bx + (BAR_WIDTH - 3) / 2}" y="{base - h - 4:.1f}" '
                f'text-anchor="middle" font-size="10.5" fill="#222">{value:g}</text>'
            )
        parts.append(
            f'<text x="{gx + group_width / 2}" y="{base + 18}" text-anchor="middle" '
            f'font-size="12.5">{escape(group)}</text>'
        )
    return parts, width


def legend(x: float, y: float, series: list[Series]) -> list[str]:
    parts = []
    for s in series:
        parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{s.color}"/>')
        parts.append(f'<text x="{x + 17}" y="{y}" font-size="12.5">{escape(s.name)}</text>')
        x += 24 + 7.2 * len(s.name)
    return parts


def svg(width: float, height: float, title: str, parts: list[str]) -> str:
    body = "\n  ".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" font-family="{FONT}" font-size="13">\n'
        f"  <title>{escape(title)}</title>\n"
        f'  <rect width="100%" height="100%" fill="#ffffff"/>\n  {body}\n</svg>\n'
    )


def poll_efficiency(polls: dict[tuple[str, str], dict[str, float]]) -> str:
    series_of = [
        ("runwayml's waiter", COLORS["runwayml"], polls[("after", "runwayml")]),
        ("cometrunway before", COLORS["before"], polls[("before", "cometrunway")]),
        ("cometrunway now", COLORS["after"], polls[("after", "cometrunway")]),
    ]
    left, left_width = bar_panel(
        LEFT,
        "HTTP requests per task",
        "create + polls, 200 tasks of 20–40 s",
        ["requests"],
        [Series(name, color, [v["requests"]]) for name, color, v in series_of],
        TOP,
    )
    quantiles = ["median", "p90", "p95", "max"]
    right, right_width = bar_panel(
        LEFT + left_width + 60,
        "Detection latency",
        "seconds from the task's end to the handle resolving",
        quantiles,
        [Series(name, color, [v[q] for q in quantiles]) for name, color, v in series_of],
        TOP,
    )
    width = LEFT + left_width + 60 + right_width + 30
    height = TOP + PLOT_HEIGHT + 70
    parts = left + right + legend(LEFT, height - 16, [Series(n, c, []) for n, c, _ in series_of])
    return svg(width, height, "Requests per task and detection latency vs runwayml", parts)


def overhead(instructions: dict[tuple[str, str], float]) -> str:
    series = [
        Series(
            "bare aiohttp",
            COLORS["bare"],
            [round(instructions[(when, "bare aiohttp")] / 1000) for when in ("before", "after")],
        ),
        Series(
            "cometrunway",
            COLORS["after"],
            [round(instructions[(when, "cometrunway")] / 1000) for when in ("before", "after")],
        ),
    ]
    parts, width = bar_panel(
        LEFT,
        "CPU instructions per request",
        "thousands, under callgrind; lower is cheaper",
        ["before the core rework", "after it"],
        series,
        TOP,
    )
    height = TOP + PLOT_HEIGHT + 70
    parts += legend(LEFT, height - 16, series)
    return svg(LEFT + width + 60, height, "CPU instructions per request vs bare aiohttp", parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    polls, instructions = read_blocks(args.doc.read_text(encoding="utf-8"))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("perf-poll-efficiency.svg", poll_efficiency(polls)),
        ("perf-overhead.svg", overhead(instructions)),
    ):
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()

"""Pictures of one UTC day of the daily summary that a traffic engineer reads at a glance.

`render_day(rows, day, out_dir)` takes rows of `traffic.daily_summary` as dicts (column
names from `traffic_glue.summary`; rows of other days are ignored) and writes into
`out_dir`:

- `jam_heatmap_<day>.png`: jam minutes per UTC hour of the most jammed sections;
- `speed_profile_<day>.png`: mean and 15th percentile speed per hour of the worst few;
- `traffic_<day>.html`: one self-contained page (no CSS, script or font from elsewhere)
  with the day's totals and both figures inline as SVG, their text kept as text.

A day without rows writes only the page, saying so. Hours are UTC everywhere; the
figures show the Brussels hour beside each UTC hour. Pure: no Spark, no catalog.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

try:
    from traffic_glue import schema, summary
except ModuleNotFoundError:  # run from the repository root without glue_jobs on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "glue_jobs"))
    from traffic_glue import schema, summary

HOURS = tuple(range(24))
MINUTES_PER_HOUR = 60  # the most jam minutes an hour can have: the top of the colour scale
SPEED_PROFILE_SECTIONS = 5
# Jam minutes in bins of ten, read off faster than a continuous scale; 0 has a bin of
# its own, white, so a calm hour reads as empty. Grey (not a colour of the scale) marks
# an hour without a summary row: "not measured", not "no jam".
JAM_BINS = (0, 1, 10, 20, 30, 40, 50, MINUTES_PER_HOUR + 1)
JAM_BIN_LABELS = ("0", "1-9", "10-19", "20-29", "30-39", "40-49", "50-60")
JAM_BIN_CENTRES = tuple((lo + hi) / 2 for lo, hi in zip(JAM_BINS, JAM_BINS[1:]))
JAM_COLOURS = ListedColormap(
    ["white", *matplotlib.colormaps["YlOrRd"](np.linspace(0.15, 1.0, len(JAM_BINS) - 2))]
).with_extremes(bad="#c8c8c8")
JAM_NORM = BoundaryNorm(JAM_BINS, JAM_COLOURS.N)
DARK_FROM = 40  # jam minutes from which a cell is dark enough for a white number
SPEED_AXIS_TOP = 130  # km/h: motorway speeds fit; a higher speed raises the axis
PNG_DPI = 110
# One id prefix per inline SVG: both figures live in one page, and matplotlib names
# groups "figure_1", "axes_1", ... in each.
HEATMAP_ID = "jam-heatmap"
PROFILE_ID = "speed-profile"

_LOCATION = schema.LOCATION_ID


@dataclass(frozen=True)
class DayTotals:
    sections: int
    minutes_measured: int
    jam_minutes: int
    long_jam_minutes: int
    vehicles: dict[int, int]
    most_jammed: tuple[int, int] | None  # (uniqueid, its jam minutes); None without jams

    def table_rows(self) -> list[tuple[str, str]]:
        most = ("none" if self.most_jammed is None
                else f"{self.most_jammed[0]} ({self.most_jammed[1]:,} jam minutes)")
        return [
            ("sections measured", f"{self.sections:,}"),
            ("minutes measured (all sections)", f"{self.minutes_measured:,}"),
            ("jam minutes", f"{self.jam_minutes:,}"),
            ("long jam minutes", f"{self.long_jam_minutes:,}"),
            *((f"vehicles, class {k}", f"{n:,}") for k, n in self.vehicles.items()),
            ("most jammed section", most),
        ]


def rows_of_day(rows: list[dict], day: dt.date) -> dict[tuple[int, int], dict]:
    """The day's rows by (uniqueid, UTC hour); the table has one row per key."""
    by_key: dict[tuple[int, int], dict] = {}
    for row in rows:
        if row[summary.DAY] != day:
            continue
        key = (row[_LOCATION], row[summary.HOUR])
        if key in by_key:
            raise ValueError(f"two summary rows for {_LOCATION} {key[0]}, {day} hour {key[1]} UTC")
        by_key[key] = row
    return by_key


def jam_ranking(day_rows: dict[tuple[int, int], dict]) -> list[tuple[int, int]]:
    """(uniqueid, jam minutes of the day) of the sections with any, most first, ties by id."""
    totals: dict[int, int] = {}
    for (location, _), row in day_rows.items():
        totals[location] = totals.get(location, 0) + row[summary.JAM_MINUTES]
    return sorted(((loc, n) for loc, n in totals.items() if n > 0), key=lambda t: (-t[1], t[0]))


def day_totals(day_rows: dict[tuple[int, int], dict]) -> DayTotals:
    rows = day_rows.values()
    ranking = jam_ranking(day_rows)
    return DayTotals(
        sections=len({loc for (loc, _), row in day_rows.items() if row[summary.MINUTES_MEASURED] > 0}),
        minutes_measured=sum(row[summary.MINUTES_MEASURED] for row in rows),
        jam_minutes=sum(row[summary.JAM_MINUTES] for row in rows),
        long_jam_minutes=sum(row[summary.LONG_JAM_MINUTES] for row in rows),
        vehicles={k: sum(row[summary.vehicles(k)] for row in rows) for k in schema.COUNTED_CLASSES},
        most_jammed=ranking[0] if ranking else None,
    )


def brussels_hours(day_rows: dict[tuple[int, int], dict], day: dt.date) -> list[int]:
    """The Brussels hour of each UTC hour of the day: the table's own `local_hour` where a
    row has it, the time zone's rule for an hour without rows."""
    from_rows = {hour: row[summary.LOCAL_HOUR] for (_, hour), row in day_rows.items()}
    zone = ZoneInfo(summary.LOCAL_TIME_ZONE)
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
    return [from_rows.get(h, (midnight + dt.timedelta(hours=h)).astimezone(zone).hour) for h in HOURS]


def _utc_hour_axis(ax) -> None:
    """UTC hours below the axes, as integers."""
    ax.set_xticks(HOURS, labels=[f"{h:02d}" for h in HOURS])
    ax.set_xlim(-0.5, 23.5)
    ax.set_xlabel("hour (UTC)")
    ax.tick_params(axis="x", labelsize=8)


def _brussels_hour_axis(ax, local_hours: list[int]) -> None:
    """The same hours in Brussels time above the axes, greyed: UTC is the reference."""
    top = ax.secondary_xaxis("top")
    top.set_xticks(HOURS, labels=[f"{h:02d}" for h in local_hours])
    top.set_xlabel("hour (Brussels)", color="0.35")
    top.tick_params(axis="x", labelsize=8, colors="0.35")


def _message_figure(text: str) -> Figure:
    fig = Figure(figsize=(10, 1.2))
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=11)
    return fig


def jam_heatmap(day_rows: dict[tuple[int, int], dict], ranking: list[tuple[int, int]],
                local_hours: list[int], day: dt.date, top: int) -> Figure:
    """The first `top` sections of `ranking` (all the day's jammed sections, most first)."""
    if not ranking:
        return _message_figure(f"No jam minutes on {day} (UTC).")
    jammed = len(ranking)
    ranking = ranking[:top]
    grid = np.full((len(ranking), len(HOURS)), np.nan)
    for i, (location, _) in enumerate(ranking):
        for h in HOURS:
            row = day_rows.get((location, h))
            if row is not None and row[summary.MINUTES_MEASURED] > 0:
                grid[i, h] = row[summary.JAM_MINUTES]
    fig = Figure(figsize=(11, 2.1 + 0.3 * len(ranking)), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=JAM_COLOURS, norm=JAM_NORM,
                      aspect="auto", interpolation="nearest")
    # The exact count in each jammed cell: the colour gives the pattern, the number the
    # value an engineer quotes.
    for (i, h), minutes in np.ndenumerate(grid):
        if minutes > 0:
            ax.text(h, i, f"{minutes:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if minutes >= DARK_FROM else "black")
    # Thin lines between cells keep neighbouring rows and hours apart.
    ax.set_xticks(np.arange(-0.5, 24), minor=True)
    ax.set_yticks(np.arange(-0.5, len(ranking)), minor=True)
    ax.grid(which="minor", color="0.85", linewidth=0.8)
    ax.tick_params(which="minor", length=0)
    _utc_hour_axis(ax)
    _brussels_hour_axis(ax, local_hours)
    ax.set_yticks(range(len(ranking)), labels=[str(loc) for loc, _ in ranking])
    ax.set_ylabel("location (uniqueid)")
    totals = ax.secondary_yaxis("right")
    totals.set_yticks(range(len(ranking)), labels=[f"{n:,}" for _, n in ranking])
    totals.set_ylabel("jam minutes that day")
    for a in (ax, totals):
        a.tick_params(axis="y", labelsize=8)
    bar = fig.colorbar(image, ax=ax, pad=0.02, fraction=0.03, aspect=max(5, 2 * len(ranking)))
    bar.set_label("jam minutes per hour")
    bar.set_ticks(JAM_BIN_CENTRES, labels=JAM_BIN_LABELS)
    bar.ax.tick_params(labelsize=8)
    shown = (f"all {jammed} sections with jam minutes" if jammed == len(ranking)
             else f"the {len(ranking)} most jammed of {jammed} sections with jam minutes")
    ax.set_title(f"Jam minutes per hour, {day} (UTC day)\n{shown}, most jammed on top; "
                 f"grey: not measured", fontsize=10, loc="left")
    return fig


def _speeds(day_rows: dict[tuple[int, int], dict], location: int, column: str) -> np.ndarray:
    # NaN, not 0, for an hour without a speed: the line breaks there.
    values = [(day_rows.get((location, h)) or {}).get(column) for h in HOURS]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def speed_profile(day_rows: dict[tuple[int, int], dict], worst: list[tuple[int, int]],
                  local_hours: list[int], day: dt.date) -> Figure:
    """One panel per section (their rush hours coincide, so one shared panel is a knot
    of crossing lines), sharing both axes so the panels compare at a glance."""
    if not worst:
        return _message_figure(f"No jam minutes on {day} (UTC): no worst sections to show.")
    fig = Figure(figsize=(11, 1.4 + 1.45 * len(worst)), layout="constrained")
    axes = fig.subplots(len(worst), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    highest = 0.0
    for ax, (location, jam), colour in zip(axes, worst, matplotlib.colormaps["tab10"].colors):
        mean = _speeds(day_rows, location, summary.MEAN_SPEED)
        p15 = _speeds(day_rows, location, summary.P15_SPEED)
        highest = np.nanmax([highest, *mean, *p15])
        ax.fill_between(HOURS, p15, mean, color=colour, alpha=0.15, linewidth=0)
        ax.plot(HOURS, mean, color=colour, marker="o", markersize=3, linewidth=1.8,
                label="mean speed")
        ax.plot(HOURS, p15, color=colour, linestyle="--", linewidth=1.1,
                label="15th percentile")
        ax.legend(title=f"location {location}: {jam:,} jam minutes", title_fontsize=8,
                  fontsize=7, loc="center left", bbox_to_anchor=(1.005, 0.5), frameon=False,
                  alignment="left")
        ax.grid(axis="y", color="0.9")
        ax.tick_params(axis="y", labelsize=8)
    axes[0].set_ylim(0, max(SPEED_AXIS_TOP, 10 * np.ceil(highest / 10)))
    _utc_hour_axis(axes[-1])
    _brussels_hour_axis(axes[0], local_hours)
    fig.supylabel("speed (km/h)", fontsize=10)
    axes[0].set_title(f"Speed per hour, {day} (UTC day)\nthe {len(worst)} sections with the "
                      f"most jam minutes; solid: mean, dashed: 15th percentile",
                      fontsize=10, loc="left")
    return fig


def _png(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=PNG_DPI)


_SVG_METADATA = ("Date", "Creator", "Format", "Type")  # None each: no RDF block in the page


def _inline_svg(fig: Figure, prefix: str) -> str:
    buffer = io.StringIO()
    # Text stays text (a reader can search it, a test can find it); a fixed salt and no
    # date make the ids, and so the page, the same for the same rows.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": prefix}):
        fig.savefig(buffer, format="svg", metadata=dict.fromkeys(_SVG_METADATA))
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # no XML prolog or doctype inside HTML
    svg = re.sub(r'\bid="', f'id="{prefix}-', svg)
    svg = svg.replace("url(#", f"url(#{prefix}-").replace('href="#', f'href="#{prefix}-')
    return svg


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; }
td, th { padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
svg { max-width: 100%; height: auto; }
.note { color: #555; }
"""


def _page(day: dt.date, body: str) -> str:
    title = f"Traffic on {day} (UTC)"
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{body}</body>\n</html>\n")


def _figure_section(heading: str, svg: str, png_name: str) -> str:
    return (f"<h2>{html.escape(heading)}</h2>\n<figure>\n{svg}\n"
            f'<figcaption><a href="{html.escape(png_name)}">{html.escape(png_name)}</a>'
            f"</figcaption>\n</figure>\n")


def render_day(rows: list[dict], day: dt.date, out_dir: Path, top: int = 15) -> Path:
    """Write the day's pictures and page into `out_dir`; return the page's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / f"traffic_{day}.html"
    day_rows = rows_of_day(rows, day)
    if not day_rows:
        page.write_text(_page(day, f'<p class="note">No summary rows for {day} (UTC): '
                                   f"nothing was measured that day, so there are no figures.</p>\n"),
                        encoding="utf-8")
        return page

    ranking = jam_ranking(day_rows)
    local_hours = brussels_hours(day_rows, day)
    totals = day_totals(day_rows)
    table = "".join(f"<tr><th>{html.escape(label)}</th><td class=\"n\">{html.escape(value)}</td></tr>\n"
                    for label, value in totals.table_rows())
    body = [f'<p class="note">Hours are UTC; the figures show the Brussels hour above each '
            f"UTC hour.</p>\n<h2>Totals</h2>\n<table>\n{table}</table>\n"]
    figures = (
        ("Jam minutes per hour", f"jam_heatmap_{day}.png", HEATMAP_ID,
         jam_heatmap(day_rows, ranking, local_hours, day, top)),
        ("Speed profile", f"speed_profile_{day}.png", PROFILE_ID,
         speed_profile(day_rows, ranking[:SPEED_PROFILE_SECTIONS], local_hours, day)),
    )
    for heading, png_name, prefix, fig in figures:
        _png(fig, out_dir / png_name)
        body.append(_figure_section(heading, _inline_svg(fig, prefix), png_name))
    page.write_text(_page(day, "".join(body)), encoding="utf-8")
    return page

"""Pictures of one UTC day of the daily summary that a traffic engineer reads at a glance.

`render_day(rows, day, out_dir)` takes rows of `traffic.daily_summary` as dicts (column
names from `traffic_glue.compute.summary`; rows of other days are ignored) and writes into
`out_dir`:

- `jam_heatmap_<day>.png`: jam minutes per UTC hour of the most jammed locations;
- `speed_profile_<day>.png`: mean and 15th percentile speed per hour of the worst few;
- `jam_map_<day>.png`: every location with a position, coloured by its jam minutes of
  the day, with the main roads' carriageways and the main cities to read it by (no
  background map: nothing is fetched);
- `traffic_<day>.html`: one self-contained page (no CSS, script, font or image from
  elsewhere) with the day's totals, the most jammed locations and the figures inline as
  SVG, their text kept as text.

Locations are named by `names`, a plain mapping of id to `LocationInfo` (label and
position), wherever it comes from: the locations table or a configuration file
(`tools.report` loads either). An id it lacks is "location <id>", or "lane <n> (not in
the configuration)" for the negative id of an unconfigured lane, and is not on the map.

A day without rows writes only the page, saying so. Hours are UTC everywhere; the
figures show the Brussels hour beside each UTC hour. Pure: no Spark, no catalog.
"""

from __future__ import annotations

import bisect
import datetime as dt
import html
import io
import math
import re
import sys
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter

try:
    from traffic_glue.compute import schema, summary
except ModuleNotFoundError:  # run from the repository root without glue_jobs on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "glue_jobs"))
    from traffic_glue.compute import schema, summary
from traffic_glue.compute.configuration import MAIN

HOURS = tuple(range(24))
MINUTES_PER_HOUR = 60  # the most jam minutes an hour can have: the top of the colour scale
SPEED_PROFILE_LOCATIONS = 5
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

# --- names ------------------------------------------------------------------------------

LABEL_WIDTH = 44  # characters per line of a name beside a figure's row or panel
LABEL_LINES = 2
_KEEP_TOGETHER = "direction\u00a0"  # textwrap breaks at ASCII whitespace only


@dataclass(frozen=True)
class LocationInfo:
    """What the pictures need of a location: its name, where it is, and (for the map's
    road lines) which carriageway of which road at which kilometre point."""

    label: str
    longitude: float | None = None
    latitude: float | None = None
    road_name: str | None = None
    direction: int | None = None
    kilometre_point: float | None = None
    main_carriageway: bool = False

    @property
    def position(self) -> tuple[float, float] | None:
        if self.longitude is None or self.latitude is None:
            return None
        return self.longitude, self.latitude


def location_info(location) -> LocationInfo:
    """A `traffic_glue.compute.configuration.Location` (or any object with its attributes)."""
    return LocationInfo(
        label=location.label, longitude=location.longitude, latitude=location.latitude,
        road_name=location.road_name, direction=location.direction,
        kilometre_point=location.kilometre_point,
        main_carriageway=location.lane_group == MAIN and location.direction is not None,
    )


def names_from_location_rows(rows: Iterable[Mapping]) -> dict[int, LocationInfo]:
    """Rows of the locations table (one per location and configuration version) by id:
    per id the row with the latest `valid_from` (a NULL `valid_from` is the earliest)."""
    latest: dict[int, Mapping] = {}
    earliest = dt.datetime.min.replace(tzinfo=dt.timezone.utc)

    def start(row: Mapping) -> dt.datetime:
        value = row.get("valid_from")
        if value is None:
            return earliest
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)

    for row in rows:
        current = latest.get(row["location_id"])
        if current is None or start(row) >= start(current):
            latest[row["location_id"]] = row
    return {
        location: LocationInfo(
            label=row.get("label") or fallback_name(location),
            longitude=row.get("longitude"), latitude=row.get("latitude"),
            road_name=row.get("road_name"), direction=row.get("direction"),
            kilometre_point=row.get("kilometre_point"),
            main_carriageway=row.get("lane_group") == MAIN and row.get("direction") is not None,
        )
        for location, row in latest.items()
    }


def fallback_name(location: int) -> str:
    """The name of an id `names` lacks: a negative id is a lane the configuration does
    not hold (its `-unieke_id`), any other id just itself."""
    if location < 0:
        return f"lane {-location} (not in the configuration)"
    return f"location {location}"


def location_name(names: Mapping[int, LocationInfo], location: int) -> str:
    info = names.get(location)
    return info.label if info is not None else fallback_name(location)


def wrapped(text: str, width: int = LABEL_WIDTH, lines: int = LABEL_LINES) -> str:
    """`text` on at most `lines` lines of about `width` characters, cut with an ellipsis
    where it is longer: a figure's row keeps its height, and the page's table has the
    whole name."""
    # "direction 1" stays on one line: a lone "1" on the next reads as another number.
    parts = textwrap.wrap(text.replace("direction ", _KEEP_TOGETHER), width) or [""]
    if len(parts) > lines:
        last = " ".join(parts[lines - 1:])
        parts = [*parts[:lines - 1], last[:width - 1].rstrip(" ,(") + "…"]
    return "\n".join(parts).replace(_KEEP_TOGETHER, "direction ")



@dataclass(frozen=True)
class DayTotals:
    locations: int
    minutes_measured: int
    jam_minutes: int
    long_jam_minutes: int
    vehicles: dict[int, int]
    most_jammed: tuple[int, int] | None  # (uniqueid, its jam minutes); None without jams

    def table_rows(self, names: Mapping[int, LocationInfo]) -> list[tuple[str, str]]:
        most = "none"
        if self.most_jammed is not None:
            location, minutes = self.most_jammed
            most = f"{location_name(names, location)} (id {location}, {minutes:,} jam minutes)"
        return [
            ("locations measured", f"{self.locations:,}"),
            ("minutes measured (all locations)", f"{self.minutes_measured:,}"),
            ("jam minutes", f"{self.jam_minutes:,}"),
            ("long jam minutes", f"{self.long_jam_minutes:,}"),
            *((f"vehicles, class {k}", f"{n:,}") for k, n in self.vehicles.items()),
            ("most jammed location", most),
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
    """(uniqueid, jam minutes of the day) of the locations with any, most first, ties by id."""
    totals: dict[int, int] = {}
    for (location, _), row in day_rows.items():
        totals[location] = totals.get(location, 0) + row[summary.JAM_MINUTES]
    return sorted(((loc, n) for loc, n in totals.items() if n > 0), key=lambda t: (-t[1], t[0]))


def day_totals(day_rows: dict[tuple[int, int], dict]) -> DayTotals:
    rows = day_rows.values()
    ranking = jam_ranking(day_rows)
    return DayTotals(
        locations=len({loc for (loc, _), row in day_rows.items() if row[summary.MINUTES_MEASURED] > 0}),
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
                local_hours: list[int], day: dt.date, top: int,
                names: Mapping[int, LocationInfo]) -> Figure:
    """The first `top` locations of `ranking` (all the day's jammed locations, most first),
    a row each, named."""
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
    # A name takes up to two lines: rows tall enough for them at 7.5 pt.
    fig = Figure(figsize=(12, 2.1 + 0.4 * len(ranking)), layout="constrained")
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
    ax.set_yticks(range(len(ranking)),
                  labels=[wrapped(location_name(names, loc)) for loc, _ in ranking])
    ax.set_ylabel("location")
    totals = ax.secondary_yaxis("right")
    totals.set_yticks(range(len(ranking)), labels=[f"{n:,}" for _, n in ranking])
    totals.set_ylabel("jam minutes that day")
    ax.tick_params(axis="y", labelsize=7.5)
    totals.tick_params(axis="y", labelsize=8)
    bar = fig.colorbar(image, ax=ax, pad=0.02, fraction=0.03, aspect=max(5, 2 * len(ranking)))
    bar.set_label("jam minutes per hour")
    bar.set_ticks(JAM_BIN_CENTRES, labels=JAM_BIN_LABELS)
    bar.ax.tick_params(labelsize=8)
    shown = (f"all {jammed} locations with jam minutes" if jammed == len(ranking)
             else f"the {len(ranking)} most jammed of {jammed} locations with jam minutes")
    ax.set_title(f"Jam minutes per hour, {day} (UTC day)\n{shown}, most jammed on top; "
                 f"grey: not measured", fontsize=10, loc="left")
    return fig


def _speeds(day_rows: dict[tuple[int, int], dict], location: int, column: str) -> np.ndarray:
    # NaN, not 0, for an hour without a speed: the line breaks there.
    values = [(day_rows.get((location, h)) or {}).get(column) for h in HOURS]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def speed_panel_title(names: Mapping[int, LocationInfo], location: int, jam: int) -> str:
    """A panel's title: the location's name (one line, shortened if need be) and its jam
    minutes."""
    return f"{wrapped(location_name(names, location), width=90, lines=1)}: {jam:,} jam minutes"


def speed_profile(day_rows: dict[tuple[int, int], dict], worst: list[tuple[int, int]],
                  local_hours: list[int], day: dt.date,
                  names: Mapping[int, LocationInfo]) -> Figure:
    """One panel per location (their rush hours coincide, so one shared panel is a knot
    of crossing lines), sharing both axes so the panels compare at a glance; each
    panel's title names its location."""
    if not worst:
        return _message_figure(f"No jam minutes on {day} (UTC): no worst locations to show.")
    fig = Figure(figsize=(11, 1.6 + 1.7 * len(worst)), layout="constrained")
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
        ax.set_title(speed_panel_title(names, location, jam), fontsize=8.5, loc="left")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.005, 0.5), frameon=False)
        ax.grid(axis="y", color="0.9")
        ax.tick_params(axis="y", labelsize=8)
    axes[0].set_ylim(0, max(SPEED_AXIS_TOP, 10 * np.ceil(highest / 10)))
    _utc_hour_axis(axes[-1])
    _brussels_hour_axis(axes[0], local_hours)
    fig.supylabel("speed (km/h)", fontsize=10)
    fig.suptitle(f"Speed per hour, {day} (UTC day): the {len(worst)} locations with the "
                 f"most jam minutes; solid: mean, dashed: 15th percentile",
                 fontsize=10, x=0.01, ha="left")
    return fig


# --- the map ------------------------------------------------------------------------------

# Eight cities a Flemish traffic engineer finds the network by, at their centres (degrees
# east, north): no background map is fetched, so these and the roads' own lines orient.
CITIES = (
    ("Antwerpen", 4.40, 51.22), ("Gent", 3.72, 51.05), ("Brussel", 4.35, 50.85),
    ("Brugge", 3.22, 51.21), ("Leuven", 4.70, 50.88), ("Hasselt", 5.34, 50.93),
    ("Mechelen", 4.48, 51.03), ("Kortrijk", 3.27, 50.83),
)
MINUTES_PER_DAY = 24 * MINUTES_PER_HOUR
# A location's jam minutes of the day, in bins that double: a rush hour's jam (tens of
# minutes) and a day-long one (hundreds) both read. 0 is a light neutral colour of its
# own; a location without a summary row that day ("no data") is a hollow grey ring.
MAP_BINS = (0, 1, 15, 30, 60, 120, 240, MINUTES_PER_DAY + 1)
MAP_BIN_LABELS = ("0", "1-14", "15-29", "30-59", "60-119", "120-239", "240-1440")
NO_DATA = -1  # the bucket of a location without a summary row that day
MAP_ZERO_COLOUR = "#e4e1d8"
MAP_NO_DATA_COLOUR = "#9a9a9a"
MAP_COLOURS = ListedColormap(
    [MAP_ZERO_COLOUR, *matplotlib.colormaps["YlOrRd"](np.linspace(0.25, 1.0, len(MAP_BINS) - 2))]
)
MAP_NORM = BoundaryNorm(MAP_BINS, MAP_COLOURS.N)
MAP_LABELLED = 8  # the most jammed locations named on the map
ROAD_GAP_KM = 10.0  # consecutive points of a road further apart than this: no line between
KM_PER_DEGREE = 111.2  # of latitude; of longitude times cos(latitude)
MAP_ID = "jam-map"


def map_bucket(jam_minutes: int | None) -> int:
    """The colour bucket of a day's jam minutes: the index of its bin in `MAP_BINS`
    (0 for none), `NO_DATA` for a location not measured that day."""
    if jam_minutes is None:
        return NO_DATA
    return min(bisect.bisect_right(MAP_BINS, jam_minutes), len(MAP_BINS) - 1) - 1


@dataclass(frozen=True)
class MapPoint:
    location_id: int
    name: str
    longitude: float
    latitude: float
    jam_minutes: int | None  # None: no summary row that day
    bucket: int


def day_jam_minutes(day_rows: dict[tuple[int, int], dict]) -> dict[int, int]:
    """Jam minutes of the day of every location with a row that day, 0 included."""
    totals: dict[int, int] = {}
    for (location, _), row in day_rows.items():
        totals[location] = totals.get(location, 0) + row[summary.JAM_MINUTES]
    return totals


def map_points(day_rows: dict[tuple[int, int], dict], names: Mapping[int, LocationInfo]
               ) -> tuple[list[MapPoint], list[tuple[int, str, int]]]:
    """The map's points: every named location with a position, measured that day or not,
    least jammed first (drawn first, so the most jammed lie on top). And the day's
    locations that cannot be placed (no name, or a name without a position) as (id,
    name, jam minutes), most jammed first, ties by id."""
    jams = day_jam_minutes(day_rows)
    placed = [
        MapPoint(location, info.label, info.longitude, info.latitude,
                 jams.get(location), map_bucket(jams.get(location)))
        for location, info in names.items() if info.position is not None
    ]
    placed.sort(key=lambda p: (p.bucket, -1 if p.jam_minutes is None else p.jam_minutes,
                               p.location_id))
    unplaced = sorted(
        ((location, location_name(names, location), jam) for location, jam in jams.items()
         if location not in names or names[location].position is None),
        key=lambda t: (-t[2], t[0]),
    )
    return placed, unplaced


def _km_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    across = (b[0] - a[0]) * math.cos(math.radians((a[1] + b[1]) / 2))
    return KM_PER_DEGREE * math.hypot(across, b[1] - a[1])


def road_lines(names: Mapping[int, LocationInfo]) -> list[tuple[str, list[tuple[float, float]]]]:
    """Each road's main carriageway per direction as lines through its locations' points
    in kilometre order, broken where two consecutive points lie more than `ROAD_GAP_KM`
    apart (a stretch without measurement points, or kilometre points that restart)."""
    by_road: dict[tuple[str, int], list[tuple[float, tuple[float, float]]]] = {}
    for info in names.values():
        if (info.main_carriageway and info.position is not None and info.road_name
                and info.kilometre_point is not None):
            by_road.setdefault((info.road_name, info.direction), []).append(
                (info.kilometre_point, info.position))
    lines = []
    for (road, _), points in sorted(by_road.items()):
        points.sort()
        line = [points[0][1]]
        for (_, before), (_, here) in zip(points, points[1:]):
            if _km_between(before, here) > ROAD_GAP_KM:
                if len(line) > 1:
                    lines.append((road, line))
                line = []
            line.append(here)
        if len(line) > 1:
            lines.append((road, line))
    return lines


def _extent(values: list[float], margin: float, least: float) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = max((high - low) * margin, (least - (high - low)) / 2, 0.0)
    return low - pad, high + pad


def _degrees(east: bool):
    def label(value, _):
        hemisphere = ("E" if value >= 0 else "W") if east else ("N" if value >= 0 else "S")
        return f"{abs(value):.1f}°{hemisphere}"
    return FuncFormatter(label)


def _label(ax, text: str, xy: tuple[float, float], offset: tuple[int, int]):
    dx, dy = offset
    note = ax.annotate(
        text, xy, xytext=offset, textcoords="offset points", fontsize=7, zorder=7,
        ha="left" if dx > 0 else "right" if dx < 0 else "center",
        va="bottom" if dy > 0 else "top" if dy < 0 else "center",
        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.85,
              "edgecolor": "0.6", "linewidth": 0.5},
        arrowprops={"arrowstyle": "-", "color": "0.3", "linewidth": 0.6},
    )
    note.set_in_layout(False)  # the axes keep their place: labels are placed inside them
    return note


# Places around a point to try for its label, nearest first: the 8 directions at three
# distances (points).
_LABEL_OFFSETS = tuple(
    (round(r * dx), round(r * dy)) for r in (10, 32, 56)
    for dx, dy in ((1, 0.8), (1, -0.8), (-1, 0.8), (-1, -0.8), (0, 1.4), (0, -1.4), (1.4, 0), (-1.4, 0))
)


def _overlap(box, others) -> float:
    """The area `box` shares with `others`, summed."""
    return sum(max(0.0, min(box.x1, o.x1) - max(box.x0, o.x0))
               * max(0.0, min(box.y1, o.y1) - max(box.y0, o.y0)) for o in others)


def _text_box(note, renderer):
    """Where a label's text and its frame are, without its leader line (lines may cross)."""
    note.update_positions(renderer)
    return Text.get_window_extent(note, renderer).padded(3)


def _name_the_most_jammed(fig: Figure, ax, points: list[MapPoint], cities: list) -> None:
    """A label per point (its rank and name), at the first of the places around it that
    overlaps neither a city's name nor a label placed before it and stays inside the axes;
    when none does, at the place that overlaps least."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # lays the figure out: the labels are placed in its final coordinates
    renderer = canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken = [_text_box(city, renderer) for city in cities]
    for rank, point in enumerate(points, start=1):
        text = wrapped(f"{rank}. {point.name}", 34, 2)
        xy = (point.longitude, point.latitude)
        best = None  # (overlap, offset)
        for offset in _LABEL_OFFSETS:
            note = _label(ax, text, xy, offset)
            box = _text_box(note, renderer)
            note.remove()
            inside = (frame.x0 <= box.x0 and box.x1 <= frame.x1
                      and frame.y0 <= box.y0 and box.y1 <= frame.y1)
            if not inside:
                continue
            overlap = _overlap(box, taken)
            if best is None or overlap < best[0]:
                best = (overlap, offset)
            if overlap == 0:
                break
        note = _label(ax, text, xy, best[1] if best else _LABEL_OFFSETS[0])
        taken.append(_text_box(note, renderer))


def jam_map(day_rows: dict[tuple[int, int], dict], names: Mapping[int, LocationInfo],
            day: dt.date, labelled: int = MAP_LABELLED) -> Figure:
    """Every location with a position, by longitude and latitude (equirectangular, the
    east-west scale shrunk by cos(latitude) so distances look right), coloured by its jam
    minutes of the day; the `labelled` most jammed named; the roads' main carriageways
    and the main cities drawn to read it by."""
    placed, unplaced = map_points(day_rows, names)
    if not placed:
        return _message_figure(
            f"No location has a known position: no map of {day}. Names and positions come "
            "from the locations table or a configuration file.")
    x0, x1 = _extent([p.longitude for p in placed], 0.04, 0.3)
    y0, y1 = _extent([p.latitude for p in placed], 0.06, 0.2)
    aspect = 1 / math.cos(math.radians((y0 + y1) / 2))
    height = min(12.0, max(3.5, 9.0 * (y1 - y0) * aspect / (x1 - x0) + 1.6))
    fig = Figure(figsize=(11, height), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect(aspect)
    ax.xaxis.set_major_formatter(_degrees(east=True))
    ax.yaxis.set_major_formatter(_degrees(east=False))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.tick_params(labelsize=8)
    ax.grid(color="0.93", linewidth=0.6)

    for road, line in road_lines(names):
        ax.plot(*zip(*line), color="0.78", linewidth=0.9, zorder=1, solid_capstyle="round")
    cities = []
    for name, lon, lat in CITIES:
        if x0 <= lon <= x1 and y0 <= lat <= y1:
            # Above the points: the cities are what the reader finds the rest by.
            ax.plot(lon, lat, marker="s", markersize=4, color="0.1", zorder=6)
            cities.append(ax.annotate(
                name, (lon, lat), xytext=(0, 5), textcoords="offset points", ha="center",
                va="bottom", fontsize=9, fontweight="bold", color="0.1", zorder=6,
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "alpha": 0.7,
                      "edgecolor": "none"}))

    missing = [p for p in placed if p.bucket == NO_DATA]
    measured = [p for p in placed if p.bucket != NO_DATA]
    if missing:
        ax.scatter([p.longitude for p in missing], [p.latitude for p in missing], s=8,
                   facecolors="none", edgecolors=MAP_NO_DATA_COLOUR, linewidths=0.6, zorder=4)
    if measured:
        ax.scatter([p.longitude for p in measured], [p.latitude for p in measured],
                   c=[p.jam_minutes for p in measured], cmap=MAP_COLOURS, norm=MAP_NORM,
                   s=[10 + 9 * p.bucket for p in measured], edgecolors="0.45",
                   linewidths=0.3, zorder=5)
    bar = fig.colorbar(ScalarMappable(norm=MAP_NORM, cmap=MAP_COLOURS), ax=ax, pad=0.01,
                       fraction=0.03, shrink=0.8, spacing="uniform")
    bar.set_ticks([(lo + hi) / 2 for lo, hi in zip(MAP_BINS, MAP_BINS[1:])], labels=MAP_BIN_LABELS)
    bar.set_label("jam minutes that day")
    bar.ax.tick_params(labelsize=8)
    fig.legend(handles=[
        Line2D([], [], linestyle="none", marker="o", markersize=4, markerfacecolor="none",
               markeredgecolor=MAP_NO_DATA_COLOUR, label="not measured that day"),
        Line2D([], [], linestyle="none", marker="o", markersize=4, markerfacecolor=MAP_ZERO_COLOUR,
               markeredgecolor="0.45", label="no jam minutes"),
        Line2D([], [], color="0.78", linewidth=1.2, label="a road's main carriageway"),
        Line2D([], [], linestyle="none", marker="s", markersize=4, color="0.15", label="city"),
    ], loc="outside lower left", ncols=4, fontsize=8, frameon=False)

    jammed = sorted((p for p in measured if p.jam_minutes), key=lambda p: (-p.jam_minutes, p.location_id))
    named = jammed[:labelled]
    off = f" (and {len(unplaced):,} not placed: no position)" if unplaced else ""
    ax.set_title(
        f"Jam minutes per location, {day} (UTC day), north up; the {len(named)} most jammed "
        f"named\n{len(measured):,} of the {len(placed):,} locations placed were measured that "
        f"day{off}", fontsize=10, loc="left")
    _name_the_most_jammed(fig, ax, named, cities)
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
td.pos { white-space: nowrap; }
svg { max-width: 100%; height: auto; }
.note { color: #555; }
"""


def _page(day: dt.date, body: str) -> str:
    title = f"Traffic on {day} (UTC)"
    # An empty icon of its own: else the browser asks the server for /favicon.ico, and
    # its 404 is an error in the console of a page that has none.
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<link rel="icon" href="data:,">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{body}</body>\n</html>\n")


def _figure_section(heading: str, svg: str, png_name: str, prefix: str, after: str = "") -> str:
    return (f"<h2>{html.escape(heading)}</h2>\n<figure id=\"{prefix}\">\n{svg}\n"
            f'<figcaption><a href="{html.escape(png_name)}">{html.escape(png_name)}</a>'
            f"</figcaption>\n</figure>\n{after}")


def _position_text(info: LocationInfo | None) -> str:
    if info is None or info.position is None:
        return "not known (not on the map)"
    return f"{info.latitude:.4f}°N {info.longitude:.4f}°E"


def _most_jammed_table(day_rows: dict[tuple[int, int], dict], ranking: list[tuple[int, int]],
                       names: Mapping[int, LocationInfo]) -> str:
    if not ranking:
        return '<p class="note">No location had a jam minute that day.</p>\n'
    long_jams: dict[int, int] = {}
    for (location, _), row in day_rows.items():
        long_jams[location] = long_jams.get(location, 0) + row[summary.LONG_JAM_MINUTES]
    rows = "".join(
        f'<tr><td class="n">{rank}</td><td>{html.escape(location_name(names, location))}</td>'
        f'<td class="n">{location}</td><td class="n">{jam:,}</td>'
        f'<td class="n">{long_jams[location]:,}</td>'
        f"<td class=\"pos\">{html.escape(_position_text(names.get(location)))}</td></tr>\n"
        for rank, (location, jam) in enumerate(ranking, start=1)
    )
    return ("<table>\n<tr><th>#</th><th>location</th><th>id (uniqueid)</th><th>jam minutes</th>"
            f"<th>long jam minutes</th><th>position</th></tr>\n{rows}</table>\n")


UNPLACED_LISTED = 30  # locations without a position named below the map; the rest counted


def _unplaced_note(unplaced: list[tuple[int, str, int]]) -> str:
    if not unplaced:
        return ""
    items = "".join(f"<li>{html.escape(name)} (id {location}): {jam:,} jam minutes</li>\n"
                    for location, name, jam in unplaced[:UNPLACED_LISTED])
    more = len(unplaced) - UNPLACED_LISTED
    tail = f'<p class="note">and {more:,} more.</p>\n' if more > 0 else ""
    return (f'<p class="note">Measured that day but not on the map, their position not being '
            f"known ({len(unplaced):,}, most jammed first):</p>\n<ul>\n{items}</ul>\n{tail}")


def render_day(rows: list[dict], day: dt.date, out_dir: Path, top: int = 15,
               names: Mapping[int, LocationInfo] | None = None) -> Path:
    """Write the day's pictures and page into `out_dir`; return the page's path. `names`
    names the locations and places them on the map (None: ids only, no map points)."""
    names = names or {}
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
                    for label, value in totals.table_rows(names))
    body = [f'<p class="note">Hours are UTC; the figures show the Brussels hour above each '
            f"UTC hour.</p>\n<h2>Totals</h2>\n<table>\n{table}</table>\n",
            f"<h2>Most jammed locations</h2>\n{_most_jammed_table(day_rows, ranking[:top], names)}"]
    _, unplaced = map_points(day_rows, names)
    figures = (
        ("Map of jam minutes", f"jam_map_{day}.png", MAP_ID, jam_map(day_rows, names, day),
         _unplaced_note(unplaced)),
        ("Jam minutes per hour", f"jam_heatmap_{day}.png", HEATMAP_ID,
         jam_heatmap(day_rows, ranking, local_hours, day, top, names), ""),
        ("Speed profile", f"speed_profile_{day}.png", PROFILE_ID,
         speed_profile(day_rows, ranking[:SPEED_PROFILE_LOCATIONS], local_hours, day, names), ""),
    )
    for heading, png_name, prefix, fig, after in figures:
        _png(fig, out_dir / png_name)
        body.append(_figure_section(heading, _inline_svg(fig, prefix), png_name, prefix, after))
    page.write_text(_page(day, "".join(body)), encoding="utf-8")
    return page

"""Realistic, fast, deterministic raw MIV readings, landed as Kinesis Firehose lands them.

`generate(root, spec)` writes one file per processing (arrival) hour under
`<root>/year=YYYY/month=MM/day=DD/hour=HH/` (zero-padded, UTC), named like Firehose's
`traffic-firehose-1-YYYY-MM-DD-HH-00-00-<8 hex>` (`.parquet`, or no extension for JSON
lines). It writes (and overwrites) only its own files; it never deletes anything, so a
root that held other files keeps them.

The rules a test or a parity check may rely on (all times UTC epoch seconds):

- Lanes: `lanes` lanes of the configuration (`configuration`, by default the real
  network of 2017: 4,254 lanes, 575 `lve_nr`), whole cabinets (`lve_nr`) in the order
  ANCHOR_CABINETS, then the others in an order the seed chooses; the last one taken may
  be cut (`sample_lanes`). A reading carries its lane's configured `unieke_id`, `lve_nr`
  and `beschrijvende_id`. So a sample has cabinets with both carriageways of a motorway,
  slip roads, wrong-way (TR) lanes, a bus lane, a hard shoulder and lanes without a
  kilometre point. The network depends on (`seed`, `lanes`, the configuration) only.
- Traffic: each location of `corrected` (one road reference's lanes of a group at one
  point, `configuration.locations_of`) has its own free-flow speed and volume by its kind
  (PROFILES: a motorway's carriageway 100..125 km/h, a ramp 55..85, a bus lane or hard
  shoulder a few vehicles, a TR lane nearly none), and its own jams:
  `jam_location_fraction` of the carriageways' locations (at least one) break down in
  rush hours to 5..35 km/h and recover over 10..35 minutes. So a number that averages a
  cabinet's two directions is visibly not either's.
- Scenario `jam_one_road` (instead of those jams): see OneRoadJams; every class of a
  lane with vehicles has the lane's speed, so the bands 15..30 and 100..120 hold for
  every reading, copies included.
- Readings: one per lane per minute of each day, minus the missing ones. A day's
  readings depend on (`seed`, `lanes`, that date) only, so a day generated alone has the
  same readings as the same day inside a longer run (the files differ: folders mix days).
- `tijd_laatst_gewijzigd` (m) = measurement (e) + 30..90 s, written in Brussels local
  time with its offset (`+01:00` or `+02:00`).
- Arrival (a): a normal reading arrives at m + 0..60 s; a late one (`late_fraction` of
  the readings, and their copies) at least m + 3660 s and at most e + max_late_hours h
  + 59 s. So a reading is late exactly when its folder hour is after the hour of m + 60 s,
  and it never lands more than `max_late_hours` folders after its event hour.
- Duplicates (`duplicate_fraction` of the readings get one extra copy; the copy lands in
  the same or a later folder than the original):
  half (coin flip) keep the same m, with each class speed that had vehicles moved by
  1..5 km/h (the stream's repeats); the others are corrections: m + 60..600 s,
  intensities of classes with vehicles moved by -1..+1 (staying >= 1), their speeds by
  1..8 km/h, a known occupancy by -3..+3 when vehicles passed. Copies keep the original's
  flags (defect, unknown occupancy) and lateness.
- Missing: about `missing_fraction` of (lane, minute): half single minutes, half
  outages of one lane for 2..15 minutes. Defects: runs of one lane of 5..120 minutes
  (defect = 1, geldig = 1, no vehicles, occupancy 0). Unknown occupancy (-1) only on
  readings that are not defect.
- Every reading is valid for the job: keys set, intensities >= 0, speeds 1..250 when a
  class had vehicles, 0 (arithmetic) and 252 (harmonic) when it had none.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import shutil
import sys
import time
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

try:
    from traffic_glue.compute import configuration, schema
except ModuleNotFoundError:  # run as `python -m tools.sample_data` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "glue_jobs"))
    from traffic_glue.compute import configuration, schema

# The real network (4,254 lanes, 575 lve_nr), copied from the shared data into the tests'.
DEFAULT_CONFIGURATION = (Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "network"
                         / "miv-config-2017-05-18.xml.gz")

FORMATS = ("parquet", "json")
MINUTES = 1440
NO_VEHICLE_ARITHMETIC, NO_VEHICLE_HARMONIC, MAX_SPEED = 0, 252, 250
CLASS_SHARE = np.array([0.01, 0.80, 0.08, 0.05, 0.06], np.float32)  # classes 1..5
VEHICLE_LENGTH_M = np.array([4.0, 6.5, 8.0, 14.0, 20.0], np.float32)  # plus the loop
CLASS_SPEED_SHIFT = (4, 0, -3, 0, 0)  # km/h against the lane's speed
CLASS_SPEED_CAP = (MAX_SPEED, MAX_SPEED, MAX_SPEED, 86, 84)  # trucks
MODIFIED_DELAY_S = (30, 90)
ARRIVAL_DELAY_S = (0, 60)  # after tijd_laatst_gewijzigd
LATE_MIN_DELAY_S = 3660  # after tijd_laatst_gewijzigd: always a later folder
CORRECTION_DELAY_S = (60, 600)
OUTAGE_MINUTES = (2, 15)
DEFECT_RUN_MINUTES = (5, 120)
SAME_MODIFIED_SHARE = 0.5
JSON_ISO_TIME_SHARE, JSON_STRING_TIME_SHARE = 0.02, 0.02
# JSON value styles: 0 every value a string; 1 class-2 speeds as numbers (as in the
# stream's examples); 2 every integer a number.
JSON_STYLE_SHARES = (0.85, 0.10, 0.05)
PARQUET_OPTIONS = dict(
    compression="snappy", version="2.6", use_dictionary=True, write_statistics=True,
    row_group_size=1 << 20, data_page_size=1 << 20, data_page_version="1.0",
    store_schema=True, write_page_index=False,
)
_ARROW_TYPES = {"integer": pa.int32(), "long": pa.int64(), "string": pa.string()}
ARROW_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW_TYPES[f.dataType.typeName()]) for f in schema.RAW_SCHEMA.fields]
)
_CLASS_COLUMNS = [
    name for k in schema.ALL_CLASSES
    for name in (schema.intensity(k), schema.arithmetic_speed(k), schema.harmonic_speed(k))
]


@dataclass(frozen=True)
class SampleSpec:
    start_date: dt.date  # first event-time day (UTC)
    days: int = 1
    lanes: int = 300  # from the configuration (whole cabinets, see sample_lanes); all: 4254
    seed: int = 42
    source_format: str = "parquet"  # "parquet" or "json" (JSON lines, as the stream)
    missing_fraction: float = 0.02
    defect_fraction: float = 0.01
    unknown_occupancy_fraction: float = 0.01
    duplicate_fraction: float = 0.01
    late_fraction: float = 0.005
    max_late_hours: int = 6
    jam_location_fraction: float = 0.1
    jam_one_road: bool = False  # the scenario OneRoadJams instead of rush-hour jams
    configuration: str | None = None  # a mivconfig file; None: DEFAULT_CONFIGURATION

    def __post_init__(self):
        if self.source_format not in FORMATS:
            raise ValueError(f"source_format must be one of {FORMATS}, not {self.source_format!r}")
        for name in ("days", "lanes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        for f in fields(self):
            if f.name.endswith("_fraction") and not 0 <= getattr(self, f.name) <= 0.5:
                raise ValueError(f"{f.name} must be within 0..0.5, not {getattr(self, f.name)}")
        if self.max_late_hours < 2:
            raise ValueError("max_late_hours must be at least 2 (a late reading lands in "
                             f"a later folder than a normal one), not {self.max_late_hours}")


@dataclass(frozen=True)
class GenerationStats:
    readings: int  # rows written, copies included
    files: int
    lanes: int
    locations: int  # of `corrected`: one road reference's lanes of a group at one point
    duplicates: int  # extra copies (rows minus distinct (unieke_id, tijd_waarneming))
    late: int  # rows landing >= 1 h after their arrival would be due
    defect: int  # rows with defect = 1
    unknown_occupancy: int  # rows with rekendata_bezettingsgraad = -1
    missing: int  # (lane, minute) of the days without any reading
    duplicates_same_modified: int
    duplicates_corrected: int
    no_vehicle: int  # rows without a vehicle of class 2..5 (NULL lane speed downstream)
    jam_locations: int
    first_hour: str  # first and last processing-hour folder, e.g. 2020-04-06T00
    last_hour: str
    bytes: int
    source_format: str
    json_iso_times: int  # JSON rows whose tijd_waarneming is an ISO-8601 string
    json_string_times: int  # ... a string of digits
    cabinets: int = 0  # distinct lve_nr

    def describe(self) -> str:
        return (
            f"Wrote {self.readings:,} readings ({self.duplicates:,} duplicates, a second reading "
            f"of the same lane and minute: {self.duplicates_same_modified:,} repeats with the same "
            f"tijd_laatst_gewijzigd, {self.duplicates_corrected:,} corrections) of {self.lanes:,} lanes in "
            f"{self.cabinets:,} cabinets (lve_nr) at {self.locations:,} locations "
            f"({self.jam_locations:,} with jams) into "
            f"{self.files:,} {self.source_format} files ({self.bytes / 2**20:,.1f} MiB), "
            f"processing hours {self.first_hour} to {self.last_hour}; {self.missing:,} "
            f"readings missing, {self.defect:,} defect, {self.unknown_occupancy:,} with "
            f"unknown occupancy, {self.late:,} late, {self.no_vehicle:,} without vehicles"
            + (f", {self.json_iso_times:,} ISO-8601 and {self.json_string_times:,} string "
               "tijd_waarneming" if self.source_format == "json" else "") + "."
            # Why a run's report counts fewer duplicates (docs/SEMANTICS.md, steps 1 and 2).
            + " A `corrected` run of the job over these days counts as `left out: duplicate` "
            "only the copies of readings it keeps: a copy of a defect reading, of one with "
            "unknown occupancy or (given the configuration) of a wrong-way lane's is left out "
            "under that rule, as its original is."
        )


# --- time ----------------------------------------------------------------------

def _epoch(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())


def brussels_offset(seconds: np.ndarray) -> np.ndarray:
    """UTC offset (s) of Europe/Brussels: summer time from the last Sunday of March to
    the last Sunday of October, 01:00 UTC (the EU rule since 1996)."""
    seconds = np.asarray(seconds, np.int64)
    if seconds.size == 0:
        return seconds.copy()
    first = dt.datetime.fromtimestamp(int(seconds.min()), dt.timezone.utc).year
    last = dt.datetime.fromtimestamp(int(seconds.max()), dt.timezone.utc).year
    bounds = []
    for year in range(first, last + 1):
        for month in (3, 10):
            end = dt.date(year, month, 31)
            sunday = end - dt.timedelta(days=(end.weekday() + 1) % 7)
            bounds.append(_epoch(sunday) + 3600)
    summer = np.searchsorted(np.array(bounds), seconds, side="right") % 2 == 1
    return np.where(summer, 7200, 3600).astype(np.int64)


def _iso_local(seconds: np.ndarray) -> pa.Array:
    """ISO-8601 strings in Brussels time with offset; formats each distinct second once."""
    seconds = np.asarray(seconds, np.int64)
    low = int(seconds.min())
    table_s = np.arange(low, int(seconds.max()) + 1, dtype=np.int64)
    offset = brussels_offset(table_s)
    # Arrow's cast gives "YYYY-MM-DD HH:MM:SS" 15x faster than its strftime: the same text.
    local = pc.replace_substring(pc.cast(pa.array(table_s + offset, pa.timestamp("s")), pa.string()),
                                 " ", "T", max_replacements=1)
    table = pc.if_else(pa.array(offset == 7200), pc.binary_join_element_wise(local, "+02:00", ""),
                       pc.binary_join_element_wise(local, "+01:00", ""))
    return table.take(pa.array(seconds - low))


# --- the network -----------------------------------------------------------------

# Cabinets every sample starts with, in this order (then the others, in an order the
# seed chooses): together they show what the real network is made of.
ANCHOR_CABINETS = (
    437,  # Parking Kruibeke: both carriageways of the A14 (R10-R12), slip roads, a W09 lane
    411,  # Strombeek-Bever: both carriageways of the A12, two ramps, the R0
    191,  # Waaslandtunnel: two directions, each with a wrong-way (TR) lane
    4,  # complex Hondzocht: both carriageways of the A8 without a kilometre point, ramps
    549,  # a bus lane (B09) beside the A21
    211,  # a hard shoulder (P00) beside the A13
)
ANCHOR_LANES = 41  # the lanes of the anchor cabinets in the default configuration
# Traffic profile of a location, by the kind of its lanes: free-flow speed range (km/h)
# and volume against a main carriageway's lane.
PROFILES = {
    "A": (100, 125, 1.0),  # a motorway's carriageway (A road, branch 0001 or 0002)
    "R": (85, 110, 0.9),  # a ring road's carriageway
    "N": (60, 90, 0.6),  # another road's carriageway
    "ramp": (55, 85, 0.4),  # a ramp or connecting road (any other branch)
    "street": (40, 60, 0.4),  # a road reference that is no road number
    configuration.MERGE: (50, 80, 0.35),  # R09 and below
    "B": (55, 80, 0.04),  # a bus lane: few vehicles
    "P": (70, 100, 0.02),  # a hard shoulder: hardly any
    "W": (55, 75, 0.08),  # parking or other road (slow, but no jam of its own)
    "A_lane": (60, 90, 0.02),  # a hatched area
    "unknown": (50, 90, 0.5),
    configuration.WRONG_WAY: (20, 60, 0.003),  # wrong-way traffic: nearly always none
}


@lru_cache(maxsize=4)
def load_configuration(path: str | None = None) -> tuple[configuration.ConfiguredLane, ...]:
    """The lanes of a configuration file (`None`: the project's copy of the real
    network, DEFAULT_CONFIGURATION)."""
    source = Path(path) if path is not None else DEFAULT_CONFIGURATION
    return configuration.parse_configuration(source.read_bytes(), str(source))


def sample_lanes(spec: SampleSpec) -> tuple[configuration.ConfiguredLane, ...]:
    """The spec's lanes, by `unieke_id`: `spec.lanes` lanes of the configuration, whole
    cabinets (`lve_nr`) in this order: ANCHOR_CABINETS, then the others in an order
    chosen by the seed; the last cabinet taken may be cut (its lanes by `unieke_id`), so
    that the sample has exactly `spec.lanes` lanes. Lanes without an `lve_nr` are never
    taken (a reading needs one)."""
    lanes = load_configuration(spec.configuration)
    cabinets: dict[int, list] = {}
    for lane in lanes:
        if lane.unit_id is not None:
            cabinets.setdefault(lane.unit_id, []).append(lane)
    total = sum(len(members) for members in cabinets.values())
    if spec.lanes > total:
        raise ValueError(f"lanes must be at most {total:,}, the lanes (with an lve_nr) of the "
                         f"configuration {spec.configuration or DEFAULT_CONFIGURATION.name}, "
                         f"not {spec.lanes:,}")
    anchors = [unit for unit in ANCHOR_CABINETS if unit in cabinets]
    others = sorted(set(cabinets) - set(anchors))
    rng = np.random.default_rng([spec.seed, 2])
    chosen: list = []
    for unit in anchors + [others[i] for i in rng.permutation(len(others))]:
        chosen.extend(sorted(cabinets[unit], key=lambda lane: lane.lane_id)[: spec.lanes - len(chosen)])
        if len(chosen) == spec.lanes:
            break
    return tuple(sorted(chosen, key=lambda lane: lane.lane_id))


def _profile_key(lane: configuration.ConfiguredLane) -> str:
    group = configuration.lane_group(lane.lane_type)
    if group is None:
        return configuration.WRONG_WAY
    if group == configuration.MAIN:
        name, direction = configuration.road_name(lane.road)
        if direction is not None:
            return name[0] if name[0] in "AR" else "N"
        return "ramp" if name is not None and " ramp " in name else "street"
    if group == "A":
        return "A_lane"
    return group if group in PROFILES else "unknown"  # a kind the feed did not document


@dataclass(frozen=True)
class OneRoadJams:
    """The scenario `jam_one_road`: during JAM_WINDOW_UTC (07:00 included to 09:00 UTC
    of each day), in every cabinet (`lve_nr`) that holds lanes of more than one road
    reference (`Ident_8`), the through lanes (R10 and up, and S: the lanes of its
    carriageway location) of one road drive JAMMED_SPEED; every other lane, and every
    lane outside the window, FREE_SPEED. The road: the smallest `Ident_8` of the
    cabinet's main carriageways (branch 0001 or 0002) with such lanes, else the smallest
    with such lanes; a cabinet without any has no jam.

    The job (`corrected`, with this configuration) marks exactly `location_ids` as jams
    (avgspeed3minutes <= 40), from 2 minutes into the window until its last minute:
    the 3-minute average is at least (100 + 15 + 15) / 3 > 40 while it holds a free
    minute. Grouped by `lve_nr` (`athena`) a cabinet mixes the jammed road with the free
    ones."""

    carriageways: frozenset  # (Ident_8, lve_nr) jammed
    lane_ids: frozenset  # unieke_id of the jammed lanes
    location_ids: frozenset  # configuration.location_id of their locations


JAM_WINDOW_UTC = (7 * 60, 9 * 60)  # minutes of the UTC day: 07:00 .. 09:00
JAMMED_SPEED, FREE_SPEED = (15, 30), (100, 120)  # km/h, both included


def one_road_jams(lanes) -> OneRoadJams:
    """Which lanes the scenario `jam_one_road` jams among `lanes` (see OneRoadJams)."""
    cabinets: dict[int, list] = {}
    for lane in lanes:
        if lane.unit_id is not None:
            cabinets.setdefault(lane.unit_id, []).append(lane)
    carriageways, lane_ids, location_ids = set(), set(), set()
    for unit, members in sorted(cabinets.items()):
        if len({lane.road for lane in members}) < 2:
            continue
        through = [lane for lane in members if lane.road is not None
                   and configuration.lane_group(lane.lane_type) == configuration.MAIN]
        roads = {lane.road for lane in through}
        main = {road for road in roads if configuration.road_name(road)[1] is not None}
        if not roads:
            continue
        road = min(main or roads)
        carriageways.add((road, unit))
        for lane in through:
            if lane.road == road:
                lane_ids.add(lane.lane_id)
                location_ids.add(configuration.location_id(configuration.location_key(lane)))
    return OneRoadJams(frozenset(carriageways), frozenset(lane_ids), frozenset(location_ids))


@dataclass(frozen=True)
class _Network:
    unieke_id: np.ndarray  # int32, per lane
    lve_nr: np.ndarray  # int32, per lane
    names: pa.Array  # beschrijvende_id, per lane
    location: np.ndarray  # index of the lane's traffic profile: its location; a TR lane its own
    free_flow: np.ndarray  # km/h, per profile
    jam: np.ndarray  # bool, per profile (rush-hour jams; none in the scenario jam_one_road)
    volume: np.ndarray  # vehicles a minute at demand 1, per lane
    speed_offset: np.ndarray  # km/h, per lane
    truck_factor: np.ndarray  # per lane
    jammed: np.ndarray  # bool, per lane: jammed in the scenario jam_one_road
    locations: int  # locations of `corrected` (TR lanes are none)
    cabinets: int
    jam_locations: int


def _network(spec: SampleSpec) -> _Network:
    lanes = sample_lanes(spec)
    n = len(lanes)
    rng = np.random.default_rng([spec.seed, 0, spec.lanes])
    keys = [configuration.location_key(lane) or f"TR|{lane.lane_id}" for lane in lanes]
    profile_keys = sorted(set(keys))
    location = np.searchsorted(np.array(profile_keys), np.array(keys))
    kind = [None] * len(profile_keys)
    for lane, index in zip(lanes, location):
        kind[index] = _profile_key(lane)
    low, high, share = (np.array([PROFILES[k][i] for k in kind], np.float32) for i in range(3))
    n_loc = len(profile_keys)
    free_flow = rng.uniform(low, high)
    # rush-hour jams on carriageways (on ramps and streets when a sample has none)
    through = np.flatnonzero(np.isin(kind, ["A", "R", "N"]))
    if not through.size:
        through = np.flatnonzero(np.isin(kind, ["ramp", "street"]))
    jam = np.zeros(n_loc, bool)
    if spec.jam_location_fraction > 0 and through.size and not spec.jam_one_road:
        jam[rng.choice(through, max(1, round(spec.jam_location_fraction * through.size)), replace=False)] = True
    volume = np.clip((rng.lognormal(np.log(14), 0.45, n_loc) * share)[location]
                     * rng.uniform(0.6, 1.15, n), 0, 40)
    scenario = one_road_jams(lanes) if spec.jam_one_road else OneRoadJams(frozenset(), frozenset(), frozenset())
    unieke_id = np.array([lane.lane_id for lane in lanes], np.int32)
    return _Network(
        unieke_id=unieke_id, lve_nr=np.array([lane.unit_id for lane in lanes], np.int32),
        names=pa.array([lane.lane_name for lane in lanes], pa.string()), location=location,
        free_flow=free_flow.astype(np.float32), jam=jam, volume=volume.astype(np.float32),
        speed_offset=rng.uniform(-8, 6, n).astype(np.float32),
        truck_factor=rng.uniform(0.5, 2.0, n).astype(np.float32),
        jammed=np.isin(unieke_id, list(scenario.lane_ids)),
        locations=len(configuration.locations_of(lanes)),
        cabinets=len({lane.unit_id for lane in lanes}),
        jam_locations=len(scenario.location_ids) if spec.jam_one_road else int(jam.sum()),
    )


# --- one day of readings -------------------------------------------------------------

def _bump(x, mu, sd):
    return np.exp(-0.5 * ((x - mu) / sd) ** 2)


def _rise(x, at, width):
    return 1 / (1 + np.exp(-(x - at) / width))


def _demand(hour: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    """Traffic demand by local hour of day: a night lull and two rush hours on weekdays."""
    weekday = (0.03 + 0.55 * _rise(hour, 6.0, 0.5) * _rise(-hour, -20.5, 1.0)
               + 0.75 * _bump(hour, 8.0, 0.9) + 0.7 * _bump(hour, 17.3, 1.1))
    weekend_curve = (0.03 + 0.5 * _rise(hour, 8.5, 0.8) * _rise(-hour, -20.0, 1.2)
                     + 0.15 * _bump(hour, 14.0, 2.0))
    return np.where(weekend, weekend_curve, weekday).astype(np.float32)


def _jams(net: _Network, rng, minute: np.ndarray, weekend: bool, demand: np.ndarray):
    """Location speed level and jam share g (0..1) per (location, minute): jam locations
    break down in rush hours to 5..35 km/h and recover gradually."""
    jam_loc = np.flatnonzero(net.jam)
    if weekend:
        loc = jam_loc[rng.random(jam_loc.size) < 0.15]
        center = 14 * 60 + rng.normal(0, 60, loc.size)
    else:  # morning only, evening only or both
        pattern = rng.choice(3, p=[0.25, 0.25, 0.5], size=jam_loc.size)
        morning, evening = jam_loc[pattern != 1], jam_loc[pattern != 0]
        loc = np.concatenate([morning, evening])
        center = np.concatenate([8 * 60 + rng.normal(0, 20, morning.size),
                                 17.25 * 60 + rng.normal(0, 25, evening.size)])
    plateau, down, recover = (rng.uniform(15, 75, loc.size), rng.uniform(3, 10, loc.size),
                              rng.uniform(10, 35, loc.size))
    depth = rng.uniform(5, 35, loc.size)
    start = center - plateau / 2
    ramp_down = (minute - (start - down)[:, None]) / down[:, None]
    ramp_up = ((start + plateau + recover)[:, None] - minute) / recover[:, None]
    g_e = np.clip(np.minimum(ramp_down, ramp_up), 0, 1).astype(np.float32)
    ff = net.free_flow[:, None] * (1 - 0.08 * demand[None, :])
    speed = ff.astype(np.float32)
    g = np.zeros_like(speed)
    np.minimum.at(speed, loc, ff[loc] * (1 - g_e) + depth[:, None] * g_e)
    np.maximum.at(g, loc, g_e)
    # stop and go: noise over 3-minute windows, strongest in a jam
    raw = rng.standard_normal((speed.shape[0], speed.shape[1] + 2), dtype=np.float32)
    noise = (raw[:, :-2] + raw[:, 1:-1] + raw[:, 2:]) / np.sqrt(3)
    return np.maximum(speed + noise * (1.5 + 6 * g), 3), g


def _one_road_speeds(net: _Network, rng, event_minute: np.ndarray):
    """Lane speed and jam share per (lane, minute) of the scenario jam_one_road."""
    utc_minute = (event_minute // 60) % MINUTES
    window = (utc_minute >= JAM_WINDOW_UTC[0]) & (utc_minute < JAM_WINDOW_UTC[1])
    slow = net.jammed[:, None] & window[None, :]
    shape = slow.shape
    speed = np.where(slow, rng.uniform(JAMMED_SPEED[0], JAMMED_SPEED[1], shape),
                     rng.uniform(FREE_SPEED[0], FREE_SPEED[1], shape))
    return speed.astype(np.float32), slow.astype(np.float32)


def _runs(rng, shape, count: int, lengths) -> np.ndarray:
    """Mask of `count` runs of one lane, each `lengths` minutes long."""
    mask = np.zeros(shape, bool)
    if count:
        length = rng.integers(lengths[0], lengths[1] + 1, count)
        lane = rng.integers(0, shape[0], count)
        start = rng.integers(0, shape[1] - length + 1)
        offsets = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
        mask.ravel()[np.repeat(lane * shape[1] + start, length) + offsets] = True
    return mask


def _day(net: _Network, spec: SampleSpec, day: dt.date):
    """Every reading of one event-time day (originals then copies) and the missing count."""
    rng = np.random.default_rng([spec.seed, 1, spec.lanes, day.toordinal()])
    n = net.unieke_id.size
    cells = n * MINUTES
    event_minute = _epoch(day) + 60 * np.arange(MINUTES, dtype=np.int64)
    local = event_minute + brussels_offset(event_minute)
    minute = ((local // 60) % MINUTES).astype(np.float32)
    demand = _demand(minute / 60, (local // 86400 + 3) % 7 >= 5)
    if spec.jam_one_road:
        speed, g = _one_road_speeds(net, rng, event_minute)
    else:
        loc_speed, loc_g = _jams(net, rng, minute, bool((_epoch(day) // 86400 + 3) % 7 >= 5), demand)
        g = loc_g[net.location]
        speed = (loc_speed[net.location] + net.speed_offset[:, None] * (1 - g)
                 + rng.standard_normal((n, MINUTES), dtype=np.float32) * 1.5)
        speed = np.maximum(speed, 3)

    missing = (rng.random((n, MINUTES), dtype=np.float32) < spec.missing_fraction / 2) | _runs(
        rng, (n, MINUTES), round(spec.missing_fraction / 2 * cells / np.mean(OUTAGE_MINUTES)), OUTAGE_MINUTES)
    defect = _runs(rng, (n, MINUTES), round(spec.defect_fraction * cells / np.mean(DEFECT_RUN_MINUTES)),
                   DEFECT_RUN_MINUTES)
    flow = net.volume[:, None] * demand[None, :] * (1 - 0.3 * g)
    values = np.empty((n, MINUTES, 15), np.uint8)  # per class: intensity, arithmetic, harmonic
    occupancy = np.zeros((n, MINUTES), np.float32)
    for k in range(5):
        lam = flow * CLASS_SHARE[k] * (net.truck_factor[:, None] if k >= 3 else 1)
        count = np.minimum(rng.poisson(lam), 255).astype(np.uint8)
        count[defect] = 0
        if spec.jam_one_road:  # every class at the lane's speed: the scenario's bands hold
            level = speed
            spread = 0.08 * level + 2
            mean = level
        else:
            level = np.minimum(speed + CLASS_SPEED_SHIFT[k], CLASS_SPEED_CAP[k])
            spread = 0.08 * level + 2
            mean = level + rng.standard_normal(level.shape, dtype=np.float32) * spread / np.sqrt(np.maximum(count, 1))
        arith = np.clip(np.rint(mean), 1, MAX_SPEED)
        harm = np.clip(np.rint(mean - spread**2 / np.maximum(mean, 1) * (1 - 1 / np.maximum(count, 1))), 1, arith)
        none = count == 0
        values[:, :, 3 * k] = count
        values[:, :, 3 * k + 1] = np.where(none, NO_VEHICLE_ARITHMETIC, arith)
        values[:, :, 3 * k + 2] = np.where(none, NO_VEHICLE_HARMONIC, harm)
        occupancy += count * VEHICLE_LENGTH_M[k]
    occupancy = np.clip(np.rint(6 * occupancy / speed), 0, 100).astype(np.int16)
    occupancy[(rng.random((n, MINUTES), dtype=np.float32) < spec.unknown_occupancy_fraction) & ~defect] = -1
    availability = np.where(rng.random((n, MINUTES), dtype=np.float32) < 0.03,
                            rng.integers(80, 100, (n, MINUTES), dtype=np.uint8), 100).astype(np.uint8)
    availability[defect] = 0
    unrest = np.minimum(rng.poisson(0.3 + 5 * g), 100).astype(np.uint8)

    cell = np.flatnonzero(~missing.ravel())
    r = cell.size
    event = event_minute[cell % MINUTES]
    modified = event + rng.integers(MODIFIED_DELAY_S[0], MODIFIED_DELAY_S[1] + 1, r)
    latest = event + spec.max_late_hours * 3600 + 59
    late = rng.random(r) < spec.late_fraction
    arrival = np.where(late, rng.integers(modified + LATE_MIN_DELAY_S, latest + 1),
                       modified + rng.integers(ARRIVAL_DELAY_S[0], ARRIVAL_DELAY_S[1] + 1, r))
    rows = dict(
        lane=(cell // MINUTES).astype(np.int32), event=event, modified=modified, arrival=arrival,
        late=late, kind=np.zeros(r, np.uint8), defect=defect.ravel()[cell],
        values=values.reshape(cells, 15)[cell], occupancy=occupancy.ravel()[cell],
        availability=availability.ravel()[cell], unrest=unrest.ravel()[cell],
    )
    del values
    copies = _copies(rng, rows, spec, latest)
    rows = {key: np.concatenate([rows[key], copies[key]]) for key in rows}
    total = rows["event"].size
    rows["time_form"] = rng.choice(3, p=[1 - JSON_ISO_TIME_SHARE - JSON_STRING_TIME_SHARE,
                                         JSON_ISO_TIME_SHARE, JSON_STRING_TIME_SHARE], size=total).astype(np.uint8)
    rows["style"] = rng.choice(3, p=JSON_STYLE_SHARES, size=total).astype(np.uint8)
    return rows, int(missing.sum())


def _copies(rng, rows: dict, spec: SampleSpec, latest: np.ndarray) -> dict:
    """The second copy of `duplicate_fraction` of the readings (see the module doc)."""
    src = np.flatnonzero(rng.random(rows["event"].size) < spec.duplicate_fraction)
    copy = {key: value[src] for key, value in rows.items()}
    latest = latest[src]
    same = rng.random(src.size) < SAME_MODIFIED_SHARE
    values = copy["values"].astype(np.int16)
    counts = values[:, 0::3]
    vehicles = counts > 0
    magnitude = np.where(same[:, None], rng.integers(1, 6, counts.shape), rng.integers(1, 9, counts.shape))
    step = magnitude * rng.choice([-1, 1], counts.shape)
    low, high = 1, MAX_SPEED
    if spec.jam_one_road:  # a copy keeps its original's speed band
        slow = values[:, 1::3] <= JAMMED_SPEED[1]
        low = np.where(slow, JAMMED_SPEED[0], FREE_SPEED[0])
        high = np.where(slow, JAMMED_SPEED[1], FREE_SPEED[1])
    arith = np.where(vehicles, np.clip(values[:, 1::3] + step, low, high), values[:, 1::3])
    values[:, 2::3] = np.where(vehicles, np.clip(values[:, 2::3] + step, 1, arith), values[:, 2::3])
    values[:, 1::3] = arith
    corrected_counts = np.clip(counts + rng.integers(-1, 2, counts.shape), 1, 255)
    values[:, 0::3] = np.where(vehicles & ~same[:, None], corrected_counts, counts)
    copy["values"] = values.astype(np.uint8)
    occ = copy["occupancy"]
    copy["occupancy"] = np.where(~same & (occ >= 0) & vehicles.any(axis=1), np.clip(occ + rng.integers(-3, 4, src.size), 0, 100),
                                 occ).astype(np.int16)
    modified = np.where(same, copy["modified"],
                        copy["modified"] + rng.integers(CORRECTION_DELAY_S[0], CORRECTION_DELAY_S[1] + 1, src.size))
    a = copy["arrival"]
    due = copy["modified"] + ARRIVAL_DELAY_S[1]  # the latest normal arrival of the original
    normal = np.where(same, rng.integers(np.minimum(a, due), due + 1),
                      modified + rng.integers(ARRIVAL_DELAY_S[0], ARRIVAL_DELAY_S[1] + 1, src.size))
    late = np.minimum(a + (modified - copy["modified"]) + rng.integers(0, 61, src.size), latest)
    copy["arrival"] = np.where(copy["late"], late, normal)
    copy["modified"] = modified
    copy["kind"] = np.where(same, 1, 2).astype(np.uint8)
    return copy


# --- landing the files ---------------------------------------------------------------

def _take(rows: dict, index) -> dict:
    return {key: value[index] for key, value in rows.items()}


def _columns(net: _Network, rows: dict) -> dict:
    lane = rows["lane"]
    ones = np.ones(lane.size, np.int32)
    ints = {
        schema.LANE_ID: net.unieke_id[lane], schema.UNIT_ID: net.lve_nr[lane],
        schema.PUBLISHED: ones, schema.AVAILABLE: ones,
        schema.DEFECT: rows["defect"], schema.VALID: rows["defect"],  # a defect reading is not valid
        schema.OCCUPANCY: rows["occupancy"], schema.AVAILABILITY: rows["availability"],
        schema.UNREST: rows["unrest"],
        **{name: rows["values"][:, i] for i, name in enumerate(_CLASS_COLUMNS)},
    }
    columns = {name: pa.array(np.ascontiguousarray(value, np.int32)) for name, value in ints.items()}
    columns[schema.LANE_NAME] = net.names.take(pa.array(lane))
    columns[schema.OBSERVED_AT] = pa.array(rows["event"], pa.int64())
    columns[schema.MODIFIED_AT] = _iso_local(rows["modified"])
    return columns


def _quoted(strings):
    return pc.binary_join_element_wise('"', strings, '"', "")


def _json_lines(columns: dict, rows: dict) -> pa.Array:
    """One JSON object a line, values as the stream carries them (mostly strings)."""
    style, form = rows["style"], rows["time_form"]
    numeric_speeds = {schema.arithmetic_speed(2), schema.harmonic_speed(2)}
    pieces = []
    for field in ARROW_SCHEMA:
        column = columns[field.name]
        if field.type == pa.string():  # ids and ISO times: nothing to escape
            value = pc.fill_null(_quoted(column), "null")  # a lane without beschrijvende_id
        else:
            number = pc.cast(column, pa.string())
            if field.name == schema.OBSERVED_AT:
                text = pc.if_else(pa.array(form == 1), _iso_local(rows["event"]), number)
                value = pc.if_else(pa.array(form == 0), number, _quoted(text))
            else:
                as_number = (style == 2) | ((style == 1) & (field.name in numeric_speeds))
                value = pc.if_else(pa.array(as_number), number, _quoted(number))
        pieces.append(pc.binary_join_element_wise(f'"{field.name}": ', value, ""))
    return pc.binary_join_element_wise("{", pc.binary_join_element_wise(*pieces, ", "), "}\n", "")


JSON_CHUNK_ROWS = 100_000


class _Writer:
    def __init__(self, root: Path, net: _Network, spec: SampleSpec):
        self.root, self.net, self.spec = root, net, spec
        self.counts = dict.fromkeys(
            ["readings", "files", "duplicates", "late", "defect", "unknown_occupancy",
             "duplicates_same_modified", "duplicates_corrected", "no_vehicle", "bytes",
             "json_iso_times", "json_string_times"], 0)
        self.hours = []

    def write(self, hour: int, rows: dict) -> None:
        t = dt.datetime.fromtimestamp(hour * 3600, dt.timezone.utc)
        folder = self.root / f"year={t:%Y}" / f"month={t:%m}" / f"day={t:%d}" / f"hour={t:%H}"
        digest = hashlib.sha256(f"{self.spec.seed}:{hour}".encode()).hexdigest()[:8]
        name = f"traffic-firehose-1-{t:%Y-%m-%d-%H}-00-00-{digest}"
        folder.mkdir(parents=True, exist_ok=True)
        if self.spec.source_format == "parquet":
            path = folder / f"{name}.parquet"
            columns = _columns(self.net, rows)
            table = pa.Table.from_arrays([columns[n] for n in ARROW_SCHEMA.names], schema=ARROW_SCHEMA)
            pq.write_table(table, path, **PARQUET_OPTIONS)
        else:
            path = folder / name
            with open(path, "wb") as out:
                for start in range(0, rows["event"].size, JSON_CHUNK_ROWS):
                    part = _take(rows, slice(start, start + JSON_CHUNK_ROWS))
                    lines = _json_lines(_columns(self.net, part), part)
                    offsets = np.frombuffer(lines.buffers()[1], np.int32)[lines.offset:][: len(lines) + 1]
                    out.write(memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]])
            self.counts["json_iso_times"] += int((rows["time_form"] == 1).sum())
            self.counts["json_string_times"] += int((rows["time_form"] == 2).sum())
        kind, counts = rows["kind"], rows["values"][:, 3::3]
        self.hours.append(f"{t:%Y-%m-%dT%H}")
        for key, value in (
            ("readings", kind.size), ("files", 1), ("duplicates", (kind > 0).sum()),
            ("duplicates_same_modified", (kind == 1).sum()), ("duplicates_corrected", (kind == 2).sum()),
            ("late", rows["late"].sum()), ("defect", rows["defect"].sum()),
            ("unknown_occupancy", (rows["occupancy"] == -1).sum()),
            ("no_vehicle", (counts.sum(axis=1, dtype=np.int32) == 0).sum()),
            ("bytes", path.stat().st_size),
        ):
            self.counts[key] += int(value)


def _flush(rows: dict, before_hour, writer: _Writer) -> dict:
    """Write the rows arriving before `before_hour` (all when None), one file an hour;
    return the others."""
    hour = rows["arrival"] // 3600
    ready = np.ones(hour.size, bool) if before_hour is None else hour < before_hour
    index = np.flatnonzero(ready)
    index = index[np.argsort(rows["arrival"][index], kind="stable")]
    for part in np.split(index, np.flatnonzero(np.diff(hour[index])) + 1):
        if part.size:
            writer.write(int(hour[part[0]]), _take(rows, part))
    return _take(rows, np.flatnonzero(~ready))


def generate(root: str, spec: SampleSpec) -> GenerationStats:
    """Write the spec's readings under `root`, one file per processing hour. Overwrites
    files of the same name and leaves every other file alone: a run with another seed or
    format into the same root adds files next to the old ones, so use a fresh root."""
    net = _network(spec)
    writer = _Writer(Path(root), net, spec)
    pending, missing = None, 0
    for i in range(spec.days):
        day = spec.start_date + dt.timedelta(days=i)
        rows, day_missing = _day(net, spec, day)
        missing += day_missing
        if pending is not None:
            rows = {key: np.concatenate([pending[key], rows[key]]) for key in rows}
        # the next day's readings arrive from its 00:00:30: every earlier hour is complete
        last = i == spec.days - 1
        pending = _flush(rows, None if last else (_epoch(day) + 86400) // 3600, writer)
    return GenerationStats(
        lanes=int(net.unieke_id.size), locations=net.locations, cabinets=net.cabinets, missing=missing,
        jam_locations=net.jam_locations, first_hour=writer.hours[0], last_hour=writer.hours[-1],
        source_format=spec.source_format, **writer.counts,
    )


def copy_configuration(spec: SampleSpec, folder: str) -> Path:
    """Copy the spec's configuration file into `folder` under its own dated name
    (`miv-config-2017-05-18.xml.gz`), for the job's `--configuration_path`."""
    source = Path(spec.configuration) if spec.configuration is not None else DEFAULT_CONFIGURATION
    configuration.snapshot_time(source.name)  # refuses a name without its date
    target = Path(folder) / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.sample_data",
        description="Write realistic raw MIV readings as Kinesis Firehose lands them.")
    parser.add_argument("--out", required=True, help="root folder of the processing-hour folders")
    parser.add_argument("--start-date", type=dt.date.fromisoformat, required=True,
                        help="first event-time day (UTC), e.g. 2020-04-06")
    parser.add_argument("--format", dest="source_format", choices=FORMATS, default="parquet")
    parser.add_argument("--configuration", metavar="PATH", default=None,
                        help="the mivconfig file whose lanes to use (default: the real network, "
                             f"{DEFAULT_CONFIGURATION.relative_to(DEFAULT_CONFIGURATION.parents[3])})")
    parser.add_argument("--configuration-out", metavar="FOLDER", default=None,
                        help="also copy the configuration file into FOLDER under its dated name, "
                             "for the job's --configuration_path")
    parser.add_argument("--jam-one-road", action="store_true",
                        help="the scenario one_road_jams: 07:00-09:00 UTC, in every cabinet with "
                             "more than one road, one road's through lanes at 15-30 km/h, all "
                             "else 100-120")
    for f in fields(SampleSpec):
        if f.name not in ("start_date", "source_format", "configuration", "jam_one_road"):
            parser.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    args = vars(parser.parse_args(argv))
    out, configuration_out = args.pop("out"), args.pop("configuration_out")
    try:
        spec = SampleSpec(**args)
        lanes = sample_lanes(spec)  # refuses more lanes than the configuration has
        if configuration_out is not None:
            configuration.snapshot_time(spec.configuration or DEFAULT_CONFIGURATION.name)
    except (ValueError, OSError) as error:
        parser.error(str(error))
    began = time.perf_counter()
    stats = generate(out, spec)
    copied = "" if configuration_out is None else f" Configuration: {copy_configuration(spec, configuration_out)}."
    jams = ""
    if spec.jam_one_road:
        scenario = one_road_jams(lanes)
        jams = (f" Scenario jam_one_road: {len(scenario.carriageways):,} roads jammed "
                f"({len(scenario.lane_ids):,} lanes, {len(scenario.location_ids):,} locations).")
    print(f"{stats.describe()}{jams}{copied} Took {time.perf_counter() - began:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

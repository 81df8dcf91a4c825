"""The traffic centre's configuration feed (`mivconfig`): which lane is where, and the
locations `corrected` computes (docs/SEMANTICS.md, "Step 4: the location").

Pure Python, no Spark: parsing a snapshot, the lane's role, the location's key, id and
name, and the lane map a run joins its readings with. Reading the snapshots from a
folder or S3 is `sources.read_configuration`'s.

A location is one carriageway at one measurement point: the lanes of one road
reference (`Ident_8`) at one reference point (`Kmp_Rsys`) that carry the
carriageway's through traffic (`R10` and up, and the rush-hour lane `S`). The other
lanes at that point (merging and exit lanes `R09` and below, a bus lane, the hard
shoulder, a parking lane, a hatched area) are locations of their own, one per kind;
a wrong-way lane (`TR`) is no location: its readings are left out.

Parsing uses defusedxml: a document with a DTD or entities (an XML bomb) is refused,
as is anything that is not a `mivconfig` document with at least one lane.
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import hashlib
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

ROOT_TAG = "mivconfig"
LANE_TAG = "meetpunt"
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024  # uncompressed; the real feed is about 2.6 MB

# Lane kinds (`Rijstrook` without its number) and the location group each lane joins.
MAIN = "main"  # through lanes: R10 and up, and S (a rush-hour lane of the carriageway)
MERGE = "merge"  # R09 and below: merging and exit lanes beside the carriageway
WRONG_WAY = "TR"  # traffic seen going the wrong way on an R lane's loops: no location
GROUP_NAMES = {
    MAIN: None,
    MERGE: "merging and exit lanes",
    "B": "bus lane",
    "P": "hard shoulder",
    "W": "parking or other road",
    "A": "hatched area",
    "unknown": "lanes of unknown kind",
}
FIRST_THROUGH_LANE = 10  # R10 is the first regular lane of the main carriageway

_LANE_TYPE = re.compile(r"([A-Z]+)(\d*)")
_ROAD = re.compile(r"([A-Z])(\d{3})([0-9A-Z])(\d{3})")
_MAIN_CARRIAGEWAYS = {"0001": 1, "0002": 2}  # the road's two directions in Ident_8
_SNAPSHOT_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})(?:T(\d{2}):?(\d{2}):?(\d{2})?Z?)?$")


class ConfigurationError(ValueError):
    """A configuration document that cannot be used; the message names it."""


@dataclass(frozen=True)
class ConfiguredLane:
    """One `meetpunt` of the configuration feed, its values parsed (decimal commas)."""

    lane_id: int  # unieke_id
    lane_name: str | None = None  # beschrijvende_id
    place: str | None = None  # volledige_naam
    road: str | None = None  # Ident_8
    unit_id: int | None = None  # lve_nr
    kilometre_point: float | None = None  # Kmp_Rsys, km
    lane_type: str | None = None  # Rijstrook, e.g. R10, TR11, S09
    longitude: float | None = None
    latitude: float | None = None


@dataclass(frozen=True)
class Location:
    """A location of `corrected`: its id, what it is, and its lanes."""

    location_id: int
    key: str
    road: str | None
    road_name: str | None
    direction: int | None
    lane_group: str
    kilometre_point: float | None
    place: str | None
    longitude: float | None
    latitude: float | None
    lanes: tuple[ConfiguredLane, ...]

    @property
    def label(self) -> str:
        """How people read it: `A14 km 94.7 (Parking Kruibeke), direction 1`."""
        return location_label(self)


@dataclass(frozen=True)
class Snapshot:
    """One configuration document and the time from which it is in force (None: a
    single file, in force for every reading)."""

    name: str
    valid_from: dt.datetime | None
    lanes: tuple[ConfiguredLane, ...]

    @functools.cached_property
    def locations(self) -> dict[int, Location]:
        """`locations_of` its lanes, worked out once: a run asks three times (the ids'
        check, the locations table's rows, the locations left without rows), and the
        whole network's 4,254 lanes take 0.03 s each time."""
        return locations_of(self.lanes, self.name)


# --- parsing --------------------------------------------------------------------------


def _decimal(text: str | None, what: str, name: str) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        raise ConfigurationError(f"{name}: {what} {text.strip()!r} is not a number") from None


def _integer(text: str | None, what: str, name: str) -> int | None:
    if text is None or not text.strip():
        return None
    if not re.fullmatch(r"[+-]?\d+", text.strip()):
        raise ConfigurationError(f"{name}: {what} {text.strip()!r} is not an integer")
    return int(text.strip())


def _text(element, tag: str) -> str | None:
    child = element.find(tag)
    if child is None or child.text is None or not child.text.strip():
        return None
    return child.text.strip()


def _uncompressed(data: bytes, name: str) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        # Bounded: a small gzip file may expand to gigabytes (a zip bomb).
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        document = inflater.decompress(data, MAX_DOCUMENT_BYTES + 1)
        if len(document) > MAX_DOCUMENT_BYTES:
            raise ConfigurationError(
                f"{name}: expands to more than {MAX_DOCUMENT_BYTES // 2**20} MB; not a configuration"
            )
        if not inflater.eof:
            raise ConfigurationError(f"{name}: the gzip stream is truncated")
        return document
    except (zlib.error, OSError, EOFError, gzip.BadGzipFile) as error:
        raise ConfigurationError(f"{name}: not a readable gzip file ({error})") from None


@functools.lru_cache(maxsize=8)
def parse_configuration(data: bytes, name: str) -> tuple[ConfiguredLane, ...]:
    """The lanes of one `mivconfig` document (XML, or gzipped XML); `name` (a file or a
    URL) is what an error names. Refuses what is not such a document: an error page, a
    truncated file, a DTD or entity (XML bomb), a lane without an integer `unieke_id`,
    one `unieke_id` twice. A process parses a document once: the local workflow and
    the tests run many jobs in one process on the same snapshots (the lanes are frozen)."""
    document = _uncompressed(data, name)
    if len(document) > MAX_DOCUMENT_BYTES:
        raise ConfigurationError(f"{name}: larger than {MAX_DOCUMENT_BYTES // 2**20} MB; not a configuration")
    try:
        root = fromstring(document, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise ConfigurationError(
            f"{name}: refused, the document declares a DTD or entities ({type(error).__name__})"
        ) from None
    except ParseError as error:
        raise ConfigurationError(f"{name}: not well-formed XML ({error})") from None
    if root.tag != ROOT_TAG:
        raise ConfigurationError(f"{name}: its root element is <{root.tag}>, not <{ROOT_TAG}>")
    lanes, seen = [], set()
    for point in root.iter(LANE_TAG):
        lane_id = _integer(point.get("unieke_id"), "unieke_id", name)
        if lane_id is None:
            raise ConfigurationError(f"{name}: a <{LANE_TAG}> has no unieke_id")
        if lane_id in seen:
            raise ConfigurationError(f"{name}: unieke_id {lane_id} is configured twice")
        seen.add(lane_id)
        where = f"unieke_id {lane_id}:"
        lanes.append(ConfiguredLane(
            lane_id=lane_id,
            lane_name=_text(point, "beschrijvende_id"),
            place=_text(point, "volledige_naam"),
            road=_text(point, "Ident_8"),
            unit_id=_integer(_text(point, "lve_nr"), f"{where} lve_nr", name),
            kilometre_point=_decimal(_text(point, "Kmp_Rsys"), f"{where} Kmp_Rsys", name),
            lane_type=_text(point, "Rijstrook"),
            longitude=_decimal(_text(point, "lengtegraad_EPSG_4326"), f"{where} longitude", name),
            latitude=_decimal(_text(point, "breedtegraad_EPSG_4326"), f"{where} latitude", name),
        ))
    if not lanes:
        raise ConfigurationError(f"{name}: a <{ROOT_TAG}> document without any <{LANE_TAG}>")
    return tuple(sorted(lanes, key=lambda lane: lane.lane_id))


def snapshot_time(name: str) -> dt.datetime:
    """When a dated snapshot comes into force, from its file name:
    `miv-config-2017-05-18.xml.gz` (00:00 UTC that day) or
    `miv-config-2017-05-18T094100Z.xml.gz` (that second, UTC)."""
    stem = re.sub(r"\.xml(\.gz)?$", "", name.rsplit("/", 1)[-1])
    match = _SNAPSHOT_TIME.search(stem)
    if not match:
        raise ConfigurationError(
            f"{name}: a snapshot's name must end in its UTC date or time, "
            "e.g. miv-config-2017-05-18.xml.gz or miv-config-2017-05-18T094100Z.xml.gz"
        )
    day, hour, minute, second = match.groups()
    try:
        return dt.datetime.strptime(
            f"{day} {hour or '00'}:{minute or '00'}:{second or '00'}", "%Y-%m-%d %H:%M:%S"
        ).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise ConfigurationError(f"{name}: {match.group(0)} is not a date and time") from None


# --- locations --------------------------------------------------------------------------


def lane_group(lane_type: str | None) -> str | None:
    """The location group a lane of this `Rijstrook` joins at its point; None for a
    wrong-way lane (`TR`), which is no location."""
    match = _LANE_TYPE.fullmatch(lane_type or "")
    if not match:
        return "unknown"
    kind, number = match.groups()
    if kind == WRONG_WAY:
        return None
    if kind == "S":
        return MAIN
    if kind == "R":
        return MAIN if number and int(number) >= FIRST_THROUGH_LANE else MERGE
    return kind


def _point(lane: ConfiguredLane) -> str:
    """Where along the road: the reference point in metres; without one the lane's
    position (two places of one road may both lack it); without that the lane itself."""
    if lane.kilometre_point is not None:
        return f"m{round(lane.kilometre_point * 1000)}"
    if lane.longitude is not None and lane.latitude is not None:
        return f"at{lane.longitude:.6f},{lane.latitude:.6f}"
    return f"lane{lane.lane_id}"


def location_key(lane: ConfiguredLane) -> str | None:
    """The location a lane belongs to, as text: road reference, point and group
    (`A0140001|m94690|main`); None for a wrong-way lane."""
    group = lane_group(lane.lane_type)
    if group is None:
        return None
    road = lane.road if lane.road is not None else f"lane{lane.lane_id}"
    return f"{road}|{_point(lane)}|{group}"


def location_id(key: str) -> int:
    """A location's id: the first 31 bits of the SHA-256 of its key, a positive int.
    A pure function of the location (its road, point and group), not of its lanes."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF


def unconfigured_location_id(lane_id: int) -> int:
    """The id of a lane the configuration does not hold: a location of its own,
    `-unieke_id`, which no configured location (ids >= 0) can have."""
    return -lane_id


def road_name(road: str | None) -> tuple[str | None, int | None]:
    """A readable road and direction from an `Ident_8`: `A0140001` is the A14,
    direction 1; `A0010111` a ramp of the A1 (`A1 ramp 0111`), no direction. A
    reference of another form is its own name."""
    if road is None:
        return None, None
    match = _ROAD.fullmatch(road)
    if not match:
        return road, None
    letter, number, suffix, sequence = match.groups()
    name = f"{letter}{int(number)}"
    branch = suffix + sequence
    if branch in _MAIN_CARRIAGEWAYS:
        return name, _MAIN_CARRIAGEWAYS[branch]
    return f"{name} ramp {branch}", None


def location_label(location: Location) -> str:
    """`A14 km 94.7 (Parking Kruibeke), direction 1`, with the group for lanes beside
    the carriageway (`..., merging and exit lanes`)."""
    parts = [location.road_name or "unknown road"]
    if location.kilometre_point is not None:
        parts.append(f"km {location.kilometre_point:.1f}")
    text = " ".join(parts)
    if location.place:
        text += f" ({location.place})"
    if location.direction is not None:
        text += f", direction {location.direction}"
    group = GROUP_NAMES.get(location.lane_group, location.lane_group)
    if group:
        text += f", {group}"
    return text


def _most_common(values) -> str | None:
    counts = Counter(v for v in values if v is not None)
    if not counts:
        return None
    return min(counts, key=lambda v: (-counts[v], v))


def _mean(values) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 6) if present else None


def locations_of(lanes: tuple[ConfiguredLane, ...], name: str = "the configuration") -> dict[int, Location]:
    """The locations of one snapshot, by id. Two keys with one id stop the run: no two
    locations may share an id."""
    by_key: dict[str, list[ConfiguredLane]] = {}
    for lane in lanes:
        key = location_key(lane)
        if key is not None:
            by_key.setdefault(key, []).append(lane)
    result: dict[int, Location] = {}
    for key, members in sorted(by_key.items()):
        identifier = location_id(key)
        if identifier in result:
            raise ConfigurationError(
                f"{name}: locations {result[identifier].key} and {key} have the same id "
                f"{identifier}; the id rule (docs/SEMANTICS.md) needs a change"
            )
        first = members[0]
        road, direction = road_name(first.road)
        result[identifier] = Location(
            location_id=identifier,
            key=key,
            road=first.road,
            road_name=road,
            direction=direction,
            lane_group=key.rsplit("|", 1)[1],
            kilometre_point=first.kilometre_point,
            place=_most_common(lane.place for lane in members),
            longitude=_mean(lane.longitude for lane in members),
            latitude=_mean(lane.latitude for lane in members),
            lanes=tuple(sorted(members, key=lambda lane: lane.lane_id)),
        )
    return result


def check_ids(snapshots: list[Snapshot]) -> None:
    """No id names two locations across the snapshots a run uses."""
    keys: dict[int, str] = {}
    for snapshot in snapshots:
        for identifier, location in snapshot.locations.items():
            if keys.setdefault(identifier, location.key) != location.key:
                raise ConfigurationError(
                    f"{snapshot.name}: locations {keys[identifier]} and {location.key} have the "
                    f"same id {identifier}"
                )


# --- the lane map ----------------------------------------------------------------------


@dataclass(frozen=True)
class LaneAssignment:
    """Where a lane's readings go from `valid_from` until `valid_to` (epoch seconds;
    None: unbounded): its location, or None for a wrong-way lane."""

    lane_id: int
    valid_from: int | None
    valid_to: int | None
    location_id: int | None


def in_force(snapshots: list[Snapshot]) -> list[tuple[Snapshot, int | None, int | None]]:
    """Each snapshot with the epoch seconds it is in force from and to. The earliest
    is in force for every earlier reading too, so a backfill older than the first
    snapshot uses it; each later one from its time until the next."""
    ordered = sorted(snapshots, key=lambda s: (s.valid_from or dt.datetime.min.replace(tzinfo=dt.timezone.utc)))
    bounds = [None if s.valid_from is None else int(s.valid_from.timestamp()) for s in ordered]
    return [
        (snapshot, None if i == 0 else bounds[i], bounds[i + 1] if i + 1 < len(ordered) else None)
        for i, snapshot in enumerate(ordered)
    ]


def lane_map(snapshots: list[Snapshot]) -> list[LaneAssignment]:
    """Every lane of every snapshot with the location its readings go to while that
    snapshot is in force; consecutive snapshots that keep a lane where it was give
    it one span."""
    check_ids(snapshots)
    spans: list[LaneAssignment] = []
    open_spans: dict[int, LaneAssignment] = {}
    for snapshot, start, end in in_force(snapshots):
        present = set()
        for lane in snapshot.lanes:
            key = location_key(lane)
            target = None if key is None else location_id(key)
            present.add(lane.lane_id)
            current = open_spans.get(lane.lane_id)
            if current is not None and current.location_id == target and current.valid_to == start:
                open_spans[lane.lane_id] = LaneAssignment(lane.lane_id, current.valid_from, end, target)
            else:
                if current is not None:
                    spans.append(current)
                open_spans[lane.lane_id] = LaneAssignment(lane.lane_id, start, end, target)
        for lane_id in [l for l in open_spans if l not in present]:
            spans.append(open_spans.pop(lane_id))
    spans.extend(open_spans.values())
    return sorted(spans, key=lambda a: (a.lane_id, a.valid_from if a.valid_from is not None else -(2**62)))

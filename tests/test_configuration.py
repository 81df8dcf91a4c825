"""The configuration feed parsed, and the locations `corrected` makes of it
(docs/SEMANTICS.md, "Step 4: the location"), checked on hand-made documents and on the
real network (tests/fixtures/network)."""

import datetime as dt
import gzip
import hashlib
from collections import Counter

import pytest

from tests.network import CONFIGURATION, configured_lanes, documented_key
from traffic_glue.compute import configuration as C
from traffic_glue.compute.configuration import ConfigurationError, ConfiguredLane, Snapshot

UTC = dt.timezone.utc


def _document(*points: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><mivconfig schemaVersion="1.0.0">'
            + "".join(points) + "</mivconfig>").encode()


def _point(lane_id, road="A0140001", km="94,69", lane="R10", unit="437", lon="4,2", lat="51,1",
           name="H1", place="Parking Kruibeke") -> str:
    children = {"beschrijvende_id": name, "volledige_naam": place, "Ident_8": road, "lve_nr": unit,
                "Kmp_Rsys": km, "Rijstrook": lane, "lengtegraad_EPSG_4326": lon,
                "breedtegraad_EPSG_4326": lat}
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in children.items() if v is not None)
    return f'<meetpunt unieke_id="{lane_id}">{inner}</meetpunt>'


@pytest.fixture(scope="module")
def network():
    return C.parse_configuration(CONFIGURATION.read_bytes(), CONFIGURATION.name)


# --- parsing ---------------------------------------------------------------------------


def test_a_lane_is_parsed_with_its_decimal_commas():
    (lane,) = C.parse_configuration(_document(_point(1209, km="94,69", lon="4,218873981")), "doc")
    assert lane == ConfiguredLane(
        lane_id=1209, lane_name="H1", place="Parking Kruibeke", road="A0140001", unit_id=437,
        kilometre_point=94.69, lane_type="R10", longitude=4.218873981, latitude=51.1,
    )


def test_gzip_and_plain_documents_give_the_same_lanes():
    plain = _document(_point(1), _point(2, lane="R11"))
    assert C.parse_configuration(gzip.compress(plain), "a.gz") == C.parse_configuration(plain, "a")


@pytest.mark.parametrize("data, message", [
    (b"<html><body>502 Bad Gateway</body></html>", "its root element is <html>, not <mivconfig>"),
    (_document(_point(1))[:-30], "not well-formed XML"),
    (gzip.compress(_document(_point(1)))[:-12], "the gzip stream is truncated"),
    (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
     b"<mivconfig>&lol2;</mivconfig>", "refused, the document declares a DTD or entities"),
    (_document(), "without any <meetpunt>"),
    (_document(_point(1), _point(1)), "unieke_id 1 is configured twice"),
    (_document('<meetpunt unieke_id="x1"/>'), "unieke_id 'x1' is not an integer"),
    (_document(_point(7, km="ten")), "unieke_id 7: Kmp_Rsys 'ten' is not a number"),
])
def test_what_is_not_a_configuration_is_refused_naming_the_document(data, message):
    with pytest.raises(ConfigurationError) as refused:
        C.parse_configuration(data, "https://example.invalid/config")
    assert str(refused.value).startswith("https://example.invalid/config: ")
    assert message in str(refused.value)


@pytest.mark.parametrize("name, moment", [
    ("miv-config-2017-05-18.xml.gz", dt.datetime(2017, 5, 18, tzinfo=UTC)),
    ("s3://raw/configuration/miv-config-2017-05-18T094100Z.xml.gz", dt.datetime(2017, 5, 18, 9, 41, tzinfo=UTC)),
    ("miv-config-2020-03-29T0100Z.xml", dt.datetime(2020, 3, 29, 1, 0, tzinfo=UTC)),
])
def test_a_snapshot_is_dated_by_its_name_in_utc(name, moment):
    assert C.snapshot_time(name) == moment


@pytest.mark.parametrize("name", ["miv-config.xml.gz", "miv-config-2017-13-40.xml"])
def test_an_undated_snapshot_name_is_refused(name):
    with pytest.raises(ConfigurationError, match="must end in its UTC date or time|is not a date"):
        C.snapshot_time(name)


# --- lane groups, keys, ids, names ------------------------------------------------------


@pytest.mark.parametrize("lane_type, group", [
    ("R10", "main"), ("R12", "main"), ("S09", "main"), ("R09", "merge"), ("R06", "merge"),
    ("TR10", None), ("B09", "B"), ("P00", "P"), ("W09", "W"), ("A11", "A"), (None, "unknown"),
    ("10", "unknown"),
])
def test_which_lanes_make_a_carriageways_speed(lane_type, group):
    assert C.lane_group(lane_type) == group


def test_the_id_is_the_first_31_bits_of_the_keys_sha256():
    key = "A0140001|m94690|main"
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert digest[:8] == "8ad7774c"
    assert C.location_id(key) == 0x8AD7774C - 2**31 == 181892940


def test_the_key_is_road_point_and_group_whatever_the_lane():
    r10 = ConfiguredLane(1, road="A0140001", kilometre_point=94.69, lane_type="R10")
    r12 = ConfiguredLane(99, road="A0140001", kilometre_point=94.69, lane_type="R12", unit_id=5)
    assert C.location_key(r10) == C.location_key(r12) == "A0140001|m94690|main"
    assert C.location_key(ConfiguredLane(2, road="A0140001", longitude=3.9235546, latitude=51.0708272,
                                         lane_type="B09")) == "A0140001|at3.923555,51.070827|B"
    assert C.location_key(ConfiguredLane(3, lane_type="R10")) == "lane3|lane3|main"
    assert C.location_key(ConfiguredLane(4, road="A0140001", lane_type="TR10")) is None


def test_adding_or_removing_a_lane_keeps_the_id():
    two = C.locations_of(C.parse_configuration(_document(_point(1), _point(2, lane="R11")), "a"))
    three = C.locations_of(C.parse_configuration(
        _document(_point(1), _point(2, lane="R11"), _point(3, lane="R12")), "b"))
    one = C.locations_of(C.parse_configuration(_document(_point(2, lane="R11")), "c"))
    assert set(two) == set(three) == set(one) == {181892940}
    assert [lane.lane_id for lane in three[181892940].lanes] == [1, 2, 3]


def test_a_snapshots_locations_are_worked_out_once():
    lanes = C.parse_configuration(_document(_point(1), _point(2, lane="R11"), _point(3, lane="TR10")), "a")
    snapshot = C.Snapshot("a", None, lanes)
    assert snapshot.locations == C.locations_of(lanes, "a")
    assert list(snapshot.locations) == [181892940]  # the TR10 lane belongs to no location
    assert snapshot.locations is snapshot.locations  # kept, not worked out again


@pytest.mark.parametrize("road, name, direction", [
    ("A0140001", "A14", 1), ("A0140002", "A14", 2), ("R0010002", "R1", 2),
    ("A0010111", "A1 ramp 0111", None), ("A017J021", "A17 ramp J021", None),
    ("Ottergemsesteenweg Zuid, Gent", "Ottergemsesteenweg Zuid, Gent", None), (None, None, None),
])
def test_a_readable_road_and_direction_from_ident_8(road, name, direction):
    assert C.road_name(road) == (name, direction)


def test_an_unconfigured_lane_is_minus_its_id():
    assert C.unconfigured_location_id(957) == -957


# --- the real network -------------------------------------------------------------------


def test_no_location_of_the_real_network_holds_two_road_references(network):
    assert len(network) == 4254
    assert len({lane.unit_id for lane in network}) == 575
    locations = C.locations_of(network)
    assert all(len({lane.road for lane in loc.lanes}) == 1 for loc in locations.values())
    assert all(len({lane.kilometre_point for lane in loc.lanes}) == 1 for loc in locations.values())
    # Every lane but the 57 wrong-way lanes is in exactly one location.
    placed = [lane.lane_id for loc in locations.values() for lane in loc.lanes]
    assert len(placed) == len(set(placed)) == 4254 - 57


def test_the_real_networks_locations_per_lane_group(network):
    """Counted apart from the job's code, from the XML by the documented rule: one
    location per (Ident_8, Kmp_Rsys or position, group)."""
    keys = {documented_key(lane) for lane in configured_lanes().values()} - {None}
    expected = Counter(g for _, _, g in keys)
    assert expected == {"main": 2198, "merge": 122, "B": 37, "P": 28, "W": 3, "A": 1}
    assert Counter(loc.lane_group for loc in C.locations_of(network).values()) == expected


def test_cabinet_437_is_seven_locations_and_no_direction_is_averaged_with_the_other(network):
    """lve_nr 437: R10-R12 of both directions of the A14, four slip-road lanes (each at a
    point of its own ramp) and a W09 lane (shared/data/README.md)."""
    locations = [loc for loc in C.locations_of(network).values() if any(l.unit_id == 437 for l in loc.lanes)]
    labels = sorted(loc.label for loc in locations)
    assert "A14 km 94.7 (Parking Kruibeke), direction 1" in labels
    assert "A14 km 94.7 (Parking Kruibeke), direction 2" in labels
    assert "A14 ramp 9402 km 94.9 (Parking Kruibeke), parking or other road" in labels
    assert len(locations) == 7
    assert sorted(len(loc.lanes) for loc in locations) == [1, 1, 1, 1, 1, 3, 3]
    both = [loc for loc in locations if loc.road in ("A0140001", "A0140002")]
    assert sorted((loc.road, tuple(l.lane_type for l in loc.lanes)) for loc in both) == [
        ("A0140001", ("R10", "R11", "R12")), ("A0140002", ("R10", "R11", "R12")),
    ]


def test_lanes_without_a_kilometre_point_at_two_places_of_one_road_stay_apart(network):
    """A0149411 has a lane at Parking Kalken (lve 439) and one at Parking Marke (lve 446),
    both without Kmp_Rsys: their positions keep them apart."""
    locations = [loc for loc in C.locations_of(network).values()
                 if loc.road == "A0149411" and loc.kilometre_point is None]
    assert sorted((loc.place, [l.lane_id for l in loc.lanes]) for loc in locations) == [
        ("Parking Kalken", [4054]), ("Parking Marke", [4097]),
    ]
    assert all(loc.kilometre_point is None for loc in locations)


# --- the lane map ------------------------------------------------------------------------


def _snapshot(name, moment, *points):
    return Snapshot(name, moment, C.parse_configuration(_document(*points), name))


def test_a_lane_moved_by_a_later_snapshot_goes_to_its_new_location_from_then_on():
    noon = dt.datetime(2020, 4, 7, 12, tzinfo=UTC)
    first = _snapshot("a-2020-04-01.xml", dt.datetime(2020, 4, 1, tzinfo=UTC),
                      _point(1), _point(2, lane="R11"), _point(3, road="A0140002"))
    moved = _snapshot("a-2020-04-07T120000Z.xml", noon,
                      _point(1), _point(2, road="A0140002", lane="R11"), _point(3, road="A0140002"))
    direction_1 = C.location_id("A0140001|m94690|main")
    direction_2 = C.location_id("A0140002|m94690|main")
    at_noon = int(noon.timestamp())
    assert C.lane_map([moved, first]) == [
        C.LaneAssignment(1, None, None, direction_1),
        C.LaneAssignment(2, None, at_noon, direction_1),
        C.LaneAssignment(2, at_noon, None, direction_2),
        C.LaneAssignment(3, None, None, direction_2),
    ]


def test_a_lane_left_out_of_a_snapshot_has_no_assignment_while_it_is_in_force():
    first = _snapshot("a-2020-04-01.xml", dt.datetime(2020, 4, 1, tzinfo=UTC), _point(1), _point(2, lane="TR10"))
    second = _snapshot("a-2020-04-02.xml", dt.datetime(2020, 4, 2, tzinfo=UTC), _point(2, lane="TR10"))
    third = _snapshot("a-2020-04-03.xml", dt.datetime(2020, 4, 3, tzinfo=UTC), _point(1), _point(2, lane="TR10"))
    day2, day3 = (int(dt.datetime(2020, 4, d, tzinfo=UTC).timestamp()) for d in (2, 3))
    assert C.lane_map([first, second, third]) == [
        C.LaneAssignment(1, None, day2, 181892940),
        C.LaneAssignment(1, day3, None, 181892940),
        C.LaneAssignment(2, None, None, None),  # a wrong-way lane: no location
    ]

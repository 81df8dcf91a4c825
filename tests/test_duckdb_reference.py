"""The DuckDB reference implementation (tools/duckdb_reference.py) against values
worked out by hand from docs/SEMANTICS.md. No Spark.

Every test writes a few raw readings in the Firehose layout under tmp_path
(`year=YYYY/month=MM/day=DD/hour=HH/`, the hour the reading arrived) and runs a day.
Times are UTC; T0 is 2020-04-07 08:00:00.

`corrected` takes its locations from a configuration (`mivconfig`, issue 18), written
here by hand as XML; without one every lane is a location of its own, -unieke_id.
"""

import gzip
import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from itertools import count

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tools.duckdb_reference import (CURATED_ARROW_SCHEMA, curated_rows, locations, reading_counts,
                                   unconfigured_lanes, write_curated)
from traffic_glue.compute import schema

DAY = date(2020, 4, 7)
MIDNIGHT = 1586217600  # 2020-04-07 00:00:00 UTC = 97 days * 86400 after 2020-01-01 (1577836800)
T0 = MIDNIGHT + 8 * 3600
MINUTE = 60
HOUR = 3600
MODIFIED = "2020-04-07T10:00:00+02:00"
BOTH = pytest.mark.parametrize("semantics", ["athena", "corrected"])

_ARROW = {"IntegerType": pa.int32(), "LongType": pa.int64(), "StringType": pa.string()}
RAW_ARROW_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW[type(f.dataType).__name__]) for f in schema.RAW_SCHEMA.fields]
)
_file_numbers = count()


def reading(lane, lve, t, i=(1, 0, 0, 0), s=(100, 0, 0, 0), modified=MODIFIED, defect=0,
            occupancy=5, arrived=None):
    """One raw reading; i and s are the intensities and arithmetic speeds of classes
    2..5. `arrived` (epoch seconds) picks the processing-hour folder, default t."""
    row = {name: 0 for name in schema.RAW_COLUMNS}
    row.update({
        schema.LANE_NAME: f"H{lane}", schema.LANE_ID: lane, schema.UNIT_ID: lve,
        schema.OBSERVED_AT: t, schema.MODIFIED_AT: modified, schema.DEFECT: defect,
        schema.OCCUPANCY: occupancy, schema.harmonic_speed(1): 252,
        "arrived": t if arrived is None else arrived,
    })
    for k, ik, sk in zip(schema.COUNTED_CLASSES, i, s):
        row[schema.intensity(k)] = ik
        row[schema.arithmetic_speed(k)] = sk
        row[schema.harmonic_speed(k)] = sk if ik else 252
    return row


def _folder(root, arrived):
    at = datetime.fromtimestamp(arrived, timezone.utc)
    folder = root / f"year={at:%Y}" / f"month={at:%m}" / f"day={at:%d}" / f"hour={at:%H}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_parquet(root, readings):
    """One Parquet file per arrival hour, typed as schema.RAW_SCHEMA."""
    by_hour = {}
    for r in readings:
        by_hour.setdefault(r["arrived"] // HOUR, []).append(r)
    for hour, rows in by_hour.items():
        table = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "arrived"} for r in rows],
                                     schema=RAW_ARROW_SCHEMA)
        pq.write_table(table, _folder(root, hour * HOUR) / f"part-{next(_file_numbers)}.parquet")


def write_json_lines(root, arrived, lines):
    """Lines as given (dicts are dumped as JSON, strings written verbatim)."""
    path = _folder(root, arrived) / f"firehose-{next(_file_numbers)}"
    path.write_text("".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines))


def run(root, semantics, start=DAY, end=DAY, **options):
    table = curated_rows(str(root), start, end, semantics=semantics, **options)
    assert table.schema == CURATED_ARROW_SCHEMA
    return table.to_pylist()


# --- configurations -----------------------------------------------------------------

def lane(unieke_id, road=None, km=None, lane_type=None, lve=None, lon=None, lat=None):
    """A configured lane (`meetpunt`); values as the feed writes them (decimal commas)."""
    return {"unieke_id": unieke_id, "Ident_8": road, "Kmp_Rsys": km, "Rijstrook": lane_type,
            "lve_nr": lve, "lengtegraad_EPSG_4326": lon, "breedtegraad_EPSG_4326": lat,
            "beschrijvende_id": f"H{unieke_id}"}


def write_configuration(path, lanes):
    """A `mivconfig` document of these lanes at `path` (gzipped when it ends in .gz)."""
    points = []
    for configured in lanes:
        children = "".join(f"<{tag}>{value}</{tag}>" for tag, value in configured.items()
                           if tag != "unieke_id" and value is not None)
        points.append(f'  <meetpunt unieke_id="{configured["unieke_id"]}">{children}</meetpunt>')
    document = ('<?xml version="1.0" encoding="UTF-8"?>\n<mivconfig schemaVersion="1.0.0">\n'
                + "\n".join(points) + "\n</mivconfig>\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(document) if path.name.endswith(".gz") else document)
    return path


def location_id(key):
    """The spec's id of a location key: SHA-256's first 4 bytes, big-endian, AND 0x7FFFFFFF."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") & 0x7FFFFFFF


def by_key(rows):
    return {(r["uniqueid"], r["recordtimestamp"]): r for r in rows}


def pick(row, *names):
    return tuple(row[name] for name in names)


# --- output contract ----------------------------------------------------------------

def test_columns_types_and_order(tmp_path):
    write_parquet(tmp_path, [reading(2, 1, T0 + MINUTE), reading(1, 2, T0 + MINUTE), reading(2, 1, T0)])
    table = curated_rows(str(tmp_path), DAY, DAY)
    assert table.column_names == [*schema.CURATED_COLUMNS, *schema.EVENT_PARTITIONS]
    assert [f.type for f in table.schema] == (
        [pa.int32(), pa.int64(), pa.float64(), pa.int32(), pa.float64()]
        + [pa.int32()] * 7 + [pa.float64()] * 2 + [pa.int64()] * 4
    )
    # sorted by uniqueid (corrected without a configuration: -unieke_id), recordtimestamp
    assert [pick(r, "uniqueid", "recordtimestamp") for r in table.to_pylist()] == [
        (-2, T0), (-2, T0 + MINUTE), (-1, T0 + MINUTE)]


# --- steps 3 and 4: lane speed, lane grouping, location id ------------------------------

@pytest.mark.parametrize("semantics, speed_11, speed_21", [
    # lane 11: i=(2,1,0,0), s=(100,51,0,0)
    #   athena:    (100+51+0+0) DIV 2 classes = 151 DIV 2 = 75
    #   corrected: (2*100 + 1*51) / (2+1) = 251/3
    # lane 21: i=(1,1,1,0), s=(100,90,81,0)
    #   athena:    (100+90+81+0) DIV 3 = 271 DIV 3 = 90
    #   corrected: (100+90+81) / 3 = 271/3
    ("athena", 75.0, 90.0),
    ("corrected", 251 / 3, 271 / 3),
])
def test_lane_speed_integer_division_vs_weighted(tmp_path, semantics, speed_11, speed_21):
    write_parquet(tmp_path, [
        reading(11, 1, T0, i=(2, 1, 0, 0), s=(100, 51, 0, 0)),
        reading(21, 2, T0, i=(1, 1, 1, 0), s=(100, 90, 81, 0)),
    ])
    rows = by_key(run(tmp_path, semantics))  # athena ids 11 and 21; corrected -11 and -21
    sign = 1 if semantics == "athena" else -1
    row_11, row_21 = rows[(sign * 11, T0)], rows[(sign * 21, T0)]
    assert row_11["currentspeed"] == speed_11
    assert row_21["currentspeed"] == speed_21
    # classes summed as given; bezettingsgraad = ROUND(AVG(i2+i3+i4+i5)) = 3 for both
    assert pick(row_11, "trafficintensityclass2", "trafficintensityclass3",
                "trafficintensityclass4", "trafficintensityclass5", "bezettingsgraad") == (2, 1, 0, 0, 3)
    assert row_21["bezettingsgraad"] == 3


@BOTH
def test_null_speed_when_no_vehicle_passed(tmp_path, semantics):
    motorbikes_only = reading(41, 4, T0, i=(0, 0, 0, 0), s=(0, 0, 0, 0))
    motorbikes_only[schema.intensity(1)] = 3  # class 1 is ignored
    motorbikes_only[schema.arithmetic_speed(1)] = 120
    write_parquet(tmp_path, [motorbikes_only])
    [row] = run(tmp_path, semantics)
    assert row["currentspeed"] is None and row["previousspeed"] is None
    assert row["avgspeed3minutes"] is None and row["avgspeed20minutes"] is None
    assert pick(row, "bezettingsgraad", "trafficintensityclass2", "trafficjamindicator",
                "trafficjamindicatorlong", "speeddiffindicator") == (0, 0, -1, -1, 0)


def _lve5_readings():
    return [
        # T0: lanes 51 (90 km/h, 1 vehicle), 52 (110, 2 vehicles), 53 (no vehicle)
        reading(51, 5, T0, i=(1, 0, 0, 0), s=(90, 0, 0, 0)),
        reading(52, 5, T0, i=(2, 0, 0, 0), s=(110, 0, 0, 0)),
        reading(53, 5, T0, i=(0, 0, 0, 0), s=(0, 0, 0, 0)),
        # T0+60: lane 53, the highest id, is missing
        reading(51, 5, T0 + MINUTE, i=(1, 0, 0, 0), s=(80, 0, 0, 0)),
        reading(52, 5, T0 + MINUTE, i=(2, 0, 0, 0), s=(100, 0, 0, 0)),
    ]


def test_lane_grouping_athena_takes_max_id_of_lanes_present(tmp_path):
    write_parquet(tmp_path, _lve5_readings())
    rows = by_key(run(tmp_path, "athena"))
    assert set(rows) == {(53, T0), (52, T0 + MINUTE)}
    # T0: AVG(90, 110, NULL) = 100; ROUND(AVG(1, 2, 0)) = ROUND(1.0) = 1; SUM(i2) = 3
    assert pick(rows[(53, T0)], "currentspeed", "bezettingsgraad", "trafficintensityclass2") == (100.0, 1, 3)
    # T0+60 is a new series (uniqueid 52): no previous row; AVG(80, 100) = 90;
    # ROUND(AVG(1, 2)) = ROUND(1.5) = 2 (half away from zero)
    assert pick(rows[(52, T0 + MINUTE)], "currentspeed", "bezettingsgraad", "previousspeed",
                "avgspeed3minutes") == (90.0, 2, None, 90.0)


def test_lane_grouping_corrected_names_the_location_by_its_key(tmp_path):
    # lanes 51..53: the three through lanes of one carriageway at one point
    configuration = write_configuration(tmp_path / "config.xml", [
        lane(51, "A0010001", "12,3", "R10", 5), lane(52, "A0010001", "12,3", "R11", 5),
        lane(53, "A0010001", "12,3", "R12", 5)])
    write_parquet(tmp_path / "raw", _lve5_readings())
    rows = by_key(run(tmp_path / "raw", "corrected", configuration=configuration))
    here = location_id("A0010001|m12300|main")
    assert set(rows) == {(here, T0), (here, T0 + MINUTE)}
    assert pick(rows[(here, T0)], "currentspeed", "bezettingsgraad", "trafficintensityclass2") == (100.0, 1, 3)
    # one series: previous = 100 (60 s earlier), 90-100 = -10 -> 0, avg3 = (100+90)/2 = 95
    assert pick(rows[(here, T0 + MINUTE)], "currentspeed", "bezettingsgraad", "previousspeed",
                "speeddiffindicator", "avgspeed3minutes") == (90.0, 2, 100.0, 0, 95.0)


@pytest.mark.parametrize("semantics, locations", [
    ("athena", [(61, 70.0), (661, 80.0)]),  # MAX of the kept lanes of the minute
    # the lane's own location (no configuration), whatever else was read: 62 (occupancy
    # -1), 63 (defect), 69 (invalid, speed 300) and 668 (another day's, in a late
    # folder) change nothing
    ("corrected", [(-661, 80.0), (-61, 70.0)]),
])
def test_location_id_of_lanes_not_kept(tmp_path, semantics, locations):
    write_parquet(tmp_path, [
        reading(61, 6, T0, s=(70, 0, 0, 0)),
        reading(62, 6, T0, i=(5, 0, 0, 0), s=(10, 0, 0, 0), occupancy=-1),
        reading(63, 6, T0, i=(5, 0, 0, 0), s=(10, 0, 0, 0), defect=1),
        reading(69, 6, T0, s=(300, 0, 0, 0)),
        reading(661, 66, T0, s=(80, 0, 0, 0)),
        reading(668, 66, MIDNIGHT + 24 * HOUR + 10 * HOUR),
    ])
    rows = run(tmp_path, semantics)
    # only the kept lane of each location counts in the values
    assert [pick(r, "uniqueid", "recordtimestamp", "currentspeed", "trafficintensityclass2")
            for r in rows] == [(location, T0, speed, 1) for location, speed in locations]


# --- steps 6 to 9: previous speed and windows ------------------------------------------

@pytest.mark.parametrize("semantics, expected", [
    # speeds 50 @T0, 80 @T0+60, 55 @T0+180 (a minute missing), 60 @T0+241 (61 s later)
    # columns: previousspeed, speeddiffindicator, avgspeed3minutes, avgspeed20minutes
    ("athena", {
        T0: (None, 0, 50.0, 50.0),
        T0 + 60: (50.0, 1, 65.0, 65.0),  # 80-50 = 30; (50+80)/2
        T0 + 180: (80.0, -1, 185 / 3, 185 / 3),  # previous row, no time check: 55-80 = -25; 3 rows
        T0 + 241: (55.0, 0, 65.0, 245 / 4),  # 60-55 = 5; rows 80,55,60 -> 195/3; 4 rows 245/4
    }),
    ("corrected", {
        T0: (None, 0, 50.0, 50.0),
        T0 + 60: (50.0, 1, 65.0, 65.0),  # previous row exactly 60 s earlier counts
        T0 + 180: (None, 0, 67.5, 185 / 3),  # 120 s gap: no previous; [T0+60, T0+180]: (80+55)/2
        T0 + 241: (None, 0, 57.5, 245 / 4),  # 61 s gap; [T0+121, T0+241]: (55+60)/2
    }),
])
def test_previousspeed_60_second_rule_and_3_minute_window(tmp_path, semantics, expected):
    write_parquet(tmp_path, [reading(71, 7, T0 + dt, s=(v, 0, 0, 0))
                             for dt, v in ((0, 50), (60, 80), (180, 55), (241, 60))])
    rows = by_key(run(tmp_path, semantics))
    assert {t: pick(r, "previousspeed", "speeddiffindicator", "avgspeed3minutes", "avgspeed20minutes")
            for (_, t), r in rows.items()} == expected


@pytest.mark.parametrize("semantics, at_minute_20, at_minute_21", [
    # series at minutes 0..21 without minute 10: speed 10 at minute 0, 30 at minute 1,
    # 50 at all others
    # athena, 20 rows: minute 20 -> minutes 0..20 (20 rows): (10+30+18*50)/20 = 940/20 = 47
    #                  minute 21 -> minutes 1..21: (30+19*50)/20 = 980/20 = 49
    ("athena", 47.0, 49.0),
    # corrected, [t-1140, t]: minute 20 -> minutes 1..20 (19 rows): (30+18*50)/19 = 930/19
    #                         minute 21 -> minutes 2..21 (19 rows): 50
    ("corrected", 930 / 19, 50.0),
])
def test_20_minute_window_rows_vs_time(tmp_path, semantics, at_minute_20, at_minute_21):
    speeds = {0: 10, 1: 30}
    write_parquet(tmp_path, [reading(81, 8, T0 + m * MINUTE, s=(speeds.get(m, 50), 0, 0, 0))
                             for m in range(22) if m != 10])
    rows = {r["recordtimestamp"]: r for r in run(tmp_path, semantics)}
    assert rows[T0 + 20 * MINUTE]["avgspeed20minutes"] == at_minute_20
    assert rows[T0 + 21 * MINUTE]["avgspeed20minutes"] == at_minute_21
    assert rows[T0 + 21 * MINUTE]["trafficjamindicatorlong"] == 0  # 49 and 50 are in the 0 band


# --- steps 7 and 10: indicators ------------------------------------------------------

@pytest.mark.parametrize("semantics, expected", [
    # one reading per location, so avg3 = avg20 = currentspeed
    # uniqueid: (avgspeed3minutes, trafficjamindicator)
    ("athena", {1001: (0.0, 1), 1011: (40.0, 1), 1022: (40.5, -1), 1031: (41.0, 0),
                1041: (250.0, 0), 1052: (250.5, -1), 1061: (None, -1)}),
    # 250.5 cannot happen in corrected: a weighted mean of speeds 0..250 stays <= 250;
    # uniqueid is the location of road J at km 1..6 (lanes 102x and 105x: R10 and R11)
    ("corrected", {location_id(f"J|m{km}000|main"): band for km, band in (
        (1, (0.0, 1)), (2, (40.0, 1)), (3, (40.5, 0)), (4, (41.0, 0)), (5, (250.0, 0)),
        (6, (250.0, 0)), (7, (None, -1)))}),
])
def test_jam_bands(tmp_path, semantics, expected):
    configuration = write_configuration(tmp_path / "config.xml", [
        lane(uid, "J", str(km), f"R1{uid % 10 - 1}")
        for km, uids in enumerate(((1001,), (1011,), (1021, 1022), (1031,), (1041,), (1051, 1052), (1061,)), 1)
        for uid in uids])
    write_parquet(tmp_path / "raw", [
        reading(1001, 100, T0, s=(0, 0, 0, 0)),
        reading(1011, 101, T0, s=(40, 0, 0, 0)),
        reading(1021, 102, T0, s=(40, 0, 0, 0)),  # AVG(40, 41) = 40.5
        reading(1022, 102, T0, s=(41, 0, 0, 0)),
        reading(1031, 103, T0, s=(41, 0, 0, 0)),
        reading(1041, 104, T0, s=(250, 0, 0, 0)),
        # athena sums the speeds of all four classes, also of a class without vehicles
        # (validation only checks classes with vehicles): lane 1052 = (250+1) DIV 1 = 251,
        # AVG(250, 251) = 250.5. corrected: 1*250/1 = 250, AVG(250, 250) = 250.
        reading(1051, 105, T0, s=(250, 0, 0, 0)),
        reading(1052, 105, T0, s=(250, 1, 0, 0)),
        reading(1061, 106, T0, i=(0, 0, 0, 0), s=(0, 0, 0, 0)),  # no vehicle: NULL
    ])
    rows = run(tmp_path / "raw", semantics, configuration=configuration)
    assert {r["uniqueid"]: pick(r, "avgspeed3minutes", "trafficjamindicator") for r in rows} == expected
    assert all(r["trafficjamindicatorlong"] == r["trafficjamindicator"] for r in rows)


@BOTH
def test_speed_difference(tmp_path, semantics):
    # minutes 0..5: 50, 70 (+20), 50 (-20), 69 (+19), no vehicle (NULL), 80 (after NULL)
    speeds = [50, 70, 50, 69, None, 80]
    write_parquet(tmp_path, [
        reading(111, 11, T0 + m * MINUTE, i=(0 if v is None else 1, 0, 0, 0), s=(v or 0, 0, 0, 0))
        for m, v in enumerate(speeds)])
    rows = run(tmp_path, semantics)
    assert [r["previousspeed"] for r in rows] == [None, 50.0, 70.0, 50.0, 69.0, None]
    assert [r["speeddiffindicator"] for r in rows] == [0, 1, -1, 0, 0, 0]


# --- step 11 and the run's ranges -----------------------------------------------------

@BOTH
def test_partitions_around_midnight_utc(tmp_path, semantics):
    write_parquet(tmp_path, [
        reading(121, 12, MIDNIGHT - MINUTE),  # 2020-04-06 23:59: context only
        reading(121, 12, MIDNIGHT),  # 2020-04-07 00:00
        reading(121, 12, MIDNIGHT + 24 * HOUR - MINUTE, arrived=MIDNIGHT + 24 * HOUR + 5),  # 23:59, lands on the 8th
        reading(121, 12, MIDNIGHT + 24 * HOUR),  # 2020-04-08 00:00
    ])
    partitions = lambda rows: [pick(r, "recordtimestamp", "year", "month", "day", "hour") for r in rows]
    assert partitions(run(tmp_path, semantics)) == [
        (MIDNIGHT, 2020, 4, 7, 0), (MIDNIGHT + 24 * HOUR - MINUTE, 2020, 4, 7, 23)]
    assert partitions(run(tmp_path, semantics, end=DAY + timedelta(days=1))) == [
        (MIDNIGHT, 2020, 4, 7, 0), (MIDNIGHT + 24 * HOUR - MINUTE, 2020, 4, 7, 23),
        (MIDNIGHT + 24 * HOUR, 2020, 4, 8, 0)]


@pytest.mark.parametrize("semantics, expected", [
    # columns: currentspeed, trafficintensityclass2, trafficintensityclass3, bezettingsgraad
    ("athena", {
        131: (85.0, 3, 0, 2),  # both readings: AVG(100, 70); 2+1; ROUND(AVG(2, 1)) = ROUND(1.5)
        141: (90.0, 6, 0, 3),  # the same reading twice: 3+3; ROUND(AVG(3, 3))
        151: (97.5, 2, 3, 3),  # (90+80) DIV 2 = 85, (120+100) DIV 2 = 110: AVG 97.5; ROUND(AVG(3, 2)) = 3
        161: (92.5, 2, 0, 1),  # AVG(90, 95)
        171: (80.0, 6, 0, 3),  # AVG(60, 100); 5+1; ROUND(AVG(5, 1))
    }),
    ("corrected", {  # uniqueid is -unieke_id (no configuration)
        -131: (70.0, 1, 0, 1),  # B's 09:30+00:00 is later than A's 10:00+02:00 (08:00 UTC)
        -141: (90.0, 3, 0, 3),  # counted once
        -151: (250 / 3, 1, 2, 3),  # same instant: C wins on i3 (2 > 1): (90 + 2*80)/3
        -161: (95.0, 1, 0, 1),  # all else equal: the greater s2 wins
        -171: (100.0, 1, 0, 1),  # NULL tijd_laatst_gewijzigd is older than any time
    }),
])
def test_duplicates(tmp_path, semantics, expected):
    winners_first = [
        reading(131, 13, T0, i=(1, 0, 0, 0), s=(70, 0, 0, 0), modified="2020-04-07T09:30:00+00:00"),
        reading(141, 14, T0, i=(3, 0, 0, 0), s=(90, 0, 0, 0)),
        reading(151, 15, T0, i=(1, 2, 0, 0), s=(90, 80, 0, 0), modified="2020-04-07T10:00:00+02:00"),
        reading(161, 16, T0, s=(95, 0, 0, 0)),
        reading(171, 17, T0, s=(100, 0, 0, 0), modified="2020-01-01T00:00:00Z"),
    ]
    losers = [
        reading(131, 13, T0, i=(2, 0, 0, 0), s=(100, 0, 0, 0), modified="2020-04-07T10:00:00+02:00"),
        reading(141, 14, T0, i=(3, 0, 0, 0), s=(90, 0, 0, 0)),
        reading(151, 15, T0, i=(1, 1, 0, 0), s=(120, 100, 0, 0), modified="2020-04-07T08:00:00Z"),
        reading(161, 16, T0, s=(90, 0, 0, 0)),
        reading(171, 17, T0, i=(5, 0, 0, 0), s=(60, 0, 0, 0), modified=None),
    ]
    for name, order in (("a", (winners_first, losers)), ("b", (losers, winners_first))):
        for readings in order:  # one file each, in both orders: the result must not depend on it
            write_parquet(tmp_path / name, readings)
        rows = run(tmp_path / name, semantics)
        assert {r["uniqueid"]: pick(r, "currentspeed", "trafficintensityclass2", "trafficintensityclass3",
                                    "bezettingsgraad") for r in rows} == expected


@pytest.mark.parametrize("semantics, lookback, avg20", [
    ("athena", 60, 60.0),  # context from 23:00: rows 30, 60, 90
    ("athena", 120, 47.5),  # context from 22:00 adds 22:30: (10+30+60+90)/4 = 190/4
    ("corrected", 60, 60.0),  # [23:41, 00:00] whatever the lookback
    ("corrected", 120, 60.0),
])
def test_lookback_feeds_windows_but_is_not_output(tmp_path, semantics, lookback, avg20):
    write_parquet(tmp_path, [
        reading(181, 18, MIDNIGHT - 90 * MINUTE, s=(10, 0, 0, 0)),  # 22:30 on the 6th
        reading(181, 18, MIDNIGHT - 2 * MINUTE, s=(30, 0, 0, 0)),
        reading(181, 18, MIDNIGHT - MINUTE, s=(60, 0, 0, 0)),
        reading(181, 18, MIDNIGHT, s=(90, 0, 0, 0)),
    ])
    [row] = run(tmp_path, semantics, lookback_minutes=lookback)
    # previous 60 (90-60 = 30 -> 1), avg3 (30+60+90)/3 = 60
    assert pick(row, "recordtimestamp", "previousspeed", "speeddiffindicator", "avgspeed3minutes",
                "avgspeed20minutes") == (MIDNIGHT, 60.0, 1, 60.0, avg20)


def test_corrected_refuses_a_lookback_shorter_than_its_window(tmp_path):
    with pytest.raises(ValueError, match="lookback_minutes"):
        curated_rows(str(tmp_path), DAY, DAY, semantics="corrected", lookback_minutes=19)
    assert curated_rows(str(tmp_path), DAY, DAY, semantics="athena", lookback_minutes=0).num_rows == 0


@BOTH
def test_late_readings(tmp_path, semantics):
    end_of_day = MIDNIGHT + 24 * HOUR
    write_parquet(tmp_path, [
        # arrived in the folder hour=23 of the 8th: less than 24 h after the end of the 7th
        reading(191, 19, T0 + 4 * HOUR, arrived=end_of_day + 23 * HOUR + 59 * MINUTE),
        # arrived in hour=00 of the 9th: 24 h after, not read
        reading(191, 19, T0 + 4 * HOUR + MINUTE, arrived=end_of_day + 24 * HOUR),
    ])
    assert [r["recordtimestamp"] for r in run(tmp_path, semantics)] == [T0 + 4 * HOUR]
    assert run(tmp_path, semantics, late_hours=2) == []


# --- raw input forms and validation ------------------------------------------------------

def _as_stream_json(r, iso_offset_hours=None):
    """A reading as the stream sends it: every value a JSON string, except a few numbers;
    tijd_waarneming as epoch digits or ISO-8601 with an offset."""
    out = {k: (None if v is None else str(v)) for k, v in r.items() if k != "arrived"}
    out[schema.arithmetic_speed(2)] = r[schema.arithmetic_speed(2)]  # a JSON number
    if iso_offset_hours is not None:
        local = timezone(timedelta(hours=iso_offset_hours))
        out[schema.OBSERVED_AT] = datetime.fromtimestamp(r[schema.OBSERVED_AT], local).isoformat()
    return out


@BOTH
def test_json_strings_and_iso_timestamps_parse_like_parquet(tmp_path, semantics):
    readings = (
        _lve5_readings()
        + [reading(71, 7, T0 + dt, s=(v, 0, 0, 0)) for dt, v in ((0, 50), (60, 80), (180, 55))]
        + [reading(131, 13, T0, s=(70, 0, 0, 0), modified="2020-04-07T09:30:00+00:00"),
           reading(131, 13, T0, i=(2, 0, 0, 0), s=(100, 0, 0, 0)),
           reading(121, 12, MIDNIGHT - MINUTE, s=(60, 0, 0, 0)),  # context: previousspeed of 00:00
           reading(121, 12, MIDNIGHT, s=(100, 0, 0, 0)),
           reading(121, 12, MIDNIGHT + 24 * HOUR - MINUTE)]
    )
    write_parquet(tmp_path / "parquet", readings)

    json_root = tmp_path / "json"
    # every other reading's tijd_waarneming as ISO-8601 in +02:00 (the last one, 23:59 UTC,
    # reads 2020-04-08T01:59:00+02:00), the others as digit strings, the first as a number
    lines = [_as_stream_json(r, iso_offset_hours=(2 if n % 2 == 0 else None))
             for n, r in enumerate(reversed(readings))]
    lines[1][schema.OBSERVED_AT] = int(lines[1][schema.OBSERVED_AT])
    assert lines[0][schema.OBSERVED_AT] == "2020-04-08T01:59:00+02:00"
    for r, line in zip(reversed(readings), lines):
        write_json_lines(json_root, r["arrived"], [line])
    write_json_lines(json_root, T0, [
        "[1, 2]", '"not an object"', "{broken",
        # each would otherwise take part in lve 5's minute T0
        {**_as_stream_json(reading(99, 5, T0)), schema.LANE_ID: "99.5"},
        {**_as_stream_json(reading(99, 5, T0)), schema.arithmetic_speed(2): "fast"},
        {**_as_stream_json(reading(99, 5, T0)), schema.arithmetic_speed(2): 251},
        {**_as_stream_json(reading(99, 5, T0)), schema.intensity(3): "-1"},
        {**_as_stream_json(reading(99, 5, T0)), schema.intensity(4): None},
        {**_as_stream_json(reading(99, 5, T0)), schema.MODIFIED_AT: "yesterday"},
        {**_as_stream_json(reading(99, 5, T0)), schema.OBSERVED_AT: "soon"},
        {**_as_stream_json(reading(99, 5, T0)), schema.UNIT_ID: None},
    ])

    from_parquet = run(tmp_path / "parquet", semantics)
    # athena: lve 5: 2 rows, lve 7: 3, lve 13: 1, lve 12: 2 (00:00 and 23:59; 23:59 on the
    # 6th is context); corrected (every lane its own location): lve 5's lanes 3 + 2 rows
    assert len(from_parquet) == (8 if semantics == "athena" else 11)
    location_12 = 121 if semantics == "athena" else -121
    assert by_key(from_parquet)[(location_12, MIDNIGHT)]["previousspeed"] == 60.0
    assert run(json_root, semantics, source_format="json") == from_parquet


@BOTH
def test_no_files_gives_an_empty_table(tmp_path, semantics):
    assert run(tmp_path / "missing", semantics) == []
    write_parquet(tmp_path, [reading(1, 1, T0 + 10 * 24 * HOUR)])  # only folders outside the run
    (tmp_path / "year=2020" / "month=04" / "day=07" / "hour=08").mkdir(parents=True)  # an empty folder
    assert run(tmp_path, semantics) == []
    assert run(tmp_path, semantics, source_format="json") == []


def test_locations_select_rows_after_grouping(tmp_path):
    write_parquet(tmp_path, _lve5_readings() + [reading(71, 7, T0)])
    rows = run(tmp_path, "corrected", locations=[-51])
    assert [pick(r, "uniqueid", "recordtimestamp", "previousspeed") for r in rows] == [
        (-51, T0, None), (-51, T0 + MINUTE, 90.0)]
    assert run(tmp_path, "athena", locations=[51]) == []  # 51 names no location


# --- corrected's locations: the configuration (issue 18) ----------------------------------

def test_two_carriageways_of_one_lve_nr_are_two_locations(tmp_path):
    """lve_nr 437 is a cabinet serving both directions of the A14 and a slip road: each
    carriageway at km 94,69 is a location, its lanes averaged only with each other."""
    configuration = write_configuration(tmp_path / "config.xml.gz", [
        lane(1, "A0140001", "94,69", "R10", 437), lane(2, "A0140001", "94,69", "R11", 437),
        lane(3, "A0140002", "94,69", "R10", 437), lane(4, "A0140001", "94,69", "R09", 437)])
    write_parquet(tmp_path / "raw", [
        reading(1, 437, T0, i=(2, 0, 0, 0), s=(120, 0, 0, 0)),
        reading(2, 437, T0, i=(1, 0, 0, 0), s=(100, 0, 0, 0)),
        reading(3, 438, T0, i=(4, 0, 0, 0), s=(30, 0, 0, 0)),  # whatever lve_nr it carries
        reading(4, 437, T0, i=(1, 0, 0, 0), s=(50, 0, 0, 0)),
    ])
    rows = run(tmp_path / "raw", "corrected", configuration=configuration)
    columns = ("uniqueid", "currentspeed", "trafficintensityclass2", "bezettingsgraad", "trafficjamindicator")
    assert sorted(pick(r, *columns) for r in rows) == sorted([
        # lanes 1, 2: AVG(120, 100) = 110; 2+1 vehicles; ROUND(AVG(2, 1)) = ROUND(1.5) = 2
        (location_id("A0140001|m94690|main"), 110.0, 3, 2, 0),
        # lane 3, the other direction, jammed: not averaged into 110 (nor into 75, all four)
        (location_id("A0140002|m94690|main"), 30.0, 4, 4, 1),
        (location_id("A0140001|m94690|merge"), 50.0, 1, 1, 0),  # R09: the slip road
    ])
    # athena is unchanged: one lve_nr 437 minute, MAX(unieke_id) 4, and lane 3 under lve 438
    athena = run(tmp_path / "raw", "athena", configuration=configuration)
    assert [pick(r, "uniqueid", "currentspeed") for r in athena] == [(3, 30.0), (4, 90.0)]
    assert athena == run(tmp_path / "raw", "athena")


def test_wrong_way_lane_is_left_out_and_counted(tmp_path):
    configuration = write_configuration(tmp_path / "config.xml", [
        lane(29, "N0160001", "22,649", "TR11", 55), lane(30, "N0160001", "22,649", "R10", 55)])
    write_parquet(tmp_path / "raw", [
        reading(29, 55, T0, s=(40, 0, 0, 0)),
        reading(29, 55, T0, s=(40, 0, 0, 0)),  # twice: wrong_way_lane comes before duplicate
        reading(29, 55, T0 + MINUTE, defect=1),  # defect comes before wrong_way_lane
        reading(30, 55, T0, s=(90, 0, 0, 0)),
    ])
    raw = tmp_path / "raw"
    rows = run(raw, "corrected", configuration=configuration)
    assert [pick(r, "uniqueid", "recordtimestamp", "currentspeed", "trafficintensityclass2")
            for r in rows] == [(location_id("N0160001|m22649|main"), T0, 90.0, 1)]
    assert reading_counts(str(raw), DAY, DAY, configuration=configuration) == {
        "kept": 1, "wrong_way_lane": 2, "defect": 1}
    # without a configuration, and in athena, it is a lane like any other
    assert reading_counts(str(raw), DAY, DAY) == {"kept": 2, "duplicate": 1, "defect": 1}
    assert reading_counts(str(raw), DAY, DAY, semantics="athena", configuration=configuration) == {
        "kept": 3, "defect": 1}
    assert locations(configuration) == [{
        "location_id": location_id("N0160001|m22649|main"), "key": "N0160001|m22649|main",
        "road": "N0160001", "point": "m22649", "lane_group": "main", "lanes": [30],
        "valid_from": None, "valid_to": None, "configuration": "config.xml"}]


def test_unconfigured_lane_is_a_location_of_its_own(tmp_path):
    configuration = write_configuration(tmp_path / "config.xml", [lane(1, "A0140001", "94,69", "R10", 7)])
    write_parquet(tmp_path / "raw", [
        reading(1, 7, T0, s=(100, 0, 0, 0)), reading(7, 7, T0, s=(60, 0, 0, 0)),  # one lve_nr
        reading(7, 7, T0 + MINUTE, s=(80, 0, 0, 0)),
    ])
    columns = ("uniqueid", "recordtimestamp", "currentspeed", "previousspeed")
    # lane 7 is its own series: -7, never merged with lane 1's location
    assert [pick(r, *columns) for r in run(tmp_path / "raw", "corrected", configuration=configuration)] == [
        (-7, T0, 60.0, None), (-7, T0 + MINUTE, 80.0, 60.0),
        (location_id("A0140001|m94690|main"), T0, 100.0, None)]
    assert [pick(r, *columns) for r in run(tmp_path / "raw", "corrected")] == [
        (-7, T0, 60.0, None), (-7, T0 + MINUTE, 80.0, 60.0), (-1, T0, 100.0, None)]
    assert unconfigured_lanes(str(tmp_path / "raw"), DAY, DAY, configuration=configuration) == {
        "readings": 2, "lanes": [7]}
    assert unconfigured_lanes(str(tmp_path / "raw"), DAY, DAY) == {"readings": 3, "lanes": [1, 7]}


def test_lane_moved_by_a_later_snapshot(tmp_path):
    """Snapshots of 08:05 and 08:30: lane 8 moves from the A14's direction 1 to its
    direction 2 at 08:30; lane 10 leaves the configuration then. The earliest snapshot
    also holds for the readings before its time (08:00)."""
    folder = tmp_path / "configuration"
    write_configuration(folder / "miv-config-2020-04-07T080500Z.xml", [
        lane(8, "A0140001", "10,0", "R10"), lane(9, "A0140001", "10,0", "R11"),
        lane(10, "A0140001", "10,0", "R12")])
    write_configuration(folder / "miv-config-2020-04-07T083000Z.xml.gz", [
        lane(8, "A0140002", "10,0", "R10"), lane(9, "A0140001", "10,0", "R11")])
    (folder / "README.txt").write_text("not a snapshot: ignored")
    minutes = (0, 29, 30, 31)
    write_parquet(tmp_path / "raw", [
        reading(uid, 3, T0 + m * MINUTE, s=(speed, 0, 0, 0))
        for m in minutes for uid, speed in ((8, 60), (9, 100), (10, 110))])
    old, new = location_id("A0140001|m10000|main"), location_id("A0140002|m10000|main")
    rows = run(tmp_path / "raw", "corrected", configuration=folder)
    assert [pick(r, "uniqueid", "recordtimestamp", "currentspeed", "previousspeed") for r in rows] == sorted([
        # before 08:30: lanes 8, 9, 10: AVG(60, 100, 110) = 90
        (old, T0, 90.0, None), (old, T0 + 29 * MINUTE, 90.0, None),
        # from 08:30: lane 9 alone; its series goes on (08:29 is 60 s earlier)
        (old, T0 + 30 * MINUTE, 100.0, 90.0), (old, T0 + 31 * MINUTE, 100.0, 100.0),
        (new, T0 + 30 * MINUTE, 60.0, None), (new, T0 + 31 * MINUTE, 60.0, 60.0),  # lane 8
        (-10, T0 + 30 * MINUTE, 110.0, None), (-10, T0 + 31 * MINUTE, 110.0, 110.0),  # unconfigured
    ])
    assert unconfigured_lanes(str(tmp_path / "raw"), DAY, DAY, configuration=folder) == {
        "readings": 2, "lanes": [10]}

    # the locations, per snapshot, valid from its own time (as the locations table says)
    first, switch = T0 + 5 * MINUTE, T0 + 30 * MINUTE
    assert [pick(r, "location_id", "lanes", "valid_from", "valid_to", "configuration")
            for r in locations(folder)] == sorted([
        (old, [8, 9, 10], first, switch, "miv-config-2020-04-07T080500Z.xml"),
        (old, [9], switch, None, "miv-config-2020-04-07T083000Z.xml.gz"),
        (new, [8], switch, None, "miv-config-2020-04-07T083000Z.xml.gz"),
    ])
    # a run of the 6th uses the earliest snapshot alone, which is then open
    assert [pick(r, "location_id", "lanes", "valid_from", "valid_to")
            for r in locations(folder, DAY - timedelta(days=1), DAY - timedelta(days=1))] == [
        (old, [8, 9, 10], first, None)]
    # a run of the 8th: the lookback (the 7th from 23:00) is after 08:30, the second alone
    assert {r["configuration"] for r in locations(folder, DAY + timedelta(days=1),
                                                  DAY + timedelta(days=1))} == {
        "miv-config-2020-04-07T083000Z.xml.gz"}


def test_lane_under_two_lve_nr_in_one_minute_is_one_reading(tmp_path):
    """A lane's readings go to its location whatever lve_nr they carry: two readings of
    one lane and minute are duplicates, the latest tijd_laatst_gewijzigd wins."""
    configuration = write_configuration(tmp_path / "config.xml", [lane(957, "R0010001", "7,16", "R10", 18)])
    write_parquet(tmp_path / "raw", [
        reading(957, 18, T0, s=(80, 0, 0, 0), modified="2020-04-07T08:00:30Z"),
        reading(957, 19, T0, s=(100, 0, 0, 0), modified="2020-04-07T10:00:40+02:00"),  # 08:00:40 UTC
    ])
    raw = tmp_path / "raw"
    [row] = run(raw, "corrected", configuration=configuration)
    assert pick(row, "uniqueid", "currentspeed", "trafficintensityclass2", "bezettingsgraad") == (
        location_id("R0010001|m7160|main"), 100.0, 1, 1)
    assert reading_counts(str(raw), DAY, DAY, configuration=configuration) == {"kept": 1, "duplicate": 1}
    # athena keeps both: one row per lve_nr, both named 957 (so in no promised order)
    assert sorted(pick(r, "uniqueid", "currentspeed") for r in run(raw, "athena")) == [(957, 80.0), (957, 100.0)]


def test_location_keys_without_kilometre_point_or_road_and_lane_groups(tmp_path):
    configuration = write_configuration(tmp_path / "config.xml", [
        # no Kmp_Rsys: the coordinates, 6 decimals (4.2188739815 -> 4.218874)
        lane(20, "N0010001", None, "R10", lon="4,2188739815", lat="51,119328781"),
        lane(21, "N0010001", None, "R11", lon="4,21887401", lat="51,1193292"),  # the same place
        lane(22, "N0010001", None, "R10"),  # nothing: the lane itself
        lane(23, None, "1,5", "R10"),  # no road: the lane itself
        lane(24, "A0010001", "0,0005", "S09"),  # 0.5 m: half to even, 0; S: main
        lane(25, "A0010001", "0,0015", "R"),  # 1.5 m -> 2; R without a number: merge
        lane(26, "A0010001", "2", "R010"),  # 10: main
        lane(27, "A0010001", "2", "B01"), lane(28, "A0010001", "2", "P"),  # their own kinds
        lane(29, "A0010001", "2", "10"), lane(30, "A0010001", "2", None),  # unknown
        lane(31, "A0010001", "2", "TR10"),  # wrong way: no location
    ])
    expected = {
        "N0010001|at4.218874,51.119329|main": [20, 21], "N0010001|lane22|main": [22],
        "lane23|m1500|main": [23], "A0010001|m0|main": [24], "A0010001|m2|merge": [25],
        "A0010001|m2000|main": [26], "A0010001|m2000|B": [27], "A0010001|m2000|P": [28],
        "A0010001|m2000|unknown": [29, 30],
    }
    found = locations(configuration)
    assert {r["key"]: r["lanes"] for r in found} == expected
    assert all(r["key"] == "|".join((r["road"], r["point"], r["lane_group"])) for r in found)

    write_parquet(tmp_path / "raw", [reading(20, 1, T0, s=(50, 0, 0, 0)), reading(21, 2, T0, s=(70, 0, 0, 0))])
    assert [pick(r, "uniqueid", "currentspeed") for r in run(tmp_path / "raw", "corrected",
                                                            configuration=configuration)] == [
        (location_id("N0010001|at4.218874,51.119329|main"), 60.0)]


def test_location_ids_follow_the_formula(tmp_path):
    configuration = write_configuration(tmp_path / "config.xml", [
        lane(uid, road, km, kind) for uid, road, km, kind in (
            (1, "A0140001", "94,69", "R10"), (2, "A0140002", "94,69", "R10"), (3, "A0140001", "94,69", "R09"),
            (4, "N0160001", "22,649", "B01"), (5, None, None, None))])
    found = locations(configuration)
    assert [r["key"] for r in found] != [] and len(found) == 5
    assert all(r["location_id"] == location_id(r["key"]) and 0 <= r["location_id"] < 2**31 for r in found)
    # SHA-256 of 'A0140001|m94690|main' starts with 8a d7 77 4c; the mask drops the high
    # bit: 0x0ad7774c = 181892940
    assert hashlib.sha256(b"A0140001|m94690|main").hexdigest()[:8] == "8ad7774c"
    assert {r["key"]: r["location_id"] for r in found}["A0140001|m94690|main"] == 0x0AD7774C == 181892940


def test_configuration_that_cannot_be_used(tmp_path):
    twice = write_configuration(tmp_path / "twice.xml", [lane(1, "A", "1", "R10"), lane(1, "B", "1", "R10")])
    with pytest.raises(ValueError, match="unieke_id 1 is configured twice"):
        locations(twice)
    bad_km = write_configuration(tmp_path / "km.xml", [lane(1, "A", "1.234,5", "R10")])
    with pytest.raises(ValueError, match="does not parse"):
        curated_rows(str(tmp_path / "raw"), DAY, DAY, configuration=bad_km)
    undated = write_configuration(tmp_path / "folder" / "miv-config.xml", [lane(1, "A", "1", "R10")])
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        locations(undated.parent)
    with pytest.raises(ValueError, match="mivconfig"):
        locations(write_configuration(tmp_path / "empty.xml", []))


# --- write_curated -------------------------------------------------------------------------

def test_write_curated_partitions_and_replaces_its_days(tmp_path):
    raw, target = tmp_path / "raw", tmp_path / "curated"
    write_parquet(raw, [reading(71, 7, T0), reading(71, 7, T0 + MINUTE),
                        reading(71, 7, MIDNIGHT + 24 * HOUR - MINUTE, arrived=MIDNIGHT + 24 * HOUR)])
    other_day = target / "year=2020" / "month=4" / "day=8" / "hour=0"
    other_day.mkdir(parents=True)
    pq.write_table(curated_rows(str(raw), DAY, DAY).slice(0, 1).drop_columns(list(schema.EVENT_PARTITIONS)),
                   other_day / "kept.parquet")

    for _ in range(2):  # a second run replaces the day, never adds to it
        result = write_curated(str(raw), str(target), DAY, DAY, semantics="athena")
        assert result["rows"] == 3 and result["seconds"] > 0

    assert sorted(p.relative_to(target).parent.as_posix() for p in target.rglob("*.parquet")) == [
        "year=2020/month=4/day=7/hour=23", "year=2020/month=4/day=7/hour=8",
        "year=2020/month=4/day=8/hour=0"]
    day_7 = ds.dataset(target / "year=2020" / "month=4" / "day=7", format="parquet",
                       partitioning=ds.partitioning(pa.schema([("hour", pa.int64())]), flavor="hive"))
    written = day_7.to_table().sort_by([("uniqueid", "ascending"), ("recordtimestamp", "ascending")])
    expected = curated_rows(str(raw), DAY, DAY, semantics="athena")
    assert written.drop_columns(["hour"]).to_pylist() == expected.drop_columns(
        list(schema.EVENT_PARTITIONS)).to_pylist()
    assert [f.type for f in pq.read_schema(next(target.rglob("hour=8/*.parquet")))] == [
        f.type for f in CURATED_ARROW_SCHEMA][:-4]


def test_missing_columns(tmp_path):
    table = pa.Table.from_pylist([{k: v for k, v in reading(1, 1, T0).items() if k != "arrived"}],
                                 schema=RAW_ARROW_SCHEMA)
    pq.write_table(table.drop_columns([schema.MODIFIED_AT]), _folder(tmp_path / "no_modified", T0) / "a.parquet")
    pq.write_table(table.drop_columns([schema.DEFECT]), _folder(tmp_path / "no_defect", T0) / "a.parquet")
    # tijd_laatst_gewijzigd only resolves duplicates, so athena does without it
    assert [r["uniqueid"] for r in run(tmp_path / "no_modified", "athena")] == [1]
    with pytest.raises(ValueError, match=schema.MODIFIED_AT):
        run(tmp_path / "no_modified", "corrected")
    with pytest.raises(ValueError, match=schema.DEFECT):
        run(tmp_path / "no_defect", "athena")


def test_command_line(tmp_path, capsys):
    from tools.duckdb_reference import main

    write_parquet(tmp_path / "raw", [reading(71, 7, T0), reading(51, 5, T0)])
    assert main(["--raw", str(tmp_path / "raw"), "--start-date", "2020-04-07", "--semantics", "athena",
                 "--locations", "71", "--out", str(tmp_path / "out")]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 1
    assert [p.relative_to(tmp_path / "out").parent.as_posix() for p in (tmp_path / "out").rglob("*.parquet")] == [
        "year=2020/month=4/day=7/hour=8"]


def test_command_line_with_a_configuration(tmp_path, capsys):
    from tools.duckdb_reference import main

    configuration = write_configuration(tmp_path / "config.xml", [
        lane(71, "A0140001", "94,69", "R10", 7), lane(72, "A0140002", "94,69", "R10", 7)])
    write_parquet(tmp_path / "raw", [reading(71, 7, T0), reading(72, 7, T0)])
    assert main(["--raw", str(tmp_path / "raw"), "--start-date", "2020-04-07",
                 "--configuration-path", str(configuration), "--out", str(tmp_path / "out")]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 2  # two carriageways, one lve_nr
    written = ds.dataset(tmp_path / "out", format="parquet", partitioning="hive").to_table()
    assert sorted(written.column("uniqueid").to_pylist()) == sorted(
        [location_id("A0140001|m94690|main"), location_id("A0140002|m94690|main")])

"""Every step of docs/SEMANTICS.md ("Step by step"), in both modes, on inline rows worked out by hand."""

from collections import Counter

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from tests.factories import T0, frame, reading, readings_df
from traffic_glue.compute import schema as S
from traffic_glue.compute import transforms as TR
from traffic_glue.compute.modes import ATHENA, CORRECTED
from traffic_glue.compute.statuses import READING_STATUS, label_of
from traffic_glue.compute.statuses import ReadingStatus as RS

ROW_KEY = [S.UNIT_ID, S.OBSERVED_AT]

# Configured locations (`corrected`): two carriageways at one point, as a cabinet
# (lve_nr) often serves both; and a third location elsewhere.
D1, D2, D3 = 1001, 1002, 1003
NOON = T0 + 12 * 3600


def _sorted(df, *keys):
    return df.orderBy(*keys)


def _lane_map(spark, rows):
    """A lane map (`transforms.LANE_MAP_SCHEMA`): (lane, valid_from, valid_to, location),
    bounds in epoch seconds (NULL: unbounded), location NULL for a wrong-way (TR) lane."""
    return frame(spark, rows, TR.LANE_MAP_SCHEMA)


# --- step 4 of corrected, before the shuffle: the location -----------------------------------

LOCATION_MAP = [
    (11, None, None, D1),                  # in every snapshot: NULL bounds are unbounded
    (12, None, NOON, D1),                  # moved by the snapshot of noon: D1 before it ...
    (12, NOON, None, D2),                  # ... D2 from noon on ([valid_from, valid_to))
    (14, None, None, None),                # a TR lane: no location
    (15, None, T0, D2),                    # left out of the snapshot in force [T0, T0 + 1 day) ...
    (15, T0 + 86400, None, D2),            # ... and back in the next
]
LOCATED_SCHEMA = T.StructType([
    T.StructField(S.LANE_ID, T.IntegerType()), T.StructField(S.OBSERVED_AT, T.LongType()),
    T.StructField(S.LOCATION_ID, T.IntegerType()), T.StructField(TR.WRONG_WAY, T.BooleanType()),
])


def _located(spark, rows, lane_map):
    return (
        readings_df(spark, rows)
        .transform(TR.with_location, lane_map)
        .select(S.LANE_ID, S.OBSERVED_AT, S.LOCATION_ID, TR.WRONG_WAY)
    )


def test_with_location_takes_the_configured_location_in_force_at_the_readings_minute(spark):
    rows = [
        reading(11, 1, T0 - 10 * 365 * 86400),  # ten years before: the first snapshot's
        reading(11, 7, T0),                     # whatever lve_nr the reading carries
        reading(11, 1, T0 + 10 * 365 * 86400),  # ten years after: the last snapshot's
        reading(12, 1, NOON - 60),
        reading(12, 1, NOON - 1),               # the last second before the snapshot
        reading(12, 1, NOON),                   # its first second: the new location
        reading(12, 1, NOON + 60),
        reading(13, 1, T0),                     # no configuration holds lane 13: -13
        reading(14, 1, T0),                     # a TR lane: no location, marked wrong-way
        reading(15, 1, T0 - 60),                # in force until T0
        reading(15, 1, T0),                     # not in the snapshot of [T0, T0 + 1 day): -15
        reading(15, 1, T0 + 86399),
        reading(15, 1, T0 + 86400),             # back in the next one
        # A rejected reading without a lane: no location, not wrong-way, not dropped.
        reading(None, 1, T0, status=RS.BAD_LANE_ID),
    ]
    located = _located(spark, rows, _lane_map(spark, LOCATION_MAP))
    expected = frame(spark,
        [(11, T0 - 10 * 365 * 86400, D1, False), (11, T0, D1, False), (11, T0 + 10 * 365 * 86400, D1, False),
         (12, NOON - 60, D1, False), (12, NOON - 1, D1, False), (12, NOON, D2, False),
         (12, NOON + 60, D2, False), (13, T0, -13, False), (14, T0, None, True),
         (15, T0 - 60, D2, False), (15, T0, -15, False), (15, T0 + 86399, -15, False),
         (15, T0 + 86400, D2, False), (None, T0, None, False)],
        LOCATED_SCHEMA,
    )
    assert_df_equality(located, expected, ignore_row_order=True, ignore_nullable=True)


def test_with_location_keeps_every_reading_once_and_adds_only_its_two_columns(spark):
    rows = [reading(11, 1, T0), reading(12, 1, NOON), reading(13, 1, T0), reading(14, 1, T0),
            reading(None, 1, T0, status=RS.BAD_LANE_ID),
            # A rejected reading without a time: still one row (a lane with a bounded span
            # cannot match it; one with NULL bounds has no other span).
            reading(11, 1, None, status=RS.BAD_OBSERVED_AT), reading(12, 1, None, status=RS.BAD_OBSERVED_AT)]
    readings = readings_df(spark, rows)
    located = readings.transform(TR.with_location, _lane_map(spark, LOCATION_MAP))
    assert located.columns == readings.columns + [S.LOCATION_ID, TR.WRONG_WAY]
    assert located.count() == len(rows)
    assert located.where(F.col(S.LANE_ID).isNull()).select(S.LOCATION_ID, TR.WRONG_WAY).collect() == [(None, False)]


def test_with_location_without_a_configuration_makes_every_lane_a_location_of_its_own(spark):
    rows = [reading(11, 1, T0), reading(12, 1, NOON), reading(14, 1, T0), reading(957, 18, T0),
            reading(957, 19, T0 + 60), reading(None, 1, T0, status=RS.BAD_LANE_ID)]
    located = _located(spark, rows, None)
    expected = frame(spark,
        # No configuration says lane 14 is a TR lane: it is a location of its own too;
        # lane 957 is one location whatever lve_nr it carries.
        [(11, T0, -11, False), (12, NOON, -12, False), (14, T0, -14, False),
         (957, T0, -957, False), (957, T0 + 60, -957, False), (None, T0, None, False)],
        LOCATED_SCHEMA,
    )
    assert_df_equality(located, expected, ignore_row_order=True, ignore_nullable=True)


# --- step 1: which readings are kept ------------------------------------------------


def test_reading_status_applies_rules_in_order(spark):
    rows = [
        reading(1, 1, T0),                                   # kept
        reading(2, 1, T0, defect=1),                         # defect
        reading(3, 1, T0, defect=None),                      # NULL defect fails "defect = 0"
        reading(4, 1, T0, occupancy=-1),                     # unknown occupancy
        reading(5, 1, T0, occupancy=None),                   # NULL fails "> -1"
        reading(6, 1, T0, occupancy=0),                      # 0 is above -1: kept
        # Validation's statuses stay: another run's reading (test_validation tests the
        # range's ends), a rejection, even of a defect reading.
        reading(7, 1, T0 - 3601, status=RS.OUTSIDE_DAYS, defect=1),
        reading(10, 1, T0, defect=1, status=RS.BAD_SPEED),
    ]
    expected = frame(spark,
        [(1, "kept"), (2, "defect"), (3, "defect"), (4, "unknown_occupancy"),
         (5, "unknown_occupancy"), (6, "kept"), (7, "outside_days"), (10, "bad_speed")],
        f"{S.LANE_ID} int, {READING_STATUS} string",
    )
    # athena (no location), and corrected without a configuration: the same statuses.
    for located in (False, True):
        readings = readings_df(spark, rows)
        if located:
            readings = readings.transform(TR.with_location, None)
        statuses = readings.transform(TR.with_reading_status).select(
            S.LANE_ID, label_of(F.col(READING_STATUS)).alias(READING_STATUS)
        )
        assert_df_equality(statuses, expected, ignore_row_order=True, ignore_nullable=True)


def test_reading_status_leaves_a_wrong_way_lanes_reading_out_after_defect_and_occupancy(spark):
    """Step 1a (`corrected`): a TR lane's reading is `wrong_way_lane`, unless an earlier
    rule (defect, then unknown occupancy) or validation already gave it a status."""
    lane_map = _lane_map(spark, [(30, None, None, None), (31, None, None, D1)])  # TR30 beside R31
    rows = [
        reading(30, 1, T0),                                          # wrong_way_lane
        reading(30, 1, T0 + 60, defect=1),                           # defect first
        reading(30, 1, T0 + 120, defect=None),                       # NULL defect: defect
        reading(30, 1, T0 + 180, occupancy=-1),                      # unknown occupancy first
        reading(30, 1, T0 + 240, occupancy=None),
        reading(30, 1, T0 - 3601, status=RS.OUTSIDE_DAYS),           # validation's stay
        reading(30, 1, T0 + 300, status=RS.BAD_SPEED),
        reading(31, 1, T0),                                          # its R lane: kept
        reading(32, 1, T0),                                          # unconfigured: kept
        reading(31, 1, T0 + 60, defect=1),
    ]
    statuses = (
        readings_df(spark, rows)
        .transform(TR.with_location, lane_map)
        .transform(TR.with_reading_status)
        .select(S.LANE_ID, S.OBSERVED_AT, label_of(F.col(READING_STATUS)).alias(READING_STATUS))
    )
    expected = frame(spark,
        [(30, T0, "wrong_way_lane"), (30, T0 + 60, "defect"), (30, T0 + 120, "defect"),
         (30, T0 + 180, "unknown_occupancy"), (30, T0 + 240, "unknown_occupancy"),
         (30, T0 - 3601, "outside_days"), (30, T0 + 300, "bad_speed"), (31, T0, "kept"),
         (32, T0, "kept"), (31, T0 + 60, "defect")],
        f"{S.LANE_ID} int, {S.OBSERVED_AT} bigint, {READING_STATUS} string",
    )
    assert_df_equality(statuses, expected, ignore_row_order=True, ignore_nullable=True)


# --- step 2: duplicates -----------------------------------------------------------------

CONTEXT_START = T0 - 3600


def _statused(spark, rows, semantics=CORRECTED, lane_map=None):
    """Step 1 as the pipeline does it: `corrected` locates each reading first (`lane_map`
    None: no configuration)."""
    readings = readings_df(spark, rows)
    if semantics == CORRECTED:
        readings = readings.transform(TR.with_location, lane_map)
    return readings.transform(TR.with_reading_status)


def _deduplicated(spark, rows, lane_map=None):
    """As the pipeline does in `corrected`: the kept readings, deduplicated."""
    return (
        _statused(spark, rows, CORRECTED, lane_map)
        .transform(TR.filter_kept_readings)
        .transform(TR.deduplicate_readings, CONTEXT_START)
    )


def test_deduplicate_keeps_latest_modification_as_an_instant(spark):
    rows = [
        # 10:00+02:00 is 08:00Z; 09:30+01:00 is 08:30Z, the later one, despite reading earlier.
        reading(1, 1, T0, counts=(1, 0, 0, 0), modified="2020-04-07T10:00:00+02:00"),
        reading(1, 1, T0, counts=(2, 0, 0, 0), modified="2020-04-07T09:30:00+01:00"),
        # NULL modification time is older than any time.
        reading(1, 1, T0, counts=(9, 0, 0, 0), modified=None),
        # Tied on the time: the greater (i2, i3, ...) wins: (3, 1) > (3, 0).
        reading(2, 1, T0, counts=(3, 0, 0, 0), modified="2020-04-07T10:00:00+02:00"),
        reading(2, 1, T0, counts=(3, 1, 0, 0), modified="2020-04-07T10:00:00+02:00"),
        # Another minute of lane 1 is another reading.
        reading(1, 1, T0 + 60, counts=(5, 0, 0, 0), modified=None),
    ]
    result = (
        _deduplicated(spark, rows)
        .select(S.LANE_ID, S.OBSERVED_AT, S.LOCATION_ID, S.intensity(2), S.intensity(3))
    )
    expected = frame(spark,
        [(1, T0, -1, 2, 0), (2, T0, -2, 3, 1), (1, T0 + 60, -1, 5, 0)],
        f"{S.LANE_ID} int, {S.OBSERVED_AT} bigint, {S.LOCATION_ID} int, {S.intensity(2)} int, "
        f"{S.intensity(3)} int",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_deduplicate_is_deterministic_whatever_the_input_order(spark):
    rows = [
        reading(1, 1, T0, counts=(3, 0, 0, 0), speeds=(90, 0, 0, 0), modified="2020-04-07T10:00:00+02:00"),
        reading(1, 1, T0, counts=(3, 0, 0, 0), speeds=(95, 0, 0, 0), modified="2020-04-07T10:00:00+02:00"),
    ]
    first = _deduplicated(spark, rows).collect()
    second = _deduplicated(spark, rows[::-1]).collect()
    assert first == second
    assert first[0][S.arithmetic_speed(2)] == 95  # tied counts: the greater s2 wins


def test_deduplicate_never_lets_a_left_out_reading_beat_a_kept_one(spark):
    rows = [
        reading(1, 1, T0, counts=(1, 0, 0, 0), modified="2020-04-07T08:00:00+00:00"),
        # Later and larger, but defect (or unknown occupancy): only the kept one counts.
        reading(1, 1, T0, counts=(9, 0, 0, 0), modified="2020-04-07T09:00:00+00:00", defect=1),
        reading(1, 1, T0, counts=(8, 0, 0, 0), modified="2020-04-07T09:00:00+00:00", occupancy=-1),
        # Only left out: nothing of lane 2 remains.
        reading(2, 1, T0, counts=(7, 0, 0, 0), defect=1),
    ]
    for ordered in (rows, rows[::-1]):
        result = _deduplicated(spark, ordered).select(
            S.LANE_ID, S.intensity(2), label_of(F.col(READING_STATUS))
        )
        assert sorted(tuple(r) for r in result.collect()) == [(1, 1, "kept")]


def test_deduplicate_keeps_one_reading_of_a_lane_whatever_lve_nr_its_copies_carry(spark):
    """A lane moving to another lve_nr may report for both in one minute: the copies are
    one reading of the lane (its location is the configuration's), the latest wins."""
    rows = [
        reading(957, 18, T0, counts=(1, 0, 0, 0), modified="2020-04-07T08:00:00+00:00"),
        reading(957, 18, T0, counts=(2, 0, 0, 0), modified="2020-04-07T09:00:00+00:00"),
        reading(957, 19, T0, counts=(5, 0, 0, 0), modified="2020-04-07T08:00:00+00:00"),
        # The next minute the copy under lve_nr 19 is the latest.
        reading(957, 18, T0 + 60, counts=(1, 0, 0, 0), modified="2020-04-07T08:00:00+00:00"),
        reading(957, 19, T0 + 60, counts=(3, 0, 0, 0), modified="2020-04-07T10:00:00+00:00"),
    ]
    configured = _lane_map(spark, [(957, None, None, D1)])
    for lane_map, location in ((None, -957), (configured, D1)):
        result = _deduplicated(spark, rows, lane_map).select(
            S.UNIT_ID, S.LANE_ID, S.OBSERVED_AT, S.LOCATION_ID, S.intensity(2))
        assert sorted(tuple(r) for r in result.collect()) == [
            (18, 957, T0, location, 2), (19, 957, T0 + 60, location, 3),
        ]


def test_deduplicate_leaves_a_wrong_way_lanes_copy_no_say(spark):
    """A TR lane's reading is left out in step 1a, before duplicates are resolved: the
    only kept reading of (lane, minute) is the R lane's."""
    lane_map = _lane_map(spark, [(30, None, None, None), (31, None, None, D1)])
    rows = [
        reading(31, 1, T0, counts=(1, 0, 0, 0), modified="2020-04-07T08:00:00+00:00"),
        reading(30, 1, T0, counts=(9, 0, 0, 0), modified="2020-04-07T09:00:00+00:00"),
    ]
    result = _deduplicated(spark, rows, lane_map).select(S.LANE_ID, S.LOCATION_ID, S.intensity(2))
    assert sorted(tuple(r) for r in result.collect()) == [(31, D1, 1)]


# --- step 3: lane speed -------------------------------------------------------------------

LANE_CASES = [
    # counts (i2..i5), speeds (s2..s5), athena, corrected
    ((3, 1, 0, 0), (100, 80, 0, 0), 90.0, 95.0),          # (100+80) DIV 2; (300+80)/4
    ((1, 1, 1, 0), (100, 81, 70, 0), 83.0, 251 / 3),      # 251 DIV 3 = 83 (truncated)
    ((0, 2, 0, 0), (0, 60, 0, 0), 60.0, 60.0),
    ((0, 0, 0, 0), (0, 0, 0, 0), None, None),             # no vehicle: NULL in both
    ((2, 0, 0, 0), (100, 252, 0, 0), 352.0, 100.0),       # athena sums every class's field
]


@pytest.mark.parametrize("semantics, column", [(ATHENA, 2), (CORRECTED, 3)])
def test_lane_speed(spark, semantics, column):
    rows = [reading(n, 1, T0, counts=c[0], speeds=c[1]) for n, c in enumerate(LANE_CASES)]
    result = (
        readings_df(spark, rows)
        .transform(TR.with_lane_speed, semantics)
        .select(S.LANE_ID, TR.LANE_SPEED)
    )
    expected = frame(spark,
        [(n, c[column]) for n, c in enumerate(LANE_CASES)],
        T.StructType([T.StructField(S.LANE_ID, T.IntegerType()), T.StructField(TR.LANE_SPEED, T.DoubleType())]),
    )
    assert_approx_df_equality(result, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


# --- step 4: grouping lanes -----------------------------------------------------------------

GROUP_KEYS = {ATHENA: [S.UNIT_ID, S.OBSERVED_AT, S.LOCATION_ID], CORRECTED: [S.LOCATION_ID, S.OBSERVED_AT]}


def _grouped(spark, rows, semantics, lane_map=None):
    """Steps 1..4 as the pipeline chains them (`athena` keeps duplicates; `corrected`
    locates each reading by `lane_map` first, None: no configuration). `athena`'s rows
    are per (lve_nr, minute), `corrected`'s per (location, minute)."""
    if semantics == ATHENA:
        readings = _statused(spark, rows, ATHENA).transform(TR.filter_kept_readings)
    else:
        readings = _deduplicated(spark, rows, lane_map)
    return (
        readings.transform(TR.with_lane_speed, semantics)
        .transform(TR.group_lanes, semantics)
        .select(*GROUP_KEYS[semantics], S.CURRENT_SPEED, S.MEAN_VEHICLES_PER_LANE,
                *(S.class_total(k) for k in S.COUNTED_CLASSES))
    )


GROUP_ROWS = [
    # minute 0: lanes 11 and 12 of unit 1; vehicles 3 and 4 -> mean 3.5 -> 4
    reading(11, 1, T0, counts=(2, 1, 0, 0), speeds=(100, 70, 0, 0)),
    reading(12, 1, T0, counts=(4, 0, 0, 0), speeds=(80, 0, 0, 0)),
    # minute 1: lane 12 is missing; lane 11 alone, 2 vehicles
    reading(11, 1, T0 + 60, counts=(1, 1, 0, 0), speeds=(90, 60, 0, 0)),
    # minute 2: lane 12 saw nothing (NULL speed, ignored by AVG); vehicles 1 and 0 -> 0.5 -> 1
    reading(11, 1, T0 + 120, counts=(1, 0, 0, 0), speeds=(50, 0, 0, 0)),
    reading(12, 1, T0 + 120, counts=(0, 0, 0, 0), speeds=(0, 0, 0, 0)),
    # unit 2: one lane, nobody passed
    reading(21, 2, T0, counts=(0, 0, 0, 0), speeds=(0, 0, 0, 0)),
]
# corrected: lanes 11 and 12 are one carriageway (D1) of unit 1; lane 13 of the same unit
# is the other carriageway (D2), lane 14 its TR lane; lane 21 is in no configuration.
GROUP_MAP = [(11, None, None, D1), (12, None, None, D1), (13, None, None, D2), (14, None, None, None)]
OTHER_CARRIAGEWAY = [
    reading(13, 1, T0, counts=(1, 0, 0, 0), speeds=(30, 0, 0, 0)),
    # A wrong-way driver seen on lane 13's loops: left out, in neither location.
    reading(14, 1, T0, counts=(5, 0, 0, 0), speeds=(200, 0, 0, 0)),
]


def test_group_lanes_athena_takes_the_largest_lane_present(spark):
    result = _grouped(spark, GROUP_ROWS, ATHENA)
    expected = frame(spark,
        [
            # lane speeds: (100+70) DIV 2 = 85 and 80 -> 82.5
            (1, T0, 12, 82.5, 4, 6, 1, 0, 0),
            # lane 12 missing: the id changes to 11 (the Athena quirk); (90+60) DIV 2 = 75
            (1, T0 + 60, 11, 75.0, 2, 1, 1, 0, 0),
            (1, T0 + 120, 12, 50.0, 1, 1, 0, 0, 0),
            (2, T0, 21, None, 0, 0, 0, 0, 0),
        ],
        _group_schema(ATHENA),
    )
    assert_approx_df_equality(result, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_group_lanes_corrected_groups_by_the_configured_carriageway_not_the_lve_nr(spark):
    result = _grouped(spark, GROUP_ROWS + OTHER_CARRIAGEWAY, CORRECTED, _lane_map(spark, GROUP_MAP))
    expected = frame(spark,
        [
            # weighted: (200+70)/3 = 90 and 80 -> 85 (the lve_nr rule also averaged in
            # lane 13 of the other direction: (90+80+30)/3)
            (D1, T0, 85.0, 4, 6, 1, 0, 0),
            # lane 12 missing: the location is the configuration's all the same; (90+60)/2 = 75
            (D1, T0 + 60, 75.0, 2, 1, 1, 0, 0),
            (D1, T0 + 120, 50.0, 1, 1, 0, 0, 0),
            # the other carriageway of unit 1: lane 13 alone (its TR lane left out)
            (D2, T0, 30.0, 1, 1, 0, 0, 0),
            # lane 21 is in no configuration: a location of its own
            (-21, T0, None, 0, 0, 0, 0, 0),
        ],
        _group_schema(CORRECTED),
    )
    assert_approx_df_equality(result, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_group_lanes_corrected_without_a_configuration_is_one_location_per_lane(spark):
    result = _grouped(spark, GROUP_ROWS, CORRECTED, None)
    expected = frame(spark,
        [
            (-11, T0, 90.0, 3, 2, 1, 0, 0),       # (200+70)/3
            (-12, T0, 80.0, 4, 4, 0, 0, 0),
            (-11, T0 + 60, 75.0, 2, 1, 1, 0, 0),
            (-11, T0 + 120, 50.0, 1, 1, 0, 0, 0),
            (-12, T0 + 120, None, 0, 0, 0, 0, 0),  # nobody passed lane 12
            (-21, T0, None, 0, 0, 0, 0, 0),
        ],
        _group_schema(CORRECTED),
    )
    assert_approx_df_equality(result, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_group_lanes_corrected_follows_a_lane_moved_at_the_snapshots_time(spark):
    """Lane 2 is in D1 until the snapshot of noon puts it in D2: its reading of the
    minute before goes to D1, that of noon itself to D2."""
    lane_map = _lane_map(spark, [(1, None, None, D1), (2, None, NOON, D1), (2, NOON, None, D2),
                                 (3, None, None, D2)])
    speeds = {1: 100, 2: 60, 3: 120}
    rows = [reading(lane, 437, t, speeds=(speed, 0, 0, 0))
            for t in (NOON - 60, NOON) for lane, speed in speeds.items()]
    result = _grouped(spark, rows, CORRECTED, lane_map)
    expected = frame(spark,
        [(D1, NOON - 60, 80.0, 1, 2, 0, 0, 0), (D2, NOON - 60, 120.0, 1, 1, 0, 0, 0),   # (100+60)/2
         (D1, NOON, 100.0, 1, 1, 0, 0, 0), (D2, NOON, 90.0, 1, 2, 0, 0, 0)],            # (120+60)/2
        _group_schema(CORRECTED),
    )
    assert_approx_df_equality(result, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_corrected_location_id_does_not_depend_on_the_lanes_read(spark):
    """The same minutes of a carriageway, read with other lanes beside them (another
    run's days, a lane that only ever arrived unusable, a defect lane, a lane of the
    same cabinet the configuration does not hold): the same id."""
    lane_map = _lane_map(spark, [(11, None, None, D1), (13, None, None, D1), (98, None, None, D1),
                                 (99, None, None, D1)])
    alone = [reading(11, 1, T0), reading(11, 1, T0 + 60)]
    with_others = alone + [reading(99, 1, T0, status=RS.BAD_SPEED),
                           reading(98, 1, T0 + 86400, status=RS.OUTSIDE_DAYS), reading(13, 1, T0 + 60, defect=1),
                           reading(957, 1, T0 + 3600)]
    for configured, location in ((lane_map, D1), (None, -11)):
        ids = {
            tuple((r[S.OBSERVED_AT], r[S.LOCATION_ID]) for r in
                  _grouped(spark, rows, CORRECTED, configured).where(F.col(S.OBSERVED_AT) < T0 + 3600)
                  .orderBy(S.OBSERVED_AT).collect())
            for rows in (alone, with_others)
        }
        assert ids == {((T0, location), (T0 + 60, location))}


def test_corrected_minute_with_only_left_out_readings_writes_nothing(spark):
    lane_map = _lane_map(spark, [(11, None, None, D1), (12, None, None, D1), (13, None, None, D1),
                                 (14, None, None, None)])
    rows = [
        reading(11, 1, T0, counts=(2, 0, 0, 0), speeds=(100, 0, 0, 0)),
        # A defect reading of lane 12 beside the kept one of lane 11: ignored in the values.
        reading(12, 1, T0, counts=(6, 0, 0, 0), speeds=(10, 0, 0, 0), defect=1),
        reading(11, 1, T0 + 60, counts=(4, 0, 0, 0), speeds=(50, 0, 0, 0)),
        # Minute T0+120: only a defect reading of lane 13.
        reading(13, 1, T0 + 120, counts=(1, 0, 0, 0), speeds=(70, 0, 0, 0), defect=1),
        # Minute T0+180: only a wrong-way lane's reading.
        reading(14, 1, T0 + 180, counts=(3, 0, 0, 0), speeds=(90, 0, 0, 0)),
    ]
    result = _grouped(spark, rows, CORRECTED, lane_map)
    expected = frame(spark,
        [(D1, T0, 100.0, 2, 2, 0, 0, 0), (D1, T0 + 60, 50.0, 4, 4, 0, 0, 0)],
        _group_schema(CORRECTED),
    )
    assert_approx_df_equality(result, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


def test_group_lanes_athena_counts_a_duplicate_twice(spark):
    rows = [
        reading(11, 1, T0, counts=(1, 0, 0, 0), speeds=(100, 0, 0, 0)),
        reading(11, 1, T0, counts=(1, 0, 0, 0), speeds=(100, 0, 0, 0)),
        reading(12, 1, T0, counts=(2, 0, 0, 0), speeds=(70, 0, 0, 0)),
    ]
    row = _grouped(spark, rows, ATHENA).collect()[0]
    # AVG(100, 100, 70) = 90; SUM(i2) = 1 + 1 + 2; ROUND(AVG(1, 1, 2)) = ROUND(1.33) = 1
    assert (row[S.CURRENT_SPEED], row[S.class_total(2)], row[S.MEAN_VEHICLES_PER_LANE]) == (90.0, 4, 1)


def test_group_lanes_by_status_keeps_only_what_counts_need_of_readings_not_kept(spark):
    """`athena` groups every reading by its status (`pipeline`); one not kept is only
    counted, by status and the day it replaces, so readings of other lve_nrs and minutes
    fall into one row: their lve_nr NULL, their time their day's first second where
    the status replaces its day (defect, unknown occupancy), else NULL."""
    day1 = T0 + 86400
    rows = [
        reading(11, 1, T0 + 60, counts=(2, 0, 0, 0), speeds=(80, 0, 0, 0)),  # kept
        reading(12, 1, T0 + 60, counts=(4, 0, 0, 0), speeds=(60, 0, 0, 0)),  # kept, the same minute
        reading(21, 2, T0 + 60, counts=(1, 0, 0, 0), defect=1),              # defect, day 0
        reading(22, 3, T0 + 7200, counts=(3, 0, 0, 0), defect=1),            # defect, day 0 again
        reading(23, 3, day1 + 5, occupancy=-1),                              # unknown occupancy, day 1
        reading(24, 4, T0 + 120, status=RS.BAD_SPEED),                       # rejected
        reading(25, 5, T0 + 3 * 86400, status=RS.OUTSIDE_DAYS),              # another run's
        reading(26, 5, None, status=RS.BAD_OBSERVED_AT),                     # rejected, no time
    ]
    grouped = (readings_df(spark, rows).transform(TR.with_reading_status)
               .transform(TR.with_lane_speed, ATHENA).transform(TR.group_lanes, ATHENA, by_status=True)
               .select(S.UNIT_ID, S.OBSERVED_AT, READING_STATUS, TR.READINGS, S.LOCATION_ID,
                       S.CURRENT_SPEED, S.class_total(2)))
    schema = ("lve_nr int, tijd_waarneming bigint, reading_status int, _readings bigint, "
              "uniqueid int, currentspeed double, trafficintensityclass2 int")
    expected = frame(spark, [
        (1, T0 + 60, int(RS.KEPT), 2, 12, 70.0, 6),         # AVG(80, 60); 2 + 4
        (None, T0, int(RS.DEFECT), 2, 22, 100.0, 4),        # lve_nrs 2 and 3, minutes apart
        (None, day1, int(RS.UNKNOWN_OCCUPANCY), 1, 23, 100.0, 1),
        (None, None, int(RS.BAD_SPEED), 1, 24, 100.0, 1),
        (None, None, int(RS.OUTSIDE_DAYS), 1, 25, 100.0, 1),
        (None, None, int(RS.BAD_OBSERVED_AT), 1, 26, 100.0, 1),
    ], schema)
    assert_df_equality(grouped, expected, ignore_row_order=True, ignore_nullable=True)


def _group_schema(semantics):
    keys = {
        ATHENA: [T.StructField(S.UNIT_ID, T.IntegerType()), T.StructField(S.OBSERVED_AT, T.LongType()),
                 T.StructField(S.LOCATION_ID, T.IntegerType())],
        CORRECTED: [T.StructField(S.LOCATION_ID, T.IntegerType()), T.StructField(S.OBSERVED_AT, T.LongType())],
    }[semantics]
    return T.StructType(
        keys
        + [T.StructField(S.CURRENT_SPEED, T.DoubleType()), T.StructField(S.MEAN_VEHICLES_PER_LANE, T.IntegerType())]
        + [T.StructField(S.class_total(k), T.IntegerType()) for k in S.COUNTED_CLASSES]
    )


@pytest.mark.parametrize("semantics, key, locations", [
    (ATHENA, S.UNIT_ID, (1, 2, 3)),
    (CORRECTED, S.LOCATION_ID, (D1, D2, D3)),
])
def test_intensity_mean_rounds_half_away_from_zero(spark, semantics, key, locations):
    lane_map = _lane_map(spark, [(lane, None, None, location) for lanes, location in
                                 (((11, 12), D1), ((21, 22), D2), ((31, 32, 33), D3)) for lane in lanes])
    rows = [
        reading(11, 1, T0, counts=(1, 0, 0, 0)), reading(12, 1, T0, counts=(2, 0, 0, 0)),      # 1.5 -> 2
        reading(21, 2, T0, counts=(2, 0, 0, 0)), reading(22, 2, T0, counts=(3, 0, 0, 0)),      # 2.5 -> 3
        reading(31, 3, T0, counts=(1, 0, 0, 0)), reading(32, 3, T0, counts=(1, 1, 0, 0)),
        reading(33, 3, T0, counts=(1, 0, 0, 0)),                                                # 1.33 -> 1
    ]
    result = _grouped(spark, rows, semantics, lane_map if semantics == CORRECTED else None).select(
        key, S.MEAN_VEHICLES_PER_LANE)
    expected = frame(spark,
        list(zip(locations, (2, 3, 1))), f"{key} int, {S.MEAN_VEHICLES_PER_LANE} int"
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)



def test_rounded_quotient_is_sql_round_of_whole_numbers_without_a_double(spark):
    # (total, count, ROUND(total / count) half away from zero, worked out by hand)
    cases = [(5, 2, 3), (-5, 2, -3), (3, 2, 2), (-3, 2, -2), (4, 3, 1), (5, 3, 2), (-5, 3, -2),
             (0, 4, 0), (7, 0, None), (None, 2, None), (3, None, None),
             (3_000_000_001, 2, 1_500_000_001)]
    df = frame(spark, cases, "total long, count long, expected int")
    result = df.select("total", "count", TR._rounded_quotient("total", "count").alias("expected"))
    assert_df_equality(result, df, ignore_row_order=True, ignore_nullable=True)

# --- steps 5..9: series -----------------------------------------------------------------

SERIES_SCHEMA = T.StructType(
    [T.StructField(S.UNIT_ID, T.IntegerType()), T.StructField(S.LOCATION_ID, T.IntegerType()),
     T.StructField(S.OBSERVED_AT, T.LongType()), T.StructField(S.CURRENT_SPEED, T.DoubleType())]
)
# One location; minute 3 (T0+180) is missing, T0+1500 comes after a long gap.
SERIES = [(1, 12, T0 + t, v) for t, v in
          [(0, 10.0), (60, 20.0), (120, 30.0), (240, 40.0), (300, 50.0), (1500, 60.0)]]
# A second location whose speeds must never leak into the first one's windows.
OTHER = [(2, 21, T0 + 60, 1000.0)]


def _series(spark, rows=SERIES + OTHER):
    return frame(spark, rows, SERIES_SCHEMA)


def _values(df, column):
    return [r[column] for r in df.where(F.col(S.UNIT_ID) == 1).orderBy(S.OBSERVED_AT).collect()]


def test_presorted_for_series_orders_each_tasks_rows_as_the_series_and_keeps_them(spark):
    """`athena`'s minute rows leave the grouping sorted by (`lve_nr`, minute id, time)
    within a task; edge values of each field of the key included."""
    biggest = (1 << 19) - 1, (1 << 16) - 1, (1 << 28) - 1  # lve_nr, uniqueid, seconds
    ordered = [
        (0, 0, CONTEXT_START, 1.0),                       # every field at its lowest
        (0, 5, CONTEXT_START + 60, None),                 # a NULL speed is a row like any
        (1, 2, CONTEXT_START + biggest[2], 2.0),          # the latest second of the key
        (1, 3, CONTEXT_START, 3.0),                       # a larger id after it, however early
        (2, 1, T0, 4.0),
        (2, 1, T0 + 60, 5.0),
        (2, biggest[1], T0, 6.0),
        (biggest[0], 0, T0, 7.0),
    ]
    scrambled = [ordered[i] for i in (5, 2, 7, 0, 4, 1, 6, 3)]
    rows = frame(spark, scrambled, SERIES_SCHEMA).coalesce(1)
    result = rows.transform(TR.presorted_for_series, CONTEXT_START)
    assert result.columns == rows.columns
    assert [tuple(r) for r in result.collect()] == ordered
    # Outside the key's ranges a row only sorts less well: it is still there, once, and
    # nothing overflows, even with ANSI arithmetic (which fails on an overflow).
    beyond = [(1 << 19, 1, T0, 8.0), (1, 1 << 16, T0, 9.0), (-3, 1, T0, 10.0),
              ((1 << 31) - 1, 1, T0, 11.0)]
    ansi = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", "true")  # before the plan: its arithmetic takes it then
    try:
        result = frame(spark, scrambled + beyond, SERIES_SCHEMA).coalesce(1).transform(
            TR.presorted_for_series, CONTEXT_START)
        assert Counter(tuple(r) for r in result.collect()) == Counter(scrambled + beyond)
    finally:
        spark.conf.set("spark.sql.ansi.enabled", ansi)


def test_previous_speed_athena_takes_the_previous_row(spark):
    result = _series(spark).transform(TR.with_previous_speed, ATHENA)
    assert _values(result, S.PREVIOUS_SPEED) == [None, 10.0, 20.0, 30.0, 40.0, 50.0]


def test_previous_speed_corrected_needs_a_row_at_most_60_seconds_earlier(spark):
    rows = SERIES + [(1, 12, T0 + 330, 55.0)]  # 30 s after T0+300
    result = _series(spark, rows).transform(TR.with_previous_speed, CORRECTED)
    # T0+240 follows a 120 s gap and T0+1500 a long one: NULL
    assert _values(result, S.PREVIOUS_SPEED) == [None, 10.0, 20.0, None, 40.0, 50.0, None]


def test_previous_speed_of_a_row_after_a_null_speed_is_null(spark):
    rows = [(1, 12, T0, None), (1, 12, T0 + 60, 30.0)]
    for semantics in (ATHENA, CORRECTED):
        result = _series(spark, rows).transform(TR.with_previous_speed, semantics)
        assert _values(result, S.PREVIOUS_SPEED) == [None, None]


def test_rolling_speeds_athena_counts_rows(spark):
    result = _series(spark).transform(TR.with_rolling_speeds, ATHENA)
    # avg3 = mean of this and the 2 rows before, whatever their times
    assert _values(result, S.AVG_SPEED_3) == pytest.approx(
        [10.0, 15.0, 20.0, 30.0, 40.0, 50.0])  # (20+30+40)/3, (30+40+50)/3, (40+50+60)/3
    # avg20 = mean of up to 20 rows: all six at T0+1500 = 210/6
    assert _values(result, S.AVG_SPEED_20) == pytest.approx([10.0, 15.0, 20.0, 25.0, 30.0, 35.0])


def test_rolling_speeds_corrected_counts_time(spark):
    result = _series(spark).transform(TR.with_rolling_speeds, CORRECTED)
    # [t-120, t]: at T0+240 only T0+120 and T0+240 -> 35; at T0+300: 40 and 50 -> 45
    assert _values(result, S.AVG_SPEED_3) == pytest.approx([10.0, 15.0, 20.0, 35.0, 45.0, 60.0])
    # [t-1140, t]: at T0+1500 the window starts at T0+360, so only itself
    assert _values(result, S.AVG_SPEED_20) == pytest.approx([10.0, 15.0, 20.0, 25.0, 30.0, 60.0])


def test_rolling_speeds_ignore_nulls_and_are_null_when_all_are(spark):
    rows = [(1, 12, T0, None), (1, 12, T0 + 60, 40.0), (1, 12, T0 + 600, None)]
    for semantics in (ATHENA, CORRECTED):
        result = _series(spark, rows).transform(TR.with_rolling_speeds, semantics)
        avg3 = _values(result, S.AVG_SPEED_3)
        assert avg3[:2] == [None, 40.0]
        # athena: rows T0+60 and T0+600 -> 40; corrected: [T0+480, T0+600] holds only NULL
        assert avg3[2] == (40.0 if semantics == ATHENA else None)


def test_corrected_series_are_per_location_whatever_their_lve_nr(spark):
    """`corrected`'s rows carry no lve_nr: a series is one location (`uniqueid`), so the
    two carriageways of one cabinet, and an unconfigured lane beside them, never share
    a window."""
    schema = T.StructType([T.StructField(S.LOCATION_ID, T.IntegerType()),
                           T.StructField(S.OBSERVED_AT, T.LongType()),
                           T.StructField(S.CURRENT_SPEED, T.DoubleType())])
    rows = frame(spark,
        [(D1, T0, 10.0), (D2, T0, 100.0), (D1, T0 + 60, 20.0), (D2, T0 + 60, 110.0),
         (-957, T0 + 60, 1000.0), (D2, T0 + 120, 90.0), (D1, T0 + 180, 40.0)],
        schema,
    )
    result = rows.transform(TR.with_previous_speed, CORRECTED).transform(TR.with_rolling_speeds, CORRECTED)
    expected = frame(spark,
        [
            # previous at most 60 s earlier; avg3 over [t-120, t]; avg20 over [t-1140, t]
            (D1, T0, 10.0, None, 10.0, 10.0), (D1, T0 + 60, 20.0, 10.0, 15.0, 15.0),
            (D1, T0 + 180, 40.0, None, 30.0, 70 / 3),  # T0+60 and T0+180 in [T0+60, T0+180]
            (D2, T0, 100.0, None, 100.0, 100.0), (D2, T0 + 60, 110.0, 100.0, 105.0, 105.0),
            (D2, T0 + 120, 90.0, 110.0, 100.0, 100.0),
            (-957, T0 + 60, 1000.0, None, 1000.0, 1000.0),
        ],
        T.StructType(schema.fields + [T.StructField(c, T.DoubleType())
                                      for c in (S.PREVIOUS_SPEED, S.AVG_SPEED_3, S.AVG_SPEED_20)]),
    )
    assert_approx_df_equality(result, expected, 1e-12, ignore_row_order=True, ignore_nullable=True)


# --- step 7 and 10: indicators ----------------------------------------------------------


def test_speed_diff_indicator(spark):
    schema = T.StructType([T.StructField("case", T.StringType()),
                           T.StructField(S.CURRENT_SPEED, T.DoubleType()),
                           T.StructField(S.PREVIOUS_SPEED, T.DoubleType())])
    rows = frame(spark,
        [("+20", 70.0, 50.0), ("-20", 50.0, 70.0), ("+19", 69.0, 50.0), ("-19.5", 50.5, 70.0),
         ("+20 fractional", 70.5, 50.5), ("no previous", 50.0, None), ("no current", None, 50.0)],
        schema,
    )
    result = rows.transform(TR.with_speed_diff_indicator).select("case", S.SPEED_DIFF)
    expected = frame(spark,
        [("+20", 1), ("-20", -1), ("+19", 0), ("-19.5", 0), ("+20 fractional", 1),
         ("no previous", 0), ("no current", 0)],
        T.StructType([T.StructField("case", T.StringType()), T.StructField(S.SPEED_DIFF, T.IntegerType())]),
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


JAM_BANDS = [
    # average, athena, corrected
    (0.0, 1, 1),
    (40.0, 1, 1),
    (40.5, -1, 0),   # in neither BETWEEN band of the Athena query
    (41.0, 0, 0),
    (250.0, 0, 0),
    (250.5, -1, -1),
    (-0.5, -1, -1),
    (None, -1, -1),
]


@pytest.mark.parametrize("semantics, column", [(ATHENA, 1), (CORRECTED, 2)])
def test_jam_indicators(spark, semantics, column):
    schema = T.StructType([T.StructField(S.AVG_SPEED_3, T.DoubleType()),
                           T.StructField(S.AVG_SPEED_20, T.DoubleType())])
    # The long indicator is read from the 20-minute average: feed it a fixed 30 (jam).
    rows = frame(spark, [(band[0], 30.0) for band in JAM_BANDS], schema)
    result = rows.transform(TR.with_jam_indicators, semantics).select(S.AVG_SPEED_3, S.JAM, S.JAM_LONG)
    expected = frame(spark,
        [(band[0], band[column], 1) for band in JAM_BANDS],
        T.StructType([T.StructField(S.AVG_SPEED_3, T.DoubleType()), T.StructField(S.JAM, T.IntegerType()),
                      T.StructField(S.JAM_LONG, T.IntegerType())]),
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


# --- step 11: partitions ----------------------------------------------------------------


def test_event_hour_partitions_around_midnight_utc(spark):
    moments = [
        (1586217540, (2020, 4, 6, 23)),   # 2020-04-06 23:59:00Z (01:59 in Brussels)
        (1586217600, (2020, 4, 7, 0)),    # 2020-04-07 00:00:00Z
        (1609459199, (2020, 12, 31, 23)), # the last second of 2020
        (1609459200, (2021, 1, 1, 0)),
    ]
    rows = frame(spark, [(m,) for m, _ in moments], f"{S.RECORD_TIMESTAMP} bigint")
    result = rows.transform(TR.with_event_hour_partitions)
    expected = frame(spark,
        [(m, *parts) for m, parts in moments],
        T.StructType([T.StructField(S.RECORD_TIMESTAMP, T.LongType())]
                     + [T.StructField(n, T.LongType()) for n in S.EVENT_PARTITIONS]),
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_filter_output_rows_keeps_the_days_and_the_chosen_locations(spark):
    rows = frame(spark,
        [(12, T0 - 60), (12, T0), (12, T0 + 86399), (12, T0 + 86400), (21, T0)],
        f"{S.LOCATION_ID} bigint, {S.OBSERVED_AT} bigint",
    )
    everything = rows.transform(TR.filter_output_rows, T0, T0 + 86400, None)
    assert sorted(tuple(r) for r in everything.collect()) == [(12, T0), (12, T0 + 86399), (21, T0)]
    chosen = rows.transform(TR.filter_output_rows, T0, T0 + 86400, (21, 957))
    assert [tuple(r) for r in chosen.collect()] == [(21, T0)]


def test_to_curated_has_the_curated_schema(spark):
    rows = _series(spark).select(
        S.LOCATION_ID, S.OBSERVED_AT, S.CURRENT_SPEED,
        *(F.lit(None).alias(c) for c in S.CURATED_COLUMNS
          if c not in (S.LOCATION_ID, S.RECORD_TIMESTAMP, S.CURRENT_SPEED)),
    )
    curated = rows.transform(TR.to_curated)
    assert [(f.name, f.dataType) for f in curated.schema.fields] == [
        (f.name, f.dataType) for f in S.CURATED_TABLE_SCHEMA.fields
    ]


# --- the report's most jammed locations ----------------------------------------------------


def test_top_jam_locations_counts_jam_minutes_most_first_then_by_id(spark):
    rows = frame(spark,
        [(7, 1), (7, 1), (7, 0), (3, 1), (3, 1), (5, 1), (5, -1), (9, None), (2, 1), (2, 1)],
        f"{S.LOCATION_ID} int, {S.JAM} int",
    )
    # 7, 3 and 2 have two jam minutes each (ties: by id), 5 has one; 9 none (NULL is no jam).
    top = TR.top_jam_locations(rows, 3)
    expected = frame(spark, [(2, 2), (3, 2), (7, 2)], f"{S.LOCATION_ID} int, jam_minutes long")
    assert_df_equality(top, expected, ignore_nullable=True)
    assert [tuple(r) for r in TR.top_jam_locations(rows, 10).collect()] == [(2, 2), (3, 2), (7, 2), (5, 1)]

"""traffic_glue.store.sources: the raw landing, read one processing-hour folder at a time.

The run of every test here is 2020-04-07 with an hour of lookback and 24 late hours:
it reads the processing-hour folders [2020-04-06 23:00, 2020-04-09 00:00) and judges
the readings measured in [T0 - 3600, T0 + 86400). Files land with `tests/factories.py`,
90 s after their readings (the default `arrival_delay`).
"""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import types as T

from tests.factories import DAY, RAW_ARROW_SCHEMA, T0, frame, hour_folder, land_json, land_parquet, raw_reading
from traffic_glue.compute import schema as S
from traffic_glue.compute.modes import ATHENA, CORRECTED
from traffic_glue.compute.run_range import RunRange
from traffic_glue.compute.validation import CORRUPT_RECORD
from traffic_glue.store import sources
from traffic_glue.store.sources import JSON_LINES, CSV_TEXT, RawFile, RawInput, SourceError

SPAN = RunRange.for_days(DAY, DAY, 60, 24)
FIRST, AFTER = SPAN.folder_hours  # 2020-04-06 23:00, 2020-04-09 00:00
CONTEXT_START, CONTEXT_END = T0 - 3600, T0 + 86400


def _schema_without(*names: str, **types: pa.DataType) -> pa.Schema:
    """The raw Arrow schema less `names`, with `types` changed (and added where new)."""
    fields = [pa.field(f.name, types.pop(f.name, f.type)) for f in RAW_ARROW_SCHEMA if f.name not in names]
    return pa.schema(fields + [pa.field(name, kind) for name, kind in types.items()])


def _touch(path, data: bytes = b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _inspected(spark, root, semantics=ATHENA, skip_corrupt=False) -> RawInput:
    return sources.inspect_parquet(
        spark, sources.list_raw_files(spark, str(root), FIRST, AFTER), semantics, skip_corrupt)


# --- pure: folders, descriptions, formats ---------------------------------------------


def test_hour_folder_globs_one_per_processing_day_padded_or_not():
    assert SPAN.folder_hours == (dt.datetime(2020, 4, 6, 23), dt.datetime(2020, 4, 9))
    assert sources.hour_folder_globs("s3://b/raw/", FIRST, AFTER) == [
        "s3://b/raw/year=2020/month={04,4}/day={06,6}/hour=*",
        "s3://b/raw/year=2020/month={04,4}/day={07,7}/hour=*",
        "s3://b/raw/year=2020/month={04,4}/day={08,8}/hour=*",  # not the 9th: `after` is open
    ]


def test_hour_folder_globs_across_a_year_and_for_no_hours():
    assert sources.hour_folder_globs("/raw", dt.datetime(2019, 12, 31, 22), dt.datetime(2020, 1, 1, 1)) == [
        "/raw/year=2019/month={12,12}/day={31,31}/hour=*",
        "/raw/year=2020/month={01,1}/day={01,1}/hour=*",
    ]
    assert sources.hour_folder_globs("/raw", dt.datetime(2020, 4, 7), dt.datetime(2020, 4, 7)) == []


@pytest.mark.parametrize("path, hour", [
    ("s3://b/raw/year=2020/month=04/day=07/hour=09", dt.datetime(2020, 4, 7, 9)),
    ("file:/raw/year=2020/month=4/day=7/hour=9/", dt.datetime(2020, 4, 7, 9)),
    ("s3://b/raw/year=2020/month=04/day=07/hour=23/part-0.parquet", dt.datetime(2020, 4, 7, 23)),
    # A root that itself holds such names: the hour folder's own, the last ones, count.
    ("s3://b/day=1/hour=3/raw/year=2020/month=04/day=07/hour=09", dt.datetime(2020, 4, 7, 9)),
    ("s3://b/raw/year=2020/month=04/day=07", None),
    ("s3://b/raw/year=2020/month=04/day=07/hour=xx", None),
    ("", None),
])
def test_folder_hour_reads_the_four_keys(path, hour):
    assert sources.folder_hour(path) == hour


@pytest.mark.parametrize("path", ["s3://b/raw/year=2020/month=04/day=07/hour=24",
                                  "s3://b/raw/year=2020/month=13/day=07/hour=01"])
def test_folder_hour_of_a_name_that_is_no_hour_of_the_calendar_is_none(path):
    assert sources.folder_hour(path) is None


def test_describe_files_counts_folders_files_and_the_footers_readings():
    assert sources.describe_files([]) == "0 folders, 0 files"
    assert sources.describe_files([RawFile("s3://b/h=1/a", 10, rows=1)]) == "1 folder, 1 file, 1 readings"
    files = [RawFile("s3://b/h=1/a", 10, rows=1_000), RawFile("s3://b/h=1/b", 10, rows=2_000),
             RawFile("s3://b/h=2/a", 10, rows=5)]
    assert sources.describe_files(files) == "2 folders, 3 files, 3,005 readings"
    empty_footer = [RawFile("s3://b/h=1/a", 10, rows=0)]
    assert sources.describe_files(empty_footer) == "1 folder, 1 file, 0 readings"


def test_describe_files_without_every_footer_leaves_the_readings_out():
    files = [RawFile("s3://b/h=1/a.json", 10), RawFile("s3://b/h=1/b", 10, rows=7)]
    assert sources.describe_files(files) == "1 folder, 2 files"


def test_readings_in_files_sums_the_footers_or_is_unknown():
    assert RawInput(files=[RawFile("a", 1, rows=2), RawFile("b", 1, rows=0)]).readings_in_files == 2
    assert RawInput(files=[RawFile("a", 1, rows=2), RawFile("b.json", 1)]).readings_in_files is None
    assert RawInput(files=[]).readings_in_files == 0


def test_raw_file_columns_from_its_schema_or_none():
    schema = T.StructType([T.StructField(S.LANE_ID, T.IntegerType()), T.StructField("extra", T.StringType())])
    assert RawFile("a", 1, 1, schema.json()).columns == {S.LANE_ID, "extra"}
    assert RawFile("a", 1).columns == set()


@pytest.mark.parametrize("start, looks_like", [
    (b"", None),
    (b"PAR1\x15\x04\x15\x90", None),
    (b'{"unieke_id": 11, "lve_nr": 18}\n{"unieke_id"', JSON_LINES),
    ("\ufeff \r\n[{\"unieke_id\": 11}]".encode(), JSON_LINES),  # a BOM, blanks, an array
    (b"unieke_id,lve_nr,tijd_waarneming\n11,1,1586217600\n", CSV_TEXT),
    (b"unieke_id;lve_nr\n11;1\n", CSV_TEXT),
    (b"unieke_id\tlve_nr\n11\t1\n", None),  # tab-separated: not printable, not recognised
    (b"just some notes\n", None),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", None),  # a JPEG: not UTF-8
])
def test_text_format_tells_json_lines_and_csv_from_the_first_bytes(start, looks_like):
    assert sources.text_format(start) == looks_like


# First lines whose 64th byte (all `FooterReader.read` hands to `text_format`) is the first of
# the two bytes of "é".
CUT_INSIDE_A_CHARACTER = [
    ('{"beschrijvende_id": "R0 binnenring Brussel, tunnel Leopold,Café Bruxelles"}\n', JSON_LINES),
    ("naam,plaats\nR0 binnenring,Tunnel Leopold II,Koekelberg,  Anderlécht\n", CSV_TEXT),
]


def test_the_cut_lines_do_end_their_64_bytes_inside_a_character():
    for line, _ in CUT_INSIDE_A_CHARACTER:
        start = line.encode("utf-8")[:64]
        assert start[-1:] == b"\xc3" and start[:-1].isascii()


@pytest.mark.parametrize("line, looks_like", CUT_INSIDE_A_CHARACTER)
def test_text_format_of_a_first_64_bytes_ending_inside_a_character(line, looks_like):
    assert sources.text_format(line.encode("utf-8")[:64]) == looks_like


def test_essential_columns_add_the_modification_time_in_corrected_only():
    assert sources.essential_columns(ATHENA) == S.ESSENTIAL_COLUMNS
    assert sources.essential_columns(CORRECTED) == S.ESSENTIAL_COLUMNS + (S.MODIFIED_AT,)
    assert S.MODIFIED_AT not in S.ESSENTIAL_COLUMNS


# --- listing the processing-hour folders -------------------------------------------------


def test_list_raw_files_reads_the_runs_hour_folders_only(spark, tmp_path):
    raw = tmp_path / "raw"
    day_6, day_7, day_8 = (raw / "year=2020" / "month=04" / f"day=0{d}" for d in (6, 7, 8))
    _touch(day_6 / "hour=22" / "early.parquet")  # before the first folder hour
    _touch(day_6 / "hour=23" / "a.parquet", b"abc")
    _touch(day_7 / "hour=00" / "a.parquet", b"abcd")
    _touch(day_7 / "hour=00" / "b.parquet", b"ab")
    _touch(day_7 / "hour=00" / "_SUCCESS", b"")
    _touch(day_7 / "hour=00" / ".a.parquet.swp")
    (day_7 / "hour=06").mkdir()  # an empty hour
    _touch(day_7 / "hour=07" / "nested" / "f.parquet")  # files of a sub-folder are not listed
    _touch(day_7 / "notes" / "n.parquet")  # no hour folder
    _touch(raw / "year=2020" / "month=4" / "day=7" / "hour=5" / "c.json", b"{}\n")  # not padded
    _touch(day_8 / "hour=23" / "d.parquet", b"a")
    _touch(raw / "year=2020" / "month=04" / "day=09" / "hour=00" / "late.parquet")  # the first hour after

    files = sources.list_raw_files(spark, str(raw), FIRST, AFTER)

    assert files == [
        RawFile(f"file:{day_6}/hour=23/a.parquet", 3),
        RawFile(f"file:{day_7}/hour=00/a.parquet", 4),
        RawFile(f"file:{day_7}/hour=00/b.parquet", 2),
        RawFile(f"file:{day_8}/hour=23/d.parquet", 1),
        RawFile(f"file:{raw}/year=2020/month=4/day=7/hour=5/c.json", 3),
    ]
    assert sources.describe_files(files) == "4 folders, 5 files"


def test_list_raw_files_of_a_missing_root_names_the_argument(spark, tmp_path):
    with pytest.raises(SourceError, match=f"^--source_path {tmp_path}/raw does not exist$"):
        sources.list_raw_files(spark, str(tmp_path / "raw"), FIRST, AFTER)


def test_list_raw_files_of_a_root_without_hour_folders_is_empty(spark, tmp_path):
    _touch(tmp_path / "raw" / "year=2020" / "month=04" / "day=07" / "stray.parquet")
    assert sources.list_raw_files(spark, str(tmp_path / "raw"), FIRST, AFTER) == []


def test_list_raw_files_leaves_out_a_folder_that_names_no_hour(spark, tmp_path):
    day_7 = tmp_path / "raw" / "year=2020" / "month=04" / "day=07"
    _touch(day_7 / "hour=12" / "a.parquet")
    _touch(day_7 / "hour=24" / "a.parquet")
    files = sources.list_raw_files(spark, str(tmp_path / "raw"), FIRST, AFTER)
    assert [f.path for f in files] == [f"file:{day_7}/hour=12/a.parquet"]


# --- Parquet footers ----------------------------------------------------------------------


def test_inspect_parquet_reads_every_footers_rows_and_schema(spark, tmp_path):
    raw = tmp_path / "raw"
    # Arrivals at T0 + 150 and T0 + 210 (hour 00) and T0 + 3690 (hour 01).
    land_parquet(raw, [raw_reading(11, 1, T0 + 60), raw_reading(12, 1, T0 + 120), raw_reading(11, 1, T0 + 3600)])
    pq.write_table(pa.Table.from_pylist([], schema=RAW_ARROW_SCHEMA), hour_folder(raw, T0) / "part-1.parquet")

    raw_input = _inspected(spark, raw)

    assert [(f.path.rsplit("/", 2)[-2:], f.rows) for f in raw_input.files] == [
        (["hour=00", "part-0.parquet"], 2), (["hour=00", "part-1.parquet"], 0), (["hour=01", "part-0.parquet"], 1),
    ]
    assert raw_input.skipped == [] and raw_input.readings is None
    assert raw_input.readings_in_files == 3
    assert sources.describe_files(raw_input.files) == "2 folders, 3 files, 3 readings"
    fields = {f.name: f.dataType for f in T.StructType.fromJson(json.loads(raw_input.files[0].schema)).fields}
    assert fields == {f.name: f.dataType for f in S.RAW_SCHEMA.fields}


def test_inspect_parquet_of_no_files_is_empty(spark):
    assert sources.inspect_parquet(spark, [], CORRECTED, False) == RawInput(files=[], skipped=[])


def test_inspect_parquet_skips_corrupt_files_when_told_and_else_stops_at_the_first(spark, tmp_path):
    raw = tmp_path / "raw"
    [good] = land_parquet(raw, [raw_reading(11, 1, T0 + 60)], name="b.parquet")
    (good.parent / "a-cut.parquet").write_bytes(good.read_bytes()[:100])
    (good.parent / "c-empty.parquet").write_bytes(b"")
    cut, empty = f"file:{good.parent}/a-cut.parquet", f"file:{good.parent}/c-empty.parquet"

    raw_input = _inspected(spark, raw, skip_corrupt=True)

    assert [(f.path, f.rows) for f in raw_input.files] == [(f"file:{good}", 1)]
    assert [s["file"] for s in raw_input.skipped] == [cut, empty]
    assert raw_input.skipped[0]["reason"].startswith(f"raw file {cut} is not a readable Parquet file: ")
    assert raw_input.skipped[1]["reason"].startswith(f"raw file {empty} is not a readable Parquet file: ")
    with pytest.raises(SourceError) as stopped:
        _inspected(spark, raw, skip_corrupt=False)
    assert str(stopped.value).startswith(f"raw file {cut} is not a readable Parquet file: ")
    assert str(stopped.value).endswith(" (rerun with --corrupt_files skip to leave such files out)")


def test_a_file_without_an_essential_column_names_each_one_the_mode_needs(spark, tmp_path):
    raw = tmp_path / "raw"
    [path] = land_parquet(raw, [raw_reading(11, 1, T0 + 60)], schema=_schema_without(S.OCCUPANCY, S.MODIFIED_AT))
    needs = "which the computation needs"
    with pytest.raises(SourceError, match=(f"^raw file file:{path} has no column {S.OCCUPANCY}, {needs} "
                                           rf"\(missing: {S.OCCUPANCY}\)$")):
        _inspected(spark, raw, ATHENA)
    with pytest.raises(SourceError, match=rf"\(missing: {S.OCCUPANCY}, {S.MODIFIED_AT}\)$"):
        _inspected(spark, raw, CORRECTED)


def test_a_file_without_the_modification_time_is_read_in_athena_only(spark, tmp_path):
    raw = tmp_path / "raw"
    [path] = land_parquet(raw, [raw_reading(11, 1, T0 + 60)], schema=_schema_without(S.MODIFIED_AT))
    assert [f.rows for f in _inspected(spark, raw, ATHENA).files] == [1]
    with pytest.raises(SourceError, match=f"^raw file file:{path} has no column {S.MODIFIED_AT},"):
        _inspected(spark, raw, CORRECTED)


# --- reading the readings -------------------------------------------------------------------


def test_files_that_disagree_on_a_columns_type_read_it_as_text_and_fill_what_one_lacks(spark, tmp_path):
    raw = tmp_path / "raw"
    land_parquet(raw, [raw_reading(11, 18, T0 + 60, defect=None)], name="a.parquet")
    other = raw_reading(12, 19, T0 + 60)
    other.update({S.UNIT_ID: "x19", "extra": 7})
    land_parquet(raw, [other], name="b.parquet", schema=_schema_without(
        S.LANE_NAME, **{S.UNIT_ID: pa.string(), S.OBSERVED_AT: pa.int32(), "extra": pa.int32()}))

    readings = sources.read_parquet_readings(spark, _inspected(spark, raw))

    assert readings.columns == list(S.RAW_COLUMNS)  # `extra` is no raw column
    types = dict(readings.dtypes)
    # int and string, bigint and int: text both, not the type Spark's union would widen to.
    assert (types[S.UNIT_ID], types[S.OBSERVED_AT], types[S.LANE_ID]) == ("string", "string", "int")
    rows = sorted(readings.select(S.LANE_ID, S.UNIT_ID, S.LANE_NAME, S.DEFECT, S.OBSERVED_AT).collect())
    assert [tuple(r) for r in rows] == [(11, "18", "H018L11", None, str(T0 + 60)),
                                        (12, "x19", None, 0, str(T0 + 60))]


def test_files_of_one_schema_keep_their_types_and_only_their_columns(spark, tmp_path):
    raw = tmp_path / "raw"
    land_parquet(raw, [raw_reading(11, 18, T0 + 60), raw_reading(12, 18, T0 + 3600)],
                 schema=_schema_without(S.LANE_NAME))
    readings = sources.read_parquet_readings(spark, _inspected(spark, raw))
    assert readings.columns == [c for c in S.RAW_COLUMNS if c != S.LANE_NAME]
    assert dict(readings.dtypes)[S.UNIT_ID] == "int"


def test_json_lines_read_every_value_as_text_and_keep_malformed_lines_whole(spark, tmp_path):
    array_line = '[{"unieke_id": 12}, {"unieke_id": 13}]'
    cut_line = '{"unieke_id": 14,'
    path = tmp_path / "part-0.json"
    path.write_bytes(
        b'{"unieke_id": 11, "lve_nr": "18", "tijd_waarneming": 1586217660, "defect": null, '
        b'"tijd_laatst_gewijzigd": "2020-04-07T02:01:30+02:00", "onbekend": 1}\r\n'
        b"\n"
        b"   \n"
        + array_line.encode() + b"\n"
        + cut_line.encode() + b"\n"
        + b'{"verkeersintensiteit_klasse2": {"a": 1}, "lve_nr": 1.50}\n'
        + b"12\n"
        + b"{}\n"
    )

    readings = sources.read_json_readings(spark, [RawFile(str(path), path.stat().st_size)])

    assert readings.columns == [*S.RAW_COLUMNS, CORRUPT_RECORD]
    assert {kind for _, kind in readings.dtypes} == {"string"}
    rows = [r.asDict() for r in readings.collect()]
    blank = {name: None for name in readings.columns}
    assert rows == [
        {**blank, S.LANE_ID: "11", S.UNIT_ID: "18", S.OBSERVED_AT: "1586217660",
         S.MODIFIED_AT: "2020-04-07T02:01:30+02:00"},
        {**blank, CORRUPT_RECORD: array_line},  # an array is no reading, however many it holds
        {**blank, CORRUPT_RECORD: cut_line},
        # A value that is no JSON string: its text as Jackson writes it again.
        {**blank, S.intensity(2): '{"a":1}', S.UNIT_ID: "1.5"},
        {**blank, CORRUPT_RECORD: "12"},  # JSON, but no object
        blank,  # an object with nothing in it: a reading, rejected by validation
    ]


def test_a_json_line_of_blanks_other_than_spaces_is_no_reading(spark, tmp_path):
    path = tmp_path / "part-0.json"
    path.write_bytes(b'{"unieke_id": 11}\n \t \n\t\n')
    readings = sources.read_json_readings(spark, [RawFile(str(path), path.stat().st_size)])
    assert [r[S.LANE_ID] for r in readings.collect()] == ["11"]


def test_readings_to_validate_leaves_out_other_days_where_the_time_is_an_integer(spark):
    rows = [(1, T0 - 3601), (2, T0 - 3600), (3, T0 + 43200), (4, T0 + 86399), (5, T0 + 86400),
            (6, None), (7, -5), (8, 4_102_444_800)]
    readings = frame(spark, rows, f"{S.LANE_ID} int, {S.OBSERVED_AT} bigint")
    assert SPAN.context == (CONTEXT_START, CONTEXT_END)

    kept = sources.readings_to_validate(RawInput(files=[], readings=readings), SPAN)

    # In the context [T0 - 3600, T0 + 86400), and every time no run could use (rejected later).
    assert sorted(r[0] for r in kept.collect()) == [2, 3, 4, 6, 7, 8]


def test_readings_to_validate_keeps_every_reading_whose_time_is_text(spark):
    readings = frame(spark, [(1, "1586217600"), (2, "not a time")],
                                     f"{S.LANE_ID} int, {S.OBSERVED_AT} string")
    assert sources.readings_to_validate(RawInput(files=[], readings=readings), SPAN) is readings


# --- read_raw: the whole read and its errors ----------------------------------------------------


def test_read_raw_reads_the_parquet_of_the_runs_folders_with_their_footers(spark, tmp_path):
    raw = tmp_path / "raw"
    late = T0 + 86400 + 23 * 3600  # 2020-04-08 23:00, in the last folder read
    land_parquet(raw, [raw_reading(11, 1, t) for t in (T0 - 7200, T0 + 60, late, T0 + 2 * 86400)])

    raw_input = sources.read_raw(spark, str(raw), sources.PARQUET, SPAN, CORRECTED, False)

    assert [f.path.rsplit("/", 4)[-4:-1] for f in raw_input.files] == [
        ["month=04", "day=07", "hour=00"], ["month=04", "day=08", "hour=23"]]
    assert raw_input.readings_in_files == 2 and raw_input.skipped == []
    assert sorted(r[0] for r in raw_input.readings.select(S.OBSERVED_AT).collect()) == [T0 + 60, late]


def test_read_raw_reads_json_lines_without_counts_from_footers(spark, tmp_path):
    raw = tmp_path / "raw"
    land_json(raw, [raw_reading(11, 1, T0 + 60), raw_reading(12, 1, T0 + 60)], arrival_epoch=T0 + 150)
    raw_input = sources.read_raw(spark, str(raw), sources.JSON, SPAN, ATHENA, False)
    assert [f.rows for f in raw_input.files] == [None] and raw_input.readings_in_files is None
    assert sorted(r[0] for r in raw_input.readings.select(S.LANE_ID).collect()) == ["11", "12"]


def test_read_raw_without_files_in_the_runs_hours_names_them(spark, tmp_path):
    raw = tmp_path / "raw"
    land_parquet(raw, [raw_reading(11, 1, T0 - 7200)])  # folder 2020-04-06 22: one too early
    with pytest.raises(SourceError, match=(f"^no raw files under {raw} for processing hours "
                                           r"2020-04-06 23:00 to 2020-04-09 00:00 \(UTC\)$")):
        sources.read_raw(spark, str(raw), sources.PARQUET, SPAN, ATHENA, False)


def test_read_raw_when_every_file_was_skipped_says_so(spark, tmp_path):
    _touch(hour_folder(tmp_path / "raw", T0) / "part-0.parquet", b"PAR1 cut short")
    with pytest.raises(SourceError, match=f"^no readable raw files under {tmp_path}/raw: every one was skipped$"):
        sources.read_raw(spark, str(tmp_path / "raw"), sources.PARQUET, SPAN, ATHENA, True)


def test_read_raw_of_an_unknown_format_names_it(spark, tmp_path):
    _touch(hour_folder(tmp_path / "raw", T0) / "part-0.csv", b"unieke_id\n11\n")
    with pytest.raises(SourceError, match="^unknown --source_format 'csv'$"):
        sources.read_raw(spark, str(tmp_path / "raw"), "csv", SPAN, ATHENA, False)

"""benchmarks.scanned_bytes: the bytes Athena would bill the seed's query for, summed from
the footers of the folders a run reads, against the same sums worked out here another
way (folder names parsed here, the columns typed out, row groups' times read as values)."""

import datetime as dt
import re
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from benchmarks import scanned_bytes
from tools.sample_data import SampleSpec, generate

START = dt.date(2020, 4, 6)
FOLDER = re.compile(r"year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})")
# The raw columns tools/sql/athena.sql names, typed out once here to check the parser.
SEED_COLUMNS = {
    "unieke_id", "lve_nr", "tijd_waarneming", "defect", "rekendata_bezettingsgraad",
    *(f"verkeersintensiteit_klasse{k}" for k in (2, 3, 4, 5)),
    *(f"voertuigsnelheid_rekenkundig_klasse{k}" for k in (2, 3, 4, 5)),
}


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    generate(str(root), SampleSpec(start_date=START, days=3, lanes=12, seed=3))
    return root


def _utc(day: dt.date, hour: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.timezone.utc)


def _files_between(root: Path, first: dt.datetime, end: dt.datetime) -> list[Path]:
    files = []
    for path in sorted(p for p in root.rglob("*.parquet")):
        y, m, d, h = map(int, FOLDER.search(path.as_posix()).groups())
        if first <= dt.datetime(y, m, d, h, tzinfo=dt.timezone.utc) < end:
            files.append(path)
    return files


def test_the_seed_querys_columns_are_read_from_its_sql():
    assert set(scanned_bytes.seed_columns()) == SEED_COLUMNS


def test_comments_and_strings_name_no_column():
    sql = "SELECT lve_nr, 'geldig' AS label -- defect\n/* beschikbaar */ FROM t WHERE x = 'it''s defect'"
    assert scanned_bytes.referenced_columns(sql) == ("lve_nr",)


def test_a_days_run_sums_the_footers_of_the_folders_it_reads(landing):
    day = START + dt.timedelta(days=1)
    measured = scanned_bytes.scan(landing, day, day, scanned_bytes.seed_columns())

    # The folders of the day, the hour before it and the 24 late hours after it.
    files = _files_between(landing, _utc(day) - dt.timedelta(hours=1), _utc(day) + dt.timedelta(hours=48))
    assert len(files) == 49 == measured.files == measured.folders
    context_start = int((_utc(day) - dt.timedelta(minutes=60)).timestamp())
    output_end = int((_utc(day) + dt.timedelta(days=1)).timestamp())
    column_bytes = pruned_bytes = readings = 0
    for path in files:
        parquet = pq.ParquetFile(path)
        readings += parquet.metadata.num_rows
        for index in range(parquet.metadata.num_row_groups):
            group = parquet.metadata.row_group(index)
            chunks = {group.column(c).path_in_schema: group.column(c).total_compressed_size
                      for c in range(group.num_columns)}
            named = sum(chunks[column] for column in SEED_COLUMNS)
            column_bytes += named
            times = parquet.read_row_group(index, columns=["tijd_waarneming"])["tijd_waarneming"]
            low, high = pc.min(times).as_py(), pc.max(times).as_py()
            if high >= context_start and low < output_end:
                pruned_bytes += named

    assert measured.readings == readings
    assert measured.file_bytes == sum(path.stat().st_size for path in files)
    assert measured.column_bytes == column_bytes
    assert measured.pruned_bytes == pruned_bytes
    assert 0 < measured.pruned_bytes <= measured.column_bytes < measured.file_bytes


def test_the_landed_days_alone_are_the_days_folders(landing):
    day = START + dt.timedelta(days=1)
    measured = scanned_bytes.scan(landing, day, day, ["lve_nr"], lookback_minutes=0, late_hours=0)
    files = _files_between(landing, _utc(day), _utc(day) + dt.timedelta(days=1))
    assert measured.folders == 24
    assert measured.file_bytes == sum(path.stat().st_size for path in files)


def test_a_year_cut_as_the_seed_did_is_92_statements_of_at_most_four_days():
    cuts = scanned_bytes.statements(dt.date(2021, 1, 1), dt.date(2021, 12, 31), 4)
    assert len(cuts) == 92
    assert cuts[0] == (dt.date(2021, 1, 1), dt.date(2021, 1, 4))
    assert cuts[-1] == (dt.date(2021, 12, 31), dt.date(2021, 12, 31))
    assert all((last - first).days < 4 for first, last in cuts)
    assert sum((last - first).days + 1 for first, last in cuts) == 365

"""`make bench BENCH_ARGS=--year`: a year of a small network in one run (issue 20).

A year is what the seed's Athena pipeline had to cut into 92 statements of four days
(at most 100 partitions an INSERT INTO), and what one run of the job is for. The case
has as many readings as seven days of the full network (about 52 M), spread over
8,760 hour partitions instead of 168: so its cost per reading against the seven-day
case says what the partitions cost, apart from the readings.

The landing: 100 lanes (whole cabinets of the real configuration), the day before
2021 and all of 2021, with its two DST days (2021-03-28, 23 local hours; 2021-10-31,
25) and the late readings the generator lands after the last day. The job's rows on
the CHECK_DAYS are compared, value by value, with those of the DuckDB reference of the
same mode run over the same range. Not with a day run alone: in `athena` the windows
count rows, so a series with a gap longer than the lookback (a cabinet whose `uniqueid`,
the highest lane present, comes back after hours) takes its previous rows from days
before, which a day run alone does not read (docs/SEMANTICS.md, "Lookback").
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tools import comparing, duckdb_reference
from tools.sample_data import SampleSpec

LANES = 100
YEAR = 2021
FIRST_DAY, LAST_DAY = dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31)
DAYS = (LAST_DAY - FIRST_DAY).days + 1
HOUR_PARTITIONS = DAYS * 24
CHECK_DAYS = (FIRST_DAY, dt.date(YEAR, 3, 28), dt.date(YEAR, 10, 31), LAST_DAY)  # first, both DSTs, last
LABEL = f"year ({LANES} lanes)"

# The order both sides are compared in, and the columns compared within a tolerance.
_ORDER = [("uniqueid", "ascending"), ("recordtimestamp", "ascending")]
_PARTITIONS = ("year", "month", "day", "hour")
_DOUBLES = {f.name for f in duckdb_reference.CURATED_ARROW_SCHEMA if pa.types.is_floating(f.type)}


def data_spec(seed: int, lanes: int = LANES) -> SampleSpec:
    """The day before the year (its lookback hour) and the year itself."""
    return SampleSpec(start_date=FIRST_DAY - dt.timedelta(days=1), days=DAYS + 1, lanes=lanes, seed=seed)


def job_rows(table: Path, day: dt.date) -> pa.Table:
    """The rows a job run wrote for `day`: every data file of its hour partitions (one run
    writes the table once, so each file there is live), in the reference's schema."""
    return day_rows(table / "data", day)


def day_rows(root: Path, day: dt.date) -> pa.Table:
    """The rows of `day` under `root`'s `year=/month=/day=/hour=/` folders, in the
    reference's schema, the partition columns taken from the folders' names (DuckDB's
    partitioned files do not hold them)."""
    schema = duckdb_reference.CURATED_ARROW_SCHEMA
    values = [name for name in schema.names if name not in _PARTITIONS]
    tables = []
    for hour_folder in sorted((root / f"year={day.year}" / f"month={day.month}" / f"day={day.day}").glob("hour=*")):
        for path in sorted(hour_folder.glob("*.parquet")):
            rows = pq.read_table(path, columns=values)
            partition = {"year": day.year, "month": day.month, "day": day.day,
                         "hour": int(hour_folder.name.split("=", 1)[1])}
            for name in _PARTITIONS:
                rows = rows.append_column(name, pa.array([partition[name]] * rows.num_rows, pa.int64()))
            tables.append(rows.select(schema.names).cast(schema))
    return pa.concat_tables(tables) if tables else schema.empty_table()


class ReferenceCheck:
    """Compares a job run's rows on CHECK_DAYS with DuckDB's of its mode over the same
    range [start, end], written once into `folder`, however often the run is repeated."""

    def __init__(self, raw: Path, mode: str, configuration: Path | None, threads: int, folder: Path,
                 start: dt.date = FIRST_DAY, end: dt.date = LAST_DAY):
        self.raw, self.mode, self.configuration, self.threads = raw, mode, configuration, threads
        self.folder, self.start, self.end = folder, start, end
        self._written = False

    def reference(self, day: dt.date) -> pa.Table:
        if not self._written:
            shutil.rmtree(self.folder, ignore_errors=True)
            duckdb_reference.write_curated(
                str(self.raw), str(self.folder), self.start, self.end, semantics=self.mode, threads=self.threads,
                configuration=self.configuration if self.mode == "corrected" else None)
            self._written = True
        return day_rows(self.folder, day).sort_by(_ORDER)

    def __call__(self, table: Path) -> dict:
        """{"reference_days", "reference_rows", "same_rows_as_reference", and when not the
        same, "reference_difference": the first differences}."""
        rows, differences = 0, []
        for day in CHECK_DAYS:
            theirs = self.reference(day)
            ours = job_rows(table, day).sort_by(_ORDER)
            rows += theirs.num_rows
            if theirs.num_rows == 0:  # two empty days would be "the same" and prove nothing
                differences.append(f"{day}: the reference has no rows (the job has {ours.num_rows})")
                continue
            try:
                comparing.assert_same_rows(ours.to_pylist(), theirs.to_pylist(), theirs.column_names,
                                           _DOUBLES, key=2)
            except AssertionError as difference:
                differences.append(f"{day}: {str(difference)[:300]}")
        found = {"reference_days": [d.isoformat() for d in CHECK_DAYS], "reference_rows": rows,
                 "same_rows_as_reference": not differences}
        if differences:
            found["reference_difference"] = differences
        return found

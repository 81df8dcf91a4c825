"""Bringing a curated table of the old layouts in as Iceberg (`python -m tools.table
migrate`, `traffic_glue.store.migrate`): the seed pipeline's Hive folders, this job's
earlier Parquet output, what is refused, and the seed's Hive table by name (in a
process of its own: the local catalog needs a session with Hive support)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from tests.factories import T0, frame, land_parquet, raw_reading
from tests.job_helpers import ROOT, run_job, table_rows
from tools import table as table_cli
from traffic_glue.compute import schema as S
from traffic_glue.jobs import maintenance
from traffic_glue.store import locations, migrate, tables

DAY_7, DAY_8 = dt.date(2020, 4, 7), dt.date(2020, 4, 8)
# The seed's hours: three of the 7th, two of the 8th.
SEED_HOURS = [(DAY_7, 5), (DAY_7, 6), (DAY_7, 12), (DAY_8, 5), (DAY_8, 12)]
_ARROW = {"int": pa.int32(), "bigint": pa.int64(), "double": pa.float64()}
# Athena writes a query's columns in its SELECT's order: here not the table's.
SEED_FILE_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW[f.dataType.simpleString()]) for f in reversed(S.CURATED_SCHEMA.fields)]
)


def seed_rows(day: dt.date, hour: int) -> list[dict]:
    """Two locations' first two minutes of the hour; a jam minute and NULLs among them."""
    start = int(dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.timezone.utc).timestamp())
    rows = []
    for location, minute in ((101, 0), (101, 1), (202, 0), (202, 1)):
        speed = None if (location, minute) == (202, 1) else float(40 + 10 * hour + minute)
        row = {name: 0 for name in S.CURATED_COLUMNS}
        row.update({
            S.LOCATION_ID: location, S.RECORD_TIMESTAMP: start + 60 * minute, S.CURRENT_SPEED: speed,
            S.MEAN_VEHICLES_PER_LANE: 3, S.PREVIOUS_SPEED: None if minute == 0 else 41.0,
            S.JAM: 1 if speed is not None and speed < 50 else (-1 if speed is None else 0),
            S.JAM_LONG: -1, S.class_total(2): 5, S.class_total(3): None, S.SPEED_DIFF: 0,
            S.AVG_SPEED_3: speed, S.AVG_SPEED_20: None,
        })
        rows.append(row)
    return rows


def write_seed_folder(root: Path) -> list[Path]:
    """The seed's table as Athena's INSERT INTO left it: `year=/month=/day=/hour=` of
    unpadded bigints, Snappy Parquet files without the partition columns, named by the
    query (no extension), one hour with two files."""
    written = []
    for number, (day, hour) in enumerate(SEED_HOURS):
        folder = root / f"year={day.year}/month={day.month}/day={day.day}/hour={hour}"
        folder.mkdir(parents=True)
        rows = seed_rows(day, hour)
        parts = [rows[:1], rows[1:]] if number == 0 else [rows]
        for part, chunk in enumerate(parts):
            path = folder / f"20200409_031500_0000{number}_{part}abcd_0f3c9a1e-4b7d-4a59-9f1e-{number:06d}{part:06d}"
            pq.write_table(pa.Table.from_pylist(chunk, schema=SEED_FILE_SCHEMA), path, compression="snappy")
            written.append(path)
    return written


def old_locations(spark, folder: Path) -> dict:
    """The earlier Parquet format's locations table in `folder`, one row; the row."""
    place = {name: None for name in locations.LOCATIONS_SCHEMA.fieldNames()}
    place.update({locations.LOCATION_ID: 101, locations.LABEL: "A12 Brussel km 3,1",
                  locations.LANES: [{S.LANE_ID: 11, S.LANE_NAME: "H001L10", locations.LANE_TYPE: "main",
                                     S.UNIT_ID: 1}],
                  locations.VALID_FROM: 1585699200, locations.CONFIGURATION: "miv-config-2020-04-01.xml.gz"})
    locations.as_frame(spark, [place]).write.option("compression", "snappy").parquet(str(folder))
    return place


def folder_rows(spark, root: Path):
    """The folder's rows as Spark reads Hive folders (the partition values from the paths)."""
    found = spark.read.parquet(str(root))
    return found.select(
        *S.CURATED_COLUMNS, *(F.col(k).cast("bigint").alias(k) for k in S.EVENT_PARTITIONS)
    )


def properties(spark, identifier: str) -> dict[str, str]:
    return {row["key"]: row["value"] for row in spark.sql(f"SHOW TBLPROPERTIES {identifier}").collect()}


def test_migrate_turns_a_seed_folder_into_an_iceberg_table_and_a_run_replaces_only_its_days(
        spark, tmp_path, capsys):
    seed = tmp_path / "seed"
    files = write_seed_folder(seed)
    before = folder_rows(spark, seed)
    before_rows = sorted(before.collect())
    assert len(before_rows) == 4 * len(SEED_HOURS)

    assert migrate.is_old_layout(spark, f"file:{seed}")
    assert table_cli.main(["migrate", "--target_path", str(seed)]) == 0
    assert not migrate.is_old_layout(spark, f"file:{seed}")
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"migrated file:{seed} to Iceberg in place: 6 data files, 20 rows, 5 hour partitions, mode athena; "
        f"next: run the job with --target_path file:{seed} --semantics athena "
        f"(python -m tools.table history --target_path file:{seed} lists its commits)"
    ]

    identifier = tables.path_table(spark, f"file:{seed}")
    # The rows as they were; the table has its columns' comments besides (schema metadata).
    assert_df_equality(spark.table(identifier), before, ignore_row_order=True, ignore_nullable=True,
                       ignore_metadata=True)
    # pyiceberg, another reader, reads the files by the same name mapping.
    assert sorted(table_rows(seed)) == sorted(tuple(r) for r in before_rows)
    # Imported in place: the table's files are the seed's, and none was written.
    listed = {row[0] for row in spark.sql(f"SELECT file_path FROM {identifier}.files").collect()}
    assert listed == {f"file:{p}" for p in files}
    assert not (seed / "data").exists()
    # The settings a job's own table gets, and the seed's mode.
    made = properties(spark, identifier)
    assert {k: made.get(k) for k in ("format-version", "write.parquet.compression-codec",
                                     "write.distribution-mode", tables.SEMANTICS_PROPERTY)} == {
        "format-version": "2", "write.parquet.compression-codec": "snappy",
        "write.distribution-mode": "none", tables.SEMANTICS_PROPERTY: "athena"}
    assert "schema.name-mapping.default" in made
    assert [r["col_name"] for r in spark.sql(f"DESCRIBE TABLE {identifier}").collect()][-4:] == list(S.EVENT_PARTITIONS)

    # A second migrate refuses, in one line, and changes nothing.
    assert table_cli.main(["migrate", "--target_path", str(seed)]) == 1
    err = capsys.readouterr().err
    assert err == (f"python -m tools.table: error: file:{seed} holds an Iceberg table already (metadata/): "
                   "nothing to migrate\n")

    # A run of the 7th (readings at 06:00-06:02 and 12:00-12:02 only) replaces that day:
    # its hours 6 and 12 with the run's rows, its hour 5 removed; the 8th stays as it was.
    raw = tmp_path / "raw"
    land_parquet(raw, [raw_reading(11, 1, T0 + hour * 3600 + 60 * minute)
                       for hour in (6, 12) for minute in range(3)])
    assert run_job(raw, seed, "2020-04-07", "2020-04-07", "--semantics", "athena") == 0
    after = spark.table(identifier)
    assert_df_equality(after.where(F.col("day") == 8), before.where(F.col("day") == 8),
                       ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)
    day_7 = after.where(F.col("day") == 7).collect()
    assert {r["hour"] for r in day_7} == {6, 12} and len(day_7) == 6
    assert not {r[S.LOCATION_ID] for r in day_7} & {101, 202}
    day_8_files = {row[0] for row in spark.sql(
        f"SELECT file_path FROM {identifier}.files WHERE partition.day = 8").collect()}
    assert day_8_files == {f"file:{p}" for p in files if "/day=8/" in str(p)}


def test_migrate_brings_in_the_earlier_parquet_format_with_its_mode_and_locations(spark, tmp_path, capsys):
    """This job's earlier output: Spark's partitioned write, `_table.json`, the locations
    table in `_locations/`, a crashed run's `_staging/`, the reports."""
    old = tmp_path / "curated"
    rows = [tuple(r[c] for c in S.CURATED_COLUMNS) + (d.year, d.month, d.day, h)
            for d, h in SEED_HOURS[:2] for r in seed_rows(d, h)]
    frame(spark, rows, S.CURATED_TABLE_SCHEMA).write.partitionBy(*S.EVENT_PARTITIONS).parquet(str(old))
    (old / migrate.MODE_FILE).write_text(json.dumps({"format": "parquet", "semantics": "corrected"}))
    place = old_locations(spark, old / locations.FOLDER)
    (old / "_staging" / "run-1").mkdir(parents=True)
    (old / "_reports").mkdir()
    (old / "_reports" / "run.json").write_text("{}")
    before = folder_rows(spark, old)

    # The mode is the one `_table.json` records: another is refused, nothing changed.
    assert table_cli.main(["migrate", "--target_path", str(old), "--semantics", "athena"]) == 2
    assert capsys.readouterr().err == (
        "python -m tools.table: error: --semantics athena, but the table's rows were computed with "
        f"--semantics corrected (file:{old}/_table.json): leave --semantics out\n")
    assert not (old / "metadata").exists() and not (old / locations.FOLDER / "metadata").exists()

    assert table_cli.main(["migrate", "--target-path", str(old)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "8 rows, 2 hour partitions, mode corrected" in out[0]
    assert out[1] == f"migrated the locations table file:{old}/{locations.FOLDER} to Iceberg in place"
    identifier = tables.path_table(spark, f"file:{old}")
    assert_df_equality(spark.table(identifier), before, ignore_row_order=True, ignore_nullable=True,
                       ignore_metadata=True)
    assert properties(spark, identifier)[tables.SEMANTICS_PROPERTY] == "corrected"
    # The locations table as the job reads it, by the seam's name for its folder.
    beside = spark.table(tables.path_table(spark, f"file:{old}/{locations.FOLDER}"))
    assert locations.as_rows(beside) == [place]
    # The mode now lives in the table; what no reader needs is gone, the reports stay.
    assert not (old / migrate.MODE_FILE).exists() and not (old / "_staging").exists()
    assert (old / "_reports" / "run.json").exists()


@pytest.mark.parametrize("layout, message", [
    ("raw", "do not hold the curated table's columns: missing: uniqueid, recordtimestamp, "),
    ("empty", "holds no year= folders: not a curated table of the old layouts"),
    ("missing", "no folder file:"),
])
def test_migrate_refuses_what_is_no_curated_table_of_the_old_layouts(spark, layout, message, tmp_path, capsys):
    target = tmp_path / "target"
    if layout == "raw":  # the raw landing: year=/month=/day=/hour= too, of other columns
        land_parquet(target, [raw_reading(11, 1, T0)])
    elif layout == "empty":
        target.mkdir()
    assert table_cli.main(["migrate", "--target_path", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("python -m tools.table: error: ") and message in err and err.count("\n") == 1
    assert not (target / "metadata").exists()
    if layout == "raw":
        assert "extra: beschrijvende_id, unieke_id" in err


def test_a_failed_import_leaves_the_folder_as_it_was(spark, tmp_path, capsys, monkeypatch):
    seed = tmp_path / "seed"
    write_seed_folder(seed)

    def fail(self, procedure, **args):
        raise RuntimeError(f"{procedure} failed")

    with monkeypatch.context() as patched:
        patched.setattr(tables.IcebergTable, "call", fail)
        assert table_cli.main(["migrate", "--target_path", str(seed)]) == 1
    assert capsys.readouterr().err == "python -m tools.table: error: RuntimeError: add_files failed\n"
    assert not (seed / "metadata").exists() and (seed / "year=2020").is_dir()
    assert [t.name for t in spark.catalog.listTables("default") if t.name.startswith("traffic_glue_")] == []
    assert table_cli.main(["migrate", "--target_path", str(seed)]) == 0


def test_a_job_given_an_old_layout_is_told_the_command():
    assert migrate.refusal_message("s3://b/curated") == (
        "s3://b/curated holds Parquet folders (year=...) and no Iceberg table: bring it in with "
        "python -m tools.table migrate --target_path s3://b/curated, then run again")
    assert "python -m tools.table migrate --target_table seed.t, then" in migrate.refusal_message(table="seed.t")


@pytest.mark.parametrize("argv, message", [
    (["migrate", "--semantics", "athena"], "migrate needs --target_path or --target_table (or both)"),
    (["migrate", "--target_path", "x", "--semantics", "fast"], "argument --semantics: invalid choice: 'fast'"),
    (["expire", "--target_path", "x", "--retention_days", "-1"], "--retention_days must be >= 0"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as done:
        table_cli.parse_args(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.startswith("python -m tools.table: error: ") and message in err
    assert err.count("\n") == 1


def test_options_are_spelled_with_underscores_and_dashes():
    spelled = [
        table_cli.parse_args(["rollback", "--target_path", "p", f"--to{sep}run", "r", f"--catalog{sep}dir", "c",
                              f"--glue{sep}warehouse", "s3://w/"])
        for sep in "_-"
    ]
    assert spelled[0] == spelled[1]
    assert (spelled[0].to_run, spelled[0].catalog_dir, spelled[0].glue_warehouse) == ("r", "c", "s3://w/")
    assert table_cli.parse_args(["rollback", "--target-table", "d.t", "--to-snapshot", "5"]).to_snapshot == 5
    assert table_cli.parse_args(["expire", "--target_path", "p"]).retention_days == maintenance.DEFAULT_RETENTION_DAYS


# --- the seed's Hive table, by name, in the local catalog ------------------------------------


def hive_scenario(work: Path) -> dict:
    """In a session with the local catalog: the seed's Hive table migrated by name, and
    this job's earlier output registered in the catalog (the curated and the locations
    table, `_table.json`) by folder and name; what came of it."""
    from traffic_glue.runtime.session import local_spark_session

    catalog_dir = ("--catalog_dir", str(work / "catalog"))
    spark = local_spark_session("test-migrate-hive", shuffle_partitions=2, catalog_dir=catalog_dir[1])
    seed, old = work / "seed", work / "old"
    files = write_seed_folder(seed)
    write_seed_folder(old)
    (old / migrate.MODE_FILE).write_text(json.dumps({"format": "parquet", "semantics": "corrected"}))
    place = old_locations(spark, old / locations.FOLDER)

    def hive_columns(fields) -> str:
        return ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in fields)

    for database, where in (("seed", seed), ("job", old)):
        spark.sql(f"CREATE DATABASE {database}")
        spark.sql(f"CREATE EXTERNAL TABLE {database}.traffic_minutes ({hive_columns(S.CURATED_SCHEMA.fields)}) "
                  f"PARTITIONED BY ({hive_columns(S.EVENT_PARTITION_SCHEMA.fields)}) "
                  f"STORED AS PARQUET LOCATION '{where}' TBLPROPERTIES ('parquet.compression'='SNAPPY')")
        spark.sql(f"MSCK REPAIR TABLE {database}.traffic_minutes")
    spark.sql(f"CREATE EXTERNAL TABLE job.locations ({hive_columns(locations.LOCATIONS_SCHEMA.fields)}) "
              f"STORED AS PARQUET LOCATION '{old / locations.FOLDER}'")
    before = sorted(map(tuple, spark.table("seed.traffic_minutes").collect()))

    result = {"before": len(before)}
    result["status"] = table_cli.main(["migrate", "--target_table", "seed.traffic_minutes", *catalog_dir])
    after = spark.table("seed.traffic_minutes")
    result["same_rows"] = sorted(map(tuple, after.collect())) == before
    result["provider"] = {r["col_name"]: r["data_type"] for r in spark.sql(
        "DESCRIBE TABLE EXTENDED seed.traffic_minutes").collect()}.get("Provider")
    result["files_in_place"] = {r[0] for r in spark.sql(
        "SELECT file_path FROM seed.traffic_minutes.files").collect()} == {f"file:{p}" for p in files}
    result["mode"] = properties(spark, "seed.traffic_minutes").get(tables.SEMANTICS_PROPERTY)
    result["tables"] = sorted(r["tableName"] for r in spark.sql("SHOW TABLES IN seed").collect())
    result["again"] = table_cli.main(["migrate", "--target_table", "seed.traffic_minutes", *catalog_dir])

    result["job"] = table_cli.main(["migrate", "--target_path", str(old), "--target_table", "job.traffic_minutes",
                                    *catalog_dir])
    result["job_rows"] = spark.table("job.traffic_minutes").count()
    result["job_mode"] = properties(spark, "job.traffic_minutes").get(tables.SEMANTICS_PROPERTY)
    result["job_locations"] = locations.as_rows(spark.table("job.locations")) == [place]
    result["job_tables"] = sorted(
        (r["tableName"], properties(spark, f"job.{r['tableName']}").get("format-version"))
        for r in spark.sql("SHOW TABLES IN job").collect())
    result["default_tables"] = [r["tableName"] for r in spark.sql("SHOW TABLES IN default").collect()]
    return result


def test_migrate_turns_hive_tables_into_iceberg_tables_of_the_same_names(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "glue_jobs"), str(ROOT)]))
    env.pop("PYSPARK_GATEWAY_PORT", None)
    env.pop("PYSPARK_GATEWAY_SECRET", None)
    done = subprocess.run([sys.executable, __file__, str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result == {
        "before": 20, "status": 0, "same_rows": True, "provider": "iceberg", "files_in_place": True,
        "mode": "athena", "tables": ["traffic_minutes"], "again": 1,
        "job": 0, "job_rows": 20, "job_mode": "corrected", "job_locations": True,
        "job_tables": [["locations", "2"], ["traffic_minutes", "2"]], "default_tables": [],
    }
    assert "seed.traffic_minutes is an Iceberg table already: nothing to migrate" in done.stderr
    assert ("migrated seed.traffic_minutes to Iceberg in place: 6 data files, 20 rows, 5 hour partitions, "
            "mode athena; next: run the job with --target_table seed.traffic_minutes --semantics athena") in done.stdout
    assert "migrated the locations table job.locations to Iceberg in place" in done.stdout


if __name__ == "__main__":
    # The subprocess of the test above: python tests/test_migrate.py WORK_DIR
    work_dir = Path(sys.argv[1])
    (work_dir / "result.json").write_text(json.dumps(hive_scenario(work_dir)))

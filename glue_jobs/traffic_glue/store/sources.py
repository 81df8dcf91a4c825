"""Reading the raw landing: only the processing-hour folders a run needs.

Files are listed per processing hour (the pruning), Parquet footers are checked before
any data is read (a corrupt file or a missing essential column stops the job naming
the file), and files are grouped by their schema so that a column landing as int in
one file and as string in another reads correctly.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from traffic_glue.compute import schema as S
from traffic_glue.store import storage
from traffic_glue.compute.modes import CORRECTED
from traffic_glue.compute.run_range import RunRange
from traffic_glue.compute.validation import CORRUPT_RECORD, validated_by_run

# The raw landing's file formats (`--source_format`).
PARQUET = "parquet"
JSON = "json"
SOURCE_FORMATS = (PARQUET, JSON)
# Folders listed and footers read at once: each is py4j round trips and, on S3, requests
# whose latency the threads overlap.
METADATA_THREADS = 16


class SourceError(RuntimeError):
    """The raw input cannot be read as it is; the message names the file or column."""


@dataclass(frozen=True)
class RawFile:
    path: str
    size: int
    rows: int | None = None  # from the Parquet footer
    schema: str = ""  # the footer's schema as Spark reads it (StructType JSON)

    @property
    def columns(self) -> set[str]:
        return {f["name"] for f in json.loads(self.schema)["fields"]} if self.schema else set()


@dataclass
class RawInput:
    """What a run reads: the files, those skipped as corrupt, and the readings."""

    files: list[RawFile]
    skipped: list[dict] = field(default_factory=list)
    readings: DataFrame | None = None

    @property
    def readings_in_files(self) -> int | None:
        """The readings the files hold, from their footers (None where unknown: JSON)."""
        counts = [f.rows for f in self.files]
        return None if None in counts else sum(counts)


def hour_folder_globs(root: str, first: dt.datetime, after: dt.datetime) -> list[str]:
    """One glob per processing day; Firehose pads (`month=04`), hand-made data may not."""
    globs, day = [], first.date()
    while day <= (after - dt.timedelta(hours=1)).date():
        globs.append(
            f"{root.rstrip('/')}/year={day.year}/month={{{day.month:02d},{day.month}}}"
            f"/day={{{day.day:02d},{day.day}}}/hour=*"
        )
        day += dt.timedelta(days=1)
    return globs


def folder_hour(path: str) -> dt.datetime | None:
    """The processing hour a `year=/month=/day=/hour=` path names; None for another
    path, or one naming no hour of the calendar (`hour=24`)."""
    found = dict(re.findall(r"(year|month|day|hour)=(\d+)", path))
    if len(found) < 4:
        return None
    try:
        return dt.datetime(*(int(found[k]) for k in ("year", "month", "day", "hour")))
    except ValueError:
        return None


def list_raw_files(
    spark: SparkSession, root: str, first: dt.datetime, after: dt.datetime
) -> list[RawFile]:
    """Data files in the processing-hour folders `[first, after)` under `root`."""
    if not storage.exists(spark, root):
        raise SourceError(f"--source_path {root} does not exist")

    def in_range(folder: storage.Entry) -> bool:
        hour = folder_hour(folder.path)
        return hour is not None and first <= hour < after

    # A day's glob, then an hour folder's listing, several at once: a year is 366 globs
    # and 8,784 listings, 13.4-13.9 s one after the other and 9.7-10.3 s so, locally
    # (py4j round trips); on S3 each listing is a request whose wait the threads overlap.
    with ThreadPoolExecutor(max_workers=METADATA_THREADS) as pool:
        days = pool.map(lambda pattern: storage.glob(spark, pattern), hour_folder_globs(root, first, after))
        folders = [folder.path for found in days for folder in found if in_range(folder)]
        listed = pool.map(lambda folder: storage.list_files(spark, folder), folders)
        files = [RawFile(path=f.path, size=f.size) for found in listed for f in found]
    return sorted(files, key=lambda f: f.path)


def describe_files(files: list[RawFile]) -> str:
    """`50 folders, 3,000 files, 8,641,212 readings` (readings where the footers say)."""
    folders = {f.path.rsplit("/", 1)[0] for f in files}
    text = f"{len(folders):,} folder{'s' * (len(folders) != 1)}, {len(files):,} file{'s' * (len(files) != 1)}"
    counts = [f.rows for f in files]
    if files and None not in counts:
        text += f", {sum(counts):,} readings"
    return text


def open_parquet(spark: SparkSession, raw_file: RawFile, hadoop_conf=None):
    """Parquet's reader of `raw_file` (its footer read): close it after use. The file is
    given Parquet by its listed length (a `FileStatus` made here), so Parquet does not
    ask the file system for it: on S3 one HEAD request fewer for every raw file.
    `hadoop_conf`: Hadoop's configuration, if the caller holds it already."""
    status = storage.java_class(spark, "org.apache.hadoop.fs.FileStatus")(
        raw_file.size, False, 1, 0, 0, storage.hadoop_path(spark, raw_file.path))
    if hadoop_conf is None:
        hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    input_file = storage.java_class(spark, "org.apache.parquet.hadoop.util.HadoopInputFile").fromStatus(
        status, hadoop_conf)
    return storage.java_class(spark, "org.apache.parquet.hadoop.ParquetFileReader").open(input_file)


class FooterReader:
    """Reads raw files' footers: each file's Parquet schema and row count. What every file
    shares (Hadoop's configuration, Spark's schema converter, the conversion of a schema
    already seen) is asked of the JVM once, not for each file: each is a py4j round trip.
    A year's 8,767 footers: 17.5 round trips a file and 11.5 s before, 11 and 8.6-9.0 s."""

    def __init__(self, spark: SparkSession):
        self.spark = spark
        self.hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
        # Spark's own footer-to-schema conversion, as its schema inference would do it,
        # but without the inference's Spark job (a second over a cold JVM on every run).
        self.converter = storage.java_class(
            spark, "org.apache.spark.sql.execution.datasources.parquet.ParquetToSparkSchemaConverter"
        )(spark._jsparkSession.sessionState().conf())
        self.schemas: dict[str, str] = {}  # a Parquet schema's text: its Spark schema (JSON)

    def read(self, raw_file: RawFile) -> RawFile:
        """`raw_file` with its rows and schema; `SourceError` if it is not Parquet."""
        try:
            reader = open_parquet(self.spark, raw_file, self.hadoop_conf)
            try:
                parquet_schema = reader.getFileMetaData().getSchema()
                rows = reader.getRecordCount()
            finally:
                reader.close()
            text = parquet_schema.toString()
            schema = self.schemas.get(text)
            if schema is None:
                # A column type Spark cannot read fails here, naming the file.
                schema = self.schemas[text] = self.converter.convert(parquet_schema).json()
        except Exception as error:  # py4j wraps the JVM's reason; keep its first line
            looks_like = text_format(storage.head(self.spark, raw_file.path))
            if looks_like:
                raise SourceError(
                    f"raw file {raw_file.path} holds {looks_like}, not Parquet: "
                    + ("run with --source_format json" if looks_like == JSON_LINES
                       else "the job reads Parquet or JSON lines (--source_format json)")
                ) from None
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise SourceError(f"raw file {raw_file.path} is not a readable Parquet file: {reason}")
        return RawFile(raw_file.path, raw_file.size, int(rows), schema)


PARQUET_MAGIC = b"PAR1"
JSON_LINES, CSV_TEXT = "JSON lines", "CSV text"


def _utf8_prefix(start: bytes) -> str | None:
    """`start` as UTF-8 text, when it is text: it may end inside a character (at most
    three bytes of one), which is left off."""
    for cut in range(4):
        try:
            return start[: len(start) - cut].decode("utf-8")
        except UnicodeDecodeError as error:
            if error.start < len(start) - 3:
                return None  # not at the end: not text
    return None


def text_format(start: bytes) -> str | None:
    """What a file that is not Parquet most likely holds, from its first bytes."""
    if start.startswith(PARQUET_MAGIC) or not start:
        return None
    text = _utf8_prefix(start)
    if text is None:
        return None
    text = text.lstrip("\ufeff \t\r\n")
    if text.startswith(("{", "[")):
        return JSON_LINES
    first_line = text.splitlines()[0] if text else ""
    return CSV_TEXT if ("," in first_line or ";" in first_line) and first_line.isprintable() else None


def refuse_parquet_as_json(spark: SparkSession, files: list[RawFile]) -> None:
    """`--source_format json` on a Parquet landing: say so, naming the first such file."""
    for raw_file in files:
        if storage.head(spark, raw_file.path, len(PARQUET_MAGIC)) == PARQUET_MAGIC:
            raise SourceError(
                f"raw file {raw_file.path} is Parquet, not JSON lines: run with "
                "--source_format parquet"
            )


def essential_columns(semantics: str) -> tuple[str, ...]:
    extra = S.ESSENTIAL_FOR_DEDUPLICATION if semantics == CORRECTED else ()
    return S.ESSENTIAL_COLUMNS + extra


def inspect_parquet(
    spark: SparkSession, files: list[RawFile], semantics: str, skip_corrupt: bool
) -> RawInput:
    """Footers of every file, read in parallel; stops on a bad file unless told to skip."""
    footers = FooterReader(spark)

    def attempt(raw_file: RawFile):
        try:
            return footers.read(raw_file), None
        except SourceError as error:
            return None, {"file": raw_file.path, "reason": str(error)}

    with ThreadPoolExecutor(max_workers=METADATA_THREADS) as pool:
        results = list(pool.map(attempt, files))
    good = [f for f, _ in results if f is not None]
    skipped = [problem for _, problem in results if problem is not None]
    if skipped and not skip_corrupt:
        reason = skipped[0]["reason"]
        # A file of another format is no corrupt file: skipping would skip them all.
        if "not Parquet:" not in reason:
            reason += " (rerun with --corrupt_files skip to leave such files out)"
        raise SourceError(reason)
    for raw_file in good:
        missing = [c for c in essential_columns(semantics) if c not in raw_file.columns]
        if missing:
            raise SourceError(
                f"raw file {raw_file.path} has no column {missing[0]}, which the computation "
                f"needs (missing: {', '.join(missing)})"
            )
    return RawInput(files=good, skipped=skipped)


def read_parquet_readings(spark: SparkSession, raw_input: RawInput) -> DataFrame:
    """All files' readings; files are read in groups of one schema, each group once."""
    groups: dict[str, list[str]] = {}
    for raw_file in raw_input.files:
        groups.setdefault(raw_file.schema, []).append(raw_file.path)
    frames = []
    for schema_json, paths in groups.items():
        group_schema = T.StructType.fromJson(json.loads(schema_json))
        wanted = [f for f in group_schema.fields if f.name in S.RAW_COLUMNS]
        frames.append(spark.read.schema(T.StructType(wanted)).parquet(*paths))
    return _union_as_text_where_types_differ(frames)


def read_json_readings(spark: SparkSession, files: list[RawFile]) -> DataFrame:
    """JSON lines as the stream carries them: every value read as text, parsed later."""
    text_schema = T.StructType(
        [T.StructField(name, T.StringType()) for name in S.RAW_COLUMNS]
        + [T.StructField(CORRUPT_RECORD, T.StringType())]
    )
    # Parsed line by line: Spark's JSON reader turns a line holding an array of objects
    # into one reading per object, but such a line is not a JSON object and must be
    # rejected whole as malformed_record (docs/SEMANTICS.md, "Validation"). Blank lines
    # are no reading.
    lines = spark.read.text([f.path for f in files])
    parsed = F.from_json(
        "value", text_schema,
        {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_RECORD},
    )
    return (
        lines.where(~F.col("value").rlike(r"^\s*$"))
        .select(parsed.alias("reading"))
        .select(*(F.col(f"reading.{f.name}").alias(f.name) for f in text_schema.fields))
    )


def _union_as_text_where_types_differ(frames: list[DataFrame]) -> DataFrame:
    if len(frames) == 1:
        return frames[0]
    types: dict[str, set] = {}
    for frame in frames:
        for f in frame.schema.fields:
            types.setdefault(f.name, set()).add(f.dataType.simpleString())
    # Where files disagree on a column's type, carry it as text; validation parses it.
    mixed = {name for name, seen in types.items() if len(seen) > 1}
    columns = [name for name in S.RAW_COLUMNS if name in types]
    aligned = [
        frame.select(
            *(
                (F.col(c).cast("string") if c in mixed else F.col(c)).alias(c)
                if c in frame.columns
                else F.lit(None).cast("string" if c in mixed else next(iter(types[c]))).alias(c)
                for c in columns
            )
        )
        for frame in frames
    ]
    result = aligned[0]
    for frame in aligned[1:]:
        result = result.unionByName(frame)
    return result


def read_raw(
    spark: SparkSession,
    root: str,
    source_format: str,
    span: RunRange,
    semantics: str,
    skip_corrupt: bool,
) -> RawInput:
    """The run's raw readings with their files; `SourceError` names what is wrong."""
    first, after = span.folder_hours
    files = list_raw_files(spark, root, first, after)
    if not files:
        raise SourceError(
            f"no raw files under {root} for processing hours "
            f"{first:%Y-%m-%d %H}:00 to {after:%Y-%m-%d %H}:00 (UTC)"
        )
    if source_format == PARQUET:
        raw_input = inspect_parquet(spark, files, semantics, skip_corrupt)
        if not raw_input.files:
            raise SourceError(f"no readable raw files under {root}: every one was skipped")
        raw_input.readings = read_parquet_readings(spark, raw_input)
        return raw_input
    if source_format == JSON:
        refuse_parquet_as_json(spark, files)
        return RawInput(files=files, readings=read_json_readings(spark, files))
    raise SourceError(f"unknown --source_format {source_format!r}")


def readings_to_validate(raw_input: RawInput, span: RunRange) -> DataFrame:
    """The raw readings the run validates.

    Where the time is an integer column, other days' readings are left out by a filter
    that Parquet also applies to whole row groups, which are then never read
    (`validation.validated_by_run`): in a one-day run, most of the late folders. The
    counts still count them as read and `outside_days`, from the footers
    (`RawInput.readings_in_files`, `counting.RunCounters.collect`). Otherwise every
    reading is validated.
    """
    in_run = validated_by_run(raw_input.readings, span.context)
    return raw_input.readings if in_run is None else raw_input.readings.where(in_run)

"""The jobs' arguments as a user meets them: which names exist, what each one means.

One table (`TRANSFORM_ARGUMENTS`) is the source of `--help` and of the README's table
(a test holds the README to it). An argument the job does not know stops it before
Spark starts, naming the closest known one; the arguments AWS Glue itself passes to
every job script are known too (`GLUE_PARAMETERS`).
"""

from __future__ import annotations

import difflib
import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Documented:
    names: tuple[str, ...]  # without the leading --
    default: str  # as a person reads it
    meaning: str


# Arguments every job takes the same way (appended to each job's own table).
COMMON_ARGUMENTS = (
    Documented(("log_level",), "`WARN`",
               "Spark's, Hive's and Hadoop's logging: `ERROR`, `WARN`, `INFO` or `DEBUG` (the "
               "job's own progress lines are printed at every level)"),
    Documented(("run_id",), "time and a random suffix",
               "the run's id in the report, the quarantine and the table's history (on Glue: "
               "the job run's id)"),
    Documented(("catalog_dir",), "`.local/catalog`",
               "local only: where Spark's embedded Derby catalog lives"),
    Documented(("glue_warehouse",), "none",
               "local only: use the Glue Data Catalog for `--target_table` as the Glue job does "
               "(GlueCatalog, S3FileIO), warehouse `s3://...`; the AWS endpoints, region and "
               "keys as boto3 takes them"),
    Documented(("run_properties_file",), "none",
               "local only: a JSON file standing in for the Glue workflow run's properties "
               "(the local workflow runner passes it)"),
)

TRANSFORM_ARGUMENTS = (
    Documented(("source_path", "source_table"), "one is required",
               "raw landing root (`year=/month=/day=/hour=` of arrival time), or a catalog table "
               "`database.table` whose location is read"),
    Documented(("target_path", "target_table"), "one is required",
               "the curated table's folder, or a catalog table `database.table` (created at "
               "`--target_path` if missing)"),
    Documented(("table_format",), "`iceberg`",
               "`iceberg`: an Apache Iceberg table (format version 2), one atomic commit per run; "
               "`parquet`: plain `year=/month=/day=/hour=` folders (partitions written are "
               "registered in the catalog when `--target_table` is given)"),
    Documented(("replace_semantics",), "`false`",
               "`true` lets a run of one `--semantics` rewrite its days in a table that holds "
               "the other mode's rows"),
    Documented(("start_date", "end_date"), "yesterday (UTC)",
               "event-time days, both included; on Glue a workflow run's `start_date`/`end_date` "
               "run properties are used when present"),
    Documented(("semantics",), "`corrected`", "`corrected` or `athena`"),
    Documented(("source_format",), "`parquet`",
               "`parquet`, or `json` (JSON lines as the stream carries them: values may be "
               "strings, times epoch or ISO-8601)"),
    Documented(("late_hours",), "24",
               "readings arriving up to this many hours after `end_date` are included"),
    Documented(("lookback_minutes",), "60",
               "context read before `start_date` for the windows (`corrected` needs at least 20)"),
    Documented(("configuration_path",), "none",
               "the traffic centre's configuration (`mivconfig`): one `.xml` or `.xml.gz` file, "
               "in force for every reading, or a folder of dated snapshots "
               "(`miv-config-YYYY-MM-DD[THHMMSSZ].xml.gz`), each in force from its time; "
               "`corrected` makes its locations from it (without it every lane is a location "
               "of its own)"),
    Documented(("locations",), "all", "only these location ids (`uniqueid`) are written"),
    Documented(("max_days",), "400",
               "refuse longer ranges (a typo in a date should not start a ten-year backfill)"),
    Documented(("corrupt_files",), "`fail`",
               "`skip` leaves unreadable raw files out and lists them in the report"),
    Documented(("lock_expiry_minutes",), "60",
               "`parquet` format on S3: after this long a run's lock is taken over (set it to at "
               "least the job's timeout)"),
    Documented(("dry_run",), "`false`",
               "`true` (or `--dry_run` alone): say what the run would read, replace, leave and "
               "remove, and in which table, then stop; writes nothing and runs no Spark job"),
    *COMMON_ARGUMENTS,
)

SUMMARY_ARGUMENTS = (
    Documented(("source_path", "source_table"), "one is required",
               "the curated table (`traffic_minutes`): its folder, or its catalog name "
               "`database.table`"),
    Documented(("target_path", "target_table"), "one is required",
               "the summary table: its folder, or a catalog table `database.table` (an Iceberg "
               "table partitioned by `day`, created at `--target_path` if missing)"),
    Documented(("start_date", "end_date"), "the days the transform replaced, else yesterday (UTC)",
               "UTC days to summarise, both included; in a workflow run the transform's "
               "`curated_days` run property is used when these are not given"),
    *COMMON_ARGUMENTS,
)

# The special parameters AWS Glue passes to, or takes from, a job script's arguments
# ("Using job parameters in AWS Glue jobs", AWS Glue developer guide), without `--`.
GLUE_PARAMETERS = frozenset({
    "JOB_ID", "JOB_RUN_ID", "JOB_NAME", "WORKFLOW_NAME", "WORKFLOW_RUN_ID",
    "SECURITY_CONFIGURATION", "TempDir", "RedshiftTempDir", "encryption-type",
    "additional-python-modules", "python-modules-installer-option", "auto-scale-within-microbatch",
    "class", "conf", "continuous-log-conversionPattern", "continuous-log-logGroup",
    "continuous-log-logStreamPrefix", "customer-driver-env-vars", "customer-executor-env-vars",
    "datalake-formats", "disable-proxy-v2", "enable-auto-scaling",
    "enable-continuous-cloudwatch-log", "enable-continuous-log-filter", "enable-glue-datacatalog",
    "enable-job-insights", "enable-lakeformation-fine-grained-access", "enable-metrics",
    "enable-observability-metrics", "enable-rename-algorithm-v2",
    "enable-s3-parquet-optimized-committer", "enable-spark-ui", "executor-cores", "extra-files",
    "extra-jars", "extra-py-files", "job-bookmark-option", "job-bookmark-from", "job-bookmark-to",
    "job-language", "scriptLocation", "spark-event-logs-path", "use-postgres-driver",
    "user-jars-first", "write-shuffle-files-to-s3", "write-shuffle-spills-to-s3",
    "shuffle-storage-path", "enable-data-lineage", "continuation-option",
})


def documented_names(table: tuple[Documented, ...]) -> list[str]:
    return [name for entry in table for name in entry.names]


def given_names(argv: list[str]) -> list[str]:
    """The argument names in `sys.argv` (`--name value` or `--name=value`)."""
    return [token[2:].split("=", 1)[0] for token in argv[1:] if token.startswith("--")]


def given_arguments(argv: list[str]) -> dict[str, str]:
    """Every `--name value` pair in `sys.argv`, as given (for the run report)."""
    given, tokens = {}, argv[1:]
    for index, token in enumerate(tokens):
        if token.startswith("--"):
            name, equals, value = token[2:].partition("=")
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if not equals and following is not None and not following.startswith("--"):
                value = following
            given[name] = value
    return given


def unknown_argument(argv: list[str], own: list[str]) -> str | None:
    """A message for the first argument that is neither the job's nor Glue's, or None."""
    for name in given_names(argv):
        if name not in own and name not in GLUE_PARAMETERS:
            close = difflib.get_close_matches(name, own, n=1, cutoff=0.6)
            hint = f"; did you mean --{close[0]}?" if close else "; see --help"
            return f"unknown argument --{name}{hint}"
    return None


def markdown_table(table: tuple[Documented, ...]) -> str:
    """The README's table of the arguments."""
    lines = ["| argument | default | meaning |", "|---|---|---|"]
    for entry in table:
        names = " / ".join(f"`--{name}`" for name in entry.names)
        lines.append(f"| {names} | {entry.default} | {entry.meaning} |")
    return "\n".join(lines)


def help_text(program: str, usage: str, table: tuple[Documented, ...]) -> str:
    """`--help`: the usage line, then each argument with its default and meaning."""
    lines = [f"usage: {program} {usage}", "", "arguments:"]
    for entry in table:
        names = ", ".join(f"--{name}" for name in entry.names)
        lines.append(f"  {names}  (default: {entry.default.replace('`', '')})")
        lines += textwrap.wrap(entry.meaning.replace("`", ""), width=88,
                               initial_indent="      ", subsequent_indent="      ")
    lines += ["", "AWS Glue's own job parameters (--JOB_NAME, --TempDir, --conf, ...) are accepted."]
    return "\n".join(lines)

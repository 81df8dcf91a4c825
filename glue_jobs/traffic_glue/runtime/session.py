"""The local Spark session: the stand-in for Glue's on a laptop and in tests.

Glue 5.1 brings Iceberg (`--datalake-formats iceberg`) and S3A itself; locally the same
JVM libraries, pinned to Glue 5.1's versions, come from Maven Central through
`make setup` (`python -m tools.jars`) into `.jars/`, and this module puts them on the
classpath.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

from pyspark import SparkContext
from pyspark.sql import SparkSession

from traffic_glue.runtime import memory, metastore
from traffic_glue.store import iceberg, storage

# Settings both runtimes share; on Glue they are set on the job's session as well.
COMMON_CONF = {
    # Every event-time partition and every timestamp parse is UTC, whatever the host.
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.compression.codec": "snappy",
    # try_cast is used where input may be junk; keep Spark's lenient casts elsewhere too.
    "spark.sql.ansi.enabled": "false",
    # The run's counts are observations on the one write pass (`counting`). When the
    # shuffle's output turns out empty (every reading rejected or another day's), this
    # AQE rule replaces the plan after it with an empty relation, so the observations
    # there (kept readings, output rows) never report, and waiting for them would end
    # only at `counting.TIMEOUT_SECONDS` (Spark 3.5). The rule only ever fires on empty
    # stages, so leaving it out costs nothing on data (test_job runs an empty day).
    "spark.sql.adaptive.optimizer.excludedRules": (
        "org.apache.spark.sql.execution.adaptive.AQEPropagateEmptyRelation"
    ),
    # Spark's grouping looks each row up in a small first map (2^16 keys) and, once that
    # is full, in its general one too. A scan task of a backfill sums its readings into
    # far more keys (thirty days of `athena`: ~600 K per task), so nearly every reading
    # was looked up twice. Without the first map: thirty days of `athena` 110.7 and
    # 110.1 s -> 107.2 and 107.4 s (the scan's stage 46.5 -> 43.5 s); a day of either
    # mode the same or faster (docs/BENCHMARKS.md).
    "spark.sql.codegen.aggregate.map.twolevel.enabled": "false",
}

# Maven coordinates of the JVM libraries a local session needs, at Glue 5.1's versions:
# Iceberg 1.10.0 as Glue 5.1 bundles it, and S3A for the Hadoop 3.3.4 that pyspark 3.5.6
# ships (hadoop-aws 3.3.4 was built against aws-java-sdk-bundle 1.12.262).
JVM_PACKAGES = (
    "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:1.10.0",
    "org.apache.iceberg:iceberg-aws-bundle:1.10.0",
    "org.apache.hadoop:hadoop-aws:3.3.4",
    "com.amazonaws:aws-java-sdk-bundle:1.12.262",
    # Local only: the local catalog's metastore served to several processes at once
    # (runtime/metastore), at the Derby version pyspark bundles.
    metastore.SERVER_PACKAGE,
    metastore.CLIENT_PACKAGE,
    # Local only: local files through Java's own file API (`LOCAL_FILES_CONF`).
    "com.globalmentor:hadoop-bare-naked-local-fs:0.1.0",
)

# Local files (`file:`) through GlobalMentor's Hadoop file system, built for Hadoop 3.3.4,
# not Hadoop's own. Without Hadoop's native library (not on PyPI or Maven Central),
# Hadoop's local file system runs `chmod` in a process of its own for every file and
# folder it makes (`RawLocalFileSystem.setPermission`): a tiny run of the transform made
# 83 (a data file, a partition folder, a metadata file: one each), ~4 ms of the JVM's
# time apiece, and a year's backfill ~17,900. This one sets the same permissions through
# java.nio. A rename onto an existing file replaces it (rename(2); the Hive wrapper that
# Spark's jars registered for `file:` refused): `storage.rename` refuses it itself, as
# S3A does, and Iceberg's commits look first. S3 (`s3://`, `s3a://`) is untouched, and
# on Glue no local session is made: nothing changes there.
LOCAL_FILES_CONF = {"spark.hadoop.fs.file.impl": "com.globalmentor.apache.hadoop.fs.BareLocalFileSystem"}

# A local master's driver (its RPC and block manager, which take no password) listens on
# the loopback address only. Spark's default is the host's name, and where that resolves
# to loopback (as on most laptops), the first address of another interface instead: the
# machine's address on its network. A local[*] session has no executor elsewhere to
# serve. A master of a cluster (TRAFFIC_GLUE_MASTER=spark://...) keeps Spark's default.
LOOPBACK_CONF = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
JARS_DIR = Path(os.environ.get("TRAFFIC_GLUE_JARS_DIR", Path(__file__).resolve().parents[3] / ".jars"))


# A class-data-sharing archive of the classes a local run loads (dumped by `make setup`:
# python -m tools.class_archive). A cold JVM spends most of its first seconds reading and
# verifying Spark's, Iceberg's and Hive's classes from jars; mapped from this archive, a
# session starts in about half the time. The JVM checks that the archive was made by the
# same JDK from the same jars and, if not, starts without it: the logs of that check are
# off, since nothing is wrong then but a slower start.
CLASS_ARCHIVE = JARS_DIR / "classes.jsa"
CLASS_ARCHIVE_ENV = "TRAFFIC_GLUE_CLASS_ARCHIVE"  # another archive's path, or "off"


# The JIT's optimising compiler (C2) takes a method once it has run 5,000 times or looped
# 40,000 times. A run's start and Spark's planning run thousands of methods that often,
# and on two cores C2's thread took 14.9 CPU-s beside the 23 of two days' tasks of
# `athena` (async-profiler). Ten times those counts leave C2 to what a run's rows keep hot.
# Measured with the README's settings (docs/BENCHMARKS.md): a day of the full network
# 36.8-37.6 -> 35.1-35.3 s in `corrected`, 23.9-24.3 -> 21.7-22.9 s in `athena`; seven
# days 63.5 -> 60.3 s in `athena`; thirty days 203.5 -> 190.7 s. Local sessions only:
# Glue starts its own JVMs. (The suite's JVMs compile with C1 alone: conftest.)
LATER_C2 = ("-XX:Tier4InvocationThreshold=50000", "-XX:Tier4MinInvocationThreshold=6000",
            "-XX:Tier4CompileThreshold=150000", "-XX:Tier4BackEdgeThreshold=400000")


# The parallel collector, not G1 (the JVM's choice on two cores): a local run is a batch
# whose pauses nobody waits on, and G1 spends its tasks' time on keeping pauses short.
# With the README's settings: three days of `athena` 30.5-31.2 -> 28.8-29.1 s (two runs
# each, interleaved); thirty days 146.5 -> 134.5 s, peak memory 1.99 -> 1.85 GiB
# (docs/BENCHMARKS.md). Local sessions only: Glue starts its own JVMs. A collector the
# environment's JVM options already name (the suite's serial one) is kept: the JVM
# refuses two.
THROUGHPUT_GC = ("-XX:+UseParallelGC",)
_JVM_OPTION_VARIABLES = ("SPARK_SUBMIT_OPTS", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS")


def collector_options(environ=os.environ) -> list[str]:
    """THROUGHPUT_GC, unless the environment's JVM options choose a collector."""
    chosen = [option for name in _JVM_OPTION_VARIABLES for option in environ.get(name, "").split()
              if option.startswith("-XX:+Use") and option.endswith("GC")]
    return [] if chosen else list(THROUGHPUT_GC)


def class_archive_options(environ=os.environ) -> list[str]:
    """The JVM options that map the class archive, if there is one."""
    chosen = environ.get(CLASS_ARCHIVE_ENV, "")
    if chosen == "off":
        return []
    archive = Path(chosen) if chosen else CLASS_ARCHIVE
    if not archive.is_file():
        return []
    return [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds*=off"]


# Spark's event logs of local sessions: what Spark's history server shows as the Spark UI
# of a run, during and after it (`make history`, tools/history.py). On Glue no session is
# built here (runtime.glue): the job's `--enable-spark-ui` and `--spark-event-logs-path`
# (the workflow's template) make Glue write them.
EVENT_LOG_DIR = Path(__file__).resolve().parents[3] / ".local" / "spark-events"
EVENT_LOG_ENV = "TRAFFIC_GLUE_EVENT_LOG_DIR"  # another folder, or "off" (the test suite's)


def event_log_dir(environ=os.environ) -> Path | None:
    """Where a new local session writes its event log; None when they are off."""
    chosen = environ.get(EVENT_LOG_ENV, "")
    if chosen == "off":
        return None
    return Path(chosen).resolve() if chosen else EVENT_LOG_DIR


def event_log_conf(folder: Path) -> dict[str, str]:
    """Event logs into `folder`, compressed, in rolling files. A log grows with the run's
    tasks (each task's end is about 5 kB of JSON) and plans (each adaptive re-plan is
    logged whole): zstd writes about a sixth of it (the transform of the sample's two
    days: 1.1 MB of JSON, 166 kB written), and rolling files (a folder
    `eventlog_v2_<app id>/` per application) keep a year's backfill out of one unbounded
    file and let the history server read a running application's log as it grows."""
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": folder.as_uri(),
        "spark.eventLog.compress": "true",
        "spark.eventLog.compression.codec": "zstd",
        "spark.eventLog.rolling.enabled": "true",
        "spark.eventLog.rolling.maxFileSize": "128m",  # Spark's default, said here
    }


class MissingJarsError(RuntimeError):
    """The local JVM libraries are not fetched yet."""


def jar_name(coordinate: str) -> str:
    _, artifact, version = coordinate.split(":")
    return f"{artifact}-{version}.jar"


def local_jars(folder: Path = JARS_DIR) -> list[Path]:
    """The pinned jars in `folder`; `MissingJarsError` naming the command that fetches them."""
    jars = [folder / jar_name(c) for c in JVM_PACKAGES]
    missing = [j.name for j in jars if not j.is_file()]
    if missing:
        raise MissingJarsError(
            f"missing JVM libraries in {folder}: {', '.join(missing)}; run `make setup` "
            "(or python -m tools.jars) to fetch them from Maven Central"
        )
    return jars


def spark_jars_dir() -> Path:
    """Spark's own jars: `$SPARK_HOME/jars` (the Glue image's Spark), else pyspark's."""
    if os.environ.get("SPARK_HOME"):
        return Path(os.environ["SPARK_HOME"]) / "jars"
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "jars"


def local_classpath() -> list[Path]:
    """The driver's classpath before Spark's own jars: Spark's log4j API first, then the
    pinned jars. iceberg-aws-bundle carries a copy of log4j's API without its Java 9
    classes; first on the classpath, it printed "WARNING: sun.reflect.Reflection.
    getCallerClass is not supported. This will impact performance." at every start."""
    return [*spark_log4j_api(), *local_jars()]


def spark_log4j_api() -> list[Path]:
    return sorted(spark_jars_dir().glob("log4j-api-*.jar"))


# WARN and above, less what a user cannot act on (the metastore's chatter, above all).
LOG_CONFIG = Path(__file__).resolve().parents[1] / "log4j2.properties"

# Input splits per core: Spark packs a day's few dozen hour files into about one split
# per core, of unequal sizes, and the last one runs alone; three per core even it out.
SPLITS_PER_CORE = 3
MIN_SPLITS = "spark.sql.files.minPartitionNum"


def apply_job_conf(spark: SparkSession) -> None:
    """This project's settings on a running session (Glue's, or a local one)."""
    for key, value in COMMON_CONF.items():
        spark.conf.set(key, value)
    if spark.conf.get(MIN_SPLITS, None) is None:  # a value the user set wins
        cores = spark.sparkContext.defaultParallelism
        spark.conf.set(MIN_SPLITS, str(SPLITS_PER_CORE * cores))
    look_up_once(spark)


# The JVM classes pyspark finds by name through the gateway's view on every use: each
# `F.col`, `F.lit`, ... asks for `functions` (and each column list for `PythonUtils`).
PYSPARK_LOOKUPS = {"functions": "org.apache.spark.sql.functions",
                   "PythonUtils": "org.apache.spark.api.python.PythonUtils",
                   "SparkSession": "org.apache.spark.sql.SparkSession"}


def look_up_once(spark: SparkSession) -> None:
    """pyspark's `jvm.functions.col` costs two questions to the JVM before the call: which
    class `functions` is (a class looked for in each of pyspark's imported packages, all
    jars searched for each miss) and what `col` is in it (`storage.StaticMethods`). The
    gateway's view answers both from here instead: a tiny run asks ~1,000 questions
    fewer (0.25 s of 3.6). Where pyspark stops asking the view, this does nothing."""
    view = spark.sparkContext._jvm
    for name, fqn in PYSPARK_LOOKUPS.items():
        setattr(view, name, storage.java_class(spark, fqn))


def s3_endpoint(environ=os.environ) -> str | None:
    """The S3 endpoint boto3 would use: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`."""
    return environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None


def s3a_conf(endpoint: str | None) -> dict[str, str]:
    """S3A for `s3://` and `s3a://`, as on Glue 5.1; pointed at `endpoint` when one is set
    (a local S3 API such as moto's server: path-style, plain HTTP where it says so)."""
    conf = {"spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem"}
    if endpoint:
        conf.update({
            # Keys from fs.s3a.access.key/secret.key or the environment only: a local
            # endpoint has no instance metadata service to ask, so nothing may try it.
            "spark.hadoop.fs.s3a.aws.credentials.provider": (
                "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider,"
                "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"
            ),
            "spark.hadoop.fs.s3a.endpoint": endpoint,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https")).lower(),
            # A local endpoint has no region of its own; S3A must not look one up.
            "spark.hadoop.fs.s3a.endpoint.region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        })
    return conf


CODEGEN_CACHE_ENTRIES = 1000
HIVE_RESOURCES_KEY = "hive.downloaded.resources.dir"
HIVE_RESOURCES_FOLDER = "hive_resources"  # under the local catalog's folder


def end_local_jvm() -> None:
    """py4j's gateway shut down in the JVM this process launched, so that the JVM ends as
    soon as its stdin closes: registered to run at this process's exit by the
    `local_spark_session` that launched the JVM.

    At its exit the JVM waits up to 300 ms, in steps of 10 ms, for threads inside native
    code to stop (HotSpot's `VM_Exit`), and the gateway's thread accepting connections is
    one until the gateway is shut down: a daily rerun's JVM ended 0.45-0.57 s after the
    job's last line, 0.13-0.21 s with this (docs/BENCHMARKS.md). Spark still stops in the
    JVM's shutdown hook, as before. Nothing may ask the JVM anything after this (py4j's
    finalizers of Python's references send nothing once the gateway is shut). Nothing
    happens where this process did not launch the JVM (Glue and spark-submit hand it the
    gateway: no `proc`), or where that JVM is gone already."""
    gateway = SparkContext._gateway
    process = getattr(gateway, "proc", None)
    if process is None or process.poll() is not None:
        return
    gateway.shutdown()  # errors of its sockets are py4j's to swallow: it logs them


def local_spark_session(
    app_name: str = "traffic-glue",
    shuffle_partitions: int | None = None,
    catalog_dir: str | None = None,
    master: str | None = None,
    extra_conf: dict[str, str] | None = None,
    log_level: str = "WARN",
) -> SparkSession:
    """A plain PySpark session: `local[*]`, UTC, Iceberg and S3A, optionally Spark's catalog.

    `catalog_dir` turns on the Hive catalog with its Derby metastore (served by
    `runtime.metastore` to every process on the folder) and warehouse under that folder:
    the local stand-in for the Glue Data Catalog, which also holds the Iceberg tables
    (Iceberg's session catalog over the same metastore).
    `extra_conf` is set last (e.g. `iceberg.glue_session_catalog_conf`, the Glue catalog).
    """
    active = SparkSession.getActiveSession()
    if active is not None and catalog_dir is None:
        # A job called in-process (tests, the local workflow runner) shares the
        # caller's session as it is; only the time zone is not negotiable.
        active.conf.set("spark.sql.session.timeZone", "UTC")
        return active
    master = master or os.environ.get("TRAFFIC_GLUE_MASTER", "local[*]")
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master)
        .config("spark.driver.memory", memory.driver_memory())
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Plenty for a local run; AQE coalesces what a small input does not need.
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions or 16))
        # Local folders list faster on the driver than a Spark job starts (about a
        # second on every run); on Glue, S3 listings keep Spark's parallel default.
        .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000")
        # The classes Spark generates and compiles for a plan's stages, kept for the next
        # plan of the same shape: one `corrected` run needs ~90, an `athena` run ~40, and
        # Spark's 100 made every run in a JVM that had run another kind compile its ~75
        # again (6 ms each: 0.45 s of a tiny run). A JVM running several jobs (the local
        # workflow, the suite) compiles each kind once.
        .config("spark.sql.codegen.cache.maxEntries", str(CODEGEN_CACHE_ENTRIES))
        # On the JVM's classpath from its start (local mode: the driver runs the tasks):
        # spark.jars would copy the 376 MB into every session's scratch folder.
        .config("spark.driver.extraClassPath", os.pathsep.join(str(j) for j in local_classpath()))
    )
    loopback = LOOPBACK_CONF if master.startswith("local") else {}
    for key, value in {**loopback, **iceberg.EXTENSIONS_CONF, **LOCAL_FILES_CONF, **s3a_conf(s3_endpoint())}.items():
        builder = builder.config(key, value)
    java_options = [*class_archive_options(), *LATER_C2, *collector_options(), f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}"]
    if catalog_dir:
        catalog = Path(catalog_dir).resolve()
        catalog.mkdir(parents=True, exist_ok=True)
        builder = (
            builder.enableHiveSupport()
            .config("spark.sql.catalogImplementation", "hive")
            .config("spark.sql.warehouse.dir", str(catalog / "warehouse"))
            # Hive's session makes a folder for the resources a query downloads (ADD JAR;
            # the jobs add none), by default a new `<session id>_resources` in the
            # system's temporary folder, which Spark never removes: one left in /tmp by
            # every run and prompt. One folder under the catalog's instead.
            .config(f"spark.hadoop.{HIVE_RESOURCES_KEY}", str(catalog / HIVE_RESOURCES_FOLDER))
        )
        # The metastore over Derby's network server, shared by every process on this
        # catalog (a `make sql` prompt while a job runs); started here if none runs.
        server = metastore.ensure(catalog, JARS_DIR)
        for key, value in metastore.connection_conf(server).items():
            builder = builder.config(key, value)
        java_options.append(f"-Dderby.system.home={catalog}")
        for key, value in iceberg.local_session_catalog_conf().items():
            builder = builder.config(key, value)
    builder = builder.config("spark.driver.extraJavaOptions", " ".join(java_options))
    events = event_log_dir()
    if events is not None:
        events.mkdir(parents=True, exist_ok=True)  # Spark refuses to start without it
        for key, value in event_log_conf(events).items():
            builder = builder.config(key, value)
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    launching = SparkContext._gateway is None  # the first session of this process
    session = builder.getOrCreate()
    if launching:
        atexit.register(end_local_jvm)
    if catalog_dir:
        metastore.ensure_lock_tables(session, catalog, server)
    apply_job_conf(session)
    write_no_checksum_files(session)
    session.sparkContext.setLogLevel(log_level)
    return session


def write_no_checksum_files(spark: SparkSession) -> None:
    """Local files are written without Hadoop's `.crc` files beside them.

    Hadoop's local file system writes a checksum file beside every file it writes and,
    without Hadoop's native library (not on PyPI or Maven Central), sets each one's
    permissions by running `chmod` in a process of its own: a tiny local run made ~130
    such processes, 46 of them for checksum files (~4 ms each; 0.25 s of the run with
    the time their writing took). What they guard against, a local disk handing back
    other bytes than it was given, is rare; S3 (the tables on AWS) has no such files;
    and files that have them (written before) are still checked when read."""
    file_system = storage.java_class(spark, "org.apache.hadoop.fs.FileSystem")
    file_system.getLocal(spark.sparkContext._jsc.hadoopConfiguration()).setWriteChecksum(False)

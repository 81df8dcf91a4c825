"""traffic_glue.runtime.session: the local Spark session, Glue's stand-in.

One JVM per process: the settings of the suite's own session (tests/conftest.py:
`local_spark_session(app_name="traffic-glue-tests", shuffle_partitions=2)`) are read back
from it; what a new session would be given (a catalog folder, the master, `extra_conf`)
is read from a stand-in for `SparkSession` that records the builder's calls and starts
nothing. The pinned jars and `tools.jars` are tests/test_jars.py's.
"""

from __future__ import annotations

import functools
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from py4j.java_gateway import java_import
from pyspark.sql import functions as F

from tests import listening
from tests.factories import T0
from traffic_glue.runtime import session
from traffic_glue.runtime.session import COMMON_CONF, JVM_PACKAGES, MIN_SPLITS, MissingJarsError
from traffic_glue.store import iceberg, storage

ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
S3A = "org.apache.hadoop.fs.s3a.S3AFileSystem"
BARE_LOCAL_FILES = "com.globalmentor.apache.hadoop.fs.BareLocalFileSystem"
JAR_NAMES = ["iceberg-spark-runtime-3.5_2.12-1.10.0.jar", "iceberg-aws-bundle-1.10.0.jar",
             "hadoop-aws-3.3.4.jar", "aws-java-sdk-bundle-1.12.262.jar",
             "derbynet-10.14.2.0.jar", "derbyclient-10.14.2.0.jar", "hadoop-bare-naked-local-fs-0.1.0.jar"]
MOTO = "http://127.0.0.1:5000"
# The local JVM's optimising compiler takes a method ten times later than the JVM's default.
LATER_C2 = ("-XX:Tier4InvocationThreshold=50000 -XX:Tier4MinInvocationThreshold=6000 "
            "-XX:Tier4CompileThreshold=150000 -XX:Tier4BackEdgeThreshold=400000")


# --- the suite's session --------------------------------------------------------------------


def test_the_suites_session_is_local_utc_with_few_shuffle_partitions_and_no_ui(spark):
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.app.name") == "traffic-glue-tests"
    assert conf.get("spark.master") == os.environ.get("TRAFFIC_GLUE_MASTER", "local[*]")
    assert conf.get("spark.ui.enabled") == "false"
    assert conf.get("spark.sql.sources.parallelPartitionDiscovery.threshold") == "100000"
    # A static setting: the JVM's code generator reads it once, at its first plan.
    assert spark.conf.get("spark.sql.codegen.cache.maxEntries") == "1000"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert {key: spark.conf.get(key) for key in COMMON_CONF} == COMMON_CONF
    assert spark.conf.get(MIN_SPLITS) == str(3 * spark.sparkContext.defaultParallelism)


@pytest.mark.skipif(not listening.has_proc_net(), reason="reads Linux's /proc/net")
def test_the_suites_jvm_listens_on_loopback_alone(spark):
    """The driver's RPC and block manager, and py4j's gateway: none on the machine's
    network address, which Spark's default picks where the host's name is loopback."""
    sockets = listening.listening([spark.sparkContext._gateway.proc.pid])
    assert len(sockets) >= 3, sockets  # py4j, the driver's RPC, its block manager
    assert {address for address, _ in sockets} <= listening.LOOPBACK, sockets


def test_the_settings_the_job_sets_on_glue_are_the_ones_docs_list():
    """docs/GLUE_VS_ATHENA.md, "Which Spark settings Glue sets, and which the job sets":
    each of COMMON_CONF (set on Glue's session too: `apply_job_conf`), with its value."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "GLUE_VS_ATHENA.md").read_text()
    listed = {cells[1].strip().strip("`"): cells[2] for cells in
              (line.split("|") for line in text.splitlines() if line.startswith("| `spark."))}
    for key, value in COMMON_CONF.items():
        assert key in listed, key
        assert value.rsplit(".", 1)[-1] in listed[key], (key, listed[key])


class _Gateway:
    """py4j's gateway as `session.end_local_jvm` sees it: the JVM's process if this one
    launched it (`proc`), and whether it was shut down."""

    def __init__(self, proc):
        self.proc, self.shut = proc, False

    def shutdown(self):
        self.shut = True


@pytest.mark.parametrize("proc, shut", [
    (None, False),  # Glue, spark-submit: the JVM launched this process
    (SimpleNamespace(poll=lambda: 1), False),  # the JVM is gone already
    (SimpleNamespace(poll=lambda: None), True),  # this process's JVM, running
], ids=["launched-elsewhere", "gone", "running"])
def test_only_a_running_jvm_this_process_launched_is_let_go(monkeypatch, proc, shut):
    from pyspark import SparkContext

    gateway = _Gateway(proc)
    monkeypatch.setattr(SparkContext, "_gateway", gateway)
    session.end_local_jvm()
    assert gateway.shut is shut


# A process that launches its JVM through `local_spark_session`: whether the gateway
# accepts a connection before and after Python's exit handlers run, then the JVM's own
# end once its stdin closes.
_LET_GO = """
import atexit, socket, time
from pyspark import SparkContext
from traffic_glue.runtime import session

def accepts(port, for_seconds=0.0):
    # Whether the port still takes a connection, asked until it does not or
    # `for_seconds` pass (the gateway closes its socket on a thread of its own).
    deadline = time.monotonic() + for_seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=10).close()
        except ConnectionRefusedError:
            return "refuses"
        if time.monotonic() >= deadline:
            return "accepts"
        time.sleep(0.02)

spark = session.local_spark_session(app_name="let-go")
assert session.local_spark_session() is spark  # a second call launches nothing
print("count", spark.range(3).count())
gateway = SparkContext._gateway
port = gateway.gateway_parameters.port
print("before", accepts(port))
atexit._run_exitfuncs()  # what the process's exit runs
print("after", accepts(port, for_seconds=30))
gateway.proc.stdin.close()
print("jvm", gateway.proc.wait(timeout=120))
"""


def test_the_jvm_a_process_launched_is_let_go_when_it_exits(tmp_path):
    """`local_spark_session`, launching the JVM, has `end_local_jvm` run at the
    process's exit: py4j's gateway stops accepting connections, and the JVM, its stdin
    closed, ends by itself with status 0 (its shutdown hook stops Spark)."""
    from tests.job_helpers import job_env

    done = subprocess.run([sys.executable, "-c", _LET_GO], env=job_env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:4] == ["count 3", "before accepts", "after refuses", "jvm 0"], \
        done.stdout + done.stderr[-3000:]


def test_the_suites_jvms_take_the_suites_options(spark):
    """conftest's TEST_JVM_OPTIONS (unless the environment gives its own), through
    SPARK_SUBMIT_OPTS, which the jobs' processes inherit."""
    from tests.conftest import TEST_JVM_OPTIONS

    runtime = storage.java_class(spark, "java.lang.management.ManagementFactory").getRuntimeMXBean()
    assert set(os.environ["SPARK_SUBMIT_OPTS"].split()) <= set(runtime.getInputArguments())
    assert {"-XX:TieredStopAtLevel=1", "-XX:-BytecodeVerificationRemote"} <= set(TEST_JVM_OPTIONS.split())


def test_the_suites_jvms_keep_their_temporary_files_in_the_suites_folder(spark):
    """conftest's folder, which the suite removes as it ends: the JVM's temporary folder
    (where LZ4 and Snappy unpack their native libraries) and Spark's scratch folders
    (its block manager's, the session's files) are in it, not in /tmp."""
    from tests.conftest import JVM_TEMP_ENV

    folder = Path(os.environ[JVM_TEMP_ENV])
    assert folder.is_dir() and folder != Path(tempfile.gettempdir())
    system = storage.java_class(spark, "java.lang.System")
    assert Path(system.getProperty("java.io.tmpdir")) == folder
    disk = spark.sparkContext._jsc.sc().env().blockManager().diskBlockManager()
    scratch = [Path(str(local.getPath())) for local in disk.localDirs()]
    assert scratch and all(path.parent == folder for path in scratch), scratch


def test_the_suites_session_reads_and_writes_times_in_utc(spark):
    # 2020-04-07 00:00 is T0 in UTC, whatever the host's zone (Brussels: T0 - 7200).
    row = spark.sql("SELECT CAST(TIMESTAMP '2020-04-07 00:00:00' AS BIGINT) AS t0, "
                    f"CAST(CAST({T0 + 90} AS TIMESTAMP) AS STRING) AS arrival, "
                    "hour(CAST(0 AS TIMESTAMP)) AS epoch_hour").first()
    assert (row.t0, row.arrival, row.epoch_hour) == (T0, "2020-04-07 00:01:30", 0)


def test_the_pinned_jars_are_on_the_jvms_class_path_from_its_start(spark):
    assert session.jar_name(JVM_PACKAGES[0]) == JAR_NAMES[0]
    class_path = spark.sparkContext.getConf().get("spark.driver.extraClassPath").split(os.pathsep)
    # Spark's own log4j API first: iceberg-aws-bundle's copy lacks its Java 9 classes.
    assert [os.path.basename(jar) for jar in class_path] == ["log4j-api-2.20.0.jar", *JAR_NAMES]
    assert class_path == [str(jar) for jar in session.local_classpath()]
    jvm = spark.sparkContext._jvm
    stack_locator = jvm.java.lang.Class.forName("org.apache.logging.log4j.util.StackLocator")
    assert stack_locator.getProtectionDomain().getCodeSource().getLocation().getPath() == str(
        session.spark_jars_dir() / "log4j-api-2.20.0.jar")
    for name in ("org.apache.iceberg.spark.SparkSessionCatalog", S3A, "org.apache.iceberg.aws.glue.GlueCatalog"):
        assert jvm.java.lang.Class.forName(name).getName() == name


def test_the_suites_session_has_icebergs_extensions_and_s3a_for_s3(spark):
    assert spark.conf.get("spark.sql.extensions") == ICEBERG_EXTENSIONS
    assert spark.sparkContext._jsc.hadoopConfiguration().get("fs.s3.impl") == S3A


def _processes_started() -> int:
    """The machine's count of processes started since it booted (/proc/stat)."""
    with open("/proc/stat") as counters:  # not `stat`: the module's name here
        return next(int(line.split()[1]) for line in counters if line.startswith("processes "))


def test_local_files_get_their_permissions_from_java_not_a_chmod_process_each(spark, tmp_path):
    """session.LOCAL_FILES_CONF: Hadoop's own local file system, without its native
    library, runs `chmod` for every file and folder it makes."""
    assert session.LOCAL_FILES_CONF == {"spark.hadoop.fs.file.impl": BARE_LOCAL_FILES}
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    assert hadoop.get("fs.file.impl") == BARE_LOCAL_FILES
    jvm = spark.sparkContext._jvm
    local = jvm.org.apache.hadoop.fs.FileSystem.getLocal(hadoop)
    assert local.getClass().getName() == BARE_LOCAL_FILES
    assert local.getRawFileSystem().getClass().getName() == "com.globalmentor.apache.hadoop.fs.NakedLocalFileSystem"

    target = tmp_path / "file"
    target.write_text("x")
    path = jvm.org.apache.hadoop.fs.Path(target.as_uri())
    modes = [jvm.org.apache.hadoop.fs.permission.FsPermission.createImmutable(m) for m in (0o600, 0o640)]
    started = _processes_started()
    for turn in range(200):
        local.setPermission(path, modes[turn % 2])
    # Hadoop's own started 400 here (a `chmod` process and the thread reading its output
    # for each call; the count has both); the margin is for the other worker's meanwhile.
    assert _processes_started() - started < 100
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert local.getFileStatus(path).getPermission().toShort() == 0o640

    # What Spark writes gets the modes it got before: files 0666, folders 0777, less the umask.
    umask = os.umask(0)
    os.umask(umask)
    spark.range(3).coalesce(1).write.parquet(str(tmp_path / "written"))
    (written,) = (tmp_path / "written").glob("*.parquet")
    assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "written").stat().st_mode) == 0o777 & ~umask


def test_the_jvm_compiles_with_c2_ten_times_later_than_its_default(spark):
    """session.LATER_C2 reaches the running JVM (the suite's compiles with C1 alone, which
    leaves the thresholds unused, but a JVM refuses to start on a flag it does not know)."""
    jvm = spark.sparkContext._jvm
    hotspot = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(
        jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean"))
    defaults = {"Tier4InvocationThreshold": 5000, "Tier4MinInvocationThreshold": 600,
                "Tier4CompileThreshold": 15000, "Tier4BackEdgeThreshold": 40000}  # JDK 17's
    assert {name: int(hotspot.getVMOption(name).getValue()) for name in defaults} == {
        name: 10 * value for name, value in defaults.items()}


def test_the_jvm_logs_with_the_projects_log4j_config(spark):
    assert session.LOG_CONFIG.is_file()
    assert "rootLogger.level = warn" in session.LOG_CONFIG.read_text().splitlines()
    options = spark.sparkContext.getConf().get("spark.driver.extraJavaOptions")
    # Spark puts its own options (--add-opens ...) before the session's.
    assert options.endswith(f" -Dlog4j2.configurationFile={session.LOG_CONFIG.as_uri()}")
    assert "-Dderby.system.home" not in options  # no catalog folder
    jvm = spark.sparkContext._jvm
    assert jvm.java.lang.System.getProperty("log4j2.configurationFile") == session.LOG_CONFIG.as_uri()


def test_an_active_session_is_shared_as_it_is_and_only_its_time_zone_set(spark):
    spark.conf.set("spark.sql.session.timeZone", "Europe/Brussels")
    try:
        shared = session.local_spark_session(app_name="another", shuffle_partitions=99)
        assert shared.sparkContext is spark.sparkContext
        assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
        assert shared.conf.get("spark.sql.shuffle.partitions") == "2"
        assert spark.sparkContext.appName == "traffic-glue-tests"
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


def test_apply_job_conf_restores_the_common_settings_and_keeps_a_users_split_count(spark):
    saved = {key: spark.conf.get(key, None) for key in (*COMMON_CONF, MIN_SPLITS)}
    try:
        spark.conf.set("spark.sql.session.timeZone", "America/New_York")
        spark.conf.set("spark.sql.ansi.enabled", "true")
        spark.conf.unset(MIN_SPLITS)
        session.apply_job_conf(spark)
        assert {key: spark.conf.get(key) for key in COMMON_CONF} == COMMON_CONF
        assert spark.conf.get(MIN_SPLITS) == str(session.SPLITS_PER_CORE * spark.sparkContext.defaultParallelism)

        spark.conf.set(MIN_SPLITS, "7")
        session.apply_job_conf(spark)
        assert spark.conf.get(MIN_SPLITS) == "7"
    finally:
        for key, value in saved.items():
            spark.conf.set(key, value) if value is not None else spark.conf.unset(key)


FUNCTIONS = "org.apache.spark.sql.functions"


def test_pysparks_functions_cost_their_call_alone(spark, jvm_commands):
    """pyspark asks the gateway's view which class `functions` is and then what `col` is
    in it before each call; the session answers both from Python (`look_up_once`)."""
    F.col("speed"), F.lit(0)  # each function's first use asks what it is
    jvm_commands.clear()
    assert str(F.col("speed")._jc) == "speed" and len(jvm_commands) == 2  # the call, then toString
    assert str(F.lit(3)._jc) == "3" and len(jvm_commands) == 4
    view = spark.sparkContext._jvm
    assert view.functions is storage.java_class(spark, FUNCTIONS)
    assert {name: getattr(view, name)._fqn for name in session.PYSPARK_LOOKUPS} == session.PYSPARK_LOOKUPS

    # py4j's own way, on a view as pyspark makes it: three round trips for one call.
    other = spark.sparkContext._gateway.new_jvm_view()
    java_import(other, "org.apache.spark.sql.*")
    jvm_commands.clear()
    getattr(other.functions, "col")("speed")
    assert [command.split("\n")[:2] for command in jvm_commands] == [["r", "u"], ["r", "m"], ["c", "z:" + FUNCTIONS]]


def test_a_local_session_writes_no_checksum_files_and_still_checks_those_it_finds(spark, tmp_path):
    storage.write_text(spark, str(tmp_path / "new.txt"), "written now")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.txt"]
    # A file written with its checksum file, as Hadoop's default writes it.
    local = storage.java_class(spark, "org.apache.hadoop.fs.FileSystem").getLocal(
        spark.sparkContext._jsc.hadoopConfiguration())
    local.setWriteChecksum(True)
    try:
        storage.write_text(spark, str(tmp_path / "old.txt"), "written before")
    finally:
        local.setWriteChecksum(False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".old.txt.crc", "new.txt", "old.txt"]
    assert storage.read_text(spark, str(tmp_path / "old.txt")) == "written before"
    (tmp_path / "old.txt").write_text("written BEFORE")  # as long, other bytes
    with pytest.raises(Exception, match="Checksum error"):
        storage.read_text(spark, str(tmp_path / "old.txt"))


# --- S3A and the jars, without Spark ------------------------------------------------------------


@pytest.mark.parametrize("environ, endpoint", [
    ({}, None),
    ({"AWS_ENDPOINT_URL": MOTO}, MOTO),
    ({"AWS_ENDPOINT_URL": MOTO, "AWS_ENDPOINT_URL_S3": "http://s3.local:9000"}, "http://s3.local:9000"),
    ({"AWS_ENDPOINT_URL_S3": "", "AWS_ENDPOINT_URL": ""}, None),  # set but empty: none
    ({"AWS_ENDPOINT_URL_GLUE": MOTO}, None),  # another service's
])
def test_s3_endpoint_is_the_one_boto3_would_use(environ, endpoint):
    assert session.s3_endpoint(environ) == endpoint


def test_s3a_without_an_endpoint_only_serves_s3_urls():
    assert session.s3a_conf(None) == {"spark.hadoop.fs.s3.impl": S3A}
    assert session.s3a_conf("") == {"spark.hadoop.fs.s3.impl": S3A}


def test_s3a_at_a_local_endpoint_is_path_style_plain_http_with_keys_from_conf_or_env(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert session.s3a_conf(MOTO) == {
        "spark.hadoop.fs.s3.impl": S3A,
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider,"
            "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"),
        "spark.hadoop.fs.s3a.endpoint": MOTO,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.endpoint.region": "eu-west-1",
    }


def test_s3a_at_an_https_endpoint_uses_tls_and_a_region_by_default(monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    conf = session.s3a_conf("https://s3.local:9000")
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "us-east-1"


def test_jar_name_is_artifact_and_version_and_wants_three_parts():
    assert session.jar_name("com.amazonaws:aws-java-sdk-bundle:1.12.262") == "aws-java-sdk-bundle-1.12.262.jar"
    assert [session.jar_name(c) for c in JVM_PACKAGES] == JAR_NAMES
    with pytest.raises(ValueError):
        session.jar_name("org.apache.hadoop:hadoop-aws:jar:3.3.4")  # with a packaging: not a pin


def test_missing_jars_are_named_each_and_only_they(tmp_path):
    (tmp_path / JAR_NAMES[0]).write_bytes(b"jar")
    (tmp_path / JAR_NAMES[2]).mkdir()  # a folder of the jar's name is no jar
    with pytest.raises(MissingJarsError) as missing:
        session.local_jars(tmp_path)
    assert str(missing.value) == (
        f"missing JVM libraries in {tmp_path}: {', '.join(JAR_NAMES[1:])}; "
        "run `make setup` (or python -m tools.jars) to fetch them from Maven Central")


# --- a new session's settings, through a recording stand-in ---------------------------------------


class _Builder:
    """`SparkSession.builder` as `local_spark_session` uses it: each setting recorded, in order."""

    def __init__(self):
        self.conf: dict[str, str] = {}
        self.hive = False
        self.built = None

    def appName(self, name):
        return self.config("spark.app.name", name)

    def master(self, master):
        return self.config("spark.master", master)

    def config(self, key, value):
        self.conf[key] = value
        return self

    def enableHiveSupport(self):
        self.hive = True
        return self

    def getOrCreate(self):
        settings = dict(self.conf)
        self.built = SimpleNamespace(
            conf=SimpleNamespace(get=lambda key, default=None: settings.get(key, default),
                                 set=settings.__setitem__),
            sparkContext=SimpleNamespace(defaultParallelism=4,
                                         setLogLevel=lambda level: settings.update(log=level)),
            settings=settings,
        )
        return self.built


@pytest.fixture
def builder(monkeypatch, tmp_path):
    """No active session, a recording builder, and the four jars (empty files) in a folder."""
    monkeypatch.delenv("TRAFFIC_GLUE_MASTER", raising=False)
    monkeypatch.delenv("TRAFFIC_GLUE_DRIVER_MEMORY", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv(session.CLASS_ARCHIVE_ENV, "off")  # its options: tests of their own
    monkeypatch.setenv(session.EVENT_LOG_ENV, "off")  # and the event logs'
    jars = tmp_path / "jars"
    jars.mkdir()
    for name in JAR_NAMES:
        (jars / name).write_bytes(b"")
    recording = _Builder()
    monkeypatch.setattr(session, "SparkSession", SimpleNamespace(getActiveSession=lambda: None, builder=recording))
    monkeypatch.setattr(session, "local_jars", functools.partial(session.local_jars, jars))
    recording.jars = jars
    # What a new session asks of its JVM: tests of their own, on the suite's session.
    recording.steps = []
    monkeypatch.setattr(session, "look_up_once", lambda spark: recording.steps.append("look_up_once"))
    monkeypatch.setattr(session, "write_no_checksum_files",
                        lambda spark: recording.steps.append("write_no_checksum_files"))
    # A catalog's metastore server: its own tests (test_metastore); here its settings only.
    server = {"keeper": 1, "pid": 2, "port": 1527, "password": "secret"}
    recording.servers = []
    monkeypatch.setattr(session.metastore, "ensure",
                        lambda catalog, jars_dir: recording.servers.append(catalog) or server)
    monkeypatch.setattr(session.metastore, "ensure_lock_tables",
                        lambda spark, catalog, info: recording.servers.append(("locks", catalog, info["port"])))
    return recording


def test_a_new_session_gets_the_local_settings_then_the_job_conf(builder):
    made = session.local_spark_session()
    assert made is builder.built and not builder.hive
    jars = builder.jars
    assert builder.conf == {
        "spark.app.name": "traffic-glue",
        "spark.master": "local[*]",
        "spark.driver.memory": "2g",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "16",
        "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
        "spark.sql.codegen.cache.maxEntries": "1000",
        "spark.driver.extraClassPath": os.pathsep.join(
            [str(session.spark_jars_dir() / "log4j-api-2.20.0.jar"), *(str(jars / name) for name in JAR_NAMES)]),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.sql.extensions": ICEBERG_EXTENSIONS,
        "spark.hadoop.fs.file.impl": BARE_LOCAL_FILES,
        "spark.hadoop.fs.s3.impl": S3A,
        "spark.driver.extraJavaOptions": f"{LATER_C2} -Dlog4j2.configurationFile={session.LOG_CONFIG.as_uri()}",
    }
    # Then, on the session: the shared settings, 3 splits for each of 4 cores, the log level.
    assert made.settings == {**builder.conf, **COMMON_CONF, MIN_SPLITS: "12", "log": "WARN"}
    assert builder.steps == ["look_up_once", "write_no_checksum_files"]


def test_the_arguments_and_environment_choose_master_memory_partitions_and_endpoint(builder, monkeypatch):
    monkeypatch.setenv("TRAFFIC_GLUE_MASTER", "local[2]")
    monkeypatch.setenv("TRAFFIC_GLUE_DRIVER_MEMORY", "6g")
    monkeypatch.setenv("AWS_ENDPOINT_URL", MOTO)
    made = session.local_spark_session("job", shuffle_partitions=3, log_level="ERROR")
    assert (builder.conf["spark.app.name"], builder.conf["spark.master"], builder.conf["spark.driver.memory"],
            builder.conf["spark.sql.shuffle.partitions"]) == ("job", "local[2]", "6g", "3")
    assert builder.conf["spark.hadoop.fs.s3a.endpoint"] == MOTO
    assert made.settings["log"] == "ERROR"
    session.local_spark_session(master="local[1]")
    assert builder.conf["spark.master"] == "local[1]"  # the argument wins over the environment


def test_a_cluster_master_keeps_sparks_own_driver_address(builder, monkeypatch):
    """Loopback is for a local master alone: a cluster's executors must reach the driver."""
    monkeypatch.setenv("TRAFFIC_GLUE_MASTER", "spark://cluster:7077")
    session.local_spark_session()
    assert builder.conf["spark.master"] == "spark://cluster:7077"
    assert not {"spark.driver.host", "spark.driver.bindAddress"} & builder.conf.keys()


def test_a_catalog_folder_gives_the_hive_catalog_in_derby_under_it_and_icebergs_session_catalog(
        builder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    session.local_spark_session(catalog_dir="local/catalog")  # relative: resolved, and made
    catalog = tmp_path / "local" / "catalog"
    assert catalog.is_dir() and builder.hive
    assert builder.conf["spark.sql.catalogImplementation"] == "hive"
    assert builder.conf["spark.sql.warehouse.dir"] == f"{catalog}/warehouse"
    # The metastore: the catalog's server, started (or found) before the session is built,
    # and Hive's lock tables made in it once the session is there.
    assert builder.servers == [catalog, ("locks", catalog, 1527)]
    assert builder.conf["spark.hadoop.javax.jdo.option.ConnectionURL"] == (
        "jdbc:derby://127.0.0.1:1527/metastore_db;create=true")
    assert builder.conf["spark.hadoop.javax.jdo.option.ConnectionDriverName"] == "org.apache.derby.jdbc.ClientDriver"
    assert (builder.conf["spark.hadoop.javax.jdo.option.ConnectionUserName"],
            builder.conf["spark.hadoop.javax.jdo.option.ConnectionPassword"]) == ("APP", "secret")
    assert builder.conf["spark.driver.extraJavaOptions"] == (
        f"{LATER_C2} -Dlog4j2.configurationFile={session.LOG_CONFIG.as_uri()} -Dderby.system.home={catalog}")
    assert iceberg.local_session_catalog_conf().items() <= builder.conf.items()


def test_a_catalog_folder_builds_a_session_even_while_one_is_active(builder, tmp_path, monkeypatch):
    active = object()
    monkeypatch.setattr(session.SparkSession, "getActiveSession", lambda: active)
    assert session.local_spark_session(catalog_dir=str(tmp_path / "c")) is builder.built
    assert builder.hive


def test_extra_conf_is_set_last_and_wins(builder, tmp_path):
    glue = iceberg.local_glue_catalog_conf("s3://w/", environ={"AWS_REGION": "eu-west-1"})
    extra = {**glue, "spark.sql.shuffle.partitions": "4", "spark.driver.extraJavaOptions": "-Dx=1"}
    session.local_spark_session(shuffle_partitions=2, catalog_dir=str(tmp_path / "c"), extra_conf=extra)
    assert extra.items() <= builder.conf.items()


def test_without_the_jars_no_session_is_built_and_the_error_names_make_setup(builder, tmp_path, monkeypatch):
    monkeypatch.setattr(session, "local_jars", functools.partial(session.local_jars.func, tmp_path / "none"))
    with pytest.raises(MissingJarsError, match="run `make setup`"):
        session.local_spark_session()
    assert builder.built is None


# --- the class archive (tools.class_archive) -----------------------------------------------


def test_an_archive_is_mapped_with_its_check_logs_off_and_the_environment_can_choose_or_refuse_it(tmp_path):
    default = session.CLASS_ARCHIVE  # dumped by make setup, or not (yet)
    assert session.class_archive_options({}) == (
        [f"-XX:SharedArchiveFile={default}", "-Xlog:cds*=off"] if default.is_file() else [])
    other = tmp_path / "other.jsa"
    assert session.class_archive_options({session.CLASS_ARCHIVE_ENV: str(other)}) == []  # not there
    other.write_bytes(b"an archive")
    assert session.class_archive_options({session.CLASS_ARCHIVE_ENV: str(other)}) == [
        f"-XX:SharedArchiveFile={other}", "-Xlog:cds*=off"]
    assert session.class_archive_options({session.CLASS_ARCHIVE_ENV: "off"}) == []


def test_a_local_jvm_collects_with_the_parallel_collector_unless_its_environment_chose_one():
    assert session.collector_options({}) == ["-XX:+UseParallelGC"]
    assert session.collector_options({"SPARK_SUBMIT_OPTS": "-Xss4m"}) == ["-XX:+UseParallelGC"]
    # The JVM refuses two collectors: one named anywhere in its options is left alone.
    for name in ("SPARK_SUBMIT_OPTS", "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS"):
        assert session.collector_options({name: "-Xss4m -XX:+UseSerialGC"}) == []
    assert session.collector_options({"SPARK_SUBMIT_OPTS": "-XX:+UseG1GC"}) == []


def test_a_new_session_maps_the_archive_before_its_log_config(builder, monkeypatch, tmp_path):
    archive = tmp_path / "classes.jsa"
    archive.write_bytes(b"an archive")
    monkeypatch.setenv(session.CLASS_ARCHIVE_ENV, str(archive))
    session.local_spark_session()
    assert builder.conf["spark.driver.extraJavaOptions"] == (
        f"-XX:SharedArchiveFile={archive} -Xlog:cds*=off {LATER_C2} "
        f"-Dlog4j2.configurationFile={session.LOG_CONFIG.as_uri()}")


# --- Spark's event logs (make history, tools/history.py) -----------------------------------


EVENT_LOG_CONF = {
    "spark.eventLog.enabled": "true",
    "spark.eventLog.compress": "true",
    "spark.eventLog.compression.codec": "zstd",
    "spark.eventLog.rolling.enabled": "true",
    "spark.eventLog.rolling.maxFileSize": "128m",
}


def event_log_settings(conf: dict) -> dict:
    return {key: value for key, value in conf.items() if key.startswith("spark.eventLog.")}


def test_the_suites_sessions_write_no_event_logs(spark):
    # tests/conftest.py turns them off for every session of the suite, its jobs' processes too.
    assert os.environ[session.EVENT_LOG_ENV] == "off"
    assert session.event_log_dir() is None
    assert spark.sparkContext.getConf().get("spark.eventLog.enabled", "false") == "false"


def test_event_logs_go_to_the_projects_local_folder_or_where_the_environment_says(tmp_path, monkeypatch):
    assert session.EVENT_LOG_DIR == session.JARS_DIR.parent / ".local" / "spark-events"
    assert session.event_log_dir({}) == session.EVENT_LOG_DIR
    monkeypatch.chdir(tmp_path)
    assert session.event_log_dir({session.EVENT_LOG_ENV: "events"}) == tmp_path / "events"  # resolved
    assert session.event_log_dir({session.EVENT_LOG_ENV: "off"}) is None


def test_a_new_local_session_logs_its_events_compressed_and_rolling_into_a_folder_it_makes(
        builder, monkeypatch, tmp_path):
    folder = tmp_path / "local" / "spark-events"
    monkeypatch.delenv(session.EVENT_LOG_ENV)
    monkeypatch.setattr(session, "EVENT_LOG_DIR", folder)
    session.local_spark_session()
    assert folder.is_dir()
    assert event_log_settings(builder.conf) == {**EVENT_LOG_CONF, "spark.eventLog.dir": folder.as_uri()}

    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv(session.EVENT_LOG_ENV, str(elsewhere))
    session.local_spark_session(extra_conf={"spark.eventLog.rolling.maxFileSize": "10m"})
    assert elsewhere.is_dir()
    assert event_log_settings(builder.conf) == {  # extra_conf still wins
        **EVENT_LOG_CONF, "spark.eventLog.dir": elsewhere.as_uri(), "spark.eventLog.rolling.maxFileSize": "10m"}


def test_event_logs_off_set_nothing_and_make_no_folder(builder, monkeypatch, tmp_path):
    monkeypatch.setattr(session, "EVENT_LOG_DIR", tmp_path / "spark-events")
    session.local_spark_session()  # the builder fixture's "off"
    assert event_log_settings(builder.conf) == {}
    assert not (tmp_path / "spark-events").exists()


def test_a_glue_jobs_session_gets_no_event_log_settings_from_here(monkeypatch, tmp_path):
    """On Glue the session is GlueContext's, and Glue's `--enable-spark-ui` logs its events:
    the Glue runtime (awsglue's GlueContext and Job, stand-ins here) sets only the job conf."""
    import awsglue.context
    import awsglue.job

    from traffic_glue.runtime import glue

    monkeypatch.setenv(session.EVENT_LOG_ENV, str(tmp_path / "events"))
    settings: dict[str, str] = {}
    glue_session = SimpleNamespace(
        conf=SimpleNamespace(get=lambda key, default=None: settings.get(key, default), set=settings.__setitem__),
        sparkContext=SimpleNamespace(defaultParallelism=4))
    monkeypatch.setattr(awsglue.context, "GlueContext", lambda context: SimpleNamespace(spark_session=glue_session))
    monkeypatch.setattr(awsglue.job, "Job", lambda context: SimpleNamespace(init=lambda name, args: None))
    looked_up = []
    monkeypatch.setattr(session, "look_up_once", looked_up.append)
    runtime = glue.glue_job_runtime(object(), "transform", ["t.py", "--JOB_NAME", "transform"])
    assert runtime.on_glue and runtime.spark is glue_session
    assert settings == {**COMMON_CONF, MIN_SPLITS: "12"}
    assert looked_up == [glue_session]  # pyspark's lookups made once on Glue too
    assert not (tmp_path / "events").exists()

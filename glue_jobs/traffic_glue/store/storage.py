"""File-system operations through Hadoop's FileSystem, so `s3://` and local paths work alike.

On Glue 5.1, `s3://` is S3A (EMRFS until Glue 5.0); locally, plain paths are the
local file system. Spark's JVM is reached through py4j; nothing here reads data rows.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass

from py4j.java_gateway import JavaClass, JavaMember
from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    is_dir: bool


class StaticMethods(JavaClass):
    """A JVM class whose static methods are looked up once.

    py4j asks the JVM what `cls.name` is on every access; the JVM answers by reflection
    over all the class's public methods and then looks for an inner class of that name
    through every jar of the classpath: ~0.4 ms for `org.apache.spark.sql.functions` (its
    ~1,000 methods), up to 3 ms for a footer's reader while the footers are read in
    parallel. A static method, once found, is kept here; fields are asked each time."""

    def __getattr__(self, name: str):
        member = super().__getattr__(name)
        if isinstance(member, JavaMember):
            self.__dict__[name] = member  # found without the JVM from now on
        return member


# The JVM classes looked up, per py4j gateway (a session's JVM).
_CLASSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def java_class(spark: SparkSession, name: str) -> StaticMethods:
    """The JVM's class `name` (fully qualified), made once per gateway. py4j's
    `jvm.org.apache.hadoop.fs.Path` asks the JVM about each dotted part, every time: a
    round trip each (a run made about 4,000, 40 for each raw file's footer)."""
    client = spark.sparkContext._gateway._gateway_client
    classes = _CLASSES.setdefault(client, {})
    found = classes.get(name)
    if found is None:
        found = classes[name] = StaticMethods(name, client)
    return found


def hadoop_path(spark: SparkSession, path: str):
    """Hadoop's `Path` of `path` (a local path or a URI)."""
    return java_class(spark, "org.apache.hadoop.fs.Path")(path)


def _fs(spark: SparkSession, path: str):
    return hadoop_path(spark, path).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def qualified(spark: SparkSession, path: str) -> str:
    """The path with its scheme (`file:/...` for a local path)."""
    return str(_fs(spark, path).makeQualified(hadoop_path(spark, path)))


def exists(spark: SparkSession, path: str) -> bool:
    return bool(_fs(spark, path).exists(hadoop_path(spark, path)))


def _entry(status) -> Entry:
    return Entry(str(status.getPath()), int(status.getLen()), bool(status.isDirectory()))


def glob(spark: SparkSession, pattern: str) -> list[Entry]:
    statuses = _fs(spark, pattern).globStatus(hadoop_path(spark, pattern))
    return [_entry(s) for s in statuses] if statuses is not None else []


def _hidden(path: str) -> bool:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return name.startswith(("_", "."))


def _list_status(spark: SparkSession, folder: str) -> list[Entry]:
    """What `folder` holds; nothing where it does not exist. The listing alone says so:
    on S3 an existence check before it was two requests more (a HEAD and a LIST), so a
    run's raw hour folder cost three requests instead of one."""
    try:
        statuses = _fs(spark, folder).listStatus(hadoop_path(spark, folder))
    except Py4JJavaError as error:
        if error.java_exception.getClass().getName() == "java.io.FileNotFoundException":
            return []
        raise
    return [_entry(status) for status in statuses]


def list_files(spark: SparkSession, folder: str, recursive: bool = False) -> list[Entry]:
    """Data files in `folder` (Spark's rule: names starting with `_` or `.` are not data)."""
    found = []
    for entry in _list_status(spark, folder):
        if _hidden(entry.path):
            continue
        if entry.is_dir:
            if recursive:
                found.extend(list_files(spark, entry.path, recursive=True))
        else:
            found.append(entry)
    return found


def list_dirs(spark: SparkSession, folder: str) -> list[Entry]:
    return [entry for entry in _list_status(spark, folder) if entry.is_dir]


def mkdirs(spark: SparkSession, path: str) -> None:
    _fs(spark, path).mkdirs(hadoop_path(spark, path))


def rename(spark: SparkSession, source: str, target: str) -> None:
    """Move `source` to `target`, which must not exist (its parent is created)."""
    fs = _fs(spark, source)
    target_path = hadoop_path(spark, target)
    fs.mkdirs(target_path.getParent())
    # A local file system's rename replaces a file there (rename(2)); S3A refuses to.
    if fs.exists(target_path) or not fs.rename(hadoop_path(spark, source), target_path):
        raise OSError(f"could not move {source} to {target}")


def delete(spark: SparkSession, path: str) -> None:
    _fs(spark, path).delete(hadoop_path(spark, path), True)


def write_text(spark: SparkSession, path: str, text: str) -> None:
    if not isinstance(text, str):  # before the file is opened: an old one stays whole
        raise TypeError(f"write_text takes text, got {type(text).__name__} for {path}")
    stream = _fs(spark, path).create(hadoop_path(spark, path), True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def read_text(spark: SparkSession, path: str) -> str:
    stream = _fs(spark, path).open(hadoop_path(spark, path))
    try:
        # py4j copies byte arrays, so let the JVM build the string (commons-io ships with Spark).
        return java_class(spark, "org.apache.commons.io.IOUtils").toString(stream, "UTF-8")
    finally:
        stream.close()


def read_bytes(spark: SparkSession, path: str) -> bytes:
    """A small file's bytes (a configuration snapshot: py4j copies them once)."""
    stream = _fs(spark, path).open(hadoop_path(spark, path))
    try:
        return bytes(java_class(spark, "org.apache.commons.io.IOUtils").toByteArray(stream))
    finally:
        stream.close()


def head(spark: SparkSession, path: str, size: int = 64) -> bytes:
    """The first `size` bytes of a file (fewer if it is shorter)."""
    stream = _fs(spark, path).open(hadoop_path(spark, path))
    try:
        found = bytearray()
        while len(found) < size:
            byte = stream.read()
            if byte < 0:
                break
            found.append(byte)
        return bytes(found)
    finally:
        stream.close()


def write_json(spark: SparkSession, path: str, value: dict) -> None:
    write_text(spark, path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json(spark: SparkSession, path: str) -> dict:
    return json.loads(read_text(spark, path))

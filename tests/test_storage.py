"""traffic_glue.store.storage: file operations through Hadoop's FileSystem (local paths here).

Paths come back qualified (`file:/...`); a local file system's `.crc` checksum files are
hidden by Hadoop itself, so the hidden files here are named otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from py4j.protocol import Py4JJavaError

from traffic_glue.store import storage
from traffic_glue.store.storage import Entry

# Text no single-byte encoding holds: a round trip through any other than UTF-8 breaks it.
DUTCH_TEXT = "snelheid 90 km/h op de E40 bij Gent — ‘geen file’ ✓\n"


def _file(path, text: str = "") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


@pytest.fixture
def folder(tmp_path):
    """A Spark output folder: two data files (3 and 5 bytes), Spark's and Hadoop's
    hidden files and folders, and a sub-folder with one data file (2 bytes)."""
    root = tmp_path / "out"
    _file(root / "part-0.parquet", "abc")
    _file(root / "part-1.parquet", "abcde")
    _file(root / "_SUCCESS")
    _file(root / ".part-0.parquet.swp", "x")
    _file(root / "_temporary" / "0" / "part-9.parquet", "zz")
    _file(root / ".hidden" / "part-8.parquet", "zz")
    _file(root / "sub" / "part-2.parquet", "ab")
    return root


def test_qualified_gives_a_local_path_its_scheme_and_leaves_a_qualified_one_as_it_is(spark, tmp_path):
    assert storage.qualified(spark, str(tmp_path / "a" / "b")) == f"file:{tmp_path}/a/b"
    assert storage.qualified(spark, f"file:{tmp_path}/a") == f"file:{tmp_path}/a"
    assert storage.qualified(spark, f"file://{tmp_path}/a/") == f"file:{tmp_path}/a"


def test_exists_for_a_file_a_folder_and_a_missing_path(spark, tmp_path):
    _file(tmp_path / "a.txt", "x")
    assert storage.exists(spark, str(tmp_path / "a.txt"))
    assert storage.exists(spark, str(tmp_path))
    assert not storage.exists(spark, str(tmp_path / "b.txt"))
    assert not storage.exists(spark, str(tmp_path / "no" / "such" / "folder"))


def test_glob_matches_folders_and_files_with_sizes_and_alternatives(spark, folder, tmp_path):
    for name in ("hour=07", "hour=7", "hour=08"):
        (tmp_path / "day=07" / name).mkdir(parents=True)
    found = storage.glob(spark, str(tmp_path / "day={07,7}" / "hour={07,7}"))
    assert sorted((e.path, e.is_dir) for e in found) == [
        (f"file:{tmp_path}/day=07/hour=07", True),
        (f"file:{tmp_path}/day=07/hour=7", True),
    ]
    files = storage.glob(spark, str(folder / "part-*.parquet"))
    assert sorted(files, key=lambda e: e.path) == [
        Entry(f"file:{folder}/part-0.parquet", 3, False),
        Entry(f"file:{folder}/part-1.parquet", 5, False),
    ]


def test_glob_of_nothing_is_empty_whether_a_pattern_or_a_plain_path(spark, tmp_path):
    # Hadoop answers null for a plain path that is missing, [] for a pattern matching nothing.
    assert storage.glob(spark, str(tmp_path / "missing")) == []
    assert storage.glob(spark, str(tmp_path / "missing" / "hour=*")) == []
    assert storage.glob(spark, str(tmp_path / "*.json")) == []


def test_list_files_leaves_out_hidden_files_and_folders_and_sub_folders(spark, folder):
    assert sorted(storage.list_files(spark, str(folder)), key=lambda e: e.path) == [
        Entry(f"file:{folder}/part-0.parquet", 3, False),
        Entry(f"file:{folder}/part-1.parquet", 5, False),
    ]


def test_list_files_recursive_descends_into_sub_folders_but_not_hidden_ones(spark, folder):
    assert sorted(storage.list_files(spark, str(folder), recursive=True), key=lambda e: e.path) == [
        Entry(f"file:{folder}/part-0.parquet", 3, False),
        Entry(f"file:{folder}/part-1.parquet", 5, False),
        Entry(f"file:{folder}/sub/part-2.parquet", 2, False),
    ]


def test_list_files_of_an_empty_or_missing_folder_or_one_of_hidden_files_is_empty(spark, tmp_path):
    (tmp_path / "empty").mkdir()
    _file(tmp_path / "hidden_only" / "_SUCCESS")
    _file(tmp_path / "hidden_only" / "_committed_123", "{}")
    _file(tmp_path / "hidden_only" / ".lock", "1")
    assert storage.list_files(spark, str(tmp_path / "empty")) == []
    assert storage.list_files(spark, str(tmp_path / "hidden_only"), recursive=True) == []
    assert storage.list_files(spark, str(tmp_path / "missing"), recursive=True) == []


def test_hidden_is_spark_rule_on_the_last_name_only():
    assert storage._hidden("s3://b/raw/_SUCCESS")
    assert storage._hidden("file:/t/.staging/")
    assert not storage._hidden("s3://b/_tmp/part-0.parquet")  # a hidden parent is not the name
    assert not storage._hidden("s3://b/raw/part_0.parquet")


def test_list_dirs_gives_the_sub_folders_only(spark, tmp_path):
    for name in ("run-b", "run-a"):
        (tmp_path / "pending" / name).mkdir(parents=True)
    _file(tmp_path / "pending" / "notes.txt", "x")
    found = storage.list_dirs(spark, str(tmp_path / "pending"))
    assert sorted(e.path for e in found) == [f"file:{tmp_path}/pending/run-a", f"file:{tmp_path}/pending/run-b"]
    assert all(e.is_dir for e in found)
    assert storage.list_dirs(spark, str(tmp_path / "missing")) == []
    (tmp_path / "empty").mkdir()
    assert storage.list_dirs(spark, str(tmp_path / "empty")) == []


def test_mkdirs_makes_every_missing_parent_and_may_be_repeated(spark, tmp_path):
    path = str(tmp_path / "a" / "b" / "c")
    storage.mkdirs(spark, path)
    storage.mkdirs(spark, path)
    assert (tmp_path / "a" / "b" / "c").is_dir()


def test_rename_moves_a_file_under_a_parent_it_creates(spark, tmp_path):
    source = _file(tmp_path / "pending" / "part-0.parquet", "abc")
    target = tmp_path / "_rejected" / "run_date=2020-04-07" / "part-0.parquet"
    storage.rename(spark, source, str(target))
    assert target.read_text() == "abc"
    assert not (tmp_path / "pending" / "part-0.parquet").exists()


def test_rename_moves_a_folder_with_its_files(spark, tmp_path):
    _file(tmp_path / "a" / "x" / "f.txt", "f")
    storage.rename(spark, str(tmp_path / "a" / "x"), str(tmp_path / "b" / "y"))
    assert (tmp_path / "b" / "y" / "f.txt").read_text() == "f"
    assert not (tmp_path / "a" / "x").exists()


def test_rename_onto_an_existing_file_fails_naming_both_and_keeps_both(spark, tmp_path):
    source, target = _file(tmp_path / "new.txt", "new"), _file(tmp_path / "old.txt", "old")
    with pytest.raises(OSError, match=f"^could not move {source} to {target}$"):
        storage.rename(spark, source, target)
    assert (tmp_path / "new.txt").read_text() == "new"
    assert (tmp_path / "old.txt").read_text() == "old"


def test_rename_of_a_missing_file_fails(spark, tmp_path):
    # Hadoop's local file system throws (FileNotFoundException) rather than answer false.
    with pytest.raises((OSError, Py4JJavaError)):
        storage.rename(spark, str(tmp_path / "missing.txt"), str(tmp_path / "there" / "x.txt"))


def test_delete_removes_a_file_or_a_whole_folder_and_a_missing_path_is_no_error(spark, folder, tmp_path):
    storage.delete(spark, str(folder / "part-0.parquet"))
    assert not (folder / "part-0.parquet").exists() and (folder / "part-1.parquet").exists()
    storage.delete(spark, str(folder))
    assert not folder.exists()
    storage.delete(spark, str(tmp_path / "missing"))
    assert tmp_path.exists()


def test_write_text_and_read_text_round_trip_utf8_and_create_the_parents(spark, tmp_path):
    path = tmp_path / "a" / "b" / "note.txt"
    storage.write_text(spark, str(path), DUTCH_TEXT)
    assert path.read_bytes() == DUTCH_TEXT.encode("utf-8")
    assert storage.read_text(spark, str(path)) == DUTCH_TEXT


def test_write_text_replaces_a_longer_text_whole(spark, tmp_path):
    path = str(tmp_path / "note.txt")
    storage.write_text(spark, path, "a longer first text\n")
    storage.write_text(spark, path, "short")
    assert storage.read_text(spark, path) == "short"
    storage.write_text(spark, path, "")
    assert storage.read_text(spark, path) == "" and (tmp_path / "note.txt").stat().st_size == 0


def test_reading_a_missing_file_fails_naming_it(spark, tmp_path):
    missing = str(tmp_path / "missing.txt")
    for read in (storage.read_text, storage.read_bytes, storage.head):
        with pytest.raises(Py4JJavaError, match=f"FileNotFoundException: File `?{re.escape(missing)}`? does not exist"):
            read(spark, missing)


def test_write_text_of_bytes_fails_and_leaves_the_file_as_it_was(spark, tmp_path):
    path = tmp_path / "note.txt"
    path.write_text("kept")
    with pytest.raises(TypeError, match=f"^write_text takes text, got bytes for {path}$"):
        storage.write_text(spark, str(path), b"bytes are no text")
    assert path.read_text() == "kept"


def test_read_bytes_returns_every_byte_value_unchanged(spark, tmp_path):
    data = bytes(range(256)) + b"\x00\xff"
    (tmp_path / "blob").write_bytes(data)
    (tmp_path / "empty").write_bytes(b"")
    assert storage.read_bytes(spark, str(tmp_path / "blob")) == data
    assert storage.read_bytes(spark, str(tmp_path / "empty")) == b""


def test_head_gives_the_first_bytes_or_fewer_of_a_short_file(spark, tmp_path):
    (tmp_path / "f").write_bytes(b"PAR1\x15\x04\x00\xff" + b"x" * 100)
    (tmp_path / "short").write_bytes(b"\xfe\x01")
    (tmp_path / "empty").write_bytes(b"")
    assert storage.head(spark, str(tmp_path / "f"), 4) == b"PAR1"
    assert storage.head(spark, str(tmp_path / "f"), 8) == b"PAR1\x15\x04\x00\xff"  # bytes >= 128 too
    assert storage.head(spark, str(tmp_path / "f")) == b"PAR1\x15\x04\x00\xff" + b"x" * 56  # 64 bytes
    assert storage.head(spark, str(tmp_path / "short"), 64) == b"\xfe\x01"
    assert storage.head(spark, str(tmp_path / "empty")) == b""
    assert storage.head(spark, str(tmp_path / "f"), 0) == b""


def test_write_json_writes_sorted_keys_indented_with_a_final_newline(spark, tmp_path):
    path = tmp_path / "report.json"
    storage.write_json(spark, str(path), {"status": "ok", "counts": {"read": 3, "kept": 2}, "error": None,
                                          "city": "Liège"})
    assert path.read_text() == (
        '{\n'
        '  "city": "Li\\u00e8ge",\n'
        '  "counts": {\n'
        '    "kept": 2,\n'
        '    "read": 3\n'
        '  },\n'
        '  "error": null,\n'
        '  "status": "ok"\n'
        '}\n'
    )
    assert storage.read_json(spark, str(path)) == {"status": "ok", "counts": {"read": 3, "kept": 2},
                                                   "error": None, "city": "Liège"}


def test_write_json_of_a_value_json_cannot_hold_fails_before_writing(spark, tmp_path):
    path = tmp_path / "report.json"
    with pytest.raises(TypeError, match="datetime is not JSON serializable"):
        storage.write_json(spark, str(path), {"at": dt.datetime(2020, 4, 7)})
    assert not path.exists()


def test_read_json_of_text_that_is_no_json_fails(spark, tmp_path):
    path = _file(tmp_path / "report.json", '{"status": "ok",')
    with pytest.raises(json.JSONDecodeError):
        storage.read_json(spark, path)


def test_a_java_class_is_looked_up_once_and_then_costs_only_its_calls(spark, jvm_commands):
    sent = jvm_commands
    path_class = storage.java_class(spark, "org.apache.hadoop.fs.Path")
    assert storage.java_class(spark, "org.apache.hadoop.fs.Path") is path_class
    made = path_class("/data/raw/hour=05")
    assert len(sent) == 1  # the constructor; no lookup of org, apache, hadoop, fs, Path
    assert made.getName() == "hour=05" and len(sent) == 2
    # py4j's own way asks the JVM about each of the name's five parts, every time.
    sent.clear()
    spark.sparkContext._jvm.org.apache.hadoop.fs.Path("/data/raw/hour=05")
    assert len(sent) == 6


def test_a_static_method_is_asked_for_once_and_a_static_field_every_time(spark, jvm_commands):
    integer = storage.java_class(spark, "java.lang.Integer")
    assert integer.parseInt("42") == 42 and len(jvm_commands) == 2  # what parseInt is, then the call
    assert integer.parseInt("-7") == -7 and len(jvm_commands) == 3  # the call alone
    assert integer.toString(255, 16) == "ff" and len(jvm_commands) == 5  # another method: asked once
    assert integer.MAX_VALUE == 2**31 - 1 and len(jvm_commands) == 6
    assert integer.MAX_VALUE == 2**31 - 1 and len(jvm_commands) == 7  # a field's value: asked again
    with pytest.raises(Exception, match="java.lang.Integer.noSuchMethod does not exist"):
        integer.noSuchMethod  # noqa: B018 - an unknown name stays an error, asked each time

"""Reading `--quality_rules`: the data quality ruleset a run checks its days against
(docs/QUALITY.md), the one shipped in the package or a file of the user's.

The shipped file travels inside the package (in the library zip on Glue), so it is read
as a package resource, which works from a folder and from a zip alike. A local file is
read with plain Python, so that the job refuses a bad one before Spark starts; a file
on S3 (or anywhere else Hadoop reads) only once the run has a session.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from traffic_glue.compute.quality_rules import Ruleset, RulesetError, parse_ruleset
from traffic_glue.store import storage

OFF = "off"  # `--quality_rules off`: no rule is checked
SHIPPED = "quality_rules.json"  # in the package `traffic_glue`
SHIPPED_NAME = f"traffic_glue/{SHIPPED}"  # how messages and the report name it


def is_local(path: str | None) -> bool:
    """Whether `path` (None: the shipped ruleset) is read without Spark."""
    return path is None or urlparse(path).scheme in ("", "file")


def read(path: str | None, spark: SparkSession | None = None) -> Ruleset | None:
    """The ruleset at `path` (None: the shipped one; `off`: none); `RulesetError` names
    the file and what is wrong. A path that is not local needs `spark`."""
    if path == OFF:
        return None
    if path is None:
        return parse_ruleset(resources.files("traffic_glue").joinpath(SHIPPED).read_text("utf-8"), SHIPPED_NAME)
    if is_local(path):
        local = urlparse(path).path if path.startswith("file:") else path
        try:
            with open(local, encoding="utf-8") as file:
                text = file.read()
        except FileNotFoundError:
            raise RulesetError(f"{path} does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            raise RulesetError(f"{path}: cannot be read: {error}") from None
        return parse_ruleset(text, path)
    if spark is None:
        raise ValueError(f"reading {path} needs a Spark session")
    if not storage.exists(spark, path):
        raise RulesetError(f"{path} does not exist")
    return parse_ruleset(storage.read_text(spark, path), path)

"""The configuration feed's fetcher: the traffic centre's `mivconfig` document, kept as
dated snapshots in a folder (docs/SEMANTICS.md, "The configuration").

`fetch` downloads the document (http(s)://, or file:// for local runs), bounded in
size and time, checks it with `configuration.parse_configuration` (defusedxml: an
error page, a truncated file or an XML bomb is refused) and writes it gzipped as
`miv-config-<YYYY-MM-DDTHHMMSSZ>.xml.gz`, the UTC time of the fetch, into a local
folder or an `s3://bucket/prefix/`. Only a configuration that changed is stored: a
document whose lanes equal the latest snapshot's adds nothing, so a year of daily
fetches is a handful of files. A refused document writes nothing, and the transform
keeps using the latest snapshot.

Runs in a Glue Python shell job (Python 3.9, glue_jobs/traffic_fetch_configuration.py):
no Spark, no runtime `X | Y` types, boto3 only for an `s3://` folder. Its arguments are
declared here (`ARGUMENTS`); `SPEC` is the job as `frame.main` runs it, without Spark.
"""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import os
import socket
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from traffic_glue.compute.configuration import (
    MAX_DOCUMENT_BYTES, ConfigurationError, parse_configuration, snapshot_time,
)
from traffic_glue.runtime.arguments import Argument, ArgumentError, Arguments, Config, whole
from traffic_glue.runtime.frame import JobSpec

PROGRAM = "traffic_fetch_configuration"
USAGE = "--configuration_url URL --configuration_folder (PATH | s3://bucket/prefix/) [--timeout_seconds N]"
SNAPSHOT_PREFIX = "miv-config-"
SNAPSHOT_SUFFIX = ".xml.gz"
MAX_DOWNLOAD_BYTES = MAX_DOCUMENT_BYTES  # as received, gzipped or not; the real document is 2.4 MB
DEFAULT_TIMEOUT_SECONDS = 60
URL_SCHEMES = ("http", "https", "file")
FOLDER_SCHEMES = ("", "file", "s3", "s3a")
USER_AGENT = "traffic-glue-configuration-fetcher"

STORED, UNCHANGED, REFUSED = "stored", "unchanged", "refused"


def fetchable_url(name: str, value: str) -> str:
    if urlparse(value).scheme not in URL_SCHEMES:
        raise ArgumentError(f"--{name} must be http(s):// or file://, got {value!r}")
    return value


def folder_location(name: str, value: str) -> str:
    if urlparse(value).scheme not in FOLDER_SCHEMES:
        raise ArgumentError(f"--{name} must be a local folder or s3://..., got {value!r}")
    return value


ARGUMENTS = Arguments(
    Argument("configuration_url", fetchable_url, attribute="url", required=True,
             help="where the traffic centre publishes the configuration (`mivconfig` XML, plain or "
                  "gzipped): `http(s)://...`, or `file://...` for a local run"),
    Argument("configuration_folder", folder_location, attribute="folder", required=True,
             help="the folder of dated snapshots (`miv-config-<UTC time>.xml.gz`): a local folder or "
                  "`s3://bucket/prefix/`; the transform's `--configuration_path`"),
    Argument("timeout_seconds", whole(minimum=1), DEFAULT_TIMEOUT_SECONDS,
             "give up on a server that does not answer within this many seconds (a refusal)"),
)


@ARGUMENTS.config
class FetchConfig(Config):
    """The fetch job's configuration (glue_jobs/traffic_fetch_configuration.py)."""


def parse_fetch_args(argv: list[str]) -> FetchConfig:
    """The fetch job's `sys.argv` as Glue passes it (`--name value`); `ArgumentError`
    names a wrong argument. Plain Python: a Python shell job has no Spark to ask."""
    return ARGUMENTS.parse(argv)


@dataclass(frozen=True)
class FetchOutcome:
    """What a fetch did: `stored` a new snapshot, found it `unchanged`, or `refused` the
    response; `snapshot` is the snapshot in force afterwards (None: there is none)."""

    status: str
    message: str
    snapshot: str | None

    @property
    def exit_status(self) -> int:
        # A refusal with a last good snapshot is no failure: the transform uses that one.
        return 1 if self.status == REFUSED and self.snapshot is None else 0

    @property
    def error_log(self) -> bool:
        # A refusal goes to the error log (and is the failure's reason when nothing is left).
        return self.status == REFUSED

    def summary(self) -> str:
        return f"{PROGRAM}: {self.message}"


# --- where the snapshots live -----------------------------------------------------------


def is_snapshot_name(name: str) -> bool:
    if not (name.startswith(SNAPSHOT_PREFIX) and name.endswith(SNAPSHOT_SUFFIX)):
        return False
    try:
        snapshot_time(name)
    except ConfigurationError:
        return False
    return True


class LocalFolder:
    """Snapshots in a local folder; written to a hidden temporary file, then renamed."""

    def __init__(self, path: str):
        self.path = Path(urlparse(path).path if path.startswith("file:") else path)

    def __str__(self) -> str:
        return str(self.path)

    def location(self, name: str) -> str:
        return str(self.path / name)

    def names(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return [p.name for p in self.path.iterdir() if p.is_file() and is_snapshot_name(p.name)]

    def read(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def write(self, name: str, data: bytes) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        # A leading dot: neither a snapshot name nor a file Spark reads, should it stay.
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=self.path)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from other readers
            os.replace(temporary, self.path / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


class S3Folder:
    """Snapshots under an S3 prefix; one put_object is atomic (readers see all or none)."""

    def __init__(self, url: str, client=None):
        parsed = urlparse(url)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.lstrip("/")
        if self.prefix and not self.prefix.endswith("/"):
            self.prefix += "/"
        self._client = client

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def client(self):
        if self._client is None:
            import boto3

            # The endpoint as boto3 takes it (moto, a local S3), also on older boto3.
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            self._client = boto3.client("s3", endpoint_url=endpoint or None)
        return self._client

    def location(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def names(self) -> list[str]:
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"):
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix):]
                if is_snapshot_name(name):
                    found.append(name)
        return found

    def read(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()

    def write(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data,
                               ContentType="application/gzip")


def snapshot_folder(location: str, s3_client=None):
    """The folder of `location`: `s3://` or `s3a://` is S3, anything else local."""
    scheme = urlparse(location).scheme
    if scheme in ("s3", "s3a"):
        return S3Folder(location, s3_client)
    if scheme not in ("", "file"):
        raise ValueError(f"--configuration_folder must be a local folder or s3://..., got {location}")
    return LocalFolder(location)


def latest_snapshot(folder) -> str | None:
    """The name of the snapshot in force now: the one dated last."""
    names = folder.names()
    return max(names, key=lambda name: (snapshot_time(name), name)) if names else None


def snapshot_name(now: dt.datetime) -> str:
    return f"{SNAPSHOT_PREFIX}{now.astimezone(dt.timezone.utc):%Y-%m-%dT%H%M%SZ}{SNAPSHOT_SUFFIX}"


# --- downloading --------------------------------------------------------------------------


def download(url: str, timeout: float, limit: int = MAX_DOWNLOAD_BYTES) -> bytes:
    """The body at `url`, at most `limit` bytes; `ConfigurationError` says why not."""
    scheme = urlparse(url).scheme
    if scheme not in URL_SCHEMES:
        raise ConfigurationError(f"a URL of {', '.join(URL_SCHEMES)} is needed, got {scheme or 'none'}")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise ConfigurationError(f"announces {int(length):,} bytes, more than {limit:,}")
            body = response.read(limit + 1)
            # A connection closed early: short of the announced length (http.client
            # returns what came, or raises IncompleteRead).
            if length and length.isdigit() and len(body) < int(length):
                raise ConfigurationError(
                    f"the response is truncated ({len(body):,} of {int(length):,} bytes)")
    except urllib.error.HTTPError as error:
        raise ConfigurationError(f"HTTP {error.code} {error.reason}") from None
    except http.client.IncompleteRead as error:
        raise ConfigurationError(
            f"the response is truncated ({len(error.partial):,} bytes, "
            f"{error.expected:,} more expected)") from None
    except (socket.timeout, TimeoutError):
        raise ConfigurationError(f"no answer within {timeout:g} s") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise ConfigurationError(f"no answer within {timeout:g} s") from None
        raise ConfigurationError(f"cannot be read ({reason})") from None
    except (http.client.HTTPException, OSError) as error:
        raise ConfigurationError(f"cannot be read ({type(error).__name__}: {error})") from None
    if len(body) > limit:
        raise ConfigurationError(f"more than {limit:,} bytes; not a configuration")
    return body


def _html_page(data: bytes) -> bool:
    """An HTML page (a portal's error or maintenance page, often with status 200): named
    as such rather than by its DOCTYPE, which the XML check would refuse first."""
    start = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html"))


def gzipped(data: bytes) -> bytes:
    """The document gzipped: as received when it came gzipped, else compressed with a
    fixed header (mtime 0), so one document always gives the same bytes."""
    if data[:2] == b"\x1f\x8b":
        return data
    return gzip.compress(data, compresslevel=9, mtime=0)


# --- the fetch -----------------------------------------------------------------------------


def fetch(url: str, target_folder, now: dt.datetime | None = None,
          timeout: float = DEFAULT_TIMEOUT_SECONDS) -> FetchOutcome:
    """Fetch the configuration at `url` into `target_folder` (a path, an `s3://` URL or a
    folder object of this module). A bad response is a refusal (`FetchOutcome`), not an
    exception; failing to list, read or write the folder itself raises."""
    folder = snapshot_folder(target_folder) if isinstance(target_folder, str) else target_folder
    now = now or dt.datetime.now(dt.timezone.utc)
    latest = latest_snapshot(folder)
    try:
        data = download(url, timeout)
        if _html_page(data):
            raise ConfigurationError("an HTML page, not a mivconfig document")
        lanes = parse_configuration(data, url)
    except ConfigurationError as error:
        reason = str(error)
        if reason.startswith(f"{url}: "):  # parse_configuration names the URL itself
            reason = reason[len(url) + 2:]
        reason = reason[len("refused, "):] if reason.startswith("refused, ") else reason
        keeping = f"keeping {latest}" if latest else f"no snapshot in {folder} to keep using"
        return FetchOutcome(REFUSED, f"refused {url}: {reason}; {keeping}", latest)

    if latest is not None:
        try:
            unchanged = parse_configuration(folder.read(latest), latest) == lanes
        except ConfigurationError:
            unchanged = False  # a stored snapshot that no longer parses: replace it
        if unchanged:
            return FetchOutcome(
                UNCHANGED, f"{url}: {len(lanes):,} lanes, the same as {latest}; nothing stored", latest)
    name = snapshot_name(now)
    folder.write(name, gzipped(data))
    return FetchOutcome(STORED, f"{url}: {len(lanes):,} lanes, stored {folder.location(name)}", name)


def run(spark: None, config: FetchConfig) -> FetchOutcome:
    return fetch(config.url, config.folder, timeout=config.timeout_seconds)


SPEC = JobSpec(program=PROGRAM, usage=USAGE, arguments=ARGUMENTS, run=run, spark=False)

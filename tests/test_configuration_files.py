"""Reading `--configuration_path` (docs/SEMANTICS.md, "The configuration"): which
snapshots a run uses, and what stops it."""

import datetime as dt
import gzip

import pytest

from tests.network import CONFIGURATION
from traffic_glue.compute.configuration import ConfigurationError
from traffic_glue.store.configuration_files import read_configuration, snapshots_needed
from traffic_glue.compute.run_range import RunRange

UTC = dt.timezone.utc
# 2020-04-07 with an hour of lookback: context from 2020-04-06 23:00, output to 04-08 00:00.
SPAN = RunRange.for_days(dt.date(2020, 4, 7), dt.date(2020, 4, 7), 60, 24)


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("dated, used", [
    # the one in force at the context's start, and those dated before the output's end
    (["2020-04-01", "2020-04-06 23:30", "2020-04-07 12:00", "2020-04-08 00:00", "2020-05-01"],
     ["2020-04-01", "2020-04-06 23:30", "2020-04-07 12:00"]),
    # one dated exactly at the context's start is in force there: the older one is not needed
    (["2020-04-01", "2020-04-06 23:00"], ["2020-04-06 23:00"]),
    # all newer than the run: the earliest covers older readings too
    (["2026-12-04 17:53:39", "2027-01-01"], ["2026-12-04 17:53:39"]),
])
def test_a_run_uses_the_snapshot_in_force_at_its_start_and_those_before_its_end(dated, used):
    found = snapshots_needed([(_at(d), f"s-{d}") for d in dated], SPAN)
    assert [name for _, name in found] == [f"s-{d}" for d in used]


def _snapshot(folder, name, lanes=(1,)):
    points = "".join(f'<meetpunt unieke_id="{lane}"><Ident_8>A0140001</Ident_8><Kmp_Rsys>1,5</Kmp_Rsys>'
                     f"<Rijstrook>R1{i}</Rijstrook></meetpunt>" for i, lane in enumerate(lanes))
    (folder / name).write_bytes(gzip.compress(f"<mivconfig>{points}</mivconfig>".encode()))


def test_a_folder_of_snapshots_gives_the_ones_the_run_needs(spark, tmp_path):
    _snapshot(tmp_path, "miv-config-2020-04-01.xml.gz", (1,))
    _snapshot(tmp_path, "miv-config-2020-04-07T120000Z.xml.gz", (1, 2))
    _snapshot(tmp_path, "miv-config-2020-05-01.xml.gz", (1, 2, 3))
    (tmp_path / "notes.txt").write_text("not a snapshot")
    found = read_configuration(spark, str(tmp_path), SPAN)
    assert [(s.name, s.valid_from, len(s.lanes)) for s in found] == [
        ("miv-config-2020-04-01.xml.gz", _at("2020-04-01 00:00"), 1),
        ("miv-config-2020-04-07T120000Z.xml.gz", _at("2020-04-07 12:00"), 2),
    ]


def test_one_file_is_in_force_for_every_reading(spark):
    (snapshot,) = read_configuration(spark, str(CONFIGURATION), SPAN)
    assert (snapshot.name, snapshot.valid_from, len(snapshot.lanes)) == (CONFIGURATION.name, None, 4254)


@pytest.mark.parametrize("files, message", [
    ({}, "no configuration snapshot (*.xml or *.xml.gz) in that folder"),
    ({"miv-config.xml.gz": b"<mivconfig/>"}, "a snapshot's name must end in its UTC date or time"),
    ({"a-2020-04-01.xml": b"<html>502</html>"}, "its root element is <html>, not <mivconfig>"),
    ({"a-2020-04-01.xml": None, "b-2020-04-01T000000Z.xml.gz": None}, "are dated alike"),
])
def test_what_cannot_be_used_stops_the_run_naming_it(spark, tmp_path, files, message):
    for name, data in files.items():
        if data is None:
            _snapshot(tmp_path, name)
        else:
            (tmp_path / name).write_bytes(data)
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        read_configuration(spark, str(tmp_path), SPAN)


def test_a_missing_file_is_named(spark, tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        read_configuration(spark, str(tmp_path / "gone.xml.gz"), SPAN)

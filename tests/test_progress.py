"""Progress lines: one as each phase starts and ends, and a heartbeat while it lasts."""

from __future__ import annotations

import re
import threading

import pytest

from tests.factories import T0, land_parquet, raw_reading
from tests.job_helpers import run_job
from traffic_glue.runtime import progress as P


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (59.9, "0:59"), (61, "1:01"),
                                           (3599, "59:59"), (3600, "1:00:00"), (7322, "2:02:02")])
def test_clock_text(seconds, text):
    assert P.clock_text(seconds) == text


def test_a_phase_says_start_heartbeats_and_end_in_order():
    lines: list[str] = []
    release = threading.Event()
    progress = P.Progress(write=lines.append, heartbeat_seconds=0.05, where=lambda: "stage 3")

    with progress.phase("computing", "2 days") as end:
        # Wait until two heartbeats were said (never more than 5 s).
        for _ in range(500):
            if sum("still" in line for line in lines) >= 2:
                break
            release.wait(0.01)
        end.text = "computed 12 rows"

    texts = [line.split("] ", 1)[1] for line in lines]
    assert all(line.startswith("traffic-glue [0:00] ") for line in lines)
    assert texts[0] == "computing: 2 days"
    assert texts[1:-1] and all(t == "still computing (0:00): stage 3" for t in texts[1:-1])
    assert re.fullmatch(r"computed 12 rows \(0\.\d s\)", texts[-1])


def test_a_failed_phase_says_no_end_and_stops_its_heartbeat():
    lines: list[str] = []
    progress = P.Progress(write=lines.append, heartbeat_seconds=0.02)
    with pytest.raises(ValueError):
        with progress.phase("committing"):
            raise ValueError("no")
    said = len(lines)
    threading.Event().wait(0.1)
    assert lines == ["traffic-glue [0:00] committing"] and len(lines) == said


def test_a_heartbeat_that_fails_to_find_where_still_beats():
    lines: list[str] = []

    def broken() -> str:
        raise RuntimeError("status tracker gone")

    progress = P.Progress(write=lines.append, heartbeat_seconds=0.02, where=broken)
    with progress.phase("reading"):
        for _ in range(500):
            if len(lines) > 1:
                break
            threading.Event().wait(0.01)
    assert lines[1].endswith("still reading (0:00)")


def test_a_real_run_says_its_phases_in_order(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(P, "HEARTBEAT_SECONDS", 0.2)
    rows = [raw_reading(11, 1, T0 + h * 3600 + 60 * m) for h in (5, 6) for m in range(30)]
    rows.append(raw_reading(11, 1, T0 + 7 * 3600, counts=(1, 0, 0, 0), defect=None) | {"lve_nr": None})
    land_parquet(tmp_path / "raw", rows)

    configuration = tmp_path / "miv-config.xml"
    configuration.write_text('<mivconfig><meetpunt unieke_id="11"><Ident_8>A0140001</Ident_8>'
                             "<Kmp_Rsys>1,5</Kmp_Rsys><Rijstrook>R10</Rijstrook></meetpunt></mivconfig>")
    assert run_job(tmp_path / "raw", tmp_path / "curated", "2020-04-07", "2020-04-07",
                   "--configuration_path", str(configuration)) == 0

    out = capsys.readouterr().out.splitlines()
    said = [line.split("] ", 1)[1] for line in out if line.startswith("traffic-glue [")]
    phases = [text for text in said if not text.startswith("still ")]
    expected = [
        r"reading the configuration: .*/miv-config\.xml",
        r"1 snapshot, 1 lane in all \(\d+\.\d s\)",
        r"reading: raw files under .*/raw, processing hours 2020-04-06 23:00 \.\. 2020-04-09 00:00 UTC \(parquet\)",
        r"read 3 folders, 3 files, 61 readings \(\d+\.\d s\)",
        r"computing and writing: 1 day, 2020-04-07\.\.2020-04-07 \(--semantics corrected\) into file:.*/curated",
        r"computed and staged 60 rows \(\d+\.\d s\)",
        r"quarantining: 1 rejected readings",
        r"quarantining: done \(\d+\.\d s\)",
        r"checking data quality: 7 rules of traffic_glue/quality_rules\.json on the staged rows",
        # One location with 60 of its day's 1,440 minutes; no day before it to compare with.
        r"7 rules: 5 passed, 1 warning, 1 skipped \(\d+\.\d s\)",
        r"committing: 1 day with raw readings",
        r"committed 2 hour partitions: snapshot \d+ \(\d+\.\d s\)",
        r"summarising: the locations with the most jam minutes",
        r"summarising: done \(\d+\.\d s\)",
        r"report: file:.*/curated/_reports/run_date=.*\.json",
    ]
    assert len(phases) == len(expected), said
    for text, pattern in zip(phases, expected):
        assert re.fullmatch(pattern, text), (text, pattern)
    # The heartbeat spoke while Spark computed, and the summary comes after every line.
    assert any(re.fullmatch(r"still computing and writing \(0:\d\d\)(: .*)?", t) for t in said), said
    assert out[-1].startswith("  report: ") or "traffic-glue run" in "\n".join(out)
    assert out.index(next(line for line in out if line.startswith("traffic-glue run "))) > \
        out.index(next(line for line in out if line.endswith(".json") and "] report: " in line))

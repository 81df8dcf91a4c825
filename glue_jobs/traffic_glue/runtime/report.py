"""The run reports: what a run did, as JSON (written beside its table) and as text
(printed when it ends).

`Report` holds what every job's report has and the run's try/finally (`running`):
its timing, its status, its error's first line. `RunReport` (the transform) and
`SummaryReport` (the daily summary) add what their runs read and wrote. The
transform's accounting is exact: read = kept + filtered + rejected, each reading
counted once by the first rule that applies (docs/SEMANTICS.md, "The run report").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Callable, ClassVar, Iterable, Iterator

from traffic_glue.compute.counting import ReadingCounts
from traffic_glue.compute.quality import Verdict
from traffic_glue.store.curated import partition_day

SUCCEEDED, FAILED, RUNNING = "succeeded", "failed", "running"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_run_id(at: dt.datetime | None = None) -> str:
    """`<UTC time>-<random suffix>`: a run's id when Glue gives none."""
    at = at or now()
    return f"{at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


@dataclass
class Report:
    run_id: str
    job_name: str
    arguments: dict
    started_at: str
    status: str = RUNNING
    error: str | None = None
    finished_at: str | None = None
    duration_seconds: float | None = None
    report_path: str | None = None

    title: ClassVar[str] = "run"  # the summary's first words after traffic-glue
    error_log: ClassVar[bool] = False  # the summary goes to standard output

    @classmethod
    def for_config(cls, config, **values):
        """The report of a run of `config` (a job's configuration), started now."""
        return cls(config.run_id or new_run_id(), config.job_name, config.as_report(),
                   now().isoformat(), **values)

    @contextlib.contextmanager
    def running(self, then: Callable[[], None] | None = None) -> Iterator[Report]:
        """The run's try/finally: `succeeded` when the block ends, `failed` with the
        error's first line when it raises (the error goes on); then the time it took,
        and `then` (writing the report) either way."""
        started = time.monotonic()
        try:
            yield self
            self.status = SUCCEEDED
        except Exception as error:
            self.status, self.error = FAILED, first_line(error)
            raise
        finally:
            self.finished_at = now().isoformat()
            self.duration_seconds = round(time.monotonic() - started, 3)
            if then is not None:
                then()

    @property
    def exit_status(self) -> int:
        return 0 if self.status == SUCCEEDED else 1

    def json_values(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        """The report as one JSON object on one line: Spark's JSON reader (`make sql`,
        Athena) reads a folder of reports as a table, a report a row."""
        return _one_line(self.json_values())

    def summary(self) -> str:
        lines = [
            f"traffic-glue {self.title} {self.run_id}: {self.status}"
            + (f" in {self.duration_seconds:.1f} s" if self.duration_seconds is not None else ""),
            *self.scope_lines(),
        ]
        if self.error:
            lines.append(f"  error: {self.error}")
        # The report's path is not repeated here: the run says it as it writes the report
        # (a progress line), also when it fails with an error of one line and no summary.
        lines += self.detail_lines()
        return "\n".join(lines)

    def scope_lines(self) -> list[str]:
        """What the run was asked to do (after the first line)."""
        return []

    def detail_lines(self) -> list[str]:
        """What it did (after the error, if any)."""
        return []


def _json_value(value):
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _one_line(values: dict) -> str:
    return json.dumps(values, sort_keys=True, default=_json_value) + "\n"


@dataclass
class RunReport(Report):
    """The transform's report."""

    source: dict = field(default_factory=dict)
    readings: dict = field(default_factory=dict)
    output: dict = field(default_factory=dict)
    top_jam_locations: list = field(default_factory=list)
    quarantines_dropped: list = field(default_factory=list)
    days_replaced: list[dt.date] = field(default_factory=list)  # the days with readings, published
    quality: dict = field(default_factory=dict)  # every data quality rule's outcome (`record_quality`)

    def count_readings(self, counts: ReadingCounts) -> None:
        """Fill `readings` from the run's counts, by the statuses' labels."""
        filtered = {status.label: n for status, n in counts.left_out.items()}
        rejected = {status.label: n for status, n in counts.rejected.items()}
        self.readings = {
            "read": counts.read,
            "kept": counts.kept,
            "filtered": filtered,
            "rejected": {k: v for k, v in rejected.items() if v},
            "rejected_total": sum(rejected.values()),
            "filtered_total": sum(filtered.values()),
        }
        if counts.chosen is not None:  # a `--locations` run (None in athena: not known)
            self.readings["kept_of_chosen_locations"] = counts.chosen.kept

    def record_quality(self, verdict: Verdict | None, off: bool = False) -> None:
        """`quality` from the data quality rules' verdict on the run's days; left empty
        when none was reached (the run stopped before), `off` when none was asked for."""
        if verdict is None:
            if off:
                self.quality = {"ruleset": "off", "checked": False, "blocked": False,
                                "blocking_failed": [], "warnings": [], "rules": []}
            return
        self.quality = {
            "ruleset": verdict.ruleset,
            "checked": True,
            "blocked": verdict.blocked,
            "blocking_failed": [o.rule.name for o in verdict.blocking_failures],
            "warnings": [o.rule.name for o in verdict.warnings],
            "rules": [
                {
                    "name": o.rule.name, "check": o.rule.check, "severity": o.rule.severity,
                    "status": o.status, "requirement": o.requirement, "note": o.note or None,
                    "days": [{"day": d.day, "status": d.status, "value": d.value, "measured": d.measured}
                             for d in o.days],
                }
                for o in verdict.outcomes
            ],
        }

    @property
    def accounting_holds(self) -> bool:
        r = self.readings
        return bool(r) and r["read"] == r["kept"] + r["filtered_total"] + r["rejected_total"]

    def json_values(self) -> dict:
        values = asdict(self)
        # A run that stopped before counting (bad input) has nothing to account for:
        # null, not a false alarm of readings lost.
        values["accounting_holds"] = self.accounting_holds if self.readings else None
        return values

    def day_jsons(self, days: Iterable[dt.date]) -> Iterator[tuple[dt.date, str]]:
        """The report as filed under each of `days` it processed (`_reports_by_day/day=`):
        every field of the run, without its readings per raw file, and with its hour
        partitions and its quality rules' outcomes of that day only. The whole report, at
        `report_path`, has them all: a year's run filed it whole under each of its 365
        days, 2.1 MB each (749 MB), where a day's share is a few kB."""
        values = self.json_values()
        source = {key: value for key, value in values["source"].items() if key != "readings_per_file"}
        partitions: dict[dt.date | None, dict] = {}
        for name, written in values["output"].get("per_partition", {}).items():
            partitions.setdefault(partition_day(name), {})[name] = written
        rules = values["quality"].get("rules")
        for day in days:
            output = dict(values["output"])
            if "per_partition" in output:
                output["per_partition"] = partitions.get(day, {})
            quality = dict(values["quality"])
            if rules is not None:
                quality["rules"] = [{**rule, "days": [d for d in rule["days"] if d["day"] == day]}
                                    for rule in rules]
            yield day, _one_line({**values, "source": source, "output": output, "quality": quality})

    def scope_lines(self) -> list[str]:
        return [
            f"  days {self.arguments.get('start_date')} .. {self.arguments.get('end_date')}, "
            f"semantics {self.arguments.get('semantics')}",
        ]

    def detail_lines(self) -> list[str]:
        r, o, s = self.readings, self.output, self.source
        lines = []
        if s:
            lines.append(
                f"  source: {s.get('files', 0)} files in {s.get('root')}"
                + (f", {len(s['skipped'])} skipped as unreadable" if s.get("skipped") else "")
            )
        if r:
            lines.append(f"  readings read        {r['read']:>12,}")
            lines.append(f"  kept                 {r['kept']:>12,}")
            if "kept_of_chosen_locations" in r:
                lines.append(_kept_of_chosen_line(r["kept_of_chosen_locations"]))
            for rule, n in r["filtered"].items():
                lines.append(f"  left out: {rule:<17} {n:>9,}")
            for reason, n in r["rejected"].items():
                lines.append(f"  rejected: {reason:<17} {n:>9,}")
            unconfigured = r.get("unconfigured")
            if unconfigured and unconfigured["readings"]:
                lines.append(
                    f"  of them, {unconfigured['readings']:,} readings of {unconfigured['lanes']:,} lanes "
                    "not in the configuration (each a location of its own, -unieke_id)"
                )
            if r["rejected_total"] and o.get("rejected_path"):
                lines.append(f"  rejected readings are in {o.get('rejected_path')}")
        if o:
            if "rows_carried_over" in o:
                lines += _chosen_rows_lines(o, self.arguments.get("locations") or [])
            else:
                lines.append(
                    f"  rows written         {o.get('rows', 0):>12,} in {o.get('partitions', 0)} hour "
                    f"partitions, {_files_text(o)}"
                )
            per_partition = list(o.get("per_partition", {}).values())
            if per_partition:
                files = [p["files"] for p in per_partition]
                sizes = [p["bytes"] / 1e6 for p in per_partition]
                lines.append(
                    f"  per hour partition   {min(files)}..{max(files)} files, "
                    f"{min(sizes):.2f}..{max(sizes):.2f} MB"
                )
            if o.get("partitions_removed"):
                lines.append(f"  partitions removed   {len(o['partitions_removed'])}")
            if o.get("days_left_unchanged"):
                lines.append(
                    "  left unchanged: no raw readings  " + ", ".join(o["days_left_unchanged"])
                )
            if o.get("semantics_replaced"):
                lines.append(
                    f"  semantics: the table held {o['semantics_replaced']} rows; the run's days "
                    f"are {self.arguments.get('semantics')} now"
                )
            table, path = o.get("table") or o.get("path"), o.get("path")
            where = f"  output: {table}" + (f" at {path}" if path and path != table else "")
            if o.get("snapshot_id"):
                where += f" (iceberg, snapshot {o['snapshot_id']})"
            lines.append(where)
            if o.get("locations"):
                lines.append(_locations_line(o["locations"]))
        lines += _quality_lines(self.quality)
        if self.top_jam_locations:
            of_chosen = " of the chosen locations" if "rows_carried_over" in o else ""
            lines.append(f"  most jam minutes{of_chosen} (trafficjamindicator = 1):")
            for item in self.top_jam_locations:
                name = f"  {item['name']}" if item.get("name") else ""
                lines.append(f"    {item['uniqueid']:>11}: {item['jam_minutes']:>5} minutes{name}")
        if o.get("daily_summary_stale"):
            lines.append(_stale_summary_line(o["daily_summary_stale"]))
        return lines


def _quality_lines(quality: dict) -> list[str]:
    """The data quality rules' counts, and each warning with its failing days' measures."""
    if not quality:
        return []
    if not quality["checked"]:
        return ["  data quality: not checked (--quality_rules off)"]
    statuses = [rule["status"] for rule in quality["rules"]]
    counts = [f"{statuses.count('passed')} passed"]
    for label, names in (("blocking failed", quality["blocking_failed"]), ("warning", quality["warnings"])):
        if names:
            counts.append(f"{len(names)} {label}{'s' if label == 'warning' and len(names) > 1 else ''}")
    if statuses.count("skipped"):
        counts.append(f"{statuses.count('skipped')} skipped")
    lines = [f"  data quality ({quality['ruleset']}): {len(statuses)} rules, {', '.join(counts)}"]
    for rule in quality["rules"]:
        if rule["status"] == "failed":
            failed = [f"{d['day']}: {d['measured']}" for d in rule["days"] if d["status"] == "failed"]
            if len(failed) > 3:
                failed = failed[:3] + [f"and {len(failed) - 3} more days (the report has them)"]
            lines.append(f"    {rule['severity']} {rule['name']} {'; '.join(failed)} (wanted: {rule['requirement']})")
    return lines


def _files_text(output: dict) -> str:
    """`24 files (4.5 MB; at most 1 per partition)`."""
    return (f"{output.get('files', 0)} files ({output.get('bytes', 0) / 1e6:.1f} MB; "
            f"at most {output.get('max_files_per_partition', 0)} per partition)")


def _counted(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _kept_of_chosen_line(kept: int | None) -> str:
    """What `kept` counts in a `--locations` run: every location's readings."""
    if kept is None:  # athena
        return ("  (kept counts every location's readings: athena names a row's location by the "
                "minute's largest lane, so --locations chooses rows, not readings)")
    return (f"  of them, {kept:,} of the chosen locations (--locations); the others' are "
            "counted, not written")


def _chosen_rows_lines(output: dict, chosen: list[int]) -> list[str]:
    """A `--locations` run's rows: its own apart from those it carried over unchanged,
    both in the files it wrote."""
    written = output.get("locations_written", [])
    lines = [
        f"  rows written         {output.get('rows', 0):>12,} of {_counted(len(written), 'chosen location')} "
        "(--locations), replacing theirs",
        f"  rows carried over    {output['rows_carried_over']:>12,} of "
        f"{_counted(output.get('locations_carried_over', 0), 'other location')}, unchanged",
        f"  files holding both   {output.get('partitions', 0)} hour partitions, {_files_text(output)}",
    ]
    without_rows = [str(location) for location in chosen if location not in written]
    if without_rows:
        lines.append(f"  chosen, without rows {', '.join(without_rows)}")
    return lines


def days_text(days: list[str]) -> str:
    """ISO days as runs of consecutive days: `2020-04-06..2020-04-08, 2020-04-10`."""
    runs: list[list[dt.date]] = []
    for day in sorted(dt.date.fromisoformat(d) for d in days):
        if runs and day - runs[-1][-1] == dt.timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(f"{r[0]}..{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _stale_summary_line(stale: dict) -> str:
    """The daily summary's days that the run's replaced days left out of date, and who
    refreshes them."""
    refresh = (
        "the workflow's daily summary job, which runs next, refreshes it"
        if stale["refreshed_next_in_workflow"] else f"refresh it with {stale['refresh_command']}"
    )
    return f"  the daily summary of {days_text(stale['days'])} is now out of date: {refresh}"


def _locations_line(located: dict) -> str:
    """`locations: 2,389 locations (12 new; 4,778 rows over configuration versions) in <table>`."""
    notes = []
    if located.get("new_locations"):
        notes.append(f"{located['new_locations']:,} new")
    if located.get("versions", 0) > located.get("locations", 0):
        notes.append(f"{located['versions']:,} rows over configuration versions")
    if not located.get("changed", True):
        notes.append("unchanged")
    return (
        f"  locations: {located.get('locations', 0):,} locations"
        + (f" ({'; '.join(notes)})" if notes else "")
        + f" in {located.get('table')}"
    )


@dataclass
class SummaryReport(Report):
    """The daily summary's report."""

    days: list = field(default_factory=list)  # ISO dates
    output: dict = field(default_factory=dict)

    title: ClassVar[str] = "daily summary"

    def scope_lines(self) -> list[str]:
        return [f"  days {', '.join(self.days) if self.days else 'none'} (UTC)"]

    def detail_lines(self) -> list[str]:
        o = self.output
        if not o:
            return []
        lines = [
            f"  curated rows read    {o.get('curated_rows', 0):>12,}",
            f"  summary rows written {o.get('rows', 0):>12,} ({o.get('locations', 0):,} locations)",
        ]
        for day, n in o.get("rows_per_day", {}).items():
            lines.append(f"    {day}: {n:>8,} rows")
        lines.append(f"  output: {o.get('table')} (iceberg, snapshot {o.get('snapshot_id')})")
        return lines

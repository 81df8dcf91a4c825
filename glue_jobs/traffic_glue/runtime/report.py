"""The run report: what a run read, kept, left out and wrote, as JSON and as text.

Its accounting is exact: read = kept + filtered + rejected, each reading counted once
by the first rule that applies (docs/SEMANTICS.md, "The run report").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from traffic_glue.compute.counting import ReadingCounts


@dataclass
class RunReport:
    run_id: str
    job_name: str
    arguments: dict
    started_at: str
    status: str = "running"
    error: str | None = None
    finished_at: str | None = None
    duration_seconds: float | None = None
    source: dict = field(default_factory=dict)
    readings: dict = field(default_factory=dict)
    output: dict = field(default_factory=dict)
    top_jam_locations: list = field(default_factory=list)
    recovered_runs: list = field(default_factory=list)
    lock_taken_over: dict | None = None
    quarantines_dropped: list = field(default_factory=list)
    report_path: str | None = None

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

    @property
    def accounting_holds(self) -> bool:
        r = self.readings
        return bool(r) and r["read"] == r["kept"] + r["filtered_total"] + r["rejected_total"]

    def to_json(self) -> str:
        values = asdict(self)
        # A run that stopped before counting (bad input, a locked target) has nothing to
        # account for: null, not a false alarm of readings lost.
        values["accounting_holds"] = self.accounting_holds if self.readings else None
        return json.dumps(values, indent=2, sort_keys=True) + "\n"

    def summary(self) -> str:
        r, o, s = self.readings, self.output, self.source
        lines = [
            f"traffic-glue run {self.run_id}: {self.status}"
            + (f" in {self.duration_seconds:.1f} s" if self.duration_seconds is not None else ""),
            f"  days {self.arguments.get('start_date')} .. {self.arguments.get('end_date')}, "
            f"semantics {self.arguments.get('semantics')}",
        ]
        if self.error:
            lines.append(f"  error: {self.error}")
        if s:
            lines.append(
                f"  source: {s.get('files', 0)} files in {s.get('root')}"
                + (f", {len(s['skipped'])} skipped as unreadable" if s.get("skipped") else "")
            )
        if r:
            lines.append(f"  readings read        {r['read']:>12,}")
            lines.append(f"  kept                 {r['kept']:>12,}")
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
            lines.append(
                f"  rows written         {o.get('rows', 0):>12,} in {o.get('partitions', 0)} hour "
                f"partitions, {o.get('files', 0)} files ({o.get('bytes', 0) / 1e6:.1f} MB; "
                f"at most {o.get('max_files_per_partition', 0)} per partition)"
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
            where = f"  output: {o.get('path')}"
            if o.get("table_format"):
                details = [o["table_format"]]
                if o.get("snapshot_id"):
                    details.append(f"snapshot {o['snapshot_id']}")
                if o.get("publish_seconds") is not None:
                    details.append(f"published in {o['publish_seconds']:.1f} s")
                where += f" ({', '.join(details)})"
            lines.append(where)
            if o.get("locations"):
                lines.append(_locations_line(o["locations"]))
        if self.top_jam_locations:
            lines.append("  most jam minutes (trafficjamindicator = 1):")
            for item in self.top_jam_locations:
                name = f"  {item['name']}" if item.get("name") else ""
                lines.append(f"    {item['uniqueid']:>11}: {item['jam_minutes']:>5} minutes{name}")
        if self.report_path:
            lines.append(f"  report: {self.report_path}")
        return "\n".join(lines)


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
